"""Shared fixtures: one emulator process per test session, boto3 clients, reset between tests.

The emulator runs as a separate process (``python -m emu``) on a free port with
``--time-scale 0.01`` (override with EMU_TIME_SCALE), exactly as ``emulator/serve`` starts it, so
tests go through the real wire protocols. ``EMU_ENDPOINT`` points the suite at an emulator that is
already running instead.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config

EMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME_SCALE = float(os.environ.get("EMU_TIME_SCALE", "0.01"))
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Emulator:
    """Handle on the running emulator: endpoint, boto3 clients and ``/_emu/`` calls."""

    def __init__(self, endpoint: str, log_path: str | None = None):
        self.endpoint = endpoint
        self.log_path = log_path
        self.time_scale = TIME_SCALE

    def client(self, service: str, **kwargs: Any) -> Any:
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"},  # no retries
                          s3={"addressing_style": "path"}), **kwargs)

    def emu(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call ``/_emu/<path>``; returns (status, parsed JSON)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.endpoint}/_emu/{path.lstrip('/')}", data=data,
                                         method=method.upper(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def introspect(self, **query: str) -> dict[str, Any]:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        status, body = self.emu("GET", "introspect" + (f"?{qs}" if qs else ""))
        assert status == 200, body
        return body

    def reset(self) -> None:
        status, body = self.emu("POST", "reset")
        assert status == 200, body


def _wait_ready(endpoint: str, process: subprocess.Popen, log_path: str) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited: {open(log_path).read()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{endpoint}/_emu/health", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"emulator did not start: {open(log_path).read()[-4000:]}")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if os.environ.get("EMU_ENDPOINT"):
        yield Emulator(os.environ["EMU_ENDPOINT"])
        return
    port = free_port()
    log_path = str(tmp_path_factory.mktemp("emulator") / "emulator.log")
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "emu", "--port", str(port), "--time-scale", str(TIME_SCALE)],
        cwd=EMULATOR_DIR, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(endpoint, process, log_path)
        yield Emulator(endpoint, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def emu(emulator: Emulator) -> Any:
    """The emulator, reset before the test."""
    emulator.reset()
    return emulator


# ------------------------------------------------------------------------------------------------
# Helpers for Lambda functions with a custom runtime

RUNTIME_LOOP = r"""#!/bin/bash
# A provided.al2023 runtime in shell: the Lambda Runtime API loop, with curl.
set -u
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
echo "init handler=${_HANDLER}"
while true; do
  HEADERS=$(mktemp)
  # A real runtime exits when the Runtime API goes away; so does this one.
  EVENT=$(curl -sSf -D "$HEADERS" "$API/invocation/next") || exit 1
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  rm -f "$HEADERS"
  handle "$EVENT" > /tmp/out.$$ 2>/tmp/err.$$
  STATUS=$?
  cat /tmp/err.$$ >&2
  if [ $STATUS -eq 0 ]; then
    curl -sS -X POST "$API/invocation/$REQUEST_ID/response" --data-binary @/tmp/out.$$ >/dev/null
  else
    curl -sS -X POST "$API/invocation/$REQUEST_ID/error" --data-binary @/tmp/out.$$ >/dev/null
  fi
  rm -f /tmp/out.$$ /tmp/err.$$
done
"""


def bootstrap_zip(handle_body: str, prelude: str = "") -> bytes:
    """A code zip whose ``bootstrap`` runs ``handle EVENT`` per invocation (a shell function).

    ``handle`` prints the response (or an error JSON and returns non-zero for an error).
    """
    script = RUNTIME_LOOP.replace(
        "set -u\n", f"set -u\n{prelude}\nhandle() {{\n{handle_body}\n}}\n", 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        archive.writestr(info, script)
    return buffer.getvalue()


ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
     "Action": "sts:AssumeRole"}]})


@pytest.fixture
def make_role(emu: Emulator) -> Callable[[str], str]:
    def make(name: str = "fn-role") -> str:
        iam = emu.client("iam")
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]

    return make


@pytest.fixture
def make_function(emu: Emulator, make_role: Callable[[str], str]) -> Callable[..., str]:
    """Create a provided.al2023 function from a shell ``handle`` body; returns its ARN."""
    role_arns: dict[str, str] = {}

    def make(name: str, handle_body: str, timeout: int = 10, handler: str = "main",
             env: dict[str, str] | None = None, prelude: str = "") -> str:
        if "role" not in role_arns:
            role_arns["role"] = make_role("fn-role")
        lam = emu.client("lambda")
        response = lam.create_function(
            FunctionName=name, Runtime="provided.al2023", Role=role_arns["role"],
            Handler=handler, Code={"ZipFile": bootstrap_zip(handle_body, prelude)},
            Timeout=timeout, Environment={"Variables": env or {}})
        return response["FunctionArn"]

    return make


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; returns its value."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def wait_execution(sfn: Any, arn: str, timeout: float = 30.0) -> dict[str, Any]:
    def done() -> Any:
        described = sfn.describe_execution(executionArn=arn)
        return described if described["status"] != "RUNNING" else None

    return wait_for(done, timeout)
