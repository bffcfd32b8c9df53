"""Shared set-up for the KMS custom key store tests (no tests here; imported by test_kms_*.py).

The key store rules are judged against the live CloudHSM model, so every test needs ACTIVE
clusters with HSMs and HSM-side users in known states. ``World`` builds them:

* the network (VPC, one subnet per AZ, the cluster security group with its self-referencing
  TCP 2223-2225 rules) through the real EC2 API of the emulator;
* the cluster, its HSMs and their user stores directly as ``emu.cloudhsm.models`` objects, in an
  in-process emulator (``emu.server.start``), because a test must be able to put kmsuser into
  any state (missing on one HSM, locked, logged in, wrong password) and read it back, which the
  wire API does not allow without running the whole client/CLI path.

Each test gets a reset emulator whose key store durations are shortened (the scale still applies).
"""

from __future__ import annotations

import datetime
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from conftest import REGION, Emulator, free_port

ACCOUNT = "123456789012"
KMSUSER_PASSWORD = "InitialKmsUser2026pw"
# Nominal seconds for the tests (kms.connect is ~10 min on AWS; the clock scale still applies).
CONNECT_SECONDS = 40.0
DISCONNECT_SECONDS = 10.0
_ids = itertools.count(1)


def _self_signed_pem(cn: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()




@dataclass
class ClusterHandle:
    cluster_id: str
    vpc_id: str
    security_group_id: str
    subnets: dict[str, str]  # AZ -> subnet id
    hsm_ids: list[str]
    trust_anchor: str
    cluster_certificate: str
    raw: Any = field(repr=False, default=None)


class World:
    """Builds clusters for key store tests in the in-process emulator."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self.ec2 = emulator.client("ec2")
        self.kms = self.kms_client()
        self._cidr = itertools.count(1)

    def kms_client(self, validate: bool = True) -> Any:
        """A KMS client that makes exactly one attempt per call (no retries hide an error)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "kms", endpoint_url=self.emulator.endpoint, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}, parameter_validation=validate),
        )

    # ------------------------------------------------------------------ CloudHSM model access
    @staticmethod
    def _models() -> Any:
        from emu.cloudhsm import models

        return models

    def _backend(self) -> Any:
        return self._models().backend(ACCOUNT, REGION)

    def make_cluster(
        self,
        hsm_azs: tuple[str, ...] = ("us-east-1a", "us-east-1b"),
        subnet_azs: tuple[str, ...] | None = None,
        kmsuser_on: str | list[int] = "all",
        kmsuser_password: str = KMSUSER_PASSWORD,
        state: str = "ACTIVE",
        lineage_of: ClusterHandle | None = None,
        subnet_prefix: int = 24,
    ) -> ClusterHandle:
        """An ACTIVE (by default) cluster with one HSM per entry of ``hsm_azs``.

        ``kmsuser_on``: "all", or the indexes of the HSMs that have kmsuser (crypto user).
        ``lineage_of``: share that cluster's certificate and trust anchor (a restore from its
        backup).
        """
        models = self._models()
        subnet_azs = subnet_azs or tuple(dict.fromkeys(hsm_azs))
        block = next(self._cidr)
        vpc_id = self.ec2.create_vpc(CidrBlock=f"10.{block}.0.0/16")["Vpc"]["VpcId"]
        subnets = {}
        for i, az in enumerate(subnet_azs):
            subnet = self.ec2.create_subnet(
                VpcId=vpc_id, CidrBlock=f"10.{block}.{i}.0/{subnet_prefix}", AvailabilityZone=az
            )["Subnet"]
            subnets[az] = subnet["SubnetId"]
        cluster_id = "cluster-" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(11))
        sg = self.ec2.create_security_group(
            GroupName=f"cloudhsm-{cluster_id}-sg", Description="cluster sg", VpcId=vpc_id
        )["GroupId"]
        rule = [{"IpProtocol": "tcp", "FromPort": 2223, "ToPort": 2225, "UserIdGroupPairs": [{"GroupId": sg}]}]
        self.ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=rule)
        self.ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=rule)
        if lineage_of is not None:
            trust_anchor, certificate = lineage_of.trust_anchor, lineage_of.cluster_certificate
        else:
            n = next(_ids)
            # 1024-bit test keys: only distinctness matters here, and they are quick to make.
            trust_anchor, certificate = _self_signed_pem(f"test CA {n}"), _self_signed_pem(f"cluster {n}")
        with models.LOCK:
            cluster = models.Cluster(
                cluster_id=cluster_id,
                arn=f"arn:aws:cloudhsm:{REGION}:{ACCOUNT}:cluster/{cluster_id}",
                account_id=ACCOUNT,
                region=REGION,
                hsm_type="hsm2m.medium",
                mode="FIPS",
                network_type="IPV4",
                backup_retention_policy={"Type": "DAYS", "Value": "90"},
                subnet_mapping=dict(subnets),
                vpc_id=vpc_id,
                security_group=sg,
                create_timestamp=time.time(),
                state=state,
                trust_anchor_pem=trust_anchor,
                cluster_certificate_pem=certificate,
                certificates={"ClusterCertificate": certificate},
            )
            hsm_ids = []
            for index, az in enumerate(hsm_azs):
                hsm_id = "hsm-" + secrets.token_hex(6)
                eni = self.ec2.create_network_interface(SubnetId=subnets[az], Groups=[sg])["NetworkInterface"]
                users = {
                    "admin": models.HsmUser("admin", "admin", "AdminPassword1"),
                    "app_user": models.HsmUser("app_user", "appliance"),
                }
                if kmsuser_on == "all" or index in kmsuser_on:
                    users["kmsuser"] = models.HsmUser("kmsuser", "crypto-user", kmsuser_password)
                cluster.hsms[hsm_id] = models.Hsm(
                    hsm_id=hsm_id,
                    cluster_id=cluster_id,
                    availability_zone=az,
                    subnet_id=subnets[az],
                    eni_id=eni["NetworkInterfaceId"],
                    eni_ip=eni["PrivateIpAddress"],
                    eni_ipv6=None,
                    hsm_type="hsm2m.medium",
                    state="ACTIVE",
                    users=users,
                )
                hsm_ids.append(hsm_id)
            self._backend().clusters[cluster_id] = cluster
        return ClusterHandle(cluster_id, vpc_id, sg, subnets, hsm_ids, trust_anchor, certificate, cluster)

    def kmsuser(self, cluster: ClusterHandle, hsm_id: str) -> Any:
        """The live kmsuser object on one HSM (None when absent)."""
        return cluster.raw.hsms[hsm_id].users.get("kmsuser")

    def remove_kmsuser(self, cluster: ClusterHandle, hsm_id: str) -> None:
        with self._models().LOCK:
            cluster.raw.hsms[hsm_id].users.pop("kmsuser", None)

    def set_hsm_state(self, cluster: ClusterHandle, hsm_id: str, state: str) -> None:
        with self._models().LOCK:
            cluster.raw.hsms[hsm_id].state = state

    def set_cluster_state(self, cluster: ClusterHandle, state: str) -> None:
        with self._models().LOCK:
            cluster.raw.state = state

    def delete_cluster(self, cluster: ClusterHandle) -> None:
        """The cluster is gone (its HSMs deleted, then the cluster)."""
        with self._models().LOCK:
            self._backend().clusters.pop(cluster.cluster_id, None)

    # ------------------------------------------------------------------ KMS helpers
    def create_store(self, cluster: ClusterHandle, name: str | None = None, **extra: Any) -> str:
        params = dict(
            CustomKeyStoreName=name or f"store-{cluster.cluster_id}",
            CloudHsmClusterId=cluster.cluster_id,
            TrustAnchorCertificate=cluster.trust_anchor,
            KeyStorePassword=KMSUSER_PASSWORD,
        )
        params.update(extra)
        return self.kms.create_custom_key_store(**params)["CustomKeyStoreId"]

    def store(self, store_id: str) -> dict[str, Any]:
        return self.kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]

    def state(self, store_id: str) -> str:
        return self.store(store_id)["ConnectionState"]

    def wait_state(self, store_id: str, *states: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.time() + timeout
        while True:
            entry = self.store(store_id)
            if entry["ConnectionState"] in states:
                return entry
            if time.time() > deadline:
                raise AssertionError(f"{store_id} stayed {entry['ConnectionState']}, wanted {states}")
            time.sleep(0.02)

    def connected_store(self, cluster: ClusterHandle) -> str:
        store_id = self.create_store(cluster)
        self.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
        entry = self.wait_state(store_id, "CONNECTED", "FAILED")
        assert entry["ConnectionState"] == "CONNECTED", entry
        return store_id

    def disconnect(self, store_id: str) -> None:
        self.kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        self.wait_state(store_id, "DISCONNECTED")

    def kms_network(self, store_id: str, cluster: ClusterHandle) -> tuple[list[dict], list[dict]]:
        """(security groups named kms-<store id>, ENIs KMS made for the cluster)."""
        groups = self.ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [f"kms-{store_id}"]}]
        )["SecurityGroups"]
        enis = [
            e
            for e in self.ec2.describe_network_interfaces()["NetworkInterfaces"]
            if e.get("Description") == f"KMS managed ENI for cluster {cluster.cluster_id}"
        ]
        return groups, enis


