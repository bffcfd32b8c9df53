"""Lambda functions with ``provided*`` runtimes run their real ``bootstrap``.

moto's single choke point for every invocation (Invoke API, Step Functions tasks, CloudFormation
custom resources) is ``LambdaFunction._invoke_lambda(event) -> (payload, errored, logs)``. We
replace it: for ``provided*`` runtimes the function's code zip is unpacked once per CodeSha256 and
``bootstrap`` runs as a subprocess against a local Runtime API (:mod:`.runtime_api`). Processes
are kept warm per (function, code, configuration) and the pool grows under concurrency like
Lambda. Every line a function prints is recorded (kind ``log``).

The function timeout is *not* scaled by the clock: it bounds real compute, not an emulated wait.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from typing import Any

from emu import faults, recorder
from emu.lambda_rt.runtime_api import Invocation, RuntimeApi

CODE_ROOT = os.path.join(tempfile.gettempdir(), f"emu-lambda-{os.getpid()}")
IDLE_LIMIT_PER_KEY = 8

_lock = threading.RLock()  # kill() re-enters it
_idle: dict[tuple, list["Sandbox"]] = {}
_all: list["Sandbox"] = []
_original_invoke: Any = None


class Sandbox:
    """One runtime process serving one invocation at a time."""

    def __init__(self, fn: Any, code_dir: str, key: tuple):
        self.key = key
        self.function_name = fn.function_name
        self.api = RuntimeApi()
        self.log_lines: list[str] = []
        self.request_id: str | None = None
        env = _environment(fn, code_dir, self.api.address)
        self.process = subprocess.Popen(
            [os.path.join(code_dir, "bootstrap")], cwd=code_dir, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.exited = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.log_lines.append(line)
            recorder.record("log", source="lambda", function=self.function_name,
                            request_id=self.request_id, line=line)
        self.process.wait()
        self.exited.set()

    def invoke(self, invocation: Invocation, timeout_s: float) -> None:
        """Run one invocation; sets ``invocation.payload``/``errored``. Kills on timeout/exit."""
        self.request_id = invocation.request_id
        self.api.pending.put(invocation)
        end = time.monotonic() + timeout_s
        while not invocation.done.is_set():
            if self.api.init_failed.is_set():
                body = _json_or_text(self.api.init_error or b"")
                invocation.payload = _error(
                    body.get("errorType", "Runtime.InitError") if isinstance(body, dict) else
                    "Runtime.InitError",
                    body.get("errorMessage", "") if isinstance(body, dict) else str(body),
                    invocation.request_id)
                invocation.errored = True
                self.kill()
                return
            if self.exited.is_set() and not invocation.done.is_set():
                invocation.payload = _error(
                    "Runtime.ExitError",
                    f"RequestId: {invocation.request_id} Error: Runtime exited with error: "
                    f"exit status {self.process.returncode}", invocation.request_id)
                invocation.errored = True
                self.kill()
                return
            left = end - time.monotonic()
            if left <= 0:
                invocation.payload = _error(
                    "Sandbox.Timedout",
                    f"RequestId: {invocation.request_id} Error: Task timed out after "
                    f"{timeout_s:.2f} seconds", invocation.request_id)
                invocation.errored = True
                self.kill()
                return
            invocation.done.wait(min(left, 0.05))

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and not self.api.init_failed.is_set()

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, 9)
            except ProcessLookupError:
                pass
        self.api.close()
        with _lock:
            if self in _all:
                _all.remove(self)


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return {"errorMessage": body.decode("utf-8", "replace")}


def _error(error_type: str, message: str, request_id: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": []}).encode()


def _environment(fn: Any, code_dir: str, runtime_api: str) -> dict[str, str]:
    from emu import server

    region = fn.region
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": code_dir,
        "LAMBDA_TASK_ROOT": code_dir,
        "LAMBDA_RUNTIME_DIR": code_dir,
        "_HANDLER": fn.handler or "",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": server.endpoint(),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
    }
    for key, value in (fn.environment_vars or {}).items():
        env[key] = str(value)
    return env


def _code_dir(fn: Any) -> str:
    """Unpack the function's zip once per CodeSha256 (the same zip that goes to AWS)."""
    sha = fn.code_sha_256 or "nocode"
    safe = base64.urlsafe_b64encode(sha.encode()).decode().rstrip("=")[:64]
    target = os.path.join(CODE_ROOT, safe)
    if os.path.isdir(target):
        return target
    tmp = target + f".tmp-{uuid.uuid4().hex}"
    os.makedirs(tmp)
    with tempfile.TemporaryFile() as handle:
        handle.write(fn.code_bytes or b"")
        handle.seek(0)
        with zipfile.ZipFile(handle) as archive:
            for info in archive.infolist():
                path = archive.extract(info, tmp)
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    os.chmod(path, mode)
    bootstrap = os.path.join(tmp, "bootstrap")
    if os.path.exists(bootstrap):
        os.chmod(bootstrap, os.stat(bootstrap).st_mode | 0o755)
    try:
        os.rename(tmp, target)
    except OSError:  # another thread won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _pool_key(fn: Any) -> tuple:
    env = json.dumps(fn.environment_vars or {}, sort_keys=True)
    return (fn.function_arn, fn.code_sha_256, fn.handler, env, fn.timeout, fn.memory_size,
            fn.run_time)


