"""provided.al2023 functions run their bootstrap through the local Lambda Runtime API."""

from __future__ import annotations

import io
import json
import time
import zipfile

from conftest import bootstrap_zip

ECHO = 'echo "handling $1"  >&2\necho "{\\"got\\": $1, \\"handler\\": \\"$_HANDLER\\", \\"color\\": \\"$COLOR\\"}"'


def invoke(lam, name, payload):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    return response, json.loads(response["Payload"].read())


def test_invoke_runs_bootstrap_with_handler_and_environment(emu, make_function):
    make_function("echo", ECHO, handler="bridge", env={"COLOR": "blue"})
    response, body = invoke(emu.client("lambda"), "echo", {"a": 1})
    assert "FunctionError" not in response
    assert body == {"got": {"a": 1}, "handler": "bridge", "color": "blue"}


def test_runtime_environment_points_at_emulator(emu, make_function):
    make_function("envdump", 'echo "{\\"endpoint\\": \\"$AWS_ENDPOINT_URL\\", '
                  '\\"name\\": \\"$AWS_LAMBDA_FUNCTION_NAME\\", '
                  '\\"memory\\": \\"$AWS_LAMBDA_FUNCTION_MEMORY_SIZE\\", '
                  '\\"version\\": \\"$AWS_LAMBDA_FUNCTION_VERSION\\", '
                  '\\"region\\": \\"$AWS_REGION\\"}"')
    _, body = invoke(emu.client("lambda"), "envdump", {})
    assert body == {"endpoint": emu.endpoint, "name": "envdump", "memory": "128",
                    "version": "$LATEST", "region": "us-east-1"}


def test_error_has_lambda_shape(emu, make_function):
    make_function("fails", 'echo \'{"errorType": "Transient", "errorMessage": "try again"}\'\nreturn 1')
    response, body = invoke(emu.client("lambda"), "fails", {})
    assert response["FunctionError"]
    assert body["errorType"] == "Transient"
    assert body["errorMessage"] == "try again"


def test_timeout_kills_and_reports_sandbox_timedout(emu, make_function):
    make_function("sleepy", "sleep 30\necho '{}'", timeout=1)
    started = time.time()
    response, body = invoke(emu.client("lambda"), "sleepy", {})
    assert time.time() - started < 5
    assert response["FunctionError"]
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    # The next invocation gets a fresh process and still times out (not a hung one).
    _, again = invoke(emu.client("lambda"), "sleepy", {})
    assert again["errorType"] == "Sandbox.Timedout"


def test_exit_reports_runtime_exit_error(emu, make_function):
    make_function("exits", "exit 3")
    response, body = invoke(emu.client("lambda"), "exits", {})
    assert response["FunctionError"]
    assert body["errorType"] == "Runtime.ExitError"
    assert "exit status" in body["errorMessage"]


def test_warm_process_is_reused(emu, make_function):
    # The prelude runs once per process: a counter file per process id proves reuse.
    make_function("counter", 'N=$(( $(cat /tmp/emu-count-$$ 2>/dev/null || echo 0) + 1 ))\n'
                  'echo $N > /tmp/emu-count-$$\necho "{\\"n\\": $N}"')
    lam = emu.client("lambda")
    counts = [invoke(lam, "counter", {})[1]["n"] for _ in range(3)]
    assert counts == [1, 2, 3]


def test_missing_bootstrap_is_an_error(emu, make_role):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "no bootstrap here")
    lam = emu.client("lambda")
    lam.create_function(FunctionName="nobootstrap", Runtime="provided.al2023",
                        Role=make_role("r"), Handler="x", Code={"ZipFile": buffer.getvalue()})
    response, body = invoke(lam, "nobootstrap", {})
    assert response["FunctionError"]
    assert body["errorType"] == "Runtime.InvalidEntrypoint"


def test_code_from_s3(emu, make_role):
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="assets")
    s3.put_object(Bucket="assets", Key="fn.zip", Body=bootstrap_zip('echo "{\\"from\\": \\"s3\\"}"'))
    lam = emu.client("lambda")
    lam.create_function(FunctionName="froms3", Runtime="provided.al2023", Role=make_role("r"),
                        Handler="x", Code={"S3Bucket": "assets", "S3Key": "fn.zip"})
    _, body = invoke(lam, "froms3", {})
    assert body == {"from": "s3"}


def test_log_lines_are_recorded(emu, make_function):
    make_function("talker", 'echo "secretless line $1" >&2\necho "{}"')
    invoke(emu.client("lambda"), "talker", {"k": "v"})
    logs = emu.introspect(kind="log")["records"]
    lines = [r["line"] for r in logs if r.get("function") == "talker"]
    assert any("secretless line" in line and '"k"' in line for line in lines), lines
    assert any(line == "init handler=main" for line in lines)


def test_introspection_lists_function_environment(emu, make_function):
    make_function("withenv", ECHO, env={"COLOR": "green"})
    functions = emu.introspect(sections="lambda_functions")["lambda_functions"]
    config = next(f for f in functions if f["FunctionName"] == "withenv")
    assert config["Environment"]["Variables"] == {"COLOR": "green"}


def test_lambda_crash_after_side_effect(emu, make_function):
    """Outcome rule lambda_crash: the work happens, then the process dies and the answer is lost."""
    make_function("worker", 'echo "$1" > /tmp/emu-crash-$TOKEN\necho \'{"done": true}\'',
                  handler="cluster", env={"TOKEN": str(time.time_ns())})
    status, rule = emu.emu("POST", "faults", {
        "kind": "lambda_crash", "count": 1, "match": {"handler": "cluster", "step": "CreateHsm"},
        "outcome": {"after": "side_effect"}})
    assert status == 200
    lam = emu.client("lambda")
    # Another step does not match.
    response, body = invoke(lam, "worker", {"Step": "ClusterStatus"})
    assert "FunctionError" not in response and body == {"done": True}
    response, body = invoke(lam, "worker", {"Step": "CreateHsm"})
    assert response["FunctionError"]
    assert body["errorType"] == "Runtime.ExitError"
    token = lam.get_function(FunctionName="worker")["Configuration"]["Environment"]["Variables"]["TOKEN"]
    with open(f"/tmp/emu-crash-{token}") as handle:  # the side effect happened
        assert json.loads(handle.read()) == {"Step": "CreateHsm"}
    rules = emu.emu("GET", "faults")[1]["rules"]
    assert rules[0]["hits"] == 1
    # count 1: the retry succeeds on a fresh process.
    response, body = invoke(lam, "worker", {"Step": "CreateHsm"})
    assert "FunctionError" not in response and body == {"done": True}


def test_lambda_crash_at_start_skips_the_work(emu, make_function):
    token = str(time.time_ns())
    make_function("worker2", 'echo ran > /tmp/emu-crash2-$TOKEN\necho "{}"', env={"TOKEN": token})
    emu.emu("POST", "faults", {"kind": "lambda_crash", "match": {"function": "worker2"},
                               "outcome": {"after": "start"}})
    response, body = invoke(emu.client("lambda"), "worker2", {})
    assert body["errorType"] == "Runtime.ExitError"
    import os
    assert not os.path.exists(f"/tmp/emu-crash2-{token}")
