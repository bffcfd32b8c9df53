"""Shared set-up for the KMS custom key store tests (no tests here; imported by test_kms_*.py).

The key store rules are judged against the live CloudHSM model, so every test needs ACTIVE
clusters with HSMs and kmsuser in known states. ``World`` builds them the way a user would, on
the emulator process started by ``conftest.py``:

* the network through the EC2 API (VPC, one subnet per AZ);
* the cluster through the CloudHSM API: CreateCluster, the first HSM, the CSR signed by a test
  CA, InitializeCluster, activation and users through the HSM side
  (``POST /_emu/cloudhsm/hsm-side``, what ``cloudhsm-cli`` does on a client), then the other HSMs;
  a cluster "of the same lineage" is restored from the original's backup;
* kmsuser states through the same HSM side (failed logins lock it, an open session logs it in).

Only KMS is reset between tests (``POST /_emu/kms/reset``): a full reset rebuilds moto's EC2
backend, which takes seconds, and every test makes its own VPC and clusters anyway.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from conftest import REGION, Emulator
from test_cloudhsm_support import CA

KMSUSER_PASSWORD = "InitialKmsUser2026pw"
ADMIN_PASSWORD = "AdminPassword2026"
# Nominal seconds (the clock scale still applies): short, so a test takes a fraction of a second
# per transition. kms.connect is ~10 min on AWS.
CONNECT_SECONDS = 40.0
DISCONNECT_SECONDS = 10.0
FAST_DURATIONS = {
    "kms.connect": CONNECT_SECONDS,
    "kms.disconnect": DISCONNECT_SECONDS,
    "cloudhsm.cluster_create": 2.0,
    "cloudhsm.hsm_create": 2.0,
    "cloudhsm.initialize": 2.0,
    "cloudhsm.hsm_delete": 2.0,
    "cloudhsm.cluster_delete": 2.0,
    "cloudhsm.backup_create": 2.0,
}


_CAS: list[CA] = []


def ca_for(index: int) -> CA:
    while len(_CAS) <= index:
        _CAS.append(CA(name=f"KMS key store test CA {len(_CAS)}"))
    return _CAS[index]


@dataclass
class ClusterHandle:
    cluster_id: str
    vpc_id: str
    security_group_id: str
    subnets: dict[str, str]  # AZ -> subnet id
    hsm_ids: list[str]  # in the order of hsm_azs
    trust_anchor: str
    cluster_certificate: str


class World:
    """Clusters, HSMs and kmsuser for key store tests, through the emulator's APIs."""

    _vpc_numbers = itertools.count(1)

    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self.ec2 = emulator.client("ec2")
        self.hsm = emulator.client("cloudhsmv2")
        self.kms = self.kms_client()

    def kms_client(self, validate: bool = True) -> Any:
        """A KMS client that makes exactly one attempt per call (no retry hides an error)."""
        return boto3.client(
            "kms", endpoint_url=self.emulator.endpoint, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}, parameter_validation=validate),
        )

    # ------------------------------------------------------------------ CloudHSM, as a user would
    def _cluster(self, cluster_id: str) -> dict[str, Any]:
        return self.hsm.describe_clusters(Filters={"clusterIds": [cluster_id]})["Clusters"][0]

    def _wait(self, what: str, predicate: Any, timeout: float = 30.0) -> Any:
        deadline = time.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def _wait_cluster(self, cluster_id: str, state: str) -> dict[str, Any]:
        return self._wait(f"{cluster_id} {state}", lambda: (c := self._cluster(cluster_id))["State"] == state and c)

    def _create_hsm(self, cluster_id: str, az: str, degraded: bool = False) -> str:
        if degraded:
            self.fault({"kind": "hsm_create", "match": {"cluster_id": cluster_id, "az": az},
                        "outcome": {"state": "DEGRADED"}})
        hsm_id = self.hsm.create_hsm(ClusterId=cluster_id, AvailabilityZone=az)["Hsm"]["HsmId"]
        want = "DEGRADED" if degraded else "ACTIVE"
        self._wait(f"{hsm_id} {want}", lambda: any(
            h["HsmId"] == hsm_id and h["State"] == want for h in self._cluster(cluster_id)["Hsms"]))
        return hsm_id

    def hsm_side(self, cluster: ClusterHandle | str, op: str, **body: Any) -> dict[str, Any]:
        """One HSM-side command as a client in the cluster security group would run it."""
        cluster_id = cluster if isinstance(cluster, str) else cluster.cluster_id
        if not isinstance(cluster, str):
            body.setdefault("security_group_ids", [cluster.security_group_id])
        status, result = self.emulator.emu("POST", "cloudhsm/hsm-side", {"op": op, "cluster_id": cluster_id, **body})
        assert status == 200, result
        return result

    def make_cluster(
        self,
        hsm_azs: tuple[str, ...] = ("us-east-1a", "us-east-1b"),
        subnet_azs: tuple[str, ...] | None = None,
        kmsuser_on: str | list[int] = "all",
        kmsuser_password: str = KMSUSER_PASSWORD,
        state: str = "ACTIVE",
        lineage_of: ClusterHandle | None = None,
        subnet_prefix: int = 24,
        degraded: tuple[int, ...] = (),
        ca: int = 0,
    ) -> ClusterHandle:
        """A cluster (ACTIVE by default) with one HSM per entry of ``hsm_azs``.

        ``state`` "UNINITIALIZED" / "INITIALIZED" stops early (no HSM / the first HSM only).
        ``kmsuser_on``: "all", or indexes (into ``hsm_azs``) of the HSMs that get kmsuser.
        ``lineage_of``: restore the new cluster from that cluster's latest backup (same cluster
        certificate and trust anchor). ``degraded``: indexes of HSMs that end DEGRADED.
        """
        subnet_azs = subnet_azs or tuple(dict.fromkeys(hsm_azs))
        n = next(self._vpc_numbers) % 250 + 1
        vpc_id = self.ec2.create_vpc(CidrBlock=f"10.{n}.0.0/16")["Vpc"]["VpcId"]
        subnets = {
            az: self.ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.{n}.{i}.0/{subnet_prefix}",
                                       AvailabilityZone=az)["Subnet"]["SubnetId"]
            for i, az in enumerate(subnet_azs)
        }
        params: dict[str, Any] = {"HsmType": "hsm2m.medium", "SubnetIds": list(subnets.values())}
        if lineage_of is not None:
            backups = self.hsm.describe_backups(Filters={"clusterIds": [lineage_of.cluster_id]})["Backups"]
            latest = max((b for b in backups if b["BackupState"] == "READY"),
                         key=lambda b: b["CreateTimestamp"])
            params["SourceBackupId"] = latest["BackupId"]
        cluster_id = self.hsm.create_cluster(**params)["Cluster"]["ClusterId"]
        hsm_ids: list[str] = []
        if state == "CREATE_IN_PROGRESS":
            trust_anchor = lineage_of.trust_anchor if lineage_of else ""
            return self._handle(cluster_id, vpc_id, subnets, hsm_ids, trust_anchor, self._cluster(cluster_id))
        if lineage_of is not None:
            described = self._wait_cluster(cluster_id, "ACTIVE")
            trust_anchor = lineage_of.trust_anchor
        else:
            described = self._wait_cluster(cluster_id, "UNINITIALIZED")
            if state == "UNINITIALIZED":  # the CA the user is going to sign with
                return self._handle(cluster_id, vpc_id, subnets, hsm_ids, ca_for(ca).pem, described)
            hsm_ids.append(self._create_hsm(cluster_id, hsm_azs[0]))
            csr = self._cluster(cluster_id)["Certificates"]["ClusterCsr"]
            authority = ca_for(ca)
            trust_anchor = authority.pem
            self.hsm.initialize_cluster(ClusterId=cluster_id, SignedCert=authority.sign(csr), TrustAnchor=trust_anchor)
            described = self._wait_cluster(cluster_id, "INITIALIZED")
            if state == "INITIALIZED":
                return self._handle(cluster_id, vpc_id, subnets, hsm_ids, trust_anchor, described)
            result = self.hsm_side(cluster_id, "cluster_activate", security_group_ids=[described["SecurityGroup"]],
                                   password=ADMIN_PASSWORD, trust_anchor=trust_anchor)
            assert result["ok"], result
            described = self._wait_cluster(cluster_id, "ACTIVE")
        for index, az in enumerate(hsm_azs):
            if index < len(hsm_ids):
                continue
            hsm_ids.append(self._create_hsm(cluster_id, az, degraded=index in degraded))
        handle = self._handle(cluster_id, vpc_id, subnets, hsm_ids, trust_anchor, self._cluster(cluster_id))
        wanted = [h for i, h in enumerate(hsm_ids) if (kmsuser_on == "all" or i in kmsuser_on) and i not in degraded]
        users = self.users(handle)
        missing = [h for h in wanted if "kmsuser" not in users[h]["users"]]
        if missing:
            result = self.hsm_side(handle, "user_create", hsms=missing,
                                   login={"username": "admin", "role": "admin", "password": ADMIN_PASSWORD},
                                   username="kmsuser", role="crypto-user", password=kmsuser_password)
            assert result["ok"], result
        return handle

    @staticmethod
    def _handle(cluster_id: str, vpc_id: str, subnets: dict[str, str], hsm_ids: list[str], trust_anchor: str,
                described: dict[str, Any]) -> ClusterHandle:
        return ClusterHandle(cluster_id, vpc_id, described["SecurityGroup"], subnets, hsm_ids, trust_anchor,
                             described["Certificates"].get("ClusterCertificate", ""))

    def users(self, cluster: ClusterHandle) -> dict[str, Any]:
        """Per-HSM user stores (role, has_password, failed_logins, locked, sessions; no passwords)."""
        status, body = self.emulator.emu("GET", f"cloudhsm/hsm-users?cluster_id={cluster.cluster_id}")
        assert status == 200, body
        return body

    def kmsuser(self, cluster: ClusterHandle, hsm_id: str) -> dict[str, Any] | None:
        return self.users(cluster)[hsm_id]["users"].get("kmsuser")

    def kmsuser_login(self, cluster: ClusterHandle, password: str, hsm_ids: list[str] | None = None) -> dict:
        """Log in and out as kmsuser (a wrong password counts as a failed login)."""
        body: dict[str, Any] = {"login": {"username": "kmsuser", "role": "crypto-user", "password": password}}
        if hsm_ids is not None:
            body["hsms"] = hsm_ids
        return self.hsm_side(cluster, "login", **body)

    def delete_hsm(self, cluster: ClusterHandle, hsm_id: str) -> None:
        self.hsm.delete_hsm(ClusterId=cluster.cluster_id, HsmId=hsm_id)

    def delete_cluster(self, cluster: ClusterHandle) -> None:
        """Delete every HSM, wait for them to go, then delete the cluster."""
        for hsm_id in cluster.hsm_ids:
            self.delete_hsm(cluster, hsm_id)
        self._wait("HSMs gone", lambda: not self._cluster(cluster.cluster_id)["Hsms"])
        self.hsm.delete_cluster(ClusterId=cluster.cluster_id)

    def fault(self, rule: dict[str, Any]) -> dict[str, Any]:
        status, body = self.emulator.emu("POST", "faults", rule)
        assert status == 200, body
        return body

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

    def wait_state(self, store_id: str, *states: str, timeout: float = 30.0) -> dict[str, Any]:
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

    def rotated_password(self, store_id: str) -> str:
        """The password KMS set on connect, as recorded for leak tests (kind secret_value)."""
        records = self.emulator.introspect(kind="secret_value")["records"]
        mine = [r["value"] for r in records if r.get("custom_key_store_id") == store_id
                and r.get("source", "").startswith("kms.ConnectCustomKeyStore")]
        assert mine, "no rotated password recorded"
        return mine[-1]

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

    def scale(self) -> float:
        return self.emulator.emu("GET", "clock")[1]["scale"]


@pytest.fixture
def world(emulator: Emulator) -> Any:
    """A clean KMS, no fault rules, short durations, CloudHSM quotas out of the way; the clock
    and quotas are put back afterwards for tests that do not reset."""
    clock = emulator.emu("GET", "clock")[1]
    quotas = emulator.emu("GET", "cloudhsm/quotas")[1]

    def call(method: str, path: str, body: Any) -> None:
        status, result = emulator.emu(method, path, body)
        assert status == 200, (path, result)

    call("POST", "kms/reset", {})
    call("DELETE", "faults", None)
    call("POST", "clock", {"durations": FAST_DURATIONS})
    call("POST", "cloudhsm/quotas", {"clusters_per_region": 1000, "hsms_per_region": 1000})
    try:
        yield World(emulator)
    finally:
        call("DELETE", "faults", None)
        call("POST", "clock", {"scale": clock["scale"], "durations": clock["durations"]})
        call("POST", "cloudhsm/quotas", quotas)


def error_code(excinfo: Any) -> str:
    return excinfo.value.response["Error"]["Code"]


def error_message(excinfo: Any) -> str:
    return excinfo.value.response["Error"]["Message"]
