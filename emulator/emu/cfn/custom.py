"""Custom resources (``Custom::*``, ``AWS::CloudFormation::CustomResource``).

CloudFormation invokes the ServiceToken function asynchronously with the request and waits for a
PUT to the ResponseURL (here ``http://127.0.0.1:<port>/_emu/cfn-response/<token>?X-Amz-...``,
shaped like a presigned S3 URL). Behaviour follows shared/reference/aws-behaviour.md 4.1:

* every property value arrives as a string (ServiceToken and ServiceTimeout included);
* ``PhysicalResourceId`` only on Update/Delete; ``OldResourceProperties`` only on Update;
* a response body over 4096 bytes fails the resource; so does a malformed one;
* no response within ``ServiceTimeout`` (1–3600 s, default 3600, nominal seconds on the
  emulator's clock) fails the resource;
* ``FAILED`` fails the resource with the Reason in ResourceStatusReason.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from emu import clock, control, recorder
from emu.cfn.models import Context, Resource, ResourceFailed, ResourceModel, register
from emu.cfn.template import stringify

MAX_RESPONSE_BYTES = 4096
DEFAULT_SERVICE_TIMEOUT = 3600


@dataclass
class Pending:
    request: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    response: dict[str, Any] | None = None
    error: str | None = None


_lock = threading.Lock()
_pending: dict[str, Pending] = {}


def _response_url(token: str) -> str:
    from emu import server

    signature = hashlib.sha256(token.encode()).hexdigest()
    return (f"{server.endpoint()}/_emu/cfn-response/{token}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Date=20260101T000000Z&X-Amz-Expires=7200&X-Amz-SignedHeaders=host"
            f"&X-Amz-Signature={signature}")


@control.raw_route("cfn-response")
def _receive(method: str, rest: str, query: dict, body: bytes) -> tuple[int, list, bytes]:
    token = rest.strip("/")
    with _lock:
        pending = _pending.get(token)
    if pending is None or method != "PUT":
        # S3 answers a bad/expired presigned URL with 403 AccessDenied.
        return 403, [("Content-Type", "application/xml")], (
            b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
    recorder.record("cfn_response", token=token, body=body.decode("utf-8", "replace"))
    if pending.done.is_set():
        return 200, [], b""  # a second PUT overwrites nothing (first answer wins)
    if len(body) > MAX_RESPONSE_BYTES:
        pending.error = "Response object is too long."
    else:
        try:
            response = json.loads(body)
            if not isinstance(response, dict):
                raise ValueError("not an object")
            pending.response = response
        except ValueError:
            pending.error = "Invalid response object"
    pending.done.set()
    return 200, [], b""


def _check_response(request: dict[str, Any], response: dict[str, Any]) -> str | None:
    """AWS's validation of a response; returns the failure reason or None."""
    status = response.get("Status")
    if status not in ("SUCCESS", "FAILED"):
        return f"Invalid response object: Status must be SUCCESS or FAILED, got {status!r}"
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        if response.get(key) != request[key]:
            return f"Invalid response object: {key} does not match the request"
    physical_id = response.get("PhysicalResourceId")
    if not isinstance(physical_id, str) or not physical_id or len(physical_id) > 1024:
        return "Invalid PhysicalResourceId"
    return None


