"""One clock for the whole emulator.

Every emulated duration is a *nominal* number of seconds (what AWS takes); the emulator waits
``nominal * scale`` real seconds. State machines' Wait states, Retry intervals, custom-resource
timeouts and service transitions all go through here, so one ``--time-scale`` speeds up everything
consistently and a benchmark can compute the critical path from :func:`durations`.

Service models use lazy transitions: store ``deadline = clock.deadline("cloudhsm.hsm_create")`` and
compare ``clock.now() >= deadline`` when the resource is read. No timer threads.
"""

from __future__ import annotations

import threading
import time

# Realistic defaults (nominal seconds). Sources: shared/reference/aws-behaviour.md "Typical durations".
DEFAULT_DURATIONS: dict[str, float] = {
    "cloudhsm.cluster_create": 240.0,
    "cloudhsm.cluster_delete": 120.0,
    "cloudhsm.hsm_create": 480.0,
    "cloudhsm.hsm_delete": 180.0,
    "cloudhsm.initialize": 180.0,
    "cloudhsm.backup_create": 60.0,
    "cloudhsm.backup_copy": 300.0,
    "kms.connect": 600.0,
    "kms.disconnect": 30.0,
    "ssm.command": 5.0,
    "ec2.instance_boot": 60.0,
}

_lock = threading.Lock()
_scale = 1.0
_durations: dict[str, float] = dict(DEFAULT_DURATIONS)


def configure(scale: float | None = None, durations: dict[str, float] | None = None) -> None:
    global _scale
    with _lock:
        if scale is not None:
            if scale <= 0:
                raise ValueError("time scale must be > 0")
            _scale = float(scale)
        if durations:
            unknown = set(durations) - set(DEFAULT_DURATIONS)
            if unknown:
                raise ValueError(f"unknown durations: {sorted(unknown)}")
            _durations.update({k: float(v) for k, v in durations.items()})


def reset() -> None:
    with _lock:
        _durations.clear()
        _durations.update(DEFAULT_DURATIONS)


def scale() -> float:
    return _scale


def durations() -> dict[str, float]:
    """Nominal durations in seconds, as configured."""
    with _lock:
        return dict(_durations)


def nominal(name: str) -> float:
    return _durations[name]


def now() -> float:
    """Real time (seconds since the epoch); compare with deadlines from :func:`deadline`."""
    return time.time()


def real_seconds(nominal_seconds: float) -> float:
    return max(0.0, float(nominal_seconds)) * _scale


def deadline(name: str) -> float:
    """Real timestamp at which the named operation completes if it starts now."""
    return now() + real_seconds(_durations[name])


def sleep_nominal(nominal_seconds: float) -> None:
    time.sleep(real_seconds(nominal_seconds))


def to_nominal(real_elapsed: float) -> float:
    """Convert an elapsed real duration back to simulated (nominal) seconds."""
    return real_elapsed / _scale
