"""CloudHSM v2 on the wire: awsJson1_1 and smithy rpc-v2-cbor (aws-behaviour.md section 0).

* JSON 1.1: ``POST /`` with ``X-Amz-Target: BaldrApiService.<Op>``. What botocore 1.44.8 and the
  AWS SDK for Rust ``aws-sdk-cloudhsmv2`` 1.123.0 send (its ``ServiceRuntimePlugin`` installs
  ``AwsJsonRpcProtocol::aws_json_1_1()`` unless a protocol is configured).
* rpc-v2-cbor: ``POST /service/BaldrApiService/operation/<Op>``, CBOR body, answered with
  ``smithy-protocol: rpc-v2-cbor`` and ``Content-Type: application/cbor``.

Timestamps go out as epoch seconds (JSON numbers; CBOR tag 1) – the SDK for Rust rejects ISO strings.
Errors: ``{"__type": <Code>, "Message": ...}``, HTTP 400 (``CloudHsmInternalFailureException`` 500).
Every operation first asks ``emu.faults.api_fault("cloudhsmv2", <Op>, ...)``.
"""

from __future__ import annotations

import datetime
import json
import sys
import uuid
from typing import Any, Callable

import cbor2
from moto.core.responses import BaseResponse

from emu import faults

from . import models
from .models import LOCK, CloudHsmError, invalid

NAMESPACE = "com.amazonaws.cloudhsmv2"


