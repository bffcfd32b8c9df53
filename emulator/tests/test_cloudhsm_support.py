"""Shared helpers for the CloudHSM tests (no tests here): a VPC, a cluster in a given state, a CA
that signs the cluster CSR, and the HSM side driven through ``POST /_emu/cloudhsm/hsm-side``."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# Nominal seconds: at the suite's time scale (0.01) every transition takes 0.1-0.3 s.
FAST = {
    "cloudhsm.cluster_create": 20,
    "cloudhsm.hsm_create": 30,
    "cloudhsm.initialize": 20,
    "cloudhsm.hsm_delete": 20,
    "cloudhsm.cluster_delete": 20,
    "cloudhsm.backup_create": 10,
    "cloudhsm.backup_copy": 10,
}
PASSWORD = "CorrectHorse42battery"


@pytest.fixture
def hsm_env(emu):
    """The emulator, reset, with fast CloudHSM durations; yields a small toolbox."""
    status, body = emu.emu("POST", "clock", {"durations": FAST})
    assert status == 200, body
    return Toolbox(emu)


class Toolbox:
    def __init__(self, emu: Any):
        self.emu = emu
        self.hsm = emu.client("cloudhsmv2")
        self.ec2 = emu.client("ec2")

    # ---------------------------------------------------------------- network
    def vpc(self, azs=("us-east-1a", "us-east-1b"), cidr="10.0.0.0/16", ipv6=False) -> tuple[str, list[str]]:
        vpc = self.ec2.create_vpc(CidrBlock=cidr, AmazonProvidedIpv6CidrBlock=ipv6)["Vpc"]["VpcId"]
        prefix = cidr.split(".")[0] + "." + cidr.split(".")[1]
        subnets = []
        for i, az in enumerate(azs):
            kwargs = {}
            subnets.append(self.ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"{prefix}.{i + 1}.0/24", AvailabilityZone=az, **kwargs
            )["Subnet"]["SubnetId"])
        return vpc, subnets

    # ---------------------------------------------------------------- clusters
    def describe(self, cluster_id: str) -> dict:
        clusters = self.hsm.describe_clusters(Filters={"clusterIds": [cluster_id]})["Clusters"]
        assert clusters, f"{cluster_id} not described"
        return clusters[0]

    def wait_cluster(self, cluster_id: str, state: str, timeout: float = 20) -> dict:
        deadline = time.time() + timeout
        while True:
            cluster = self.describe(cluster_id)
            if cluster["State"] == state:
                return cluster
            assert time.time() < deadline, f"{cluster_id} stuck in {cluster['State']}, wanted {state}"
            time.sleep(0.05)

    def wait_hsm(self, cluster_id: str, hsm_id: str, state: str | None, timeout: float = 20) -> dict | None:
        """Wait until the HSM is in ``state`` (None: gone from the cluster)."""
        deadline = time.time() + timeout
        while True:
            hsms = {h["HsmId"]: h for h in self.describe(cluster_id)["Hsms"]}
            hsm = hsms.get(hsm_id)
            if (state is None and hsm is None) or (hsm is not None and hsm["State"] == state):
                return hsm
            assert time.time() < deadline, f"{hsm_id} not {state}: {hsm}"
            time.sleep(0.05)

    def cluster(self, subnets: list[str], **kwargs: Any) -> dict:
        """A cluster in UNINITIALIZED."""
        created = self.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets, **kwargs)["Cluster"]
        return self.wait_cluster(created["ClusterId"], "UNINITIALIZED")

    def first_hsm(self, cluster_id: str, az: str = "us-east-1a") -> dict:
        hsm = self.hsm.create_hsm(ClusterId=cluster_id, AvailabilityZone=az)["Hsm"]
        return self.wait_hsm(cluster_id, hsm["HsmId"], "ACTIVE")

    def initialized(self, subnets: list[str]) -> tuple[dict, str]:
        """An INITIALIZED cluster with one ACTIVE HSM; returns (cluster, trust anchor PEM)."""
        cluster = self.cluster(subnets)
        cid = cluster["ClusterId"]
        self.first_hsm(cid)
        csr = self.describe(cid)["Certificates"]["ClusterCsr"]
        ca = CA()
        self.hsm.initialize_cluster(ClusterId=cid, SignedCert=ca.sign(csr), TrustAnchor=ca.pem)
        return self.wait_cluster(cid, "INITIALIZED"), ca.pem

    def active(self, subnets: list[str]) -> tuple[dict, str]:
        cluster, anchor = self.initialized(subnets)
        result = self.side("cluster_activate", cluster["ClusterId"], [cluster["SecurityGroup"]],
                           password=PASSWORD, trust_anchor=anchor)
        assert result["ok"], result
        return self.describe(cluster["ClusterId"]), anchor

    # ---------------------------------------------------------------- HSM side
    def side(self, op: str, cluster_id: str, security_group_ids: list[str], **args: Any) -> dict:
        status, body = self.emu.emu("POST", "cloudhsm/hsm-side", {
            "op": op, "cluster_id": cluster_id, "security_group_ids": security_group_ids, **args})
        assert status == 200, body
        return body

    def as_admin(self) -> dict:
        return {"username": "admin", "role": "admin", "password": PASSWORD}

    def backups(self, cluster_id: str) -> list[dict]:
        return self.hsm.describe_backups(Filters={"clusterIds": [cluster_id]}, SortAscending=True)["Backups"]


class CA:
    """A throwaway root CA, as a customer would make with openssl. ``name``: its common name
    (tests that keep several CAs apart name each)."""

    def __init__(self, key=None, basic_constraints: bool | None = True, self_signed: bool = True,
                 name: str = "Customer Root CA"):
        self.key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        issuer_key = self.key
        issuer_name = name
        if not self_signed:
            issuer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Other CA")])
        builder = (
            x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
        )
        if basic_constraints is not None:
            builder = builder.add_extension(x509.BasicConstraints(ca=basic_constraints, path_length=None), critical=True)
        self.cert = builder.sign(issuer_key, hashes.SHA256())
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, csr_pem: str, public_key=None) -> str:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.cert.subject)
            .public_key(public_key or csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())
