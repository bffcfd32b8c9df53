"""The HSM side of the emulated cluster: per-HSM user stores and what ``cloudhsm-cli`` does to them.

Callers (the ``cloudhsm-cli`` stand-in in ``emu.client``, the KMS key store model in ``emu.kms``)
use this API; none of it is an AWS API call. Every function raises :class:`HsmSideError`
(``code``, ``message``) on failure; ``message`` is close to what the real CLI prints.

Users live on each HSM (``Hsm.users: dict[str, HsmUser]``, see ``emu.cloudhsm.models``):
``HsmUser(username, role, password, failed_logins, locked, sessions)`` with role one of
``unactivated-admin``, ``admin``, ``crypto-user``, ``appliance``. Users are *not* synchronised
between HSMs: a command changes the HSMs the caller reached, and only those (AWS: the CLI syncs
best-effort, so a user can be missing on some HSMs). A new HSM of an uninitialized cluster has
``admin`` (unactivated-admin, no password) and ``app_user`` (appliance); an HSM added to an ACTIVE
cluster is cloned from the backup taken at that moment, or from the latest backup when the
cluster has no HSM left.

API (``hsms`` is a list of :class:`~emu.cloudhsm.models.Hsm` objects, HSM ids or ENI IPs – what the
client is configured with; only those still ACTIVE in the cluster count):

``reachable_hsms(account, region, cluster_id, client_security_group_ids) -> list[Hsm]``
    ACTIVE HSMs the client can open TCP 2223-2225 to: a client SG in the cluster's VPC is the
    cluster SG itself, or the cluster SG allows ingress on 2223-2225 from it (and the client SG's
    egress allows the traffic). Empty list: the CLI reports a connection failure.
``cluster_activate(account, region, cluster_id, hsms, password, trust_anchor_pem)``
    Needs the cluster INITIALIZED and ``trust_anchor_pem`` equal to the TrustAnchor given to
    InitializeCluster; sets ``admin``'s password and role ``admin`` on the reached HSMs, moves the
    cluster to ACTIVE and takes a backup.
``login(account, region, cluster_id, hsms, username, role, password) -> Session``
    Counts failures per HSM; the 5th failure locks the user. ``logout(session)`` ends it.
``user_create(session, username, role, password) -> {"username", "role"}``  (admin only)
``user_list(account, region, cluster_id, hsms) -> list[dict]``  (no login)
    entries ``{"username", "role", "locked": "true"|"false", "mfa": [], "cluster-coverage":
    "full"|"partial"}``; coverage is "full" when the user is on every ACTIVE HSM of the cluster.
``user_change_password(session, username, role, password) -> {"username", "role"}``
    admin for anyone, anyone for themselves; refused while the user is logged in elsewhere;
    unlocks a locked user.
``user_delete(session, username, role) -> {"username", "role"}``  (admin only)
``user_coverage(account, region, cluster_id, username) -> (present_on, active_hsm_count)``
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from emu import recorder

from . import models, pki
from .models import LOCK, Cluster, Hsm, HsmUser

# Password length: the current CloudHSM quotas page says 8-32 characters for both HSM types;
# older docs (Apr 2023 user guide, SDK3 createUser) say 7-32. We follow the current page.
PASSWORD_MIN, PASSWORD_MAX = 8, 32
USERNAME_PATTERN = re.compile(r"^[a-z0-9_]{1,31}$")  # 31 chars max; "_" the only special char
MAX_FAILED_LOGINS = 5  # 20 for clusters created before Feb 2018 (not modelled)
ROLE_DISPLAY = {"appliance": "internal(APPLIANCE_USER)"}


class HsmSideError(Exception):
    """code: CONNECTION_FAILED, CLUSTER_NOT_FOUND, INVALID_STATE, TRUST_ANCHOR_MISMATCH,
    INVALID_PASSWORD, INVALID_USERNAME, INVALID_ROLE, USER_NOT_FOUND, USER_EXISTS,
    INVALID_CREDENTIALS, USER_LOCKED, USER_LOGGED_IN, PERMISSION_DENIED, NOT_LOGGED_IN."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Session:
    account: str
    region: str
    cluster_id: str
    hsm_ids: list[str]
    username: str
    role: str
    open: bool = True
    counted_on: list[str] = field(default_factory=list)  # HSMs whose session count we raised