class CustomResource(ResourceModel):
    def _send(self, ctx: Context, request_type: str, physical_id: str | None,
              old_properties: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
        properties = stringify(ctx.properties)
        token = f"{uuid.uuid4()}"
        request: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": properties.get("ServiceToken", ""),
            "ResponseURL": _response_url(token),
            "StackId": ctx.stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": ctx.logical_id,
            "ResourceType": ctx.resource_type,
            "ResourceProperties": properties,
        }
        if physical_id is not None:
            request["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            request["OldResourceProperties"] = stringify(old_properties)
        pending = Pending(request)
        with _lock:
            _pending[token] = pending
        recorder.record("cfn_request", request=request)
        try:
            timeout = _service_timeout(properties)
            error = _invoke(ctx, request)
            if error:
                return None, error
            # The function's own compute (cold start, SDK calls) runs in real time, unscaled:
            # a scaled ServiceTimeout gets a real-time floor so a small time scale cannot turn a
            # 300 s timeout into a race against process start-up.
            end = time.monotonic() + max(clock.real_seconds(timeout), SERVICE_TIMEOUT_REAL_FLOOR)
            while not pending.done.wait(min(max(end - time.monotonic(), 0), 0.05)):
                if ctx.cancelled():  # another resource failed: AWS stops waiting
                    return None, "Resource creation cancelled"
                if time.monotonic() >= end:
                    # Wording is ours (uncertain): AWS reports a timeout without a response.
                    return None, (f"CloudFormation did not receive a response from your Custom "
                                  f"Resource within the ServiceTimeout of {timeout} seconds. "
                                  f"(RequestId: {request['RequestId']})")
            if pending.error:
                return pending.response, pending.error
            reason = _check_response(request, pending.response or {})
            if reason:
                return pending.response, reason
            return pending.response, None
        finally:
            with _lock:
                _pending.pop(token, None)

    @staticmethod
    def _failure(response: dict[str, Any] | None, error: str | None, request_id: str = "") -> str:
        if error:
            return error
        assert response is not None
        return (f"Received response status [FAILED] from custom resource. Message returned: "
                f"{response.get('Reason', 'See the details in CloudWatch Log Stream')} "
                f"(RequestId: {response.get('RequestId', request_id)})")

    def _outcome(self, ctx: Context, request_type: str, physical_id: str | None,
                 old_properties: dict[str, Any] | None) -> Resource:
        response, error = self._send(ctx, request_type, physical_id, old_properties)
        returned_id = (response or {}).get("PhysicalResourceId") if response else None
        if error or (response or {}).get("Status") != "SUCCESS":
            # The rollback sends Delete with the id the response carried (or one we invent).
            raise ResourceFailed(self._failure(response, error), Resource(
                physical_id=returned_id if isinstance(returned_id, str) and returned_id
                else (physical_id or f"{ctx.stack_name}-{ctx.logical_id}-{uuid.uuid4().hex[:12]}")))
        data = response.get("Data") or {}
        return Resource(physical_id=returned_id, attributes=data if isinstance(data, dict) else {})

    def create(self, ctx: Context) -> Resource:
        return self._outcome(ctx, "Create", None, None)

    def update(self, ctx: Context, old: Resource) -> Resource:
        return self._outcome(ctx, "Update", old.physical_id, ctx.old_properties or {})

    def delete(self, ctx: Context, resource: Resource) -> None:
        response, error = self._send(ctx, "Delete", resource.physical_id, None)
        if error or (response or {}).get("Status") != "SUCCESS":
            raise ResourceFailed(self._failure(response, error))

    def attribute(self, resource: Resource, name: str) -> Any:
        if name not in resource.attributes:
            raise ResourceFailed(
                f"CustomResource attribute error: Vendor response doesn't contain {name} key in "
                "object")
        return resource.attributes[name]


SERVICE_TIMEOUT_REAL_FLOOR = 10.0  # real seconds


def _service_timeout(properties: dict[str, Any]) -> int:
    raw = properties.get("ServiceTimeout")
    if raw is None:
        return DEFAULT_SERVICE_TIMEOUT
    try:
        value = int(raw)
    except ValueError:
        raise ResourceFailed(f"ServiceTimeout must be an integer, got {raw}") from None
    if not 1 <= value <= 3600:
        raise ResourceFailed("ServiceTimeout must be between 1 and 3600 seconds")
    return value


def _invoke(ctx: Context, request: dict[str, Any]) -> str | None:
    """Invoke the ServiceToken function asynchronously (InvocationType=Event)."""
    from moto.awslambda.utils import get_backend

    token = request["ServiceToken"]
    if not token:
        return "Template error: ServiceToken is required for custom resources"
    if ":sns:" in token:
        return "SNS-backed custom resources are not emulated"
    try:
        fn = get_backend(ctx.account_id, ctx.region).get_function(token)
    except Exception:
        # AWS fails the resource when the function does not exist.
        return f"Function not found: {token}"
    payload = json.dumps(request)
    threading.Thread(target=_run, args=(fn, payload), daemon=True, name="cfn-custom").start()
    return None


def _run(fn: Any, payload: str) -> None:
    try:
        fn._invoke_lambda(json.loads(payload))
    except Exception as err:  # the function failing is the provider's problem: CFN just waits
        recorder.record("log", source="cfn", line=f"custom resource invoke failed: {err}")


def install() -> None:
    register("AWS::CloudFormation::CustomResource", CustomResource())


def reset() -> None:
    with _lock:
        for pending in _pending.values():
            pending.error = "stack reset"
            pending.done.set()
        _pending.clear()
