"""Fault injection, shared by every emulated service.

Rules are added over HTTP (``POST /_emu/faults``, see the README) or from tests. An API rule
makes an operation fail with a given AWS error for the next ``count`` calls, or with a
``probability``; an *outcome* rule changes how an asynchronous operation ends (an HSM ending
DEGRADED in an AZ, a key store connect ending FAILED with a code, a client command failing).
Randomness comes from one seedable generator so runs are reproducible.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass, field
from typing import Any

_lock = threading.Lock()
_rng = random.Random(0)
_ids = itertools.count(1)


@dataclass
class Rule:
    id: int
    kind: str  # "api" or an outcome kind, e.g. "hsm_create", "kms_connect", "client_command"
    service: str = "*"  # e.g. "cloudhsmv2", "kms"; "*" matches all
    operation: str = "*"  # API operation name, e.g. "CreateHsm"
    error_code: str = ""  # AWS error code for api rules, e.g. "CloudHsmInternalFailureException"
    message: str = "Injected fault"
    status: int = 400
    count: int | None = 1  # remaining matches; None = unlimited
    probability: float = 1.0
    match: dict[str, Any] = field(default_factory=dict)  # extra attributes an outcome must match
    outcome: dict[str, Any] = field(default_factory=dict)  # what happens instead
    hits: int = 0


_rules: list[Rule] = []


def seed(value: int) -> None:
    with _lock:
        _rng.seed(value)


def add(**spec: Any) -> Rule:
    with _lock:
        rule = Rule(id=next(_ids), **spec)
        _rules.append(rule)
        return rule


def remove(rule_id: int) -> None:
    with _lock:
        _rules[:] = [r for r in _rules if r.id != rule_id]


def clear() -> None:
    with _lock:
        _rules.clear()


def rules() -> list[Rule]:
    with _lock:
        return list(_rules)


def _take(kind: str, service: str, operation: str, attrs: dict[str, Any]) -> Rule | None:
    with _lock:
        for rule in _rules:
            if rule.kind != kind:
                continue
            if rule.service not in ("*", service) or rule.operation not in ("*", operation):
                continue
            if any(str(attrs.get(k)) != str(v) for k, v in rule.match.items()):
                continue
            if rule.count is not None and rule.count <= 0:
                continue
            if rule.probability < 1.0 and _rng.random() >= rule.probability:
                continue
            if rule.count is not None:
                rule.count -= 1
            rule.hits += 1
            return rule
    return None


def api_fault(service: str, operation: str, **attrs: Any) -> Rule | None:
    """The API rule that fires for this call, if any (callers raise the error it names)."""
    return _take("api", service, operation, attrs)


def outcome(kind: str, **attrs: Any) -> dict[str, Any] | None:
    """The outcome override for an asynchronous operation, if a rule fires."""
    rule = _take(kind, "*", "*", attrs)
    return dict(rule.outcome) if rule else None