def _cluster(account: str, region: str, cluster_id: str) -> Cluster:
    b = models.backend(account, region)
    b.tick()
    cluster = b.clusters.get(cluster_id or "")
    if cluster is None or cluster.state in ("DELETED", "DELETE_IN_PROGRESS"):
        raise HsmSideError("CLUSTER_NOT_FOUND", f"Cluster {cluster_id} not found")
    return cluster


def _resolve(cluster: Cluster, hsms: Iterable[Any]) -> list[Hsm]:
    keys = set()
    for h in hsms or []:
        keys.add(h.hsm_id if isinstance(h, Hsm) else str(h))
    return [
        h for h in cluster.hsms.values()
        if h.state == "ACTIVE" and (h.hsm_id in keys or h.eni_ip in keys or h.eni_id in keys)
    ]


def _connected(cluster: Cluster, hsms: Iterable[Any]) -> list[Hsm]:
    found = _resolve(cluster, hsms)
    if not found:
        raise HsmSideError(
            "CONNECTION_FAILED",
            "Failed to connect to the HSM(s) of the cluster: no HSM could be reached on TCP "
            "2223-2225. Check that the client's security group is allowed by the cluster "
            "security group and that the HSMs are ACTIVE.",
        )
    return found


def _check_password(password: Any) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise HsmSideError(
            "INVALID_PASSWORD",
            f"Invalid password: it must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long",
        )
    return password


def _check_username(username: Any) -> str:
    name = str(username or "").lower()  # case-insensitive, shown in lowercase
    if not USERNAME_PATTERN.match(name):
        raise HsmSideError(
            "INVALID_USERNAME",
            "Invalid username: use 1 to 31 letters, digits or underscores",
        )
    return name


def _live_session(session: Session) -> tuple[Cluster, list[Hsm]]:
    if not session or not session.open:
        raise HsmSideError("NOT_LOGGED_IN", "Not logged in. Run login first.")
    cluster = _cluster(session.account, session.region, session.cluster_id)
    return cluster, _connected(cluster, session.hsm_ids)


# --------------------------------------------------------------------------- network
def reachable_hsms(account: str, region: str, cluster_id: str, client_security_group_ids: list[str]) -> list[Hsm]:
    with LOCK:
        b = models.backend(account, region)
        b.tick()
        cluster = b.clusters.get(cluster_id or "")
        if cluster is None or cluster.state in ("DELETED", "DELETE_IN_PROGRESS"):
            return []
        ec2 = models._ec2(account, region)
        cluster_sg = ec2.get_security_group_from_id(cluster.security_group)
        if cluster_sg is None:
            return []
        allowed = False
        for sg_id in client_security_group_ids or []:
            client_sg = ec2.get_security_group_from_id(sg_id)
            if client_sg is None or client_sg.vpc_id != cluster.vpc_id:
                continue
            if sg_id == cluster_sg.id:
                allowed = True
                break
            ingress_ok = any(
                models._ports_cover(rule) and rule.source_group.get("GroupId") == sg_id
                for rule in cluster_sg.ingress_rules
            )
            egress_ok = any(
                models._ports_cover(rule)
                and (
                    rule.source_group.get("GroupId") == cluster_sg.id
                    or rule.ip_range.get("CidrIp") == "0.0.0.0/0"
                )
                for rule in client_sg.egress_rules
            )
            if ingress_ok and egress_ok:
                allowed = True
                break
        return cluster.active_hsms() if allowed else []


