# RefreshClientConfig: point the client at the cluster's current HSMs (and install the trust
# anchor when its secret is given, e.g. on a replaced client).
CLUSTER_ID='{{ ClusterId }}'
ANCHOR_SECRET='{{ TrustAnchorSecretArn }}'

if [[ -n "$ANCHOR_SECRET" ]]; then
  install_trust_anchor "$ANCHOR_SECRET"
fi
configure "$CLUSTER_ID"
echo "client configured for cluster $CLUSTER_ID"
