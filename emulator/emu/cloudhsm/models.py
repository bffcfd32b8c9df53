"""The CloudHSM v2 control plane: clusters, HSMs, backups, quotas (aws-behaviour.md section 1).

State lives in :class:`CloudHsmBackend`, one per (account, region), held in moto's own
``cloudhsmv2_backends`` BackendDict (``install()`` swaps the backend class), so moto's
``/moto-api/reset`` clears it. Every public entry point takes :data:`LOCK` and calls
:meth:`CloudHsmBackend.tick` first: transitions are lazy, driven by deadlines from ``emu.clock``
(``cloudhsm.cluster_create``, ``hsm_create``, ``hsm_delete``, ``initialize``, ``cluster_delete``,
``backup_create``, ``backup_copy``). No timer threads.

Other packages read the model with :func:`backend` and :meth:`CloudHsmBackend.get_cluster`:

* ``Cluster``: ``cluster_id``, ``state``, ``vpc_id``, ``security_group``, ``subnet_mapping``,
  ``hsms`` (dict id → :class:`Hsm`), ``trust_anchor_pem`` (set by InitializeCluster),
  ``cluster_certificate_pem``, ``mode``, ``hsm_type``, ``network_type``.
* ``Hsm``: ``hsm_id``, ``state``, ``availability_zone``, ``subnet_id``, ``eni_id``, ``eni_ip``,
  ``users`` (dict username → :class:`HsmUser`; see ``emu.cloudhsm.hsm_side``).

Errors are :class:`CloudHsmError` (code, message, status); the response layer renders them.
"""

from __future__ import annotations

import datetime
import ipaddress
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from moto.core.base_backend import BaseBackend

from emu import clock, recorder

from . import pki

LOCK = threading.RLock()

# aws-behaviour.md 1.4 "Quotas". HSMs per cluster is not adjustable on AWS; it is here only so
# tests can reach it cheaply.
QUOTA_DEFAULTS = {"clusters_per_region": 4, "hsms_per_region": 6, "hsms_per_cluster": 28}
quotas: dict[str, int] = dict(QUOTA_DEFAULTS)

# hsm1.medium reached end of life (Dec 2025, reference 1.4): new clusters use hsm2m.medium. The
# exact refusal text is not documented; set allow_hsm1_medium to accept it again.
SETTINGS_DEFAULTS = {"allow_hsm1_medium": False}
settings: dict[str, Any] = dict(SETTINGS_DEFAULTS)

HSM_TYPES = ("hsm1.medium", "hsm2m.medium")
HSM_TYPE_PATTERN = re.compile(r"^((p|)hsm[0-9][a-z.]*\.[a-zA-Z]+)$")
SUBNET_PATTERN = re.compile(r"^subnet-[0-9a-fA-F]{8,17}$")
RESOURCE_ID_PATTERN = re.compile(r"^(?:cluster|backup)-[2-7a-zA-Z]{11,16}$")
TAG_PATTERN = re.compile(r"^([\w\s.:/=+\-@]*)$", re.UNICODE)
HSM_PORTS = (2223, 2225)
EXTRA_DURATIONS = {
    # How long a DELETED cluster stays describable (uncertain in the reference: "for a while").
    "cloudhsm.deleted_visible": 3600.0,
}
PENDING_DELETION_DAYS = 7  # DeleteBackup: restorable for 7 days [UG delete-restore-backup]
DAILY_BACKUP_SECONDS = 24 * 3600.0  # "at least every 24 hours" [UG manage-backups]


class CloudHsmError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def invalid(message: str) -> CloudHsmError:
    return CloudHsmError("CloudHsmInvalidRequestException", message)


def not_found(message: str) -> CloudHsmError:
    return CloudHsmError("CloudHsmResourceNotFoundException", message)


def limit(message: str) -> CloudHsmError:
    # The error for a quota breach is undocumented (uncertain); the model's limit exception is
    # the closest modelled code.
    return CloudHsmError("CloudHsmResourceLimitExceededException", message)


def _random_id(prefix: str) -> str:
    return prefix + "".join(random.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(11))


def _utc(ts: float | None) -> datetime.datetime | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)


def _nominal_deadline(start: float, nominal_seconds: float) -> float:
    return start + clock.real_seconds(nominal_seconds)


@dataclass
class HsmUser:
    """A user on one HSM. ``role`` is one of unactivated-admin, admin, crypto-user, appliance."""

    username: str
    role: str
    password: str | None = None
    failed_logins: int = 0
    locked: bool = False
    sessions: int = 0  # how many sessions are logged in as this user

    def clone(self) -> "HsmUser":
        # A restored/cloned HSM has no sessions open.
        return HsmUser(self.username, self.role, self.password, self.failed_logins, self.locked, 0)


def initial_users() -> dict[str, HsmUser]:
    """Users of a fresh HSM in an uninitialized cluster [UG activate-cluster]."""
    return {
        "admin": HsmUser("admin", "unactivated-admin"),
        "app_user": HsmUser("app_user", "appliance"),
    }


@dataclass
class Hsm:
    hsm_id: str
    cluster_id: str
    availability_zone: str
    subnet_id: str
    eni_id: str
    eni_ip: str
    eni_ipv6: str | None
    hsm_type: str
    state: str = "CREATE_IN_PROGRESS"
    state_message: str = "HSM is being created."
    ready_at: float = 0.0
    gone_at: float | None = None
    outcome: dict[str, Any] | None = None  # fault injection: end DEGRADED or FAILED
    users: dict[str, HsmUser] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        out = {
            "AvailabilityZone": self.availability_zone,
            "ClusterId": self.cluster_id,
            "SubnetId": self.subnet_id,
            "EniId": self.eni_id,
            "EniIp": self.eni_ip,
            "HsmId": self.hsm_id,
            "HsmType": self.hsm_type,
            "State": self.state,
            "StateMessage": self.state_message,
        }
        if self.eni_ipv6:
            out["EniIpV6"] = self.eni_ipv6
        return out


