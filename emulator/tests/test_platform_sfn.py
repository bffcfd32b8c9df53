"""Step Functions on the emulator's clock, with Lambda tasks from provided.al2023 functions."""

from __future__ import annotations

import datetime
import json
import time
import uuid

from conftest import wait_execution

# A handle body that fails with errorType Transient for the first $FAILS calls (per function),
# then answers {"ok": true, "attempt": n}. The counter lives in a file named after the function.
FLAKY = r'''N=$(( $(cat /tmp/emu-flaky-$TOKEN 2>/dev/null || echo 0) + 1 ))
echo $N > /tmp/emu-flaky-$TOKEN
if [ $N -le $FAILS ]; then echo "{\"errorType\": \"Transient\", \"errorMessage\": \"attempt $N\"}"; return 1; fi
echo "{\"ok\": true, \"attempt\": $N}"'''


def machine(emu, name, definition):
    sfn = emu.client("stepfunctions")
    arn = sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                   roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
    return sfn, arn


def run(emu, name, definition, payload=None, timeout=30):
    sfn, arn = machine(emu, name, definition)
    started = time.time()
    execution = sfn.start_execution(stateMachineArn=arn, name=f"{name}-run",
                                    input=json.dumps(payload or {}))
    result = wait_execution(sfn, execution["executionArn"], timeout)
    return result, time.time() - started, execution["executionArn"]


def state_seconds(emu, arn, state):
    """Real seconds between entering and leaving a state, from the execution history."""
    events = emu.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    entered = next(e["timestamp"] for e in events
                   if e["type"].endswith("StateEntered") and
                   e["stateEnteredEventDetails"]["name"] == state)
    exited = next(e["timestamp"] for e in events
                  if e["type"].endswith("StateExited") and
                  e["stateExitedEventDetails"]["name"] == state)
    return (exited - entered).total_seconds()


def test_wait_seconds_is_scaled(emu):
    result, elapsed, arn = run(emu, "wait100", {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 100, "End": True}}})
    assert result["status"] == "SUCCEEDED"
    # 100 s nominal at scale 0.01 = 1 s real; the machine may be loaded, so allow slack above.
    assert 0.95 <= state_seconds(emu, arn, "W") < 1.6
    assert elapsed >= 0.95


def test_wait_seconds_path_and_timestamp_are_scaled(emu):
    future = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=50))
    result, elapsed, arn = run(emu, "waitpath", {"StartAt": "A", "States": {
        "A": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "B"},
        "B": {"Type": "Wait", "Timestamp": future.strftime("%Y-%m-%dT%H:%M:%SZ"), "End": True}}},
        {"wait": 50})
    assert result["status"] == "SUCCEEDED"
    assert 0.45 <= state_seconds(emu, arn, "A") < 1.0
    assert elapsed >= 0.9


def test_lambda_invoke_payload_result_selector_result_path(emu, make_function):
    make_function("echo", 'echo "{\\"echo\\": $1}"')
    result, _, _ = run(emu, "invoke", {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "echo", "Payload": {"Step": "Ping", "Value.$": "$.v"}},
        "ResultSelector": {"Out.$": "$.Payload"}, "ResultPath": "$.Ping", "End": True}}},
        {"v": 7})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"v": 7, "Ping": {"Out": {"echo": {"Step": "Ping",
                                                                               "Value": 7}}}}


def test_retry_on_error_type_with_backoff_and_jitter(emu, make_function):
    make_function("flaky", FLAKY, env={"FAILS": "3", "TOKEN": uuid.uuid4().hex})
    result, elapsed, arn = run(emu, "retry", {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "flaky", "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 2, "BackoffRate": 2,
                   "MaxAttempts": 6, "MaxDelaySeconds": 60, "JitterStrategy": "FULL"}],
        "End": True}}})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"ok": True, "attempt": 4}
    # Nominal retry waits ≤ 2 + 4 + 8 s (FULL jitter draws from [0, interval]) → ≤ 0.14 s real.
    assert state_seconds(emu, arn, "T") < 3
    machines = emu.introspect(sections="state_machines")["state_machines"]
    execution = next(e for m in machines for e in m["executions"] if e["executionArn"] == arn)
    # One state entered plus three retries.
    assert execution["transitions"] == 4


