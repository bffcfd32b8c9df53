"""What KMS sees of the CloudHSM model: one read-only view of a cluster and its HSMs.

The CloudHSM backend (``emu.cloudhsm``) is owned by another part of the emulator. Everything KMS
needs from it goes through this module, so a change in that model touches one file: the cluster's
state, VPC, security group, subnet mapping, certificates and trust anchor, and per HSM its state,
AZ, subnet and user store (``users: dict[str, HsmUser]``; HsmUser has ``username, role, password,
failed_logins, locked, sessions``).

The views are built from the live model on every call, never cached, so a connect attempt is
evaluated against what exists at that moment. Callers hold the CloudHSM model's lock (``LOCK``
below is the same lock, so KMS and CloudHSM never wait on each other in opposite orders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

def _shared_lock() -> Any:
    try:
        from emu.cloudhsm.models import LOCK as cloudhsm_lock

        return cloudhsm_lock
    except ImportError:  # the CloudHSM package is not installed: KMS keeps its own lock
        import threading

        return threading.RLock()


LOCK = _shared_lock()

# States in which a cluster no longer exists for KMS (CLUSTER_NOT_FOUND / CloudHsmClusterNotFound).
GONE_STATES = {"DELETED", "DELETE_IN_PROGRESS"}


@dataclass
class HsmView:
    hsm_id: str
    availability_zone: str
    subnet_id: str
    state: str
    raw: Any = field(repr=False)

    @property
    def users(self) -> dict[str, Any]:
        users = _attr(self.raw, "users")
        return users if isinstance(users, dict) else {}

    def user(self, name: str) -> Any | None:
        return self.users.get(name)


@dataclass
class ClusterView:
    cluster_id: str
    state: str
    vpc_id: str | None
    security_group_id: str | None
    subnet_mapping: dict[str, str]  # AZ -> subnet id
    hsms: list[HsmView]
    trust_anchor: str | None
    cluster_certificate: str | None
    raw: Any = field(repr=False)

    def active_hsms(self) -> list[HsmView]:
        return [h for h in self.hsms if h.state == "ACTIVE"]

    def active_azs(self) -> set[str]:
        return {h.availability_zone for h in self.active_hsms()}


def _attr(obj: Any, *names: str, default: Any = None) -> Any:
    """First present attribute (or dict key) of ``obj`` among ``names``."""
    for name in names:
        if isinstance(obj, dict):
            if name in obj:
                return obj[name]
        elif hasattr(obj, name):
            return getattr(obj, name)
    return default


def _models() -> Any:
    from emu.cloudhsm import models

    return models


def _backend(account_id: str, region: str) -> Any:
    return _models().backend(account_id, region)


def _refresh(backend: Any) -> None:
    """Let the CloudHSM model apply its lazy transitions before we read it."""
    tick = getattr(backend, "tick", None)
    if callable(tick):
        tick()


def _hsm_view(hsm: Any) -> HsmView:
    return HsmView(
        hsm_id=_attr(hsm, "hsm_id", "HsmId", "id", default=""),
        availability_zone=_attr(hsm, "availability_zone", "AvailabilityZone", default=""),
        subnet_id=_attr(hsm, "subnet_id", "SubnetId", default=""),
        state=_attr(hsm, "state", "State", default=""),
        raw=hsm,
    )


def _pem(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def get_cluster(account_id: str, region: str, cluster_id: str) -> ClusterView | None:
    """The live cluster, or None when it does not exist (or is deleted) for KMS."""
    backend = _backend(account_id, region)
    _refresh(backend)
    cluster = (_attr(backend, "clusters", default={}) or {}).get(cluster_id)
    if cluster is None:
        return None
    state = _attr(cluster, "state", default="")
    if state in GONE_STATES:
        return None
    hsms_raw = _attr(cluster, "hsms", default=[]) or []
    if isinstance(hsms_raw, dict):
        hsms_raw = list(hsms_raw.values())
    certificates = _attr(cluster, "certificates", default={}) or {}
    certificate = _attr(cluster, "cluster_certificate_pem", default=None) or certificates.get(
        "ClusterCertificate"
    )
    return ClusterView(
        cluster_id=cluster_id,
        state=state,
        vpc_id=_attr(cluster, "vpc_id", default=None),
        security_group_id=_attr(cluster, "security_group", "security_group_id", default=None),
        subnet_mapping=dict(_attr(cluster, "subnet_mapping", default={}) or {}),
        hsms=[_hsm_view(h) for h in hsms_raw],
        trust_anchor=_pem(_attr(cluster, "trust_anchor_pem", "trust_anchor", default=None)),
        cluster_certificate=_pem(certificate),
        raw=cluster,
    )


def same_pem(a: str | None, b: str | None) -> bool:
    """PEM equality ignoring line endings and surrounding whitespace."""
    if not a or not b:
        return False
    norm = lambda s: "".join(s.split())  # noqa: E731
    return norm(a) == norm(b)