@pytest.fixture(scope="session")
def kms_emulator() -> Any:
    """An in-process emulator (``emu.server.start``), so tests can shape the CloudHSM model."""
    from emu import server

    port = free_port()
    http = server.start("127.0.0.1", port, 0.01)
    try:
        yield Emulator(f"http://127.0.0.1:{port}")
    finally:
        http.shutdown()


@pytest.fixture
def world(kms_emulator: Emulator) -> World:
    """A clean KMS (stores, keys), no fault rules, short key store durations.

    Only KMS is reset: a full reset rebuilds moto's EC2 backend (~5 s on a loaded machine).
    Every test makes its own VPC, subnets and clusters, so leftovers of other tests do not
    matter.
    """
    from moto.kms.models import kms_backends

    from emu import clock, faults, recorder

    kms_backends.reset()
    faults.clear()
    recorder.clear()
    clock.reset()
    status, body = kms_emulator.emu(
        "POST", "clock", {"durations": {"kms.connect": CONNECT_SECONDS, "kms.disconnect": DISCONNECT_SECONDS}}
    )
    assert status == 200, body
    return World(kms_emulator)


def error_code(excinfo: Any) -> str:
    return excinfo.value.response["Error"]["Code"]


def error_message(excinfo: Any) -> str:
    return excinfo.value.response["Error"]["Message"]


Wait = Callable[..., Any]
