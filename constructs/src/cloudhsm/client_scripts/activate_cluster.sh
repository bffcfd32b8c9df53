# ActivateCluster: trust anchor to customerCA.crt, configure-cli, `cluster activate` with the
# admin password from Secrets Manager. Idempotent: an activated cluster is left as it is.
CLUSTER_ID='{{ ClusterId }}'
ADMIN_SECRET='{{ AdminPasswordSecretArn }}'
ANCHOR_SECRET='{{ TrustAnchorSecretArn }}'

install_trust_anchor "$ANCHOR_SECRET"
configure "$CLUSTER_ID"

users=$(cli user list)
admin=$(user_fields "$users" admin)
if [[ "$admin" == "admin "* ]]; then
  echo "cluster $CLUSTER_ID is already activated"
  exit 0
fi
[[ "$admin" == "unactivated-admin "* ]] || fail "unexpected admin user state: '${admin:-missing}'"

# --password: the CLI's documented non-interactive form (its prompt wants a terminal, which SSM
# Run Command does not give). See common.sh for where the value can and cannot be seen.
pw=$(secret_value "$ADMIN_SECRET")
[[ ${#pw} -ge 8 ]] || fail "the admin password secret is empty or too short"
out=$("$CLI" cluster activate --password "$pw" 2>&1) || true
unset pw
printf '%s\n' "$out"
cli_ok "$out" || fail "cluster activate failed"
echo "cluster $CLUSTER_ID activated"
