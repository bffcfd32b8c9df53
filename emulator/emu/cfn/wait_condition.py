"""``AWS::CloudFormation::WaitConditionHandle`` and ``AWS::CloudFormation::WaitCondition``.

The handle's Ref is a presigned-looking URL (``/_emu/cfn-signal/<token>?X-Amz-...``) that takes a
PUT of ``{"Status": "SUCCESS"|"FAILURE", "Reason", "UniqueId", "Data"}`` (what cfn-signal and
curl user-data send). The condition stabilizes (:meth:`WaitCondition.wait_ready`) once ``Count``
SUCCESS signals arrived, fails on a FAILURE signal, and fails after ``Timeout`` nominal seconds
(maximum 43200). ``Fn::GetAtt Data`` is a JSON object ``{UniqueId: Data}``.
shared/reference/aws-behaviour.md 4.2.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from typing import Any

from emu import clock, control, recorder
from emu.cfn.models import Context, Resource, ResourceFailed, ResourceModel, register

MAX_TIMEOUT = 43200

_lock = threading.Lock()
_signals: dict[str, list[dict[str, Any]]] = {}


def _url(token: str) -> str:
    from emu import server

    signature = hashlib.sha256(token.encode()).hexdigest()
    return (f"{server.endpoint()}/_emu/cfn-signal/{token}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}")


def _token(url: str) -> str:
    return url.split("/_emu/cfn-signal/", 1)[-1].split("?", 1)[0]


@control.raw_route("cfn-signal")
def _signal(method: str, rest: str, query: dict, body: bytes) -> tuple[int, list, bytes]:
    token = rest.strip("/")
    with _lock:
        known = token in _signals
    if method != "PUT" or not known:
        return 403, [("Content-Type", "application/xml")], (
            b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")
    try:
        signal = json.loads(body)
        if not isinstance(signal, dict) or signal.get("Status") not in ("SUCCESS", "FAILURE"):
            raise ValueError
    except ValueError:
        return 400, [], b"invalid signal"
    recorder.record("cfn_signal", token=token, signal=signal)
    with _lock:
        _signals[token].append(signal)
    return 200, [], b""


class WaitConditionHandle(ResourceModel):
    def create(self, ctx: Context) -> Resource:
        token = uuid.uuid4().hex
        with _lock:
            _signals[token] = []
        return Resource(_url(token))

    def delete(self, ctx: Context, resource: Resource) -> None:
        with _lock:
            _signals.pop(_token(resource.physical_id), None)


class WaitCondition(ResourceModel):
    def create(self, ctx: Context) -> Resource:
        handle = ctx.properties.get("Handle")
        if not handle:
            raise ResourceFailed("Properties validation failed: Handle is required")
        timeout = int(ctx.properties.get("Timeout", MAX_TIMEOUT))
        if not 0 <= timeout <= MAX_TIMEOUT:
            raise ResourceFailed(f"Timeout must be at most {MAX_TIMEOUT} seconds")
        return Resource(f"{ctx.stack_id}/{ctx.logical_id}",
                        {"Data": "{}", "_handle": _token(handle), "_count": int(
                            ctx.properties.get("Count", 1)), "_timeout": timeout})

    def wait_ready(self, ctx: Context, resource: Resource) -> None:
        token, count = resource.attributes["_handle"], resource.attributes["_count"]
        end = time.monotonic() + clock.real_seconds(resource.attributes["_timeout"])
        while True:
            with _lock:
                signals = list(_signals.get(token, []))
            failure = next((s for s in signals if s["Status"] == "FAILURE"), None)
            if failure is not None:
                raise ResourceFailed(f"WaitCondition received failed message: "
                                     f"'{failure.get('Reason', '')}' for uniqueId: "
                                     f"{failure.get('UniqueId', '')}")
            successes = [s for s in signals if s["Status"] == "SUCCESS"]
            if len(successes) >= count:
                resource.attributes["Data"] = json.dumps(
                    {str(s.get("UniqueId", i)): s.get("Data", "") for i, s in enumerate(successes)})
                return
            if time.monotonic() >= end or ctx.cancelled():
                raise ResourceFailed(f"WaitCondition timed out. Received {len(successes)} "
                                     f"conditions when expecting {count}")
            time.sleep(0.02)

    def attribute(self, resource: Resource, name: str) -> Any:
        if name != "Data":
            raise ResourceFailed(f"Template error: resource attribute {name} is not supported "
                                 "by AWS::CloudFormation::WaitCondition")
        return resource.attributes["Data"]


def install() -> None:
    register("AWS::CloudFormation::WaitConditionHandle", WaitConditionHandle())
    register("AWS::CloudFormation::WaitCondition", WaitCondition())


def reset() -> None:
    with _lock:
        _signals.clear()
