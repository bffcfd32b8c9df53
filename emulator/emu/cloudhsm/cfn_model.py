"""``AWS::CloudHSM::Cluster`` for moto's CloudFormation (properties per the registry schema).

Properties: ``HsmType`` (required), ``SubnetIds``, ``Mode``, ``NetworkType``,
``BackupRetentionPolicy {Type, Value}``, ``Tags``. ``Ref`` is the cluster ARN (the schema's
primaryIdentifier is ``Arn``); ``Fn::GetAtt``: ``Arn``, ``ClusterId``, ``State``, ``SecurityGroup``,
``VpcId``, ``SubnetMapping``, ``BackupPolicy``.

Create calls CreateCluster and blocks until the cluster leaves CREATE_IN_PROGRESS (UNINITIALIZED),
on the scaled clock. Delete calls DeleteCluster – which fails while HSMs remain, with the API's
message – and blocks until DELETED. Update: ``BackupRetentionPolicy`` (ModifyCluster) and ``Tags``
in place; any other change (create-only: HsmType, SubnetIds, Mode, NetworkType) replaces the
cluster: a new one is created, then the old one deleted. When the old one cannot be deleted
(HSMs left) CloudFormation's cleanup would fail without failing the update; we record that and
leave it, like CloudFormation.

Every call goes through ``responses.call`` – the same path (and fault injection) as the API.
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel

from emu import clock, recorder

from . import models, responses
from .models import LOCK, CloudHsmError

ATTRIBUTES = ("Arn", "ClusterId", "State", "SecurityGroup", "VpcId", "SubnetMapping", "BackupPolicy")
CREATE_ONLY = ("HsmType", "SubnetIds", "Mode", "NetworkType")
POLL_NOMINAL_SECONDS = 15.0
MAX_WAIT_NOMINAL_SECONDS = 2 * 3600.0


def _tags(props: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": t["Key"], "Value": t["Value"]} for t in props.get("Tags") or []]


def _create_params(props: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"HsmType": props.get("HsmType"), "SubnetIds": props.get("SubnetIds")}
    for key in ("Mode", "NetworkType", "BackupRetentionPolicy"):
        if props.get(key) is not None:
            params[key] = props[key]
    if props.get("BackupRetentionPolicy"):
        params["BackupRetentionPolicy"] = {
            "Type": props["BackupRetentionPolicy"].get("Type", "DAYS"),
            "Value": str(props["BackupRetentionPolicy"].get("Value")),
        }
    if _tags(props):
        params["TagList"] = _tags(props)
    return params


def _wait(account_id: str, region: str, cluster_id: str, while_states: tuple[str, ...]) -> str:
    """Block until the cluster leaves ``while_states``; returns the state (``GONE`` if purged)."""
    waited = 0.0
    while True:
        with LOCK:
            b = models.backend(account_id, region)
            b.tick()
            cluster = b.clusters.get(cluster_id)
            state = cluster.state if cluster else "GONE"
        if state not in while_states:
            return state
        if waited >= MAX_WAIT_NOMINAL_SECONDS:
            raise CloudHsmError(
                "CloudHsmServiceException", f"Timed out waiting for cluster {cluster_id} ({state})."
            )
        clock.sleep_nominal(POLL_NOMINAL_SECONDS)
        waited += POLL_NOMINAL_SECONDS


class CloudHsmClusterResource(CloudFormationModel):
    def __init__(self, account_id: str, region: str, cluster_id: str, properties: dict[str, Any]):
        self.account_id, self.region, self.cluster_id = account_id, region, cluster_id
        self.properties = properties

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudHSM::Cluster"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ATTRIBUTES

    def _cluster(self) -> models.Cluster | None:
        with LOCK:
            b = models.backend(self.account_id, self.region)
            b.tick()
            return b.clusters.get(self.cluster_id)

    @property
    def arn(self) -> str:
        return f"arn:aws:cloudhsm:{self.region}:{self.account_id}:cluster/{self.cluster_id}"

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name not in ATTRIBUTES:
            raise UnformattedGetAttTemplateException()
        if attribute_name == "Arn":
            return self.arn
        if attribute_name == "ClusterId":
            return self.cluster_id
        if attribute_name == "BackupPolicy":
            return "DEFAULT"
        cluster = self._cluster()
        if cluster is None:
            return None
        return {
            "State": cluster.state,
            "SecurityGroup": cluster.security_group,
            "VpcId": cluster.vpc_id,
            "SubnetMapping": dict(cluster.subnet_mapping),
        }[attribute_name]

    def is_created(self) -> bool:
        cluster = self._cluster()
        return cluster is not None and cluster.state != "CREATE_IN_PROGRESS"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> "CloudHsmClusterResource":
        props = cloudformation_json.get("Properties", {})
        result = responses.call(account_id, region_name, "CreateCluster", _create_params(props))
        cluster_id = result["Cluster"]["ClusterId"]
        _wait(account_id, region_name, cluster_id, ("CREATE_IN_PROGRESS",))
        return cls(account_id, region_name, cluster_id, dict(props))

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[override]
        cls, original_resource: "CloudHsmClusterResource", new_resource_name: str,
        cloudformation_json: dict[str, Any], account_id: str, region_name: str,
    ) -> "CloudHsmClusterResource":
        new = cloudformation_json.get("Properties", {})
        old = original_resource.properties
        if any(new.get(k) != old.get(k) for k in CREATE_ONLY):
            replacement = cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name
            )
            try:
                cls._delete_cluster(account_id, region_name, original_resource.cluster_id)
            except CloudHsmError as exc:
                recorder.record("cloudhsm_event", event="cfn_replacement_cleanup_failed",
                                cluster_id=original_resource.cluster_id, message=exc.message)
            return replacement
        cid = original_resource.cluster_id
        if new.get("BackupRetentionPolicy") != old.get("BackupRetentionPolicy") and new.get("BackupRetentionPolicy"):
            policy = new["BackupRetentionPolicy"]
            responses.call(account_id, region_name, "ModifyCluster", {
                "ClusterId": cid,
                "BackupRetentionPolicy": {"Type": policy.get("Type", "DAYS"), "Value": str(policy.get("Value"))},
            })
        old_tags = {t["Key"]: t["Value"] for t in _tags(old)}
        new_tags = {t["Key"]: t["Value"] for t in _tags(new)}
        removed = [k for k in old_tags if k not in new_tags]
        if removed:
            responses.call(account_id, region_name, "UntagResource", {"ResourceId": cid, "TagKeyList": removed})
        changed = [{"Key": k, "Value": v} for k, v in new_tags.items() if old_tags.get(k) != v]
        if changed:
            responses.call(account_id, region_name, "TagResource", {"ResourceId": cid, "TagList": changed})
        original_resource.properties = dict(new)
        return original_resource

    @staticmethod
    def _delete_cluster(account_id: str, region_name: str, cluster_id: str) -> None:
        try:
            responses.call(account_id, region_name, "DeleteCluster", {"ClusterId": cluster_id})
        except CloudHsmError as exc:
            if exc.code == "CloudHsmResourceNotFoundException":
                return  # already gone: a delete is done
            raise
        _wait(account_id, region_name, cluster_id, ("DELETE_IN_PROGRESS",))

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        cluster_id = str(resource_name).rsplit("/", 1)[-1]
        cls._delete_cluster(account_id, region_name, cluster_id)

    def delete(self, account_id: str, region_name: str) -> None:
        """moto calls this on stack deletion for resources that have it."""
        self._delete_cluster(account_id, region_name, self.cluster_id)
