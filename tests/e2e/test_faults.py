"""Fault-injected failures (issue 4): each ends converged, or cleanly rolled back with nothing
billing, and a failure names its root cause. Faults come from `POST /_emu/faults`; every test
checks its rule actually fired, so a fault that never happens fails the test instead of passing it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from e2e_support import AZS, assert_converged, assert_no_leaks, assert_nothing_billing


def _params(network, n_subnets=2, per_subnet=1):
    return {"VpcId": network.vpc_id, "SubnetIds": network.hsm_subnets(n_subnets),
            "HsmsPerSubnet": per_subnet, "ClientSubnetId": network.client_subnet,
            "EnableKeyStore": "false"}


def _assert_clean_rollback(emu, stack, network, result, cause_patterns: list[str]) -> None:
    assert result.returncode != 0, result.describe()
    assert stack.cfn_status() in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE", None), \
        f"stack ended {stack.cfn_status()}, not a clean rollback:\n{result.describe()}"
    shown = result.root_cause_text()
    for pattern in cause_patterns:
        assert re.search(pattern, shown, re.I), f"root cause lacks {pattern!r}:\n{result.describe()}"
    assert_nothing_billing(emu, network)


def _degraded_hsm(emu, network) -> dict[str, Any]:
    # The second AZ's HSM (created by the fleet after activation) ends DEGRADED once.
    return emu.add_fault(kind="hsm_create", match={"az": AZS[1]}, count=1,
                         outcome={"state": "DEGRADED",
                                  "message": "injected: the HSM is unhealthy and is being replaced"})


def _failed_hsm_creation(emu, network) -> dict[str, Any]:
    # The HSM's creation fails asynchronously: it disappears with its ENI.
    return emu.add_fault(kind="hsm_create", match={"az": AZS[1]}, count=1,
                         outcome={"state": "FAILED",
                                  "message": "injected: insufficient capacity in the AZ"})


def _throttled_create_hsm(emu, network) -> dict[str, Any]:
    return emu.add_fault(kind="api", service="cloudhsmv2", operation="CreateHsm",
                         error_code="ThrottlingException", message="Rate exceeded", count=2)


@pytest.mark.parametrize("inject,want_hits",
                         [(_degraded_hsm, 1), (_failed_hsm_creation, 1), (_throttled_create_hsm, 2)],
                         ids=["hsm-degraded-in-one-az", "hsm-creation-failed-in-one-az",
                              "createhsm-throttled-twice"])
def test_transient_faults_converge(emu, network, stack_factory, inject, want_hits):
    """A DEGRADED HSM is deleted and replaced, an HSM whose creation failed is created again (the
    fleet wait re-plans), throttling is retried: the stack converges with exactly the right HSMs."""
    stack = stack_factory()
    rule = inject(emu, network)
    result = stack.deploy(**_params(network))
    assert emu.fault_hits(rule["id"]) == want_hits, "the fault did not fire as injected"
    assert result.returncode == 0, result.describe()
    c = assert_converged(emu, result, network, network.hsm_subnets(2), 1)
    assert all(h["State"] == "ACTIVE" for h in c["Hsms"]), c["Hsms"]
    assert_no_leaks(emu)


def test_initialize_cluster_rejected_rolls_back(emu, network, stack_factory):
    stack = stack_factory()
    rule = emu.add_fault(kind="api", service="cloudhsmv2", operation="InitializeCluster",
                         error_code="CloudHsmInvalidRequestException",
                         message="injected: the signed certificate is not valid for this cluster",
                         count=None)
    result = stack.deploy(**_params(network, 1, 1))
    assert emu.fault_hits(rule["id"]) >= 1
    _assert_clean_rollback(emu, stack, network, result,
                           [r"InitializeCluster|Initiali[sz]", r"not valid for this cluster"])
    assert_no_leaks(emu)


def test_client_command_failing_rolls_back(emu, network, stack_factory):
    stack = stack_factory()
    rule = emu.add_fault(kind="client_command", count=None,
                         outcome={"exit_code": 1,
                                  "stderr": "cloudhsm-cli: injected failure: connection refused"})
    result = stack.deploy(**_params(network, 1, 1))
    assert emu.fault_hits(rule["id"]) >= 1
    _assert_clean_rollback(emu, stack, network, result, [r"command|Activate"])
    assert_no_leaks(emu)


def test_lambda_crash_after_side_effect_converges_or_rolls_back(emu, network, stack_factory):
    """The cluster function crashes right after CreateHsm succeeded (its response is lost). Either
    the retried step finds the HSM it created instead of creating another one (converged, exactly
    one HSM per AZ), or the workflow fails and the rollback still finds and deletes the HSM the
    crashed step created (nothing billing).

    Uses the emulator's `lambda_crash` outcome rule (BLOCKERS.md B1): the invocation runs to
    completion, then the runtime process dies and the caller sees Runtime.ExitError."""
    stack = stack_factory()
    rule = emu.add_fault(kind="lambda_crash", match={"handler": "cluster", "step": "CreateHsm"},
                         count=1, outcome={"after": "side_effect"})
    result = stack.deploy(**_params(network, 2, 1))
    assert emu.fault_hits(rule["id"]) == 1, \
        "the emulator never crashed the Lambda (lambda_crash rule not supported? see BLOCKERS.md)"
    if result.returncode == 0:
        assert_converged(emu, result, network, network.hsm_subnets(2), 1)  # one HSM per AZ
    else:
        _assert_clean_rollback(emu, stack, network, result, [r"Runtime|crash|ExitError|killed"])
    assert_no_leaks(emu)
