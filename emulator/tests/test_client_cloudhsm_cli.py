"""The stand-in ``cloudhsm-cli`` / ``configure-cli`` on an emulated instance, driven the way the
stack drives them: SSM Run Command scripts that fetch the password from Secrets Manager and use
single-command mode (``CLOUDHSM_ROLE`` / ``CLOUDHSM_PIN``)."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

import pytest

from conftest import wait_for
from test_client_ssm import Client
from test_cloudhsm_support import CA  # the customer CA shared by the CloudHSM tests

# Nominal seconds; at the suite's time scale (0.01) each CloudHSM transition takes 0.2-0.3 s.
FAST = {"cloudhsm.cluster_create": 20, "cloudhsm.hsm_create": 30, "cloudhsm.initialize": 20,
        "cloudhsm.hsm_delete": 20, "cloudhsm.backup_create": 10}


def new_password() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


class Setup(Client):
    """A VPC with an INITIALIZED cluster, a client instance and an admin password secret."""

    def __init__(self, emu: Any):
        super().__init__(emu)
        self.hsm = emu.client("cloudhsmv2")
        self.sm = emu.client("secretsmanager")
        status, body = emu.emu("POST", "clock", {"durations": FAST})
        assert status == 200, body
        self.vpc, self.subnets = self.network()
        self.client_sg = self.ec2.create_security_group(
            GroupName="hsm-client", Description="admin client", VpcId=self.vpc)["GroupId"]
        self.instance_id = self.instance(self.subnets[0], security_groups=[self.client_sg])
        self.password = new_password()
        self.secret_arn = self.sm.create_secret(Name="admin-pw",
                                                SecretString=self.password)["ARN"]
        self.ca = CA()
        self.cluster_id = ""

    # ---------------------------------------------------------------- cluster
    def describe(self) -> dict[str, Any]:
        return self.hsm.describe_clusters(
            Filters={"clusterIds": [self.cluster_id]})["Clusters"][0]

    def wait_state(self, state: str) -> dict[str, Any]:
        return wait_for(lambda: self.describe()["State"] == state and self.describe(), timeout=60)

    def wait_hsm_active(self, hsm_id: str) -> None:
        wait_for(lambda: any(h["HsmId"] == hsm_id and h["State"] == "ACTIVE"
                             for h in self.describe()["Hsms"]), timeout=60)

    def initialized_cluster(self) -> None:
        created = self.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=self.subnets)
        self.cluster_id = created["Cluster"]["ClusterId"]
        self.wait_state("UNINITIALIZED")
        hsm = self.hsm.create_hsm(ClusterId=self.cluster_id, AvailabilityZone="us-east-1a")["Hsm"]
        self.wait_hsm_active(hsm["HsmId"])
        csr = wait_for(lambda: self.describe()["Certificates"].get("ClusterCsr"), timeout=30)
        self.hsm.initialize_cluster(ClusterId=self.cluster_id, SignedCert=self.ca.sign(csr),
                                    TrustAnchor=self.ca.pem)
        self.wait_state("INITIALIZED")

    def allow_client(self) -> None:
        """What the stack does before activation: the cluster SG admits the client SG."""
        self.ec2.authorize_security_group_ingress(
            GroupId=self.describe()["SecurityGroup"],
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2223, "ToPort": 2225,
                            "UserIdGroupPairs": [{"GroupId": self.client_sg}]}])

    # ---------------------------------------------------------------- scripts on the instance
    def fetch_password(self) -> str:
        return (f'PW=$(aws secretsmanager get-secret-value --secret-id {self.secret_arn} '
                f'--query SecretString --output text)')

    def install_ca(self) -> str:
        return f"cat > /opt/cloudhsm/etc/customerCA.crt <<'PEM'\n{self.ca.pem}PEM"

    def activate_script(self, with_ca: bool = True) -> str:
        lines = ["set -e"]
        if with_ca:
            lines.append(self.install_ca())
        lines += [f"/opt/cloudhsm/bin/configure-cli --cluster-id {self.cluster_id}",
                  self.fetch_password(),
                  '/opt/cloudhsm/bin/cloudhsm-cli cluster activate --password "$PW"']
        return "\n".join(lines)

    def activate(self) -> dict[str, Any]:
        inv = self.run(self.instance_id, self.activate_script())
        assert inv["Status"] == "Success", inv
        self.wait_state("ACTIVE")
        return inv

    def as_admin(self, command: str) -> dict[str, Any]:
        """Run a cloudhsm-cli command in single-command mode, logged in as admin."""
        script = "\n".join([
            self.fetch_password(),
            "export CLOUDHSM_ROLE=admin",
            'export CLOUDHSM_PIN="admin:$PW"',
            f"/opt/cloudhsm/bin/cloudhsm-cli {command}"])
        return self.run(self.instance_id, script)

    def cli(self, command: str, env: str = "") -> dict[str, Any]:
        return self.run(self.instance_id, f"{env}\n/opt/cloudhsm/bin/cloudhsm-cli {command}")

    def users(self) -> dict[str, dict[str, Any]]:
        inv = self.cli("user list")
        assert inv["Status"] == "Success", inv
        out = json.loads(inv["StandardOutputContent"])
        assert out["error_code"] == 0
        return {u["username"]: u for u in out["data"]["users"]}

    def recorded_text(self) -> str:
        """Everything recorded except the secret store itself (which holds the password)."""
        body = self.emu.introspect()
        records = [r for r in body.get("records", []) if r.get("kind") != "secret_value"]
        return json.dumps(records)


@pytest.fixture
def setup(emu: Any) -> Setup:
    return Setup(emu)


@pytest.fixture
def active(setup: Setup) -> Setup:
    setup.initialized_cluster()
    setup.allow_client()
    setup.activate()
    return setup


# ---------------------------------------------------------------------------------- configure
def test_configure_cli_cluster_id_writes_hsm_ips(setup: Setup) -> None:
    setup.initialized_cluster()
    ip = setup.describe()["Hsms"][0]["EniIp"]
    inv = setup.run(setup.instance_id,
                    f"/opt/cloudhsm/bin/configure-cli --cluster-id {setup.cluster_id} && "
                    "jq -c '[.clusters[0].cluster.servers[] | .hostname, .port]' "
                    "/opt/cloudhsm/etc/cloudhsm-cli.cfg")
    assert inv["Status"] == "Success", inv
    assert json.loads(inv["StandardOutputContent"]) == [ip, 2223]


def test_configure_cli_with_address_and_unknown_cluster(setup: Setup) -> None:
    inv = setup.run(setup.instance_id, "/opt/cloudhsm/bin/configure-cli -a 10.0.1.99 && "
                                       "jq -r '.clusters[0].cluster.servers[0].hostname' "
                                       "/opt/cloudhsm/etc/cloudhsm-cli.cfg")
    assert inv["StandardOutputContent"] == "10.0.1.99\n"
    inv = setup.run(setup.instance_id,
                    "/opt/cloudhsm/bin/configure-cli --cluster-id cluster-aaaaaaaaaaa")
    assert inv["Status"] == "Failed" and "not found" in inv["StandardErrorContent"]


def test_cli_without_configuration_fails(setup: Setup) -> None:
    inv = setup.cli("user list")
    assert inv["Status"] == "Failed" and inv["ResponseCode"] == 1
    assert json.loads(inv["StandardOutputContent"])["error_code"] != 0


# --------------------------------------------------------------------------------- activation
def test_activation_happy_path(setup: Setup) -> None:
    setup.initialized_cluster()
    setup.allow_client()
    inv = setup.activate()
    out = json.loads(inv["StandardOutputContent"])
    assert out == {"error_code": 0, "data": "Cluster activation successful"}
    assert setup.describe()["State"] == "ACTIVE"
    users = setup.users()
    assert users["admin"]["role"] == "admin"
    assert users["app_user"]["role"] == "internal(APPLIANCE_USER)"
    # The password never reached a command line, parameter, output or log the emulator kept.
    assert setup.password not in setup.recorded_text()


def test_activation_reads_the_password_from_stdin(setup: Setup) -> None:
    setup.initialized_cluster()
    setup.allow_client()
    script = "\n".join(["set -e", setup.install_ca(),
                        f"/opt/cloudhsm/bin/configure-cli --cluster-id {setup.cluster_id}",
                        setup.fetch_password(),
                        'printf "%s\\n%s\\n" "$PW" "$PW" | /opt/cloudhsm/bin/cloudhsm-cli '
                        "cluster activate"])
    inv = setup.run(setup.instance_id, script)
    assert inv["Status"] == "Success", inv
    assert json.loads(inv["StandardOutputContent"])["data"] == "Cluster activation successful"
    setup.wait_state("ACTIVE")
    assert setup.password not in setup.recorded_text()


def test_activation_without_trust_anchor_fails(setup: Setup) -> None:
    setup.initialized_cluster()
    setup.allow_client()
    inv = setup.run(setup.instance_id, setup.activate_script(with_ca=False))
    assert inv["Status"] == "Failed" and inv["ResponseCode"] == 1
    out = json.loads(inv["StandardOutputContent"])
    assert out["error_code"] != 0 and "customerCA.crt" in out["data"]
    assert setup.describe()["State"] == "INITIALIZED"


def test_activation_with_a_different_trust_anchor_fails(setup: Setup) -> None:
    setup.initialized_cluster()
    setup.allow_client()
    setup.ca = CA()  # the instance gets a CA the cluster was not initialized with
    inv = setup.run(setup.instance_id, setup.activate_script())
    assert inv["Status"] == "Failed"
    assert setup.describe()["State"] == "INITIALIZED"


def test_activation_without_security_group_ingress_is_a_connection_error(setup: Setup) -> None:
    setup.initialized_cluster()  # no allow_client(): the cluster SG does not admit the client
    inv = setup.run(setup.instance_id, setup.activate_script())
    assert inv["Status"] == "Failed"
    out = json.loads(inv["StandardOutputContent"])
    assert out["error_code"] != 0 and "connect" in out["data"].lower()
    assert setup.describe()["State"] == "INITIALIZED"


def test_activation_of_an_uninitialized_cluster_fails(setup: Setup) -> None:
    created = setup.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=setup.subnets)
    setup.cluster_id = created["Cluster"]["ClusterId"]
    setup.wait_state("UNINITIALIZED")
    hsm = setup.hsm.create_hsm(ClusterId=setup.cluster_id, AvailabilityZone="us-east-1a")["Hsm"]
    setup.wait_hsm_active(hsm["HsmId"])
    setup.allow_client()
    inv = setup.run(setup.instance_id, setup.activate_script())
    assert inv["Status"] == "Failed"
    assert "INITIALIZED" in json.loads(inv["StandardOutputContent"])["data"]


# ------------------------------------------------------------------------------------- users
def test_user_create_and_list_full_coverage(active: Setup) -> None:
    second = active.hsm.create_hsm(ClusterId=active.cluster_id, AvailabilityZone="us-east-1b")
    active.wait_hsm_active(second["Hsm"]["HsmId"])
    kms_secret = active.sm.create_secret(Name="kmsuser-pw", SecretString=new_password())["ARN"]
    script = "\n".join([
        "set -e",
        active.fetch_password(),
        f"KP=$(aws secretsmanager get-secret-value --secret-id {kms_secret} "
        "--query SecretString --output text)",
        "export CLOUDHSM_ROLE=admin",
        'export CLOUDHSM_PIN="admin:$PW"',
        '/opt/cloudhsm/bin/cloudhsm-cli user create --username kmsuser --role crypto-user '
        '--password "$KP"',
        "/opt/cloudhsm/bin/cloudhsm-cli user list | "
        "jq -r '.data.users[] | select(.username==\"kmsuser\") | .[\"cluster-coverage\"]'"])
    inv = active.run(active.instance_id, script)
    assert inv["Status"] == "Success", inv
    created, coverage = inv["StandardOutputContent"].rsplit("}", 1)
    assert json.loads(created + "}") == {"error_code": 0,
                                         "data": {"username": "kmsuser", "role": "crypto-user"}}
    assert coverage.strip() == "full"
    user = active.users()["kmsuser"]
    assert user == {"username": "kmsuser", "role": "crypto-user", "locked": "false", "mfa": [],
                    "cluster-coverage": "full"}


def test_user_created_while_an_hsm_is_being_added_has_partial_coverage(active: Setup) -> None:
    # Slow HSM creation: the new HSM is cloned from the backup taken at CreateHsm, before the
    # user exists, and the CLI cannot reach it until it is ACTIVE.
    active.emu.emu("POST", "clock", {"durations": {"cloudhsm.hsm_create": 800}})
    second = active.hsm.create_hsm(ClusterId=active.cluster_id, AvailabilityZone="us-east-1b")
    inv = active.as_admin("user create --username alice --role crypto-user "
                          "--password Alice12345678")
    assert inv["Status"] == "Success", inv
    assert any(h["State"] == "CREATE_IN_PROGRESS" for h in active.describe()["Hsms"]), \
        "the HSM became ACTIVE before the user was created; raise cloudhsm.hsm_create"
    active.wait_hsm_active(second["Hsm"]["HsmId"])
    users = active.users()
    assert users["alice"]["cluster-coverage"] == "partial"
    assert users["admin"]["cluster-coverage"] == "full"


def test_prompted_password_keeps_the_output_parseable(active: Setup) -> None:
    """Scripts capture `cloudhsm-cli ... 2>&1` and parse the JSON: the password prompt must not
    end up in that output (a terminal prompt; there is no terminal under SSM)."""
    script = "\n".join([
        active.fetch_password(),
        "export CLOUDHSM_ROLE=admin",
        'export CLOUDHSM_PIN="admin:$PW"',
        'out=$(printf "%s\\n%s\\n" Frank1234567 Frank1234567 | /opt/cloudhsm/bin/cloudhsm-cli '
        "user create --username frank --role crypto-user 2>&1)",
        'printf "%s" "$out" | jq -e ".error_code == 0 and .data.username == \\"frank\\""'])
    inv = active.run(active.instance_id, script)
    assert inv["Status"] == "Success", inv
    inv = active.cli("login --username frank --role crypto-user",
                     env="printf 'Frank1234567\\n' |")
    assert inv["Status"] == "Success", inv
    mismatch = active.as_admin("user change-password --username frank --role crypto-user "
                               "< <(printf 'Frank7654321\\nFrank0000000\\n')")
    assert mismatch["Status"] == "Failed"
    assert "do not match" in json.loads(mismatch["StandardOutputContent"])["data"]


def test_commands_needing_login_require_the_environment(active: Setup) -> None:
    inv = active.cli("user create --username bob --role crypto-user --password Bob123456789")
    assert inv["Status"] == "Failed"
    assert "CLOUDHSM_PIN" in json.loads(inv["StandardOutputContent"])["data"]
    inv = active.cli("user create --username bob --role crypto-user --password Bob123456789",
                     env="export CLOUDHSM_ROLE=admin; export CLOUDHSM_PIN=admin:wrongpassword1")
    assert inv["Status"] == "Failed"
    assert "bob" not in active.users()


def test_five_bad_logins_lock_the_user(active: Setup) -> None:
    assert active.as_admin("user create --username carol --role crypto-user "
                           "--password Carol1234567")["Status"] == "Success"
    for _ in range(5):
        inv = active.cli("login --username carol --role crypto-user --password WrongPass999")
        assert inv["Status"] == "Failed" and inv["ResponseCode"] == 1
    inv = active.cli("login --username carol --role crypto-user --password Carol1234567")
    assert inv["Status"] == "Failed"
    assert "locked" in json.loads(inv["StandardOutputContent"])["data"].lower()
    assert active.users()["carol"]["locked"] == "true"
    # An admin unlocks the user by changing the password.
    assert active.as_admin("user change-password --username carol --role crypto-user "
                           "--password Carol7654321")["Status"] == "Success"
    inv = active.cli("login --username carol --role crypto-user --password Carol7654321")
    assert inv["Status"] == "Success", inv
    assert json.loads(inv["StandardOutputContent"]) == {
        "error_code": 0, "data": {"username": "carol", "role": "crypto-user"}}


def test_user_delete(active: Setup) -> None:
    assert active.as_admin("user create --username dave --role crypto-user "
                           "--password Dave12345678")["Status"] == "Success"
    inv = active.as_admin("user delete --username dave --role crypto-user")
    assert inv["Status"] == "Success", inv
    assert "dave" not in active.users()


def test_usage_errors_look_like_the_real_cli(active: Setup) -> None:
    inv = active.cli("user frobnicate")
    assert inv["Status"] == "Failed" and inv["ResponseCode"] == 2
    assert inv["StandardErrorContent"].startswith("error:")
    inv = active.cli("user create --role crypto-user", env="export CLOUDHSM_ROLE=admin")
    assert inv["ResponseCode"] == 2 and "--username" in inv["StandardErrorContent"]


def test_cli_records_mask_passwords(active: Setup) -> None:
    active.as_admin("user create --username erin --role crypto-user --password Erin98765432")
    logs = [r for r in active.emu.introspect(kind="log")["records"]
            if r.get("source") == "cloudhsm-cli"]
    assert logs, "cloudhsm-cli invocations are recorded"
    text = json.dumps(logs)
    assert "Erin98765432" not in text and active.password not in text
    assert any("erin" in " ".join(r["argv"]) for r in logs)


def test_a_client_without_the_trust_anchor_cannot_connect(active: Setup) -> None:
    """A second (e.g. replacement) instance must get customerCA.crt before it can talk to the
    HSMs: the CLI verifies the HSM certificates against it on every connection."""
    other = active.instance(active.subnets[0], security_groups=[active.client_sg])
    configure = f"/opt/cloudhsm/bin/configure-cli --cluster-id {active.cluster_id}"
    inv = active.run(other, f"{configure}\n/opt/cloudhsm/bin/cloudhsm-cli user list")
    assert inv["Status"] == "Failed"
    assert "customerCA.crt" in json.loads(inv["StandardOutputContent"])["data"]
    inv = active.run(other, f"{active.install_ca()}\n{configure}\n"
                            "/opt/cloudhsm/bin/cloudhsm-cli user list")
    assert inv["Status"] == "Success", inv
    assert "admin" in inv["StandardOutputContent"]


def test_instance_without_reach_after_rule_removed(active: Setup) -> None:
    cluster_sg = active.describe()["SecurityGroup"]
    active.ec2.revoke_security_group_ingress(
        GroupId=cluster_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2223, "ToPort": 2225,
                        "UserIdGroupPairs": [{"GroupId": active.client_sg}]}])
    inv = active.cli("user list")
    assert inv["Status"] == "Failed"
    assert "connect" in json.loads(inv["StandardOutputContent"])["data"].lower()