@dataclass
class Backup:
    backup_id: str
    arn: str
    cluster_id: str | None
    hsm_type: str
    mode: str
    create_timestamp: float
    state: str = "CREATE_IN_PROGRESS"
    ready_at: float = 0.0
    never_expires: bool = False
    copy_timestamp: float | None = None
    source_region: str | None = None
    source_backup: str | None = None
    source_cluster: str | None = None
    delete_timestamp: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # What a restore brings back: the users of the HSM it was taken from, the cluster's
    # certificate and trust anchor.
    users: dict[str, HsmUser] = field(default_factory=dict)
    cluster_certificate_pem: str | None = None
    trust_anchor_pem: str | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "BackupId": self.backup_id,
            "BackupArn": self.arn,
            "BackupState": self.state,
            "CreateTimestamp": _utc(self.create_timestamp),
            "NeverExpires": self.never_expires,
            "HsmType": self.hsm_type,
            "Mode": self.mode,
            "TagList": _tag_list(self.tags),
        }
        if self.cluster_id:
            out["ClusterId"] = self.cluster_id
        for key, value in (
            ("CopyTimestamp", _utc(self.copy_timestamp)),
            ("SourceRegion", self.source_region),
            ("SourceBackup", self.source_backup),
            ("SourceCluster", self.source_cluster),
            ("DeleteTimestamp", _utc(self.delete_timestamp)),
        ):
            if value is not None:
                out[key] = value
        return out


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


@dataclass
class Cluster:
    cluster_id: str
    arn: str
    account_id: str
    region: str
    hsm_type: str
    mode: str
    network_type: str
    backup_retention_policy: dict[str, str]
    subnet_mapping: dict[str, str]
    vpc_id: str
    security_group: str
    create_timestamp: float
    source_backup_id: str | None = None
    state: str = "CREATE_IN_PROGRESS"
    state_message: str = "The cluster is being created."
    state_deadline: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)
    hsms: dict[str, Hsm] = field(default_factory=dict)
    certificates: dict[str, str] = field(default_factory=dict)
    first_hsm: pki.FirstHsmMaterial | None = None
    first_hsm_id: str | None = None
    pending_certificate_pem: str | None = None  # SignedCert while INITIALIZE_IN_PROGRESS
    trust_anchor_pem: str | None = None
    cluster_certificate_pem: str | None = None
    purge_at: float | None = None
    last_backup_at: float | None = None

    @property
    def retention_days(self) -> int:
        return int(self.backup_retention_policy.get("Value", "90"))

    def active_hsms(self) -> list[Hsm]:
        return [h for h in self.hsms.values() if h.state == "ACTIVE"]

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "BackupPolicy": "DEFAULT",
            "BackupRetentionPolicy": dict(self.backup_retention_policy),
            "ClusterId": self.cluster_id,
            "CreateTimestamp": _utc(self.create_timestamp),
            "Hsms": [h.to_api() for h in self.hsms.values()],
            "HsmType": self.hsm_type,
            "SecurityGroup": self.security_group,
            "State": self.state,
            "StateMessage": self.state_message,
            "SubnetMapping": dict(self.subnet_mapping),
            "VpcId": self.vpc_id,
            "NetworkType": self.network_type,
            "Certificates": dict(self.certificates),
            "TagList": _tag_list(self.tags),
            "Mode": self.mode,
        }
        if self.source_backup_id:
            out["SourceBackupId"] = self.source_backup_id
        return out


def _ec2(account_id: str, region: str):
    from moto.ec2.models import ec2_backends

    return ec2_backends[account_id][region]


def _ports_cover(rule) -> bool:
    if str(rule.ip_protocol) == "-1":
        return True
    if str(rule.ip_protocol).lower() not in ("tcp", "6"):
        return False
    if rule.from_port is None or rule.to_port is None:
        return False
    return int(rule.from_port) <= HSM_PORTS[0] and int(rule.to_port) >= HSM_PORTS[1]


def _validate_tags(tag_list: Any, what: str = "TagList") -> dict[str, str]:
    if not isinstance(tag_list, list) or not 1 <= len(tag_list) <= 50:
        raise invalid(f"{what} must contain between 1 and 50 tags.")
    tags: dict[str, str] = {}
    for tag in tag_list:
        key, value = tag.get("Key"), tag.get("Value")
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or not TAG_PATTERN.match(key):
            raise CloudHsmError("CloudHsmTagException", f"Invalid tag key: {key!r}")
        if key.lower().startswith("aws:"):
            raise CloudHsmError("CloudHsmTagException", f"Tag keys may not start with 'aws:': {key}")
        if not isinstance(value, str) or len(value) > 256 or not TAG_PATTERN.match(value):
            raise CloudHsmError("CloudHsmTagException", f"Invalid tag value for key {key!r}")
        tags[key] = value
    return tags


