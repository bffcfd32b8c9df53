"""The /_emu/ control routes: clock, faults, reset, introspection, health."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def test_clock_reports_scale_and_durations(emu):
    status, clock = emu.emu("GET", "clock")
    assert status == 200
    assert clock["scale"] == emu.time_scale
    assert clock["durations"]["cloudhsm.hsm_create"] == 480.0


def test_clock_durations_can_be_changed_and_reset(emu):
    status, clock = emu.emu("POST", "clock", {"durations": {"cloudhsm.hsm_create": 60}})
    assert status == 200 and clock["durations"]["cloudhsm.hsm_create"] == 60.0
    status, body = emu.emu("POST", "clock", {"durations": {"no.such": 1}})
    assert status == 400 and "unknown durations" in body["error"]
    emu.reset()
    assert emu.emu("GET", "clock")[1]["durations"]["cloudhsm.hsm_create"] == 480.0


def test_api_fault_fires_count_times_then_stops(emu):
    sm = emu.client("secretsmanager")
    status, rule = emu.emu("POST", "faults", {
        "service": "secretsmanager", "operation": "CreateSecret",
        "error_code": "InternalServiceError", "message": "injected", "status": 500, "count": 2})
    assert status == 200 and rule["count"] == 2
    for attempt in range(2):
        with pytest.raises(ClientError) as err:
            sm.create_secret(Name=f"s{attempt}", SecretString="v")
        assert err.value.response["Error"]["Code"] == "InternalServiceError"
        assert err.value.response["Error"]["Message"] == "injected"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    sm.create_secret(Name="s-ok", SecretString="v")  # the third call goes through
    rules = emu.emu("GET", "faults")[1]["rules"]
    assert rules[0]["hits"] == 2 and rules[0]["count"] == 0
    # Other operations of the service were never affected.
    assert sm.list_secrets()["SecretList"]


def test_api_fault_on_query_protocol_service(emu):
    emu.emu("POST", "faults", {"service": "ec2", "operation": "DescribeVpcs",
                               "error_code": "RequestLimitExceeded", "count": 1})
    ec2 = emu.client("ec2")
    with pytest.raises(ClientError) as err:
        ec2.describe_vpcs()
    assert err.value.response["Error"]["Code"] == "RequestLimitExceeded"
    ec2.describe_vpcs()


def test_probability_faults_are_reproducible_with_seed(emu):
    def pattern():
        emu.emu("DELETE", "faults")
        emu.emu("POST", "faults", {"seed": 42})
        emu.emu("POST", "faults", {"service": "sts", "operation": "GetCallerIdentity",
                                   "error_code": "Throttling", "count": None,
                                   "probability": 0.5})
        sts = emu.client("sts")
        outcome = []
        for _ in range(12):
            try:
                sts.get_caller_identity()
                outcome.append("ok")
            except ClientError:
                outcome.append("err")
        return outcome

    first = pattern()
    assert "ok" in first and "err" in first
    assert pattern() == first


def test_fault_rules_are_validated_and_removable(emu):
    status, body = emu.emu("POST", "faults", {"service": "kms", "bogus": 1, "error_code": "X"})
    assert status == 400 and "bogus" in body["error"]
    status, body = emu.emu("POST", "faults", {"service": "kms"})
    assert status == 400
    status, rule = emu.emu("POST", "faults", {"service": "kms", "error_code": "KMSInternalException",
                                              "count": None})
    status, remaining = emu.emu("DELETE", f"faults?id={rule['id']}")
    assert status == 200 and remaining["rules"] == []


def test_reset_clears_state_and_faults(emu):
    emu.client("secretsmanager").create_secret(Name="gone", SecretString="v")
    emu.emu("POST", "faults", {"service": "kms", "error_code": "X", "count": None})
    emu.reset()
    assert emu.client("secretsmanager").list_secrets()["SecretList"] == []
    assert emu.emu("GET", "faults")[1]["rules"] == []
    assert emu.introspect()["records"] == []


def test_introspection_lists_every_secret_value_ever_stored(emu):
    sm = emu.client("secretsmanager")
    sm.create_secret(Name="rotating", SecretString="first-value")
    sm.put_secret_value(SecretId="rotating", SecretString="second-value")
    sm.delete_secret(SecretId="rotating", ForceDeleteWithoutRecovery=True)
    generated = sm.get_random_password(PasswordLength=20)["RandomPassword"]
    values = {s["value"] for s in emu.introspect(sections="secrets")["secrets"]}
    assert {"first-value", "second-value", generated} <= values


def test_unknown_route_is_404(emu):
    assert emu.emu("GET", "nope")[0] == 404


def test_health_lists_installed_packages(emu):
    status, body = emu.emu("GET", "health")
    assert status == 200
    assert {"emu.sfn", "emu.lambda_rt", "emu.cfn", "emu.introspect"} <= set(body["packages"])


def test_lambda_invoke_fault_reaches_step_functions_retry(emu, make_function):
    """An injected Lambda service error surfaces in Step Functions as Lambda.<Code>."""
    import json

    from conftest import wait_execution

    make_function("ok", "echo '{\"fine\": true}'")
    emu.emu("POST", "faults", {"service": "lambda", "operation": "Invoke",
                               "error_code": "ServiceException", "status": 500, "count": 1})
    sfn = emu.client("stepfunctions")
    arn = sfn.create_state_machine(name="svc", roleArn="arn:aws:iam::123456789012:role/r",
                                   definition=json.dumps({"StartAt": "T", "States": {"T": {
                                       "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                       "Parameters": {"FunctionName": "ok", "Payload": {}},
                                       "Retry": [{"ErrorEquals": ["Lambda.ServiceException"],
                                                  "IntervalSeconds": 1, "MaxAttempts": 2}],
                                       "OutputPath": "$.Payload", "End": True}}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="svc-1")["executionArn"]
    result = wait_execution(sfn, execution)
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"fine": True}
    history = sfn.get_execution_history(executionArn=execution)["events"]
    failed = [e for e in history if e["type"] == "TaskFailed"]
    assert failed and failed[0]["taskFailedEventDetails"]["error"] == "Lambda.ServiceException"
