# CreateKmsUser: the crypto user `kmsuser` on every HSM with the password from its own secret
# (never the admin's), then verify `user list` shows it with cluster-coverage full.
CLUSTER_ID='{{ ClusterId }}'
ADMIN_SECRET='{{ AdminPasswordSecretArn }}'
KMSUSER_SECRET='{{ KmsUserSecretArn }}'
ANCHOR_SECRET='{{ TrustAnchorSecretArn }}'

if [[ -n "$ANCHOR_SECRET" ]]; then
  install_trust_anchor "$ANCHOR_SECRET"
fi
configure "$CLUSTER_ID"

export CLOUDHSM_ROLE=admin
admin_pw=$(secret_value "$ADMIN_SECRET")
export CLOUDHSM_PIN="admin:${admin_pw}"
unset admin_pw
kpw=$(secret_value "$KMSUSER_SECRET")
[[ ${#kpw} -ge 8 ]] || fail "the kmsuser password secret is empty or too short"

users=$(cli user list)
current=$(user_fields "$users" kmsuser)
if [[ -n "$current" && "$current" != *" full" ]]; then
  # Present on some HSMs only: recreate it everywhere.
  echo "kmsuser exists with partial coverage ($current): recreating it on every HSM"
  cli user delete --username kmsuser --role crypto-user >/dev/null
  current=""
fi
if [[ -z "$current" ]]; then
  cli user create --username kmsuser --role crypto-user --password "$kpw"
else
  # Exists everywhere: make its password the one KMS will be given.
  cli user change-password --username kmsuser --role crypto-user --password "$kpw"
fi
unset kpw CLOUDHSM_PIN

users=$(cli user list)
fields=$(user_fields "$users" kmsuser)
[[ "$fields" == "crypto-user false full" ]] \
  || fail "kmsuser is not a crypto user present and unlocked on every HSM (role locked coverage: '${fields:-missing}')"
echo "kmsuser present on every HSM of $CLUSTER_ID"
