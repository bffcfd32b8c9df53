# RefreshClientConfig: point the client at the cluster's current HSMs (and install the trust
# anchor when its secret is given, e.g. on a replaced client).
CLUSTER_ID='{{ ClusterId }}'
ANCHOR_SECRET='{{ TrustAnchorSecretArn }}'

if [[ -n "$ANCHOR_SECRET" ]]; then
  # Before initialization (External PKI waiting for its certificate) the secret holds a
  # placeholder: activation installs the anchor later.
  if [[ "$(secret_value "$ANCHOR_SECRET")" == *"BEGIN CERTIFICATE"* ]]; then
    install_trust_anchor "$ANCHOR_SECRET"
  else
    echo "trust anchor not stored yet (cluster not initialized): not installed"
  fi
fi
configure "$CLUSTER_ID"
echo "client configured for cluster $CLUSTER_ID"