def _need(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise invalid(f"{name} is required.")
    return value


# --------------------------------------------------------------------------- operations
def _create_cluster(b: models.CloudHsmBackend, p: dict, ctx: dict) -> dict:
    return {"Cluster": b.create_cluster(p).to_api()}


def _describe_clusters(b, p, ctx):
    clusters, token = b.describe_clusters(p.get("Filters"), p.get("NextToken"), p.get("MaxResults"))
    return {"Clusters": [c.to_api() for c in clusters], "NextToken": token}


def _delete_cluster(b, p, ctx):
    return {"Cluster": b.delete_cluster(_need(p, "ClusterId")).to_api()}


def _modify_cluster(b, p, ctx):
    _need(p, "ClusterId")
    return {"Cluster": b.modify_cluster(p).to_api()}


def _initialize_cluster(b, p, ctx):
    cluster = b.initialize_cluster(
        _need(p, "ClusterId"), _need(p, "SignedCert"), _need(p, "TrustAnchor")
    )
    return {"State": cluster.state, "StateMessage": cluster.state_message}


def _create_hsm(b, p, ctx):
    cluster_id = _need(p, "ClusterId")
    az = _need(p, "AvailabilityZone")
    b.get_cluster(cluster_id)  # not-found before consuming an outcome rule
    outcome = faults.outcome("hsm_create", az=az, cluster_id=cluster_id)
    return {"Hsm": b.create_hsm(cluster_id, az, p.get("IpAddress"), outcome).to_api()}


def _delete_hsm(b, p, ctx):
    hsm_id = b.delete_hsm(_need(p, "ClusterId"), p.get("HsmId"), p.get("EniId"), p.get("EniIp"))
    return {"HsmId": hsm_id}


def _describe_backups(b, p, ctx):
    peers = [x for x in models.all_backends_in() if x.region_name == b.region_name]
    for peer in peers:
        peer.tick()
    backups, token = b.describe_backups(p, peers)
    return {"Backups": [x.to_api() for x in backups], "NextToken": token}


def _delete_backup(b, p, ctx):
    return {"Backup": b.delete_backup(_need(p, "BackupId")).to_api()}


def _restore_backup(b, p, ctx):
    return {"Backup": b.restore_backup(_need(p, "BackupId")).to_api()}


def _modify_backup_attributes(b, p, ctx):
    backup_id = _need(p, "BackupId")
    if "NeverExpires" not in p:
        raise invalid("NeverExpires is required.")
    return {"Backup": b.modify_backup_attributes(backup_id, p["NeverExpires"]).to_api()}


def _copy_backup_to_region(b, p, ctx):
    region = _need(p, "DestinationRegion")
    backup_id = _need(p, "BackupId")
    import boto3

    if region not in boto3.session.Session().get_available_regions("cloudhsmv2"):
        raise invalid(f"Invalid DestinationRegion {region!r}.")
    dest = models.backend(b.account_id, region)
    dest.tick()
    copy_ = b.copy_backup_to_region(backup_id, dest, p.get("TagList"))
    return {
        "DestinationBackup": {
            "CreateTimestamp": models._utc(copy_.copy_timestamp),
            "SourceRegion": copy_.source_region,
            "SourceBackup": copy_.source_backup,
            "SourceCluster": copy_.source_cluster,
        }
    }


def _tag_resource(b, p, ctx):
    b.tag_resource(_need(p, "ResourceId"), _need(p, "TagList"))
    return {}


def _untag_resource(b, p, ctx):
    b.untag_resource(_need(p, "ResourceId"), _need(p, "TagKeyList"))
    return {}


def _list_tags(b, p, ctx):
    tags, token = b.list_tags(_need(p, "ResourceId"), p.get("NextToken"), p.get("MaxResults"))
    return {"TagList": tags, "NextToken": token}


def _put_resource_policy(b, p, ctx):
    arn, policy = b.put_resource_policy(p.get("ResourceArn"), p.get("Policy"))
    return {"ResourceArn": arn, "Policy": policy}


def _get_resource_policy(b, p, ctx):
    return {"Policy": b.get_resource_policy(p.get("ResourceArn"))}


def _delete_resource_policy(b, p, ctx):
    arn, policy = b.delete_resource_policy(p.get("ResourceArn"))
    return {"ResourceArn": arn, "Policy": policy}


OPERATIONS: dict[str, Callable[[models.CloudHsmBackend, dict, dict], dict]] = {
    "CopyBackupToRegion": _copy_backup_to_region,
    "CreateCluster": _create_cluster,
    "CreateHsm": _create_hsm,
    "DeleteBackup": _delete_backup,
    "DeleteCluster": _delete_cluster,
    "DeleteHsm": _delete_hsm,
    "DeleteResourcePolicy": _delete_resource_policy,
    "DescribeBackups": _describe_backups,
    "DescribeClusters": _describe_clusters,
    "GetResourcePolicy": _get_resource_policy,
    "InitializeCluster": _initialize_cluster,
    "ListTags": _list_tags,
    "ModifyBackupAttributes": _modify_backup_attributes,
    "ModifyCluster": _modify_cluster,
    "PutResourcePolicy": _put_resource_policy,
    "RestoreBackup": _restore_backup,
    "TagResource": _tag_resource,
    "UntagResource": _untag_resource,
}


def _front_door_checked() -> bool:
    """True when emu.server's front door already applied the API fault rules to this request
    (it matches on service and operation only, without request attributes)."""
    server = sys.modules.get("emu.server")
    return bool(server and getattr(server, "_installed", None))


def _fault(operation: str, params: dict[str, Any], via_http: bool) -> faults.Rule | None:
    attrs = {k: v for k, v in params.items() if isinstance(v, str)}
    if via_http and _front_door_checked():
        # Only rules that match request attributes (e.g. {"ClusterId": ...}) are left to us;
        # asking again for the others would roll their probability twice.
        if not any(r.kind == "api" and r.match and r.service in ("*", "cloudhsmv2") for r in faults.rules()):
            return None
    return faults.api_fault("cloudhsmv2", operation, **attrs)


def call(account_id: str, region: str, operation: str, params: dict[str, Any],
         via_http: bool = False) -> dict[str, Any]:
    """Run one operation; raises :class:`CloudHsmError`. Used by both protocols and by CFN."""
    handler = OPERATIONS.get(operation)
    if handler is None:
        raise CloudHsmError("UnknownOperationException", f"Unknown operation {operation}")
    if not isinstance(params, dict):
        raise invalid("The request body must be an object.")
    rule = _fault(operation, params, via_http)
    if rule is not None:
        status = rule.status or 400
        if rule.error_code == "CloudHsmInternalFailureException" and status == 400:
            status = 500  # the one CloudHSM error AWS returns with 500
        raise CloudHsmError(rule.error_code, rule.message, status)
    with LOCK:
        b = models.backend(account_id, region)
        b.tick()
        result = handler(b, params, {})
    return {k: v for k, v in result.items() if v is not None}


# --------------------------------------------------------------------------- encodings
def _to_json(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return round(value.timestamp(), 3)
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def _context(request, full_url, headers) -> tuple[str, str, bytes]:
    base = BaseResponse(service_name="cloudhsmv2")
    base.setup_class(request, full_url, headers, use_raw_body=True)
    body = base.raw_body or b""
    if isinstance(body, str):
        body = body.encode()
    return base.current_account, base.region, body


def _request_id_headers() -> dict[str, str]:
    return {"x-amzn-RequestId": str(uuid.uuid4())}


def json_dispatch(request, full_url, headers):
    account, region, body = _context(request, full_url, headers)
    target = request.headers.get("X-Amz-Target", "")
    operation = target.split(".", 1)[1] if "." in target else target
    out_headers = {"Content-Type": "application/x-amz-json-1.1", **_request_id_headers()}
    try:
        params = json.loads(body.decode() or "{}")
        result = call(account, region, operation, params, via_http=True)
        return 200, out_headers, json.dumps(_to_json(result))
    except json.JSONDecodeError:
        err = invalid("The request body is not valid JSON.")
    except CloudHsmError as exc:
        err = exc
    out_headers["x-amzn-ErrorType"] = err.code
    return err.status, out_headers, json.dumps({"__type": err.code, "Message": err.message})


def cbor_dispatch(request, full_url, headers):
    account, region, body = _context(request, full_url, headers)
    operation = request.path.rstrip("/").rsplit("/", 1)[-1]
    out_headers = {
        "Content-Type": "application/cbor",
        "smithy-protocol": "rpc-v2-cbor",
        **_request_id_headers(),
    }
    try:
        params = cbor2.loads(body) if body else {}
        result = call(account, region, operation, params or {}, via_http=True)
        return 200, out_headers, cbor2.dumps(_strip_none(result), datetime_as_timestamp=True, timezone=datetime.timezone.utc)
    except cbor2.CBORDecodeError:
        err = invalid("The request body is not valid CBOR.")
    except CloudHsmError as exc:
        err = exc
    payload = {"__type": f"{NAMESPACE}#{err.code}", "Message": err.message}
    return err.status, out_headers, cbor2.dumps(payload)
