"""The manual walk-through as a script: a CloudHSM cluster with a KMS custom key store, built and
torn down with plain API calls, the way a user would (README "Manual walk-through").

    emulator/.venv/bin/python emulator/walkthrough.py http://127.0.0.1:4566

Prints one line per step; exits non-zero on any failure. Polls are short and bounded: they suit an
emulator started with ``--time-scale 0.01`` (each transition then takes seconds, not minutes).
"""

from __future__ import annotations

import datetime
import json
import secrets
import string
import sys
import time
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

REGION = "us-east-1"
AZS = ("us-east-1a", "us-east-1b")
POLL_SECONDS = 0.2
WAIT_TIMEOUT = 180.0  # bounded: the longest transition at scale 0.01 is a few seconds
EC2_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
CLI = "/opt/cloudhsm/bin/cloudhsm-cli"


def step(text: str) -> None:
    print(text, flush=True)


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = WAIT_TIMEOUT) -> Any:
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_SECONDS)


def new_password() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


class ThrowawayCA:
    """A self-signed RSA 2048 root (Basic Constraints CA); the key lives only in this process."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Walkthrough Root CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, csr_pem: str) -> str:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(csr.subject)
                .issuer_name(self.cert.subject).public_key(csr.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=3650))
                .sign(self.key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM).decode()


class Walkthrough:
    def __init__(self, endpoint: str):
        config = Config(retries={"total_max_attempts": 1, "mode": "standard"})

        def client(service: str) -> Any:
            return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                                aws_access_key_id="testing", aws_secret_access_key="testing",
                                config=config)

        self.ec2, self.iam, self.ssm = client("ec2"), client("iam"), client("ssm")
        self.hsm, self.sm, self.kms = client("cloudhsmv2"), client("secretsmanager"), client("kms")
        self.suffix = secrets.token_hex(4)  # lets the script run twice against one emulator
        self.cluster_id = ""
        self.instance_id = ""

    # ------------------------------------------------------------------------------ cluster reads
    def cluster(self) -> dict[str, Any]:
        return self.hsm.describe_clusters(
            Filters={"clusterIds": [self.cluster_id]})["Clusters"][0]

    def wait_cluster(self, state: str) -> dict[str, Any]:
        def reached() -> Any:
            cluster = self.cluster()
            if cluster["State"] in ("DEGRADED", "DELETED") and state != cluster["State"]:
                raise RuntimeError(f"cluster {self.cluster_id} is {cluster['State']}: "
                                   f"{cluster.get('StateMessage', '')}")
            return cluster if cluster["State"] == state else None

        return wait_for(f"cluster {state}", reached)

    def wait_hsm_active(self, hsm_id: str) -> None:
        wait_for(f"HSM {hsm_id} ACTIVE", lambda: any(
            h["HsmId"] == hsm_id and h["State"] == "ACTIVE" for h in self.cluster()["Hsms"]))

    # ------------------------------------------------------------------------------ SSM
    def run_on_instance(self, what: str, script: str) -> str:
        command_id = self.ssm.send_command(
            InstanceIds=[self.instance_id], DocumentName="AWS-RunShellScript",
            Parameters={"commands": [script]})["Command"]["CommandId"]

        def finished() -> Any:
            try:
                got = self.ssm.get_command_invocation(CommandId=command_id,
                                                      InstanceId=self.instance_id)
            except ClientError as err:
                if err.response["Error"]["Code"] == "InvocationDoesNotExist":
                    return None  # briefly, right after SendCommand (as on AWS)
                raise
            return got if got["Status"] in ("Success", "Failed", "TimedOut", "Cancelled") else None

        inv = wait_for(f"command {command_id}", finished)
        if inv["Status"] != "Success":
            raise RuntimeError(f"{what} failed ({inv['Status']}, exit {inv['ResponseCode']}): "
                               f"{inv['StandardOutputContent']}{inv['StandardErrorContent']}")
        return inv["StandardOutputContent"]

    def fetch_secret(self, variable: str, secret_arn: str) -> str:
        """Shell that reads a secret on the instance: the value never enters the command text."""
        return (f"{variable}=$(aws secretsmanager get-secret-value --secret-id {secret_arn} "
                "--query SecretString --output text)")

    # ------------------------------------------------------------------------------ the steps
    def run(self) -> None:
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [self.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24",
                                          AvailabilityZone=az)["Subnet"]["SubnetId"]
                   for i, az in enumerate(AZS)]
        step(f"network: {vpc} with subnets {subnets[0]} ({AZS[0]}), {subnets[1]} ({AZS[1]})")

        self.cluster_id = self.hsm.create_cluster(
            HsmType="hsm2m.medium", SubnetIds=subnets)["Cluster"]["ClusterId"]
        step(f"CreateCluster: {self.cluster_id}")
        cluster = self.wait_cluster("UNINITIALIZED")
        cluster_sg = cluster["SecurityGroup"]
        step(f"cluster UNINITIALIZED (security group {cluster_sg})")

        first = self.hsm.create_hsm(ClusterId=self.cluster_id, AvailabilityZone=AZS[0])["Hsm"]
        step(f"CreateHsm: {first['HsmId']} in {AZS[0]}")
        self.wait_hsm_active(first["HsmId"])
        step(f"HSM {first['HsmId']} ACTIVE")

        csr = wait_for("the cluster CSR",
                       lambda: self.cluster().get("Certificates", {}).get("ClusterCsr"))
        step("read the cluster CSR")
        ca = ThrowawayCA()
        signed = ca.sign(csr)
        step("signed the CSR with a throwaway CA (key kept in memory only)")

        self.hsm.initialize_cluster(ClusterId=self.cluster_id, SignedCert=signed,
                                    TrustAnchor=ca.pem)
        step("InitializeCluster")
        self.wait_cluster("INITIALIZED")
        step("cluster INITIALIZED")

        # The client instance: an SSM-managed profile, and a security group the cluster admits.
        role = f"hsm-client-{self.suffix}"
        self.iam.create_role(RoleName=role, AssumeRolePolicyDocument=EC2_TRUST)
        self.iam.attach_role_policy(RoleName=role, PolicyArn=SSM_CORE)
        self.iam.create_instance_profile(InstanceProfileName=role)
        self.iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)
        client_sg = self.ec2.create_security_group(
            GroupName=role, Description="CloudHSM admin client", VpcId=vpc)["GroupId"]
        self.ec2.authorize_security_group_ingress(
            GroupId=cluster_sg,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2223, "ToPort": 2225,
                            "UserIdGroupPairs": [{"GroupId": client_sg}]}])
        self.instance_id = self.ec2.run_instances(
            ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnets[0],
            SecurityGroupIds=[client_sg],
            IamInstanceProfile={"Name": role})["Instances"][0]["InstanceId"]
        step(f"RunInstances: {self.instance_id} (profile {role}, security group {client_sg} "
             f"allowed into {cluster_sg} on TCP 2223-2225)")
        wait_for(f"{self.instance_id} online in SSM", lambda: any(
            i["InstanceId"] == self.instance_id and i["PingStatus"] == "Online"
            for i in self.ssm.describe_instance_information()["InstanceInformationList"]))
        step(f"instance {self.instance_id} is managed by SSM")

        admin_secret = self.sm.create_secret(Name=f"hsm-admin-{self.suffix}",
                                             SecretString=new_password())["ARN"]
        kms_password = new_password()  # KMS rotates it at connect; only the key store keeps it
        kms_secret = self.sm.create_secret(Name=f"hsm-kmsuser-{self.suffix}",
                                           SecretString=kms_password)["ARN"]
        step(f"stored the admin and kmsuser passwords in Secrets Manager ({admin_secret})")

        self.run_on_instance("activation", "\n".join([
            "set -e",
            f"cat > /opt/cloudhsm/etc/customerCA.crt <<'PEM'\n{ca.pem}PEM",
            f"/opt/cloudhsm/bin/configure-cli --cluster-id {self.cluster_id}",
            self.fetch_secret("PW", admin_secret),
            f'{CLI} cluster activate --password "$PW"']))
        step("SendCommand: trust anchor installed, configure-cli, cloudhsm-cli cluster activate")
        self.wait_cluster("ACTIVE")
        step("cluster ACTIVE")

        second = self.hsm.create_hsm(ClusterId=self.cluster_id, AvailabilityZone=AZS[1])["Hsm"]
        step(f"CreateHsm: {second['HsmId']} in {AZS[1]}")
        self.wait_hsm_active(second["HsmId"])
        step(f"HSM {second['HsmId']} ACTIVE")

        coverage = self.run_on_instance("kmsuser creation", "\n".join([
            "set -e",
            f"/opt/cloudhsm/bin/configure-cli --cluster-id {self.cluster_id}",  # both HSMs
            self.fetch_secret("PW", admin_secret),
            self.fetch_secret("KP", kms_secret),
            "export CLOUDHSM_ROLE=admin",
            'export CLOUDHSM_PIN="admin:$PW"',
            f'{CLI} user create --username kmsuser --role crypto-user --password "$KP" >/dev/null',
            f"{CLI} user list | jq -r '.data.users[] | select(.username==\"kmsuser\") "
            "| .[\"cluster-coverage\"]'"])).strip()
        if coverage != "full":
            raise RuntimeError(f"kmsuser is not on every HSM (cluster-coverage {coverage!r})")
        step("SendCommand: kmsuser (crypto-user) created on every HSM")

        store_id = self.kms.create_custom_key_store(
            CustomKeyStoreName=f"walkthrough-{self.suffix}", CloudHsmClusterId=self.cluster_id,
            TrustAnchorCertificate=ca.pem, KeyStorePassword=kms_password)["CustomKeyStoreId"]
        step(f"CreateCustomKeyStore: {store_id}")
        self.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
        step("ConnectCustomKeyStore")
        store = self.wait_store(store_id, "CONNECTED")
        step(f"key store {store_id} CONNECTED")

        # ------------------------------------------------------------------------ tear down
        self.kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        self.wait_store(store_id, "DISCONNECTED")
        step(f"DisconnectCustomKeyStore: {store['CustomKeyStoreId']} DISCONNECTED")
        self.kms.delete_custom_key_store(CustomKeyStoreId=store_id)
        step("DeleteCustomKeyStore")

        for hsm_id in (first["HsmId"], second["HsmId"]):
            self.hsm.delete_hsm(ClusterId=self.cluster_id, HsmId=hsm_id)
            step(f"DeleteHsm: {hsm_id}")
        wait_for("the HSMs to be deleted", lambda: not self.cluster()["Hsms"])
        step("both HSMs deleted")
        self.hsm.delete_cluster(ClusterId=self.cluster_id)
        step(f"DeleteCluster: {self.cluster_id}")
        self.wait_cluster("DELETED")
        step("cluster DELETED")

        self.ec2.terminate_instances(InstanceIds=[self.instance_id])
        wait_for(f"{self.instance_id} terminated", lambda: self.ec2.describe_instances(
            InstanceIds=[self.instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]
            == "terminated")
        step(f"TerminateInstances: {self.instance_id} terminated")
        for secret in (admin_secret, kms_secret):
            self.sm.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
        step("deleted the password secrets")
        step("teardown complete")

    def wait_store(self, store_id: str, state: str) -> dict[str, Any]:
        def reached() -> Any:
            store = self.kms.describe_custom_key_stores(
                CustomKeyStoreId=store_id)["CustomKeyStores"][0]
            if store["ConnectionState"] == "FAILED":
                raise RuntimeError(f"key store {store_id} FAILED: "
                                   f"{store.get('ConnectionErrorCode')}")
            return store if store["ConnectionState"] == state else None

        return wait_for(f"key store {state}", reached)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} ENDPOINT_URL (e.g. http://127.0.0.1:4566)", file=sys.stderr)
        return 2
    try:
        Walkthrough(argv[1]).run()
    except Exception as err:  # every failure: one line, non-zero exit
        print(f"FAILED: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