# --------------------------------------------------------------------------- activation
def cluster_activate(account: str, region: str, cluster_id: str, hsms: list[Any], password: str,
                     trust_anchor_pem: str | None) -> None:
    with LOCK:
        cluster = _cluster(account, region, cluster_id)
        reached = _connected(cluster, hsms)  # the CLI connects first
        if cluster.state != "INITIALIZED":
            raise HsmSideError(
                "INVALID_STATE",
                f"Cluster activation failed: the cluster is {cluster.state}, not INITIALIZED",
            )
        if not trust_anchor_pem:
            raise HsmSideError(
                "TRUST_ANCHOR_MISMATCH",
                "Cluster activation failed: no trust anchor (customerCA.crt) to verify the HSM",
            )
        if not cluster.trust_anchor_pem or not pki.same_certificate(trust_anchor_pem, cluster.trust_anchor_pem):
            raise HsmSideError(
                "TRUST_ANCHOR_MISMATCH",
                "Cluster activation failed: the HSM certificate does not chain to the trust "
                "anchor in customerCA.crt",
            )
        _check_password(password)
        for hsm in reached:
            admin = hsm.users.get("admin")
            if admin is None or admin.role != "unactivated-admin":
                raise HsmSideError("INVALID_STATE", "Cluster activation failed: the cluster is already activated")
        for hsm in reached:
            admin = hsm.users["admin"]
            admin.role, admin.password = "admin", password
        cluster.state = "ACTIVE"
        cluster.state_message = "The cluster is ready for use."
        models.backend(account, region).take_backup(cluster, reason="activation")
        recorder.record("cloudhsm_event", event="activated", cluster_id=cluster_id)


# --------------------------------------------------------------------------- sessions
def login(account: str, region: str, cluster_id: str, hsms: list[Any], username: str, role: str,
          password: str) -> Session:
    with LOCK:
        cluster = _cluster(account, region, cluster_id)
        reached = _connected(cluster, hsms)
        name = str(username or "").lower()
        users = [h.users.get(name) for h in reached]
        if any(u is None for u in users):
            missing = sum(u is None for u in users)
            raise HsmSideError(
                "USER_NOT_FOUND",
                f"Login failed: user {name} does not exist on {missing} of {len(users)} HSM(s)",
            )
        if any(u.role == "unactivated-admin" for u in users):
            raise HsmSideError("INVALID_STATE", "Login failed: the cluster is not activated")
        if any(u.role != role for u in users):
            raise HsmSideError("INVALID_CREDENTIALS", f"Login failed: user {name} does not have role {role}")
        if any(u.locked for u in users):
            raise HsmSideError("USER_LOCKED", f"Login failed: user {name} is locked")
        if any(u.password != password for u in users):
            for u in users:
                u.failed_logins += 1
                if u.failed_logins >= MAX_FAILED_LOGINS:
                    u.locked = True
            raise HsmSideError("INVALID_CREDENTIALS", "Login failed: invalid username or password")
        for u in users:
            u.failed_logins = 0
            u.sessions += 1
        ids = [h.hsm_id for h in reached]
        return Session(account, region, cluster_id, ids, name, role, True, list(ids))


def logout(session: Session) -> None:
    with LOCK:
        if not session or not session.open:
            return
        session.open = False
        b = models.backend(session.account, session.region)
        cluster = b.clusters.get(session.cluster_id)
        for hsm_id in session.counted_on:
            hsm = cluster.hsms.get(hsm_id) if cluster else None
            user = hsm.users.get(session.username) if hsm else None
            if user and user.sessions > 0:
                user.sessions -= 1


# --------------------------------------------------------------------------- users
def user_create(session: Session, username: str, role: str, password: str) -> dict[str, str]:
    with LOCK:
        _, reached = _live_session(session)
        if session.role != "admin":
            raise HsmSideError("PERMISSION_DENIED", "user create: only an admin can create users")
        name = _check_username(username)
        if role not in ("crypto-user", "admin"):
            raise HsmSideError("INVALID_ROLE", f"Invalid role {role}: use crypto-user or admin")
        _check_password(password)
        if any(name in h.users for h in reached):
            raise HsmSideError("USER_EXISTS", f"User {name} already exists")
        for hsm in reached:
            hsm.users[name] = HsmUser(name, role, password)
        return {"username": name, "role": role}


