# Shared helpers of the client documents. Secrets are read on the instance from Secrets Manager,
# kept in shell variables only, and given to cloudhsm-cli through its environment
# (CLOUDHSM_ROLE/CLOUDHSM_PIN, for login) or its documented `--password` option (for the
# password being set) — the CLI's only non-interactive forms: its prompt wants a terminal, which
# SSM Run Command does not give. So a secret never appears in SSM command parameters, command
# output or logs; it is visible only in the argv of a seconds-long process on this dedicated
# admin client, to root and the ssm-agent user. Never echo a secret. Never add `set -x` here.
set -euo pipefail
set +x
umask 077
CLI="${CLOUDHSM_CLI:-/opt/cloudhsm/bin/cloudhsm-cli}"
CONFIGURE="${CLOUDHSM_CONFIGURE:-/opt/cloudhsm/bin/configure-cli}"
ETC="${CLOUDHSM_ETC:-/opt/cloudhsm/etc}"

fail() {
  echo "ERROR: $*" >&2
  exit 1
}

# The SecretString of a secret (plain text, or the "password" key of a JSON secret).
secret_value() {
  local raw
  raw=$(aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text) \
    || fail "cannot read secret $1 (instance role needs secretsmanager:GetSecretValue)"
  if [[ "$raw" == "{"* ]]; then
    printf '%s' "$raw" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("password",""), end="")'
  else
    printf '%s' "$raw"
  fi
}

# Succeeds when a cloudhsm-cli JSON answer has error_code 0.
cli_ok() {
  printf '%s' "$1" | python3 -c 'import json,sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
sys.exit(0 if d.get("error_code") == 0 else 1)'
}

# Run cloudhsm-cli; print its answer and fail unless
# error_code is 0. The answers never contain passwords.
cli() {
  local out rc=0
  out=$("$CLI" "$@" 2>&1) || rc=$?
  printf '%s\n' "$out"
  if [[ $rc -ne 0 ]] || ! cli_ok "$out"; then
    fail "cloudhsm-cli $1 ${2:-} failed (exit $rc)"
  fi
}

# The trust anchor from its secret into customerCA.crt (cloudhsm-cli verifies the HSMs with it).
install_trust_anchor() {
  local anchor
  anchor=$(secret_value "$1")
  [[ "$anchor" == *"BEGIN CERTIFICATE"* ]] || fail "secret $1 holds no PEM certificate (is the cluster initialized?)"
  mkdir -p "$ETC"
  printf '%s\n' "$anchor" >"$ETC/customerCA.crt"
  chmod 644 "$ETC/customerCA.crt"
}

configure() {
  "$CONFIGURE" --cluster-id "$1" || fail "configure-cli --cluster-id $1 failed"
}

# Fields of one user from `user list` JSON: "<role> <locked> <cluster-coverage>", or nothing.
user_fields() {
  printf '%s' "$1" | python3 -c 'import json,sys
name = sys.argv[1]
d = json.load(sys.stdin).get("data") or {}
for u in d.get("users", []):
    if u.get("username") == name:
        print(u.get("role", ""), u.get("locked", ""), u.get("cluster-coverage", ""))' "$2"
}
