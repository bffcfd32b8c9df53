"""``AWS::CloudHSM::Cluster`` for the emulator's CloudFormation (``emu.cfn``), per the registry schema.

Properties: ``HsmType`` (required), ``SubnetIds``, ``Mode``, ``NetworkType``,
``BackupRetentionPolicy {Type, Value}``, ``Tags``. ``Ref`` is the cluster ARN (the schema's
primaryIdentifier is ``Arn``); ``Fn::GetAtt``: ``Arn``, ``ClusterId``, ``State``, ``SecurityGroup``,
``VpcId``, ``SubnetMapping``, ``BackupPolicy`` (read live).

* create: CreateCluster, then stabilization blocks until the cluster leaves CREATE_IN_PROGRESS
  (UNINITIALIZED), on the scaled clock.
* update: ``BackupRetentionPolicy`` (ModifyCluster) and ``Tags`` in place; a change of any
  create-only property (HsmType, SubnetIds, Mode, NetworkType) replaces the cluster: the engine
  creates the new one and deletes the old one in its cleanup phase.
* delete: DeleteCluster – refused while HSMs remain, with the API's message – then waits until
  DELETED. A cluster that no longer exists counts as deleted.

Calls go through ``responses.call`` – the same code path and fault injection as the API.
Failure reasons follow the CloudFormation registry handler format
(``Resource handler returned message: "..." (RequestToken: ..., HandlerErrorCode: ...)``).
"""

from __future__ import annotations

import uuid
from typing import Any

from emu.cfn import Context, Resource, ResourceFailed, ResourceModel, register

from . import models, responses
from .models import LOCK, CloudHsmError

ATTRIBUTES = ("Arn", "ClusterId", "State", "SecurityGroup", "VpcId", "SubnetMapping", "BackupPolicy")
CREATE_ONLY = ("HsmType", "SubnetIds", "Mode", "NetworkType")
POLL_NOMINAL_SECONDS = 15.0
MAX_WAIT_NOMINAL_SECONDS = 2 * 3600.0
HANDLER_CODES = {
    "CloudHsmInvalidRequestException": "InvalidRequest",
    "CloudHsmResourceNotFoundException": "NotFound",
    "CloudHsmResourceLimitExceededException": "ServiceLimitExceeded",
    "CloudHsmInternalFailureException": "ServiceInternalError",
    "CloudHsmAccessDeniedException": "AccessDenied",
}


def _failed(exc: CloudHsmError) -> ResourceFailed:
    return ResourceFailed(
        f'Resource handler returned message: "{exc.message} (Service: CloudHsmV2, Status Code: '
        f'{exc.status}, Request ID: {uuid.uuid4()})" (RequestToken: {uuid.uuid4()}, '
        f"HandlerErrorCode: {HANDLER_CODES.get(exc.code, 'GeneralServiceException')})"
    )


