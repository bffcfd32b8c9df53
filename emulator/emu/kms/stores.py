"""CloudHSM key stores (AWS_CLOUDHSM custom key stores): the model and its state machine.

Source of truth: shared/reference/aws-behaviour.md section 3 (3.1 operations, 3.2 state rules,
3.3 ConnectionErrorCode, 3.4 requirements, 3.5 networking) and 2.6 (kmsuser).

Stores live on moto's ``KmsBackend`` instance (``backend.custom_key_stores``), so moto's reset
clears them. Transitions are lazy (``emu.clock`` deadlines): :func:`advance` runs before every KMS
request and whenever another part of the emulator asks (``emu.kms.advance_all``):

    DISCONNECTED --Connect--> CONNECTING --(kms.connect elapses)--> CONNECTED | FAILED(code)
    CONNECTED | CONNECTING | FAILED --Disconnect--> DISCONNECTING --(kms.disconnect)--> DISCONNECTED

A connect attempt is judged when its duration has elapsed, against the live CloudHSM and EC2
models (cluster gone, no active HSM, subnets, kmsuser on every HSM, ...), unless a fault rule
(``kms_connect``) forces the outcome. A quick configuration failure raises at Connect time and
leaves the store DISCONNECTED.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from emu import clock, faults, recorder

from . import kmsuser, network
from .errors import error, invalid_state, store_not_found
from .hsm_view import LOCK, ClusterView, get_cluster, same_pem

QUOTA = 10  # custom key stores per account and Region, not adjustable (KDG resource-limits.md)


@dataclass
class CustomKeyStore:
    id: str
    name: str
    cluster_id: str
    trust_anchor: str
    cluster_certificate: str | None  # the cluster's certificate when associated (backup lineage)
    password: str = field(repr=False)  # current kmsuser password as KMS knows it
    account_id: str = ""
    region: str = ""
    creation_date: float = field(default_factory=time.time)
    state: str = "DISCONNECTED"
    error_code: str | None = None
    deadline: float | None = None  # when CONNECTING/DISCONNECTING completes (real time)
    forced_error_code: str | None = None  # fault-injected outcome of the running connect
    session: Any = field(default=None, repr=False)  # KMS's kmsuser session while connected
    security_group_id: str | None = None
    eni_ids: list[str] = field(default_factory=list)

    def to_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "CustomKeyStoreId": self.id,
            "CustomKeyStoreName": self.name,
            "CloudHsmClusterId": self.cluster_id,
            "TrustAnchorCertificate": self.trust_anchor,
            "ConnectionState": self.state,
            "CreationDate": self.creation_date,
            "CustomKeyStoreType": "AWS_CLOUDHSM",
        }
        if self.state == "FAILED" and self.error_code:
            entry["ConnectionErrorCode"] = self.error_code
        return entry


def registry(backend: Any) -> dict[str, CustomKeyStore]:
    stores = getattr(backend, "custom_key_stores", None)
    if stores is None:
        stores = backend.custom_key_stores = {}
    return stores


def new_store_id() -> str:
    return "cks-" + secrets.token_hex(9)[:17]


def find(backend: Any, store_id: str) -> CustomKeyStore:
    store = registry(backend).get(store_id)
    if store is None:
        raise store_not_found(store_id)
    advance(store)
    return store


# --------------------------------------------------------------------------- cluster checks


def require_cluster(account_id: str, region: str, cluster_id: str) -> ClusterView:
    cluster = get_cluster(account_id, region, cluster_id)
    if cluster is None:
        raise error(
            "CloudHsmClusterNotFoundException",
            f"AWS KMS cannot find the AWS CloudHSM cluster with cluster ID {cluster_id}.",
        )
    return cluster


def require_active(cluster: ClusterView) -> None:
    if cluster.state != "ACTIVE":
        raise error(
            "CloudHsmClusterNotActiveException",
            f"The AWS CloudHSM cluster {cluster.cluster_id} is not active (state "
            f"{cluster.state}). Initialize and activate the cluster and try again.",
        )


def require_configuration(account_id: str, region: str, cluster: ClusterView, min_hsms: int) -> None:
    """CloudHsmClusterInvalidConfigurationException rules (3.4).

    min_hsms=2: CreateCustomKeyStore, UpdateCustomKeyStore, CreateKey need two active HSMs in
    different AZs; min_hsms=1: ConnectCustomKeyStore needs one.
    """

    def invalid(message: str) -> Exception:
        return error("CloudHsmClusterInvalidConfigurationException", message)

    if not network.security_group_ok(account_id, region, cluster):
        raise invalid(
            f"The security group for the cluster (cloudhsm-cluster-{cluster.cluster_id}-sg) must "
            "include inbound and outbound rules that allow TCP traffic on ports 2223-2225 from "
            "and to the security group itself."
        )
    if len(set(cluster.subnet_mapping)) < 2:
        raise invalid(
            "CloudHSM cluster must be configured with private subnets in at least two "
            "different Availability Zones"
        )
    if min_hsms >= 2 and len(cluster.active_azs()) < 2:
        # The real message text (aws-behaviour.md 3.4).
        raise invalid("CloudHSM cluster must contain active HSMs in at least two Availability Zones")
    if min_hsms == 1 and not cluster.active_hsms():
        raise invalid("CloudHSM cluster must contain at least one active HSM")


# --------------------------------------------------------------------------- lazy transitions


def advance(store: CustomKeyStore) -> None:
    """Apply a transition whose duration has elapsed."""
    with LOCK:
        if store.deadline is None or clock.now() < store.deadline:
            return
        store.deadline = None
        if store.state == "CONNECTING":
            _finish_connect(store)
        elif store.state == "DISCONNECTING":
            _finish_disconnect(store)


def _evaluate_connect(store: CustomKeyStore) -> tuple[str | None, ClusterView | None]:
    """The ConnectionErrorCode real conditions produce (None: the connect succeeds)."""
    account, region = store.account_id, store.region
    cluster = get_cluster(account, region, store.cluster_id)
    if cluster is None:
        return "CLUSTER_NOT_FOUND", None
    if network.missing_subnets(account, region, cluster):
        return "SUBNET_NOT_FOUND", cluster
    if not cluster.active_hsms():
        return "INSUFFICIENT_CLOUDHSM_HSMS", cluster
    if network.subnets_without_free_address(account, region, cluster):
        return "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET", cluster
    return None, cluster


def _finish_connect(store: CustomKeyStore) -> None:
    if store.forced_error_code:
        store.state, store.error_code = "FAILED", store.forced_error_code
        store.forced_error_code = None
        return
    code, cluster = _evaluate_connect(store)
    if code is not None:
        store.state, store.error_code = "FAILED", code
        return
    assert cluster is not None
    password = kmsuser.new_password()
    code, session = kmsuser.login_and_rotate(store.account_id, store.region, cluster, store.password, password)
    if code is not None:
        store.state, store.error_code = "FAILED", code
        return
    # From here on only KMS knows the kmsuser password.
    store.password, store.session = password, session
    recorder.record(
        "secret_value",
        source="kms.ConnectCustomKeyStore (kmsuser password rotated by KMS)",
        custom_key_store_id=store.id,
        cluster_id=store.cluster_id,
        value=password,
    )
    try:
        store.security_group_id, store.eni_ids = network.create_connection_infrastructure(
            store.account_id, store.region, store.id, cluster
        )
    except StopIteration:  # a subnet filled up between the check and the allocation
        kmsuser.logout(store.session)
        store.session = None
        store.state, store.error_code = "FAILED", "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET"
        return
    store.state, store.error_code = "CONNECTED", None


def _finish_disconnect(store: CustomKeyStore) -> None:
    kmsuser.logout(store.session)
    network.remove_connection_infrastructure(
        store.account_id, store.region, store.security_group_id, store.eni_ids
    )
    store.session, store.security_group_id, store.eni_ids = None, None, []
    store.state, store.error_code = "DISCONNECTED", None


# --------------------------------------------------------------------------- operations


def connect(store: CustomKeyStore) -> None:
    with LOCK:
        advance(store)
        if store.state in ("DISCONNECTING", "FAILED"):
            raise invalid_state(store.id, store.state, "ConnectCustomKeyStore")
        if store.state in ("CONNECTED", "CONNECTING"):
            return  # valid, nothing to do (3.2)
        cluster = get_cluster(store.account_id, store.region, store.cluster_id)
        if cluster is not None:
            # Quick failures: raised now, the store stays DISCONNECTED (KDG fix-keystore.md).
            # A missing cluster is not among Connect's exceptions: it ends FAILED CLUSTER_NOT_FOUND.
            require_active(cluster)
            require_configuration(store.account_id, store.region, cluster, min_hsms=1)
        forced = faults.outcome(
            "kms_connect", custom_key_store_id=store.id, cluster_id=store.cluster_id
        )
        store.forced_error_code = (forced or {}).get("ConnectionErrorCode")
        store.state, store.error_code = "CONNECTING", None
        store.deadline = clock.deadline("kms.connect")


def disconnect(store: CustomKeyStore) -> None:
    with LOCK:
        advance(store)
        if store.state in ("DISCONNECTING", "DISCONNECTED"):
            raise invalid_state(store.id, store.state, "DisconnectCustomKeyStore")
        store.forced_error_code = None
        store.state, store.error_code = "DISCONNECTING", None
        store.deadline = clock.deadline("kms.disconnect")


def keys_in_store(backend: Any, store_id: str) -> list[Any]:
    purge_deleted_keys(backend)
    return [k for k in backend.keys.values() if getattr(k, "custom_key_store_id", None) == store_id]


def purge_deleted_keys(backend: Any) -> None:
    """Keys in a key store whose (scaled) deletion window has passed are gone, as in AWS.

    moto never deletes a key after ScheduleKeyDeletion; for keys in custom key stores the
    emulator does, on the scaled clock, so teardown can wait for it.
    """
    now = clock.now()
    for key_id, key in list(backend.keys.items()):
        due = getattr(key, "emu_deletion_deadline", None)
        if due is not None and key.key_state == "PendingDeletion" and now >= due:
            backend.delete_key(key_id)


def advance_backend(backend: Any) -> None:
    with LOCK:
        for store in list(registry(backend).values()):
            advance(store)
        purge_deleted_keys(backend)