def _validate_retention(policy: Any) -> dict[str, str]:
    if not isinstance(policy, dict):
        raise invalid("BackupRetentionPolicy must be an object with Type and Value.")
    kind = policy.get("Type", "DAYS")
    value = policy.get("Value")
    if kind != "DAYS":
        raise invalid(f"BackupRetentionPolicy Type must be DAYS, not {kind!r}.")
    value = str(value) if value is not None else ""
    if not re.fullmatch(r"[0-9]{1,3}", value):
        raise invalid("BackupRetentionPolicy Value must be a number of days (1-3 digits).")
    if not 7 <= int(value) <= 379:
        raise invalid(
            f"Invalid backup retention period {value} days. Use a value between 7 - 379."
        )
    return {"Type": "DAYS", "Value": str(int(value))}


def _page(items: list, next_token: str | None, max_results: int | None, upper: int) -> tuple[list, str | None]:
    if max_results is not None and not 1 <= int(max_results) <= upper:
        raise invalid(f"MaxResults must be between 1 and {upper}.")
    start = 0
    if next_token:
        try:
            start = int(next_token)
        except ValueError as exc:
            raise invalid("Invalid NextToken.") from exc
    size = int(max_results) if max_results else len(items)
    chunk = items[start : start + size]
    nxt = str(start + size) if start + size < len(items) else None
    return chunk, nxt


