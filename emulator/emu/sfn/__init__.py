"""Step Functions on moto's vendored ASL interpreter, on the emulator's clock.

Patches (one smoke test each in tests/test_platform_sfn.py):

* Wait states (``Seconds``, ``SecondsPath``, ``Timestamp``, ``TimestampPath``) wait
  ``nominal * scale`` real seconds.
* Retry intervals (after ``BackoffRate``, ``MaxDelaySeconds`` and ``JitterStrategy`` are applied
  by the interpreter) sleep ``nominal * scale``; every retry is counted as a state transition
  (AWS bills retries as transitions).
* ``DescribeExecution`` no longer fails with HTTP 500 when an output holds datetimes (results of
  ``aws-sdk:`` tasks).

:func:`transitions` counts state transitions of an execution for benchmarks (StateEntered events
plus retries), exposed by ``GET /_emu/introspect``.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from typing import Any

from emu import clock

_lock = threading.Lock()
_retries: dict[str, int] = {}
_installed = False


class _ScaledTime:
    """Stands in for the ``time`` module inside the retrier: sleeps on the emulator's clock."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(nominal_seconds: float) -> None:
        clock.sleep_nominal(nominal_seconds)


def _execution_arn(env: Any) -> str | None:
    try:
        return env.states.context_object.context_object_data["Execution"]["Id"]
    except Exception:
        return None


def _scaled_wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
    end = time.monotonic() + clock.real_seconds(wait_seconds)
    while env.is_running():
        left = end - time.monotonic()
        if left <= 0:
            return
        if env.program_state_event.wait(left):
            # Woken by a state change: stop if the execution ended, else keep waiting.
            time.sleep(min(max(end - time.monotonic(), 0), 0.01))


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class _LenientJson:
    """``json`` for moto's SFN responses: dumps datetimes as ISO strings instead of failing."""

    def __getattr__(self, name: str) -> Any:
        return getattr(json, name)

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", _json_default)
        return json.dumps(obj, **kwargs)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    from moto.stepfunctions import responses as sfn_responses
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
    from moto.stepfunctions.parser.asl.utils import encoding

    wait_function.WaitFunction._wait_interval = _scaled_wait_interval
    retrier_decl.time = _ScaledTime()

    original_retrier_eval = retrier_decl.RetrierDecl._eval_body

    def counting_eval(self: Any, env: Any) -> None:
        original_retrier_eval(self, env)
        if env.stack and env.stack[-1] == retrier_decl.RetrierOutcome.Executed:
            arn = _execution_arn(env)
            if arn:
                with _lock:
                    _retries[arn] = _retries.get(arn, 0) + 1

    retrier_decl.RetrierDecl._eval_body = counting_eval
    sfn_responses.json = _LenientJson()

    # The interpreter's own JSON encoder (to_json_str) is used for execution output and history.
    original_to_json_str = encoding.to_json_str

    def lenient_to_json_str(obj: Any, separators: Any = None) -> str:
        try:
            return original_to_json_str(obj, separators)
        except TypeError:
            return json.dumps(obj, separators=separators, default=_json_default)

    encoding.to_json_str = lenient_to_json_str
    _patch_importers("to_json_str", original_to_json_str, lenient_to_json_str)


def _patch_importers(name: str, old: Any, new: Any) -> None:
    """Replace ``from ... import name`` copies in already-imported interpreter modules."""
    import sys

    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("moto.stepfunctions") and getattr(module, name, None) is old:
            setattr(module, name, new)


def reset() -> None:
    with _lock:
        _retries.clear()


def transitions(execution: Any, events: list[dict[str, Any]] | None = None) -> int:
    """State transitions of an execution: states entered plus retries."""
    if events is None:
        events = history(execution)
    entered = sum(1 for e in events if str(e.get("type", "")).endswith("StateEntered"))
    with _lock:
        return entered + _retries.get(execution.exec_arn, 0)


def history(execution: Any) -> list[dict[str, Any]]:
    if execution.exec_worker is None or execution.exec_worker.env is None:
        return []
    return [dict(e) for e in execution.exec_worker.env.event_manager.get_event_history()]


def backend(account_id: str = "123456789012", region: str = "us-east-1") -> Any:
    """The executing Step Functions backend (the one API calls reach)."""
    from moto.stepfunctions.responses import get_backend

    return get_backend(account_id, region)