def user_list(account: str, region: str, cluster_id: str, hsms: list[Any]) -> list[dict[str, Any]]:
    with LOCK:
        cluster = _cluster(account, region, cluster_id)
        reached = _connected(cluster, hsms)
        every = cluster.active_hsms()
        order: dict[str, HsmUser] = {}
        locked: dict[str, bool] = {}
        for hsm in reached:
            for name, user in hsm.users.items():
                order.setdefault(name, user)
                locked[name] = locked.get(name, False) or user.locked
        out = []
        for name, user in order.items():
            full = all(name in h.users for h in every)
            out.append({
                "username": name,
                "role": ROLE_DISPLAY.get(user.role, user.role),
                "locked": "true" if locked[name] else "false",
                "mfa": [],
                "cluster-coverage": "full" if full else "partial",
            })
        return out


def _targets(reached: list[Hsm], username: str, role: str) -> list[HsmUser]:
    name = str(username or "").lower()
    found = [h.users[name] for h in reached if name in h.users]
    if not found or any(u.role != role for u in found):
        raise HsmSideError("USER_NOT_FOUND", f"User {name} with role {role} does not exist")
    return found


def user_change_password(session: Session, username: str, role: str, password: str) -> dict[str, str]:
    with LOCK:
        _, reached = _live_session(session)
        name = str(username or "").lower()
        if session.role != "admin" and name != session.username:
            raise HsmSideError("PERMISSION_DENIED", "user change-password: only an admin can change another user's password")
        targets = _targets(reached, name, role)
        _check_password(password)
        own = 1 if name == session.username else 0
        if any(u.sessions - own > 0 for u in targets):
            raise HsmSideError(
                "USER_LOGGED_IN",
                f"Cannot change the password of user {name}: the user is currently logged in",
            )
        for user in targets:
            user.password, user.locked, user.failed_logins = password, False, 0
        return {"username": name, "role": role}


def user_delete(session: Session, username: str, role: str) -> dict[str, str]:
    with LOCK:
        _, reached = _live_session(session)
        if session.role != "admin":
            raise HsmSideError("PERMISSION_DENIED", "user delete: only an admin can delete users")
        name = str(username or "").lower()
        if name == session.username:
            raise HsmSideError("PERMISSION_DENIED", "user delete: you cannot delete the user you are logged in as")
        targets = _targets(reached, name, role)
        if any(u.role == "appliance" for u in targets):
            raise HsmSideError("PERMISSION_DENIED", f"user delete: {name} is an internal user")
        if any(u.sessions > 0 for u in targets):
            raise HsmSideError("USER_LOGGED_IN", f"Cannot delete user {name}: the user is currently logged in")
        for hsm in reached:
            hsm.users.pop(name, None)
        return {"username": name, "role": role}


def user_coverage(account: str, region: str, cluster_id: str, username: str) -> tuple[int, int]:
    with LOCK:
        cluster = _cluster(account, region, cluster_id)
        every = cluster.active_hsms()
        return sum(username in h.users for h in every), len(every)


def describe_users(account: str, region: str, cluster_id: str) -> dict[str, Any]:
    """Per-HSM user stores without passwords (for tests and /_emu/cloudhsm/hsm-users)."""
    with LOCK:
        cluster = _cluster(account, region, cluster_id)
        return {
            hsm.hsm_id: {
                "state": hsm.state,
                "eni_ip": hsm.eni_ip,
                "users": {
                    name: {
                        "role": u.role,
                        "has_password": u.password is not None,
                        "failed_logins": u.failed_logins,
                        "locked": u.locked,
                        "sessions": u.sessions,
                    }
                    for name, u in hsm.users.items()
                },
            }
            for hsm in cluster.hsms.values()
        }