class CloudHsmBackend(BaseBackend):
    """One account + region of CloudHSM v2. Every public method expects :data:`LOCK` held."""

    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.clusters: dict[str, Cluster] = {}
        self.backups: dict[str, Backup] = {}
        self.resource_policies: dict[str, str] = {}

    # moto derives the URL module from the class's module; ours is registered on moto's.
    @property
    def _url_module(self) -> Any:  # type: ignore[override]
        import moto.cloudhsmv2.urls

        return moto.cloudhsmv2.urls

    # ------------------------------------------------------------------ lazy transitions
    def tick(self) -> None:
        now = clock.now()
        for cluster in list(self.clusters.values()):
            self._tick_hsms(cluster, now)
            self._tick_cluster(cluster, now)
        self._tick_backups(now)

    def _tick_hsms(self, cluster: Cluster, now: float) -> None:
        for hsm in list(cluster.hsms.values()):
            if hsm.state == "CREATE_IN_PROGRESS" and now >= hsm.ready_at:
                self._finish_hsm_create(cluster, hsm)
            elif hsm.state == "DELETE_IN_PROGRESS" and hsm.gone_at is not None and now >= hsm.gone_at:
                self._remove_hsm(cluster, hsm)

    def _finish_hsm_create(self, cluster: Cluster, hsm: Hsm) -> None:
        end = (hsm.outcome or {}).get("state", "ACTIVE")
        if end == "FAILED":
            message = (hsm.outcome or {}).get(
                "message", f"HSM creation failed in {hsm.availability_zone}."
            )
            self._remove_hsm(cluster, hsm)
            cluster.state_message = f"HSM {hsm.hsm_id} could not be created: {message}"
            recorder.record("cloudhsm_event", event="hsm_failed", hsm_id=hsm.hsm_id, message=message)
            return
        if end == "DEGRADED":
            hsm.state = "DEGRADED"
            hsm.state_message = (hsm.outcome or {}).get(
                "message", "The HSM is unhealthy and is being replaced."
            )
            return
        hsm.state = "ACTIVE"
        hsm.state_message = "HSM created."
        if cluster.state == "UNINITIALIZED" and cluster.first_hsm is None:
            # The first HSM generates the cluster CSR and its certificates.
            cluster.first_hsm = pki.first_hsm_certificates(hsm.hsm_id, cluster.cluster_id)
            cluster.first_hsm_id = hsm.hsm_id
            cluster.certificates = cluster.first_hsm.certificates()

    def _remove_hsm(self, cluster: Cluster, hsm: Hsm) -> None:
        cluster.hsms.pop(hsm.hsm_id, None)
        ec2 = _ec2(self.account_id, self.region_name)
        try:
            ec2.delete_network_interface(hsm.eni_id)
        except Exception:  # already gone (e.g. deleted by hand): nothing to free
            pass
        try:
            ec2.get_subnet(hsm.subnet_id).del_subnet_ip(hsm.eni_ip)
        except Exception:
            pass
        if cluster.first_hsm_id == hsm.hsm_id and cluster.state == "UNINITIALIZED":
            # A replacement first HSM generates a new CSR (prior-art #3).
            cluster.first_hsm = None
            cluster.first_hsm_id = None
            cluster.certificates = {}

    def _tick_cluster(self, cluster: Cluster, now: float) -> None:
        if cluster.state == "CREATE_IN_PROGRESS" and now >= cluster.state_deadline:
            if cluster.source_backup_id:
                cluster.state = "ACTIVE"
                cluster.state_message = "The cluster is ready for use."
                cluster.certificates = {"ClusterCertificate": cluster.cluster_certificate_pem or ""}
            else:
                cluster.state = "UNINITIALIZED"
                cluster.state_message = "The cluster is created and ready for its first HSM."
        elif cluster.state == "INITIALIZE_IN_PROGRESS" and now >= cluster.state_deadline:
            cluster.state = "INITIALIZED"
            cluster.state_message = "Cluster is initialized. Activate it to use it."
            cluster.cluster_certificate_pem = cluster.pending_certificate_pem
            cluster.certificates = {"ClusterCertificate": cluster.cluster_certificate_pem or ""}
        elif cluster.state == "DELETE_IN_PROGRESS" and now >= cluster.state_deadline:
            cluster.state = "DELETED"
            cluster.state_message = "The cluster was deleted."
            cluster.purge_at = now + clock.real_seconds(clock.nominal("cloudhsm.deleted_visible"))
            self._delete_security_group(cluster)
        elif cluster.state == "DELETED" and cluster.purge_at is not None and now >= cluster.purge_at:
            del self.clusters[cluster.cluster_id]
        elif cluster.state == "ACTIVE" and cluster.active_hsms():
            last = cluster.last_backup_at
            if last is not None and now >= _nominal_deadline(last, DAILY_BACKUP_SECONDS):
                self.take_backup(cluster, reason="daily")

    def _tick_backups(self, now: float) -> None:
        for backup in self.backups.values():
            if backup.state == "CREATE_IN_PROGRESS" and now >= backup.ready_at:
                backup.state = "READY"
            elif backup.state == "PENDING_DELETION" and backup.delete_timestamp is not None:
                if now >= _nominal_deadline(backup.delete_timestamp, PENDING_DELETION_DAYS * 86400):
                    backup.state = "DELETED"
        # Retention: expire READY backups older than the cluster's policy, never the cluster's
        # last backup, never those marked NeverExpires; copies have no cluster and never expire.
        for cluster_id in {b.cluster_id for b in self.backups.values() if b.cluster_id}:
            cluster = self.clusters.get(cluster_id)
            days = cluster.retention_days if cluster else 90
            mine = sorted(
                (b for b in self.backups.values() if b.cluster_id == cluster_id and b.state == "READY"),
                key=lambda b: b.create_timestamp,
            )
            for backup in mine[:-1]:
                if not backup.never_expires and now >= _nominal_deadline(
                    backup.create_timestamp, days * 86400
                ):
                    backup.state = "DELETED"
                    backup.delete_timestamp = now

    def _delete_security_group(self, cluster: Cluster) -> None:
        ec2 = _ec2(self.account_id, self.region_name)
        sg = ec2.get_security_group_from_id(cluster.security_group)
        if sg is None:
            return
        # EC2 refuses to delete a group that other groups' rules or live ENIs reference
        # (DependencyViolation); whether CloudHSM then leaves it behind is uncertain: we do.
        referenced = any(
            rule.source_group.get("GroupId") == sg.id
            for group in ec2.describe_security_groups()
            if group.id != sg.id
            for rule in list(group.ingress_rules) + list(group.egress_rules)
        ) or any(
            sg.id in [g.id for g in getattr(eni, "_group_set", [])] or sg.id in getattr(eni, "group_ids", [])
            for eni in ec2.enis.values()
        )
        if referenced:
            recorder.record(
                "cloudhsm_event", event="security_group_left", cluster_id=cluster.cluster_id, group_id=sg.id
            )
            return
        ec2.delete_security_group(group_id=sg.id)

    # ------------------------------------------------------------------ helpers
    def get_cluster(self, cluster_id: str) -> Cluster:
        cluster = self.clusters.get(cluster_id or "")
        if cluster is None or cluster.state == "DELETED":
            raise not_found(f"Cluster {cluster_id} not found.")
        return cluster

    def _arn(self, kind: str, ident: str) -> str:
        return f"arn:aws:cloudhsm:{self.region_name}:{self.account_id}:{kind}/{ident}"

    def _region_hsm_count(self) -> int:
        return sum(len(c.hsms) for c in self.clusters.values())

    def find_backup(self, backup_id_or_arn: str) -> Backup:
        ident = (backup_id_or_arn or "").split("/")[-1]
        backup = self.backups.get(ident)
        if backup is None:
            raise not_found(f"Backup {backup_id_or_arn} not found.")
        return backup

    def take_backup(self, cluster: Cluster, reason: str) -> Backup:
        """Record a backup of the cluster now: users from its oldest ACTIVE HSM."""
        source = next(iter(cluster.active_hsms()), None)
        now = clock.now()
        backup = Backup(
            backup_id=_random_id("backup-"),
            arn="",
            cluster_id=cluster.cluster_id,
            hsm_type=cluster.hsm_type,
            mode=cluster.mode,
            create_timestamp=now,
            ready_at=clock.deadline("cloudhsm.backup_create"),
            users={n: u.clone() for n, u in (source.users.items() if source else [])},
            cluster_certificate_pem=cluster.cluster_certificate_pem,
            trust_anchor_pem=cluster.trust_anchor_pem,
        )
        backup.arn = self._arn("backup", backup.backup_id)
        self.backups[backup.backup_id] = backup
        cluster.last_backup_at = now
        recorder.record("cloudhsm_event", event="backup", reason=reason, backup_id=backup.backup_id,
                        cluster_id=cluster.cluster_id)
        return backup

    def latest_backup(self, cluster: Cluster) -> Backup | None:
        mine = [
            b for b in self.backups.values()
            if b.cluster_id == cluster.cluster_id and b.state in ("CREATE_IN_PROGRESS", "READY")
        ]
        if mine:
            return max(mine, key=lambda b: b.create_timestamp)
        if cluster.source_backup_id:
            return self.backups.get(cluster.source_backup_id)
        return None

    # ------------------------------------------------------------------ clusters
    def create_cluster(self, params: dict[str, Any]) -> Cluster:
        hsm_type = params.get("HsmType")
        if not isinstance(hsm_type, str) or not hsm_type:
            raise invalid("HsmType is required.")
        if len(hsm_type) > 32 or not HSM_TYPE_PATTERN.match(hsm_type):
            raise invalid(f"Invalid HsmType {hsm_type!r}.")
        if hsm_type not in HSM_TYPES:
            raise invalid(f"HSM type {hsm_type} is not supported. Supported types: hsm2m.medium.")
        if hsm_type == "hsm1.medium" and not settings["allow_hsm1_medium"]:
            raise invalid(
                "HSM type hsm1.medium has reached end of support; new clusters must use hsm2m.medium."
            )
        mode = params.get("Mode") or "FIPS"  # default when omitted: FIPS (uncertain)
        if mode not in ("FIPS", "NON_FIPS"):
            raise invalid(f"Invalid Mode {mode!r}: use FIPS or NON_FIPS.")
        if mode == "NON_FIPS" and hsm_type != "hsm2m.medium":
            raise invalid("NON_FIPS mode is only available with HSM type hsm2m.medium.")
        network_type = params.get("NetworkType") or "IPV4"
        if network_type not in ("IPV4", "DUALSTACK"):
            raise invalid(f"Invalid NetworkType {network_type!r}: use IPV4 or DUALSTACK.")
        retention = _validate_retention(
            params.get("BackupRetentionPolicy") or {"Type": "DAYS", "Value": "90"}
        )
        tags = _validate_tags(params["TagList"]) if params.get("TagList") else {}

        subnet_ids = params.get("SubnetIds")
        if not isinstance(subnet_ids, list) or not 1 <= len(subnet_ids) <= 10:
            raise invalid("SubnetIds must contain between 1 and 10 subnet IDs.")
        ec2 = _ec2(self.account_id, self.region_name)
        subnets = []
        for subnet_id in subnet_ids:
            if not isinstance(subnet_id, str) or not SUBNET_PATTERN.match(subnet_id):
                raise invalid(f"Invalid subnet ID {subnet_id!r}.")
            try:
                subnets.append(ec2.get_subnet(subnet_id))
            except Exception as exc:
                raise invalid(f"Subnet {subnet_id} does not exist.") from exc
        if len({s.vpc_id for s in subnets}) != 1:
            raise invalid("All subnets must be in the same virtual private cloud (VPC).")
        mapping: dict[str, str] = {}
        for subnet in subnets:
            if subnet.availability_zone in mapping:
                raise invalid(
                    "You can specify only one subnet per Availability Zone: "
                    f"{mapping[subnet.availability_zone]} and {subnet.id} are both in "
                    f"{subnet.availability_zone}."
                )
            mapping[subnet.availability_zone] = subnet.id
        if network_type == "DUALSTACK":
            for subnet in subnets:
                if not subnet.ipv6_cidr_block_associations:
                    raise invalid(f"NetworkType DUALSTACK needs IPv6 CIDR blocks; subnet {subnet.id} has none.")

        source: Backup | None = None
        if params.get("SourceBackupId"):
            source = self.find_backup(params["SourceBackupId"])
            if source.state != "READY":
                raise invalid(f"Backup {source.backup_id} is in state {source.state}, not READY.")
            if source.mode != mode:
                raise invalid(
                    f"A {source.mode} backup can only be restored to a {source.mode} cluster."
                )

        live = [c for c in self.clusters.values() if c.state != "DELETED"]
        if len(live) >= quotas["clusters_per_region"]:
            raise limit(
                f"This account has reached the limit of {quotas['clusters_per_region']} clusters "
                f"in {self.region_name}."
            )

        cluster_id = _random_id("cluster-")
        vpc_id = subnets[0].vpc_id
        sg = ec2.create_security_group(
            name=f"cloudhsm-cluster-{cluster_id}-sg",
            description=f"Security group for the CloudHSM cluster {cluster_id}",
            vpc_id=vpc_id,
        )
        # Only the self-referencing TCP 2223-2225 rules, inbound and outbound [UG configure-sg].
        sg.egress_rules = []
        self_ref = lambda: [{"GroupId": sg.id, "UserId": self.account_id}]  # noqa: E731
        ec2.authorize_security_group_ingress(sg.id, "tcp", "2223", "2225", [], source_groups=self_ref(), vpc_id=vpc_id)
        ec2.authorize_security_group_egress(sg.id, "tcp", "2223", "2225", [], source_groups=self_ref(), vpc_id=vpc_id)

        cluster = Cluster(
            cluster_id=cluster_id,
            arn=self._arn("cluster", cluster_id),
            account_id=self.account_id,
            region=self.region_name,
            hsm_type=hsm_type,
            mode=mode,
            network_type=network_type,
            backup_retention_policy=retention,
            subnet_mapping=mapping,
            vpc_id=vpc_id,
            security_group=sg.id,
            create_timestamp=clock.now(),
            source_backup_id=source.backup_id if source else None,
            state_deadline=clock.deadline("cloudhsm.cluster_create"),
            tags=tags,
        )
        if source:
            cluster.cluster_certificate_pem = source.cluster_certificate_pem
            cluster.trust_anchor_pem = source.trust_anchor_pem
        self.clusters[cluster_id] = cluster
        return cluster

    def describe_clusters(self, filters: dict[str, Any] | None, next_token, max_results):
        filters = filters or {}
        if not isinstance(filters, dict) or len(filters) > 30:
            raise invalid("Filters must be a map of at most 30 keys.")
        clusters = sorted(self.clusters.values(), key=lambda c: c.create_timestamp)
        for key, values in filters.items():
            if key not in ("clusterIds", "vpcIds", "states"):
                raise invalid(f"Invalid filter key {key!r}: use clusterIds, vpcIds or states.")
            values = list(values or [])
            attr = {"clusterIds": "cluster_id", "vpcIds": "vpc_id", "states": "state"}[key]
            clusters = [c for c in clusters if getattr(c, attr) in values]
        return _page(clusters, next_token, max_results, 25)

    def modify_cluster(self, params: dict[str, Any]) -> Cluster:
        cluster = self.get_cluster(params.get("ClusterId"))
        if params.get("HsmType") and params["HsmType"] != cluster.hsm_type:
            # The hsm1 -> hsm2m migration (MODIFY_IN_PROGRESS, per-HSM replacement, rollback) is
            # not modelled; refuse it clearly rather than pretend.
            raise invalid("HSM type migration is not supported by this emulator.")
        if "BackupRetentionPolicy" in params and params["BackupRetentionPolicy"] is not None:
            if cluster.state not in ("UNINITIALIZED", "INITIALIZED", "ACTIVE", "DEGRADED"):
                raise invalid(f"Cluster {cluster.cluster_id} is in state {cluster.state}.")
            cluster.backup_retention_policy = _validate_retention(params["BackupRetentionPolicy"])
        return cluster

    def delete_cluster(self, cluster_id: str) -> Cluster:
        cluster = self.get_cluster(cluster_id)
        if cluster.state == "DELETE_IN_PROGRESS":
            return cluster
        if cluster.hsms:
            # "Before you can delete a cluster, you must delete all HSMs in the cluster." The
            # error text is undocumented (uncertain).
            raise invalid(
                f"Cluster '{cluster.cluster_id}' contains {len(cluster.hsms)} HSM(s). "
                "Delete all HSMs in the cluster before deleting the cluster."
            )
        if cluster.state in ("CREATE_IN_PROGRESS", "INITIALIZE_IN_PROGRESS"):
            raise invalid(f"Cluster '{cluster.cluster_id}' is in state {cluster.state} and cannot be deleted now.")
        cluster.state = "DELETE_IN_PROGRESS"
        cluster.state_message = "The cluster is being deleted."
        cluster.state_deadline = clock.deadline("cloudhsm.cluster_delete")
        return cluster

    def initialize_cluster(self, cluster_id: str, signed_cert: str, trust_anchor: str) -> Cluster:
        cluster = self.get_cluster(cluster_id)
        if cluster.state != "UNINITIALIZED":
            raise invalid(
                f"Cluster '{cluster.cluster_id}' is in state {cluster.state}; it must be UNINITIALIZED."
            )
        if not cluster.active_hsms() or cluster.first_hsm is None:
            raise invalid(
                f"Cluster '{cluster.cluster_id}' has no active HSM. Create an HSM and wait until it "
                "is ACTIVE before initializing the cluster."
            )
        try:
            pki.validate_initialize(signed_cert, trust_anchor, cluster.first_hsm.cluster_csr)
        except pki.PkiError as exc:
            raise invalid(str(exc)) from exc
        cluster.state = "INITIALIZE_IN_PROGRESS"
        cluster.state_message = "Cluster is initializing. State will change to INITIALIZED upon completion."
        cluster.state_deadline = clock.deadline("cloudhsm.initialize")
        cluster.pending_certificate_pem = signed_cert.strip() + "\n"
        cluster.trust_anchor_pem = trust_anchor.strip() + "\n"
        return cluster

    # ------------------------------------------------------------------ HSMs
    def create_hsm(self, cluster_id: str, az: str, ip_address: str | None, outcome: dict | None) -> Hsm:
        cluster = self.get_cluster(cluster_id)
        if not isinstance(az, str) or not az:
            raise invalid("AvailabilityZone is required.")
        if cluster.state != "ACTIVE":
            if cluster.hsms and cluster.state in ("UNINITIALIZED", "INITIALIZE_IN_PROGRESS", "INITIALIZED"):
                raise invalid(
                    f"Cluster '{cluster.cluster_id}' already contains an HSM but has not yet been fully activated"
                )
            if cluster.state != "UNINITIALIZED":
                raise invalid(
                    f"Cluster '{cluster.cluster_id}' is in state {cluster.state}; HSMs can be added "
                    "only to an UNINITIALIZED (first HSM) or ACTIVE cluster."
                )
        if az not in cluster.subnet_mapping:
            raise invalid(
                f"Availability Zone {az} is not in the cluster's subnet mapping "
                f"({', '.join(sorted(cluster.subnet_mapping))})."
            )
        if len(cluster.hsms) >= quotas["hsms_per_cluster"]:
            raise limit(f"Cluster '{cluster.cluster_id}' already has the maximum of {quotas['hsms_per_cluster']} HSMs.")
        if self._region_hsm_count() >= quotas["hsms_per_region"]:
            raise limit(
                f"This account has reached the limit of {quotas['hsms_per_region']} HSMs in {self.region_name}."
            )

        ec2 = _ec2(self.account_id, self.region_name)
        subnet = ec2.get_subnet(cluster.subnet_mapping[az])
        used = {eni.private_ip_address for eni in ec2.enis.values() if eni.subnet.id == subnet.id}
        hsm_id = _random_id("hsm-")
        if ip_address:
            try:
                ip = ipaddress.ip_address(ip_address)
            except ValueError as exc:
                raise invalid(f"Invalid IpAddress {ip_address!r}.") from exc
            if (
                ip not in subnet.cidr
                or ip in subnet.aws_reserved_ips
                or ip in (subnet.cidr.network_address, subnet.cidr.broadcast_address)
            ):
                raise invalid(f"IP address {ip_address} is not a usable address of subnet {subnet.id} ({subnet.cidr_block}).")
            if ip_address in used or ip_address in subnet._subnet_ips:
                raise invalid(f"IP address {ip_address} is already in use in subnet {subnet.id}.")
            subnet.request_ip(ip_address, hsm_id)
            eni_ip = ip_address
        else:
            while True:
                try:
                    eni_ip = subnet.get_available_subnet_ip(hsm_id)
                except StopIteration as exc:
                    raise invalid(f"Subnet {subnet.id} has no free IP address.") from exc
                if eni_ip not in used:
                    break
        kwargs = {"ipv6_address_count": 1} if cluster.network_type == "DUALSTACK" else {}
        eni = ec2.create_network_interface(
            subnet,
            eni_ip,
            group_ids=[cluster.security_group],
            # The real description text is uncertain.
            description=f"CloudHSM Managed Interface for {hsm_id}",
            **kwargs,
        )
        eni.requester_managed = True

        hsm = Hsm(
            hsm_id=hsm_id,
            cluster_id=cluster.cluster_id,
            availability_zone=az,
            subnet_id=subnet.id,
            eni_id=eni.id,
            eni_ip=eni_ip,
            eni_ipv6=(eni.ipv6_addresses[0] if eni.ipv6_addresses else None),
            hsm_type=cluster.hsm_type,
            ready_at=clock.deadline("cloudhsm.hsm_create"),
            outcome=outcome,
        )
        if cluster.state == "ACTIVE":
            if cluster.active_hsms():
                # Adding an HSM to an active cluster takes a backup; the new HSM is cloned from it.
                backup = self.take_backup(cluster, reason="hsm_added")
            else:
                # No HSM left (or a cluster restored from a backup): restore the latest backup.
                backup = self.latest_backup(cluster)
            hsm.users = {n: u.clone() for n, u in (backup.users.items() if backup else [])}
        else:
            hsm.users = initial_users()
        cluster.hsms[hsm_id] = hsm
        return hsm

    def delete_hsm(self, cluster_id: str, hsm_id=None, eni_id=None, eni_ip=None) -> str:
        cluster = self.get_cluster(cluster_id)
        given = [x for x in (hsm_id, eni_id, eni_ip) if x]
        if len(given) != 1:
            raise invalid("Specify exactly one of HsmId, EniId or EniIp.")
        for hsm in cluster.hsms.values():
            if (hsm_id and hsm.hsm_id == hsm_id) or (eni_id and hsm.eni_id == eni_id) or (
                eni_ip and hsm.eni_ip == eni_ip
            ):
                break
        else:
            raise not_found(f"HSM {given[0]} not found in cluster {cluster.cluster_id}.")
        if hsm.state == "DELETE_IN_PROGRESS":
            return hsm.hsm_id
        if cluster.state == "ACTIVE" and hsm.state == "ACTIVE":
            # Removing an HSM from an active cluster takes a backup (taken before it goes).
            self.take_backup(cluster, reason="hsm_removed")
        hsm.state = "DELETE_IN_PROGRESS"
        hsm.state_message = "The HSM is being deleted."
        hsm.gone_at = clock.deadline("cloudhsm.hsm_delete")
        return hsm.hsm_id

    def replace_hsm(self, cluster_id: str, hsm_id: str) -> Hsm:
        """What AWS does on its own to an unhealthy HSM: a new HSM id behind the same ENI
        (prior-art #2; [TF] "the ENI ID will remain consistent"). Users come back from the
        latest backup in an ACTIVE cluster, else from the replaced HSM."""
        cluster = self.get_cluster(cluster_id)
        old = cluster.hsms.get(hsm_id)
        if old is None:
            raise not_found(f"HSM {hsm_id} not found in cluster {cluster_id}.")
        cluster.hsms.pop(hsm_id)
        backup = self.latest_backup(cluster) if cluster.state == "ACTIVE" else None
        users = backup.users if backup else old.users
        new = Hsm(
            hsm_id=_random_id("hsm-"), cluster_id=cluster.cluster_id,
            availability_zone=old.availability_zone, subnet_id=old.subnet_id, eni_id=old.eni_id,
            eni_ip=old.eni_ip, eni_ipv6=old.eni_ipv6, hsm_type=old.hsm_type,
            ready_at=clock.deadline("cloudhsm.hsm_create"),
            users={n: u.clone() for n, u in users.items()},
        )
        cluster.hsms[new.hsm_id] = new
        if cluster.first_hsm_id == hsm_id and cluster.state == "UNINITIALIZED":
            cluster.first_hsm, cluster.first_hsm_id, cluster.certificates = None, None, {}
        recorder.record("cloudhsm_event", event="hsm_replaced", old=hsm_id, new=new.hsm_id)
        return new

    # ------------------------------------------------------------------ backups
    def describe_backups(self, params: dict[str, Any], caller_backends: list["CloudHsmBackend"]):
        filters = params.get("Filters") or {}
        if params.get("Shared"):
            # Backups of other accounts whose resource policy names this account.
            pool = [
                b
                for other in caller_backends
                if other is not self
                for b in other.backups.values()
                if self.account_id in other.resource_policies.get(b.arn, "")
            ]
        else:
            pool = list(self.backups.values())
        attrs = {
            "backupIds": lambda b: b.backup_id,
            "sourceBackupIds": lambda b: b.source_backup,
            "clusterIds": lambda b: b.cluster_id,
            "states": lambda b: b.state,
            "neverExpires": lambda b: "true" if b.never_expires else "false",
        }
        for key, values in filters.items():
            if key not in attrs:
                raise invalid(f"Invalid filter key {key!r}.")
            wanted = {str(v).lower() if key == "neverExpires" else v for v in (values or [])}
            pool = [b for b in pool if attrs[key](b) in wanted]
        pool.sort(key=lambda b: b.create_timestamp, reverse=not params.get("SortAscending"))
        return _page(pool, params.get("NextToken"), params.get("MaxResults"), 50)

    def delete_backup(self, backup_id: str) -> Backup:
        backup = self.find_backup(backup_id)
        if backup.state != "READY":
            raise invalid(f"Backup {backup.backup_id} is in state {backup.state}; only READY backups can be deleted.")
        backup.state = "PENDING_DELETION"
        backup.delete_timestamp = clock.now()
        return backup

    def restore_backup(self, backup_id: str) -> Backup:
        backup = self.find_backup(backup_id)
        if backup.state != "PENDING_DELETION":
            raise invalid(f"Backup {backup.backup_id} is in state {backup.state}; only PENDING_DELETION backups can be restored.")
        backup.state = "READY"
        backup.delete_timestamp = None
        return backup

    def modify_backup_attributes(self, backup_id: str, never_expires: Any) -> Backup:
        backup = self.find_backup(backup_id)
        if not isinstance(never_expires, bool):
            raise invalid("NeverExpires must be true or false.")
        backup.never_expires = never_expires
        return backup

    def copy_backup_to_region(self, backup_id: str, destination: "CloudHsmBackend", tag_list) -> Backup:
        backup = self.find_backup(backup_id)
        if backup.state != "READY":
            raise invalid(f"Backup {backup.backup_id} is in state {backup.state}; only READY backups can be copied.")
        if destination.region_name == self.region_name:
            raise invalid("DestinationRegion must differ from the source region.")
        tags = _validate_tags(tag_list) if tag_list else {}
        now = clock.now()
        copy_ = Backup(
            backup_id=_random_id("backup-"),
            arn="",
            cluster_id=None,  # a copy has no cluster, so no retention applies to it
            hsm_type=backup.hsm_type,
            mode=backup.mode,
            create_timestamp=backup.create_timestamp,
            ready_at=clock.deadline("cloudhsm.backup_copy"),
            copy_timestamp=now,
            source_region=self.region_name,
            source_backup=backup.backup_id,
            source_cluster=backup.cluster_id,
            tags=tags,
            users={n: u.clone() for n, u in backup.users.items()},
            cluster_certificate_pem=backup.cluster_certificate_pem,
            trust_anchor_pem=backup.trust_anchor_pem,
        )
        copy_.arn = destination._arn("backup", copy_.backup_id)
        destination.backups[copy_.backup_id] = copy_
        return copy_

    # ------------------------------------------------------------------ tags and policies
    def _taggable(self, resource_id: str):
        if not isinstance(resource_id, str) or not RESOURCE_ID_PATTERN.match(resource_id):
            raise invalid(f"Invalid ResourceId {resource_id!r}.")
        if resource_id.startswith("cluster-"):
            return self.get_cluster(resource_id)
        return self.find_backup(resource_id)

    def tag_resource(self, resource_id: str, tag_list) -> None:
        resource = self._taggable(resource_id)
        tags = _validate_tags(tag_list)
        merged = {**resource.tags, **tags}
        if len(merged) > 50:
            raise limit(f"A resource can have at most 50 tags; {resource_id} would have {len(merged)}.")
        resource.tags = merged

    def untag_resource(self, resource_id: str, keys) -> None:
        resource = self._taggable(resource_id)
        if not isinstance(keys, list) or not 1 <= len(keys) <= 50:
            raise invalid("TagKeyList must contain between 1 and 50 keys.")
        for key in keys:
            resource.tags.pop(key, None)

    def list_tags(self, resource_id: str, next_token, max_results):
        resource = self._taggable(resource_id)
        return _page(_tag_list(resource.tags), next_token, max_results, 100)

    def _policy_backup(self, resource_arn: str) -> Backup:
        if not isinstance(resource_arn, str) or ":backup/" not in resource_arn:
            raise invalid(f"Invalid ResourceArn {resource_arn!r}: resource policies apply to backups.")
        backup = self.find_backup(resource_arn)
        if backup.arn != resource_arn:
            raise not_found(f"Backup {resource_arn} not found.")
        return backup

    def put_resource_policy(self, resource_arn: str, policy: str) -> tuple[str, str]:
        import json

        backup = self._policy_backup(resource_arn)
        if backup.state != "READY":
            raise invalid(f"Backup {backup.backup_id} must be READY to share it.")
        if not isinstance(policy, str) or not 1 <= len(policy) <= 20000:
            raise invalid("Policy must be between 1 and 20000 characters.")
        try:
            json.loads(policy)
        except ValueError as exc:
            raise invalid("Policy is not valid JSON.") from exc
        self.resource_policies[backup.arn] = policy
        return backup.arn, policy

    def get_resource_policy(self, resource_arn: str) -> str | None:
        backup = self._policy_backup(resource_arn)
        return self.resource_policies.get(backup.arn)

    def delete_resource_policy(self, resource_arn: str) -> tuple[str, str | None]:
        backup = self._policy_backup(resource_arn)
        return backup.arn, self.resource_policies.pop(backup.arn, None)


def backend(account_id: str, region: str) -> CloudHsmBackend:
    """The CloudHSM backend of one account and region (moto's BackendDict, our class)."""
    from moto.cloudhsmv2.models import cloudhsmv2_backends

    return cloudhsmv2_backends[account_id][region]


def all_backends_in(account_ids: list[str] | None = None) -> list[CloudHsmBackend]:
    from moto.cloudhsmv2.models import cloudhsmv2_backends

    out = []
    for account_id in list(cloudhsmv2_backends.keys()):
        if account_ids and account_id not in account_ids:
            continue
        for region in list(cloudhsmv2_backends[account_id].keys()):
            out.append(cloudhsmv2_backends[account_id][region])
    return out