def _call(ctx: Context, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        return responses.call(ctx.account_id, ctx.region, operation, params)
    except CloudHsmError as exc:
        raise _failed(exc) from exc


def _tags(props: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: str(t["Value"]) for t in props.get("Tags") or []}


def _retention(props: dict[str, Any]) -> dict[str, str] | None:
    policy = props.get("BackupRetentionPolicy")
    if not policy:
        return None
    return {"Type": policy.get("Type", "DAYS"), "Value": str(policy.get("Value"))}


def _state(ctx: Context, cluster_id: str) -> str:
    with LOCK:
        b = models.backend(ctx.account_id, ctx.region)
        b.tick()
        cluster = b.clusters.get(cluster_id)
        return cluster.state if cluster else "GONE"


def _wait_while(ctx: Context, cluster_id: str, states: tuple[str, ...]) -> str:
    waited = 0.0
    while True:
        state = _state(ctx, cluster_id)
        if state not in states or ctx.cancelled():
            return state
        if waited >= MAX_WAIT_NOMINAL_SECONDS:
            raise ResourceFailed(f"Timed out waiting for cluster {cluster_id} to leave {state}")
        ctx.sleep(POLL_NOMINAL_SECONDS)
        waited += POLL_NOMINAL_SECONDS


def _cluster_id(resource: Resource) -> str:
    return resource.physical_id.rsplit("/", 1)[-1]


class ClusterModel(ResourceModel):
    def create(self, ctx: Context) -> Resource:
        props = ctx.properties
        if not props.get("HsmType"):
            raise ResourceFailed("Properties validation failed for resource: required key [HsmType] not found")
        params: dict[str, Any] = {"HsmType": props["HsmType"], "SubnetIds": props.get("SubnetIds")}
        for key in ("Mode", "NetworkType"):
            if props.get(key):
                params[key] = props[key]
        if _retention(props):
            params["BackupRetentionPolicy"] = _retention(props)
        if _tags(props):
            params["TagList"] = [{"Key": k, "Value": v} for k, v in _tags(props).items()]
        cluster = _call(ctx, "CreateCluster", params)["Cluster"]
        arn = f"arn:aws:cloudhsm:{ctx.region}:{ctx.account_id}:cluster/{cluster['ClusterId']}"
        return Resource(arn, {"Arn": arn, "ClusterId": cluster["ClusterId"]})

    def wait_ready(self, ctx: Context, resource: Resource) -> None:
        state = _wait_while(ctx, _cluster_id(resource), ("CREATE_IN_PROGRESS",))
        if state not in ("UNINITIALIZED", "ACTIVE") and not ctx.cancelled():
            raise ResourceFailed(f"Cluster {_cluster_id(resource)} ended in state {state}")

    def update(self, ctx: Context, old: Resource) -> Resource:
        new, before = ctx.properties, ctx.old_properties or {}
        if any(new.get(k) != before.get(k) for k in CREATE_ONLY):
            return super().update(ctx, old)  # replacement: create + stabilize; old deleted in cleanup
        cid = _cluster_id(old)
        if _retention(new) and _retention(new) != _retention(before):
            _call(ctx, "ModifyCluster", {"ClusterId": cid, "BackupRetentionPolicy": _retention(new)})
        old_tags, new_tags = _tags(before), _tags(new)
        removed = [k for k in old_tags if k not in new_tags]
        if removed:
            _call(ctx, "UntagResource", {"ResourceId": cid, "TagKeyList": removed})
        changed = [{"Key": k, "Value": v} for k, v in new_tags.items() if old_tags.get(k) != v]
        if changed:
            _call(ctx, "TagResource", {"ResourceId": cid, "TagList": changed})
        return Resource(old.physical_id, dict(old.attributes), old.handle)

    def delete(self, ctx: Context, resource: Resource) -> None:
        cid = _cluster_id(resource)
        try:
            responses.call(ctx.account_id, ctx.region, "DeleteCluster", {"ClusterId": cid})
        except CloudHsmError as exc:
            if exc.code == "CloudHsmResourceNotFoundException":
                return  # already gone
            raise _failed(exc) from exc
        _wait_while(ctx, cid, ("DELETE_IN_PROGRESS",))

    def attribute(self, resource: Resource, name: str) -> Any:
        if name not in ATTRIBUTES:
            raise ResourceFailed(
                f"Template error: resource attribute {name} is not supported by AWS::CloudHSM::Cluster"
            )
        cid = _cluster_id(resource)
        if name == "Arn":
            return resource.physical_id
        if name == "ClusterId":
            return cid
        if name == "BackupPolicy":
            return "DEFAULT"
        with LOCK:
            b = models.backend(resource.physical_id.split(":")[4], resource.physical_id.split(":")[3])
            b.tick()
            cluster = b.clusters.get(cid)
            if cluster is None:
                raise ResourceFailed(f"Cluster {cid} not found")
            return {
                "State": cluster.state,
                "SecurityGroup": cluster.security_group,
                "VpcId": cluster.vpc_id,
                "SubnetMapping": dict(cluster.subnet_mapping),
            }[name]


def install() -> None:
    register("AWS::CloudHSM::Cluster", ClusterModel())