def _take_sandbox(fn: Any) -> Sandbox:
    key = _pool_key(fn)
    with _lock:
        idle = _idle.setdefault(key, [])
        while idle:
            sandbox = idle.pop()
            if sandbox.alive:
                return sandbox
            sandbox.kill()
    code_dir = _code_dir(fn)
    if not os.path.exists(os.path.join(code_dir, "bootstrap")):
        raise FileNotFoundError("bootstrap")
    sandbox = Sandbox(fn, code_dir, key)
    with _lock:
        _all.append(sandbox)
    return sandbox


def _give_back(sandbox: Sandbox) -> None:
    with _lock:
        idle = _idle.setdefault(sandbox.key, [])
        if sandbox.alive and len(idle) < IDLE_LIMIT_PER_KEY:
            idle.append(sandbox)
            return
    sandbox.kill()


def invoke_provided(fn: Any, event: Any) -> tuple[str, bool, str]:
    """Run one invocation of a ``provided*`` function; returns moto's (payload, errored, logs)."""
    if isinstance(event, (bytes, bytearray)):
        event_bytes = bytes(event)
    elif isinstance(event, str):
        event_bytes = event.encode()
    else:
        event_bytes = json.dumps(event if event is not None else {}).encode()
    request_id = str(uuid.uuid4())
    timeout_s = float(fn.timeout or 3)
    invocation = Invocation(request_id=request_id, event=event_bytes,
                            deadline_ms=int((time.time() + timeout_s) * 1000),
                            function_arn=fn.function_arn)
    try:
        sandbox = _take_sandbox(fn)
    except (FileNotFoundError, zipfile.BadZipFile) as err:
        message = ("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
                   if isinstance(err, FileNotFoundError) else f"Invalid code package: {err}")
        recorder.record("log", source="lambda", function=fn.function_name,
                        request_id=request_id, line=message)
        return _error("Runtime.InvalidEntrypoint", message, request_id).decode(), True, message
    crash = _crash_rule(fn, event_bytes)
    start_line = len(sandbox.log_lines)
    if crash is None or crash.get("after", "side_effect") == "side_effect":
        sandbox.invoke(invocation, timeout_s)
    if crash is not None:
        # Fault: the process dies (after its work, or before it starts); the answer is lost.
        sandbox.kill()
        recorder.record("fault", fault="lambda_crash", function=fn.function_name,
                        request_id=request_id, after=crash.get("after", "side_effect"))
        invocation.payload = _error(
            "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: "
            "signal: killed", request_id)
        invocation.errored = True
    elif invocation.errored and not sandbox.alive:
        pass  # killed: do not return to the pool
    else:
        _give_back(sandbox)
    logs = "\n".join(sandbox.log_lines[start_line:])
    _ship_logs(fn, request_id, sandbox.log_lines[start_line:])
    return invocation.payload.decode("utf-8", "replace"), invocation.errored, logs


def _crash_rule(fn: Any, event_bytes: bytes) -> dict[str, Any] | None:
    """The ``lambda_crash`` outcome rule for this invocation, if one fires.

    Matched on ``function`` (name), ``handler`` (the function's Handler) and ``step`` (the
    event's ``Step`` field); outcome ``{"after": "side_effect"}`` (default: the invocation runs,
    then the process is killed and its answer lost) or ``{"after": "start"}`` (killed before it
    runs).
    """
    try:
        event = json.loads(event_bytes)
    except ValueError:
        event = None
    step = event.get("Step") if isinstance(event, dict) else None
    return faults.outcome("lambda_crash", function=fn.function_name, handler=fn.handler,
                          step=step)


def _ship_logs(fn: Any, request_id: str, lines: list[str]) -> None:
    """Put the invocation's lines into CloudWatch Logs like Lambda does (best effort)."""
    try:
        group = f"/aws/lambda/{fn.function_name}"
        fn.logs_backend.ensure_log_group(group)
        stream = time.strftime("%Y/%m/%d/[$LATEST]") + "emu"
        log_group = fn.logs_backend.groups[group]
        if stream not in log_group.streams:
            fn.logs_backend.create_log_stream(group, stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": f"START RequestId: {request_id}"}]
        events += [{"timestamp": now, "message": line} for line in lines]
        events.append({"timestamp": now, "message": f"END RequestId: {request_id}"})
        fn.logs_backend.put_log_events(group, stream, events)
    except Exception:  # logs are a convenience; the recorder holds the truth
        pass


def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    if (self.run_time or "").startswith("provided"):
        return invoke_provided(self, event)
    return _original_invoke(self, event)


def install() -> None:
    global _original_invoke
    from moto.awslambda.models import LambdaFunction

    if _original_invoke is None:
        _original_invoke = LambdaFunction._invoke_lambda
        LambdaFunction._invoke_lambda = _invoke_lambda


def reset() -> None:
    """Stop every warm process (function code may have changed with the reset)."""
    with _lock:
        sandboxes = list(_all)
        _idle.clear()
    for sandbox in sandboxes:
        sandbox.kill()


def shutdown() -> None:
    """Kill every runtime process and remove unpacked code (the emulator is exiting)."""
    reset()
    shutil.rmtree(CODE_ROOT, ignore_errors=True)


def stats() -> dict[str, Any]:
    with _lock:
        return {"processes": len(_all), "alive": sum(1 for s in _all if s.alive),
                "idle": sum(len(v) for v in _idle.values())}