def test_retry_intervals_take_scaled_time(emu, make_function):
    make_function("flaky2", FLAKY, env={"FAILS": "2", "TOKEN": uuid.uuid4().hex})
    result, elapsed, arn = run(emu, "retryslow", {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "flaky2", "Payload": {}},
        "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 50, "BackoffRate": 1.0,
                   "MaxAttempts": 3}],
        "End": True}}})
    assert result["status"] == "SUCCEEDED", result
    assert 0.95 <= state_seconds(emu, arn, "T") < 2.5  # two waits of 50 s nominal = 1 s real


def test_catch_on_error_type_writes_error(emu, make_function):
    make_function("invalid", 'echo \'{"errorType": "InvalidInput", "errorMessage": "bad subnet"}\'\nreturn 1')
    result, _, _ = run(emu, "catch", {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "invalid", "Payload": {}},
              "Retry": [{"ErrorEquals": ["Transient"], "MaxAttempts": 3}],
              "Catch": [{"ErrorEquals": ["Transient"], "Next": "Wrong"},
                        {"ErrorEquals": ["InvalidInput"], "ResultPath": "$.Error",
                         "Next": "Caught"}],
              "End": True},
        "Wrong": {"Type": "Fail", "Error": "WrongCatch"},
        "Caught": {"Type": "Pass", "End": True}}})
    assert result["status"] == "SUCCEEDED", result
    error = json.loads(result["output"])["Error"]
    assert error["Error"] == "InvalidInput"
    assert json.loads(error["Cause"])["errorMessage"] == "bad subnet"


def test_lambda_timeout_is_caught_as_sandbox_timedout(emu, make_function):
    make_function("slow", "sleep 20\necho '{}'", timeout=1)
    result, elapsed, _ = run(emu, "timeout", {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "slow", "Payload": {}},
              "Catch": [{"ErrorEquals": ["Sandbox.Timedout"], "ResultPath": "$.Error",
                         "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Pass", "End": True}}})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["Error"]["Error"] == "Sandbox.Timedout"
    assert elapsed < 6


def test_uncaught_error_fails_execution_with_error_type(emu, make_function):
    make_function("boom", 'echo \'{"errorType": "ResourceFailed", "errorMessage": "DEGRADED"}\'\nreturn 1')
    result, _, _ = run(emu, "fail", {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "boom", "Payload": {}}, "End": True}}})
    assert result["status"] == "FAILED"
    assert result["error"] == "ResourceFailed"


def test_describe_execution_with_datetimes_in_output(emu):
    """Smoke test for the DescribeExecution datetime patch (aws-sdk: results hold datetimes)."""
    emu.client("secretsmanager").create_secret(Name="plain", SecretString="x")
    result, _, arn = run(emu, "sdk", {"StartAt": "D", "States": {"D": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:secretsmanager:describeSecret",
        "Parameters": {"SecretId": "plain"}, "End": True}}})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["Name"] == "plain"
    history = emu.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    assert history[-1]["type"] == "ExecutionSucceeded"


def test_introspection_has_execution_history_with_inputs(emu):
    result, _, arn = run(emu, "hist", {"StartAt": "P", "States": {"P": {"Type": "Pass",
                                                                          "End": True}}},
                         {"marker": "m-123"})
    machines = emu.introspect(sections="state_machines")["state_machines"]
    execution = next(e for m in machines for e in m["executions"] if e["executionArn"] == arn)
    assert execution["input"] == {"marker": "m-123"}
    assert execution["status"] == "SUCCEEDED"
    assert "m-123" in json.dumps(execution["history"])
    assert execution["transitions"] == 1


def test_map_iterations_run_in_parallel_processes(emu, make_function):
    make_function("worker", 'sleep 1\necho "{\\"done\\": $1}"')
    result, _, arn = run(emu, "map", {"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 3,
        "Iterator": {"StartAt": "W", "States": {"W": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "worker", "Payload.$": "$"},
            "OutputPath": "$.Payload", "End": True}}},
        "End": True}}}, {"items": [1, 2, 3]})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == [{"done": 1}, {"done": 2}, {"done": 3}]
    # The warm pool grew to three processes (each logs its init line once).
    logs = emu.introspect(kind="log")["records"]
    inits = [r for r in logs if r.get("function") == "worker" and r["line"].startswith("init")]
    assert len(inits) == 3
    # And they overlapped: the Map state took about one invocation, not three.
    assert state_seconds(emu, arn, "M") < 2.8
