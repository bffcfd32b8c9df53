"""Everything the emulator saw, for leak tests and debugging.

Services call :func:`record` with a kind and a JSON-serialisable payload: ``secret_value`` (every
secret string ever stored, including generated ones), ``log`` (Lambda output, CLI output, ...),
``ssm_command`` (document, parameters, script text, output), ``user_data``, ``cfn_event``, and so
on. ``GET /_emu/introspect`` returns it all, together with live data pulled from moto (state machine
histories, stack events and outputs, Lambda configurations).
"""

from __future__ import annotations

import threading
import time
from typing import Any

_lock = threading.Lock()
_records: list[dict[str, Any]] = []


def record(kind: str, **data: Any) -> None:
    with _lock:
        _records.append({"kind": kind, "time": time.time(), **data})


def records(kind: str | None = None) -> list[dict[str, Any]]:
    with _lock:
        return [dict(r) for r in _records if kind is None or r["kind"] == kind]


def clear() -> None:
    with _lock:
        _records.clear()
