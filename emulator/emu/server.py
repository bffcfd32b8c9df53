"""The emulator process: moto's server app behind a small WSGI front door.

``/_emu/*`` goes to the routes registered in :mod:`emu.control`; every other request is an AWS
API call. Before it reaches moto, API fault rules (:mod:`emu.faults`) are applied centrally here,
for every service, so packages do not need to call ``faults.api_fault`` themselves.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import sys
import threading
import uuid
from typing import Any, Callable
from urllib.parse import parse_qs

from emu import clock, control, faults, recorder

REGION = "us-east-1"

# Our packages, installed in this order. Optional ones (written by other helpers) may be absent.
PACKAGES = [
    "emu.compat",
    "emu.sfn",
    "emu.lambda_rt",
    "emu.cfn",
    "emu.cloudhsm",
    "emu.client",
    "emu.kms",
    "emu.introspect",
]

_installed: list[Any] = []
_port: int = 0

# SigV4 signing names that differ from the service names used in fault rules.
_SIGNING_TO_SERVICE = {
    "cloudhsm": "cloudhsmv2",
    "states": "stepfunctions",
    "monitoring": "cloudwatch",
}


def port() -> int:
    """The port the emulator listens on (for URLs handed to clients, e.g. ResponseURL)."""
    return _port


def endpoint() -> str:
    return f"http://127.0.0.1:{_port}"


def prepare_environment(port_number: int) -> None:
    """Environment moto and our hooks read; must run before moto is imported."""
    global _port
    _port = port_number
    os.environ["MOTO_PORT"] = str(port_number)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ.setdefault("AWS_REGION", REGION)
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port_number}"
    os.environ.pop("AWS_PROFILE", None)


def enable_sfn_execution() -> None:
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


def install_packages() -> None:
    for name in PACKAGES:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        if hasattr(module, "install"):
            module.install()
        _installed.append(module)


def reset_all() -> None:
    """Clear moto's backends and every package's state (``POST /_emu/reset``)."""
    from moto.moto_api._internal import moto_api_backend

    moto_api_backend.reset()
    faults.clear()
    recorder.clear()
    clock.reset()
    for module in _installed:
        if hasattr(module, "reset"):
            module.reset()


def shutdown_packages() -> None:
    """Stop child processes packages started (Lambda runtimes, ...) before exiting."""
    for module in _installed:
        if hasattr(module, "shutdown"):
            try:
                module.shutdown()
            except Exception as err:  # keep shutting the others down
                print(f"emulator: {module.__name__}.shutdown failed: {err}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# /_emu/ routes owned by the platform


@control.route("GET", "clock")
def _get_clock(body: dict, query: dict) -> tuple[int, Any]:
    return 200, {"scale": clock.scale(), "durations": clock.durations()}


@control.route("POST", "clock")
def _post_clock(body: dict, query: dict) -> tuple[int, Any]:
    try:
        clock.configure(scale=body.get("scale"), durations=body.get("durations"))
    except ValueError as err:
        return 400, {"error": str(err)}
    return 200, {"scale": clock.scale(), "durations": clock.durations()}


def _rule_json(rule: faults.Rule) -> dict[str, Any]:
    return dict(rule.__dict__)


@control.route("GET", "faults")
def _get_faults(body: dict, query: dict) -> tuple[int, Any]:
    return 200, {"rules": [_rule_json(r) for r in faults.rules()]}


@control.route("POST", "faults")
def _post_faults(body: dict, query: dict) -> tuple[int, Any]:
    spec = dict(body)
    if "seed" in spec:
        faults.seed(int(spec.pop("seed")))
        if not spec:
            return 200, {"seeded": True}
    spec.pop("id", None)
    spec.pop("hits", None)
    spec.setdefault("kind", "api")
    allowed = set(faults.Rule.__dataclass_fields__) - {"id", "hits"}
    unknown = set(spec) - allowed
    if unknown:
        return 400, {"error": f"unknown rule fields: {sorted(unknown)}"}
    if spec["kind"] == "api" and not spec.get("error_code"):
        return 400, {"error": "api rules need error_code"}
    rule = faults.add(**spec)
    return 200, _rule_json(rule)


@control.route("DELETE", "faults")
def _delete_faults(body: dict, query: dict) -> tuple[int, Any]:
    rule_id = query.get("id") or body.get("id")
    if rule_id is None:
        faults.clear()
    else:
        faults.remove(int(rule_id))
    return 200, {"rules": [_rule_json(r) for r in faults.rules()]}


@control.route("POST", "reset")
def _post_reset(body: dict, query: dict) -> tuple[int, Any]:
    reset_all()
    return 200, {"reset": True}


@control.route("GET", "health")
def _get_health(body: dict, query: dict) -> tuple[int, Any]:
    return 200, {"ok": True, "packages": [m.__name__ for m in _installed]}


# ---------------------------------------------------------------------------------------------
# WSGI front door

StartResponse = Callable[..., Any]


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the body and hand an identical stream on to moto.

    Without a Content-Length (e.g. chunked uploads) the stream is left untouched and we see no
    body: fault matching then relies on headers and the query string only.
    """
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    import io

    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _respond(start_response: StartResponse, status: int, payload: bytes, headers: list) -> list:
    reasons = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden",
               404: "Not Found", 413: "Payload Too Large", 500: "Internal Server Error"}
    start_response(f"{status} {reasons.get(status, 'Status')}",
                   headers + [("Content-Length", str(len(payload)))])
    return [payload]


def _control(environ: dict[str, Any], start_response: StartResponse) -> list:
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")[len("/_emu/"):]
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    raw = _read_body(environ)
    for prefix, raw_handler in control.RAW_ROUTES.items():
        if path.startswith(prefix):
            status, headers, payload = raw_handler(method, path[len(prefix):], query, raw)
            return _respond(start_response, status, payload, headers)
    handler = control.find(method, path)
    if handler is None:
        return _respond(start_response, 404, b'{"error": "no such route"}',
                        [("Content-Type", "application/json")])
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return _respond(start_response, 400, b'{"error": "body is not JSON"}',
                        [("Content-Type", "application/json")])
    try:
        status, result = handler(body, query)
    except Exception as err:  # a control route bug must not kill the server
        status, result = 500, {"error": f"{type(err).__name__}: {err}"}
    payload = json.dumps(result, default=str).encode()
    return _respond(start_response, status, payload, [("Content-Type", "application/json")])


def _api_operation(environ: dict[str, Any], body: bytes) -> tuple[str, str, str]:
    """(service, operation, protocol) of an AWS request, as well as it can be told."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            service = scope[3]
    service = _SIGNING_TO_SERVICE.get(service, service)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1], "json"
    ctype = environ.get("CONTENT_TYPE", "")
    if "x-www-form-urlencoded" in ctype:
        form = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return service, form["Action"][-1], "query"
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return service, query["Action"][-1], "query"
    path = environ.get("PATH_INFO", "")
    if "/service/" in path and "/operation/" in path:
        return service, path.rsplit("/", 1)[-1], "cbor"
    if service == "lambda":
        return service, _lambda_operation(environ["REQUEST_METHOD"], path), "rest-json"
    return service, "", "s3" if service == "s3" else "rest-json"


def _lambda_operation(method: str, path: str) -> str:
    """The few Lambda REST operations fault rules name (others only match operation "*")."""
    parts = [p for p in path.split("/") if p]
    # /2015-03-31/functions[/<name>[/invocations]]
    if len(parts) == 4 and parts[1] == "functions" and parts[3] == "invocations":
        return "Invoke"
    if len(parts) == 2 and parts[1] == "functions":
        return {"POST": "CreateFunction", "GET": "ListFunctions"}.get(method, "")
    if len(parts) == 3 and parts[1] == "functions":
        return {"GET": "GetFunction", "DELETE": "DeleteFunction"}.get(method, "")
    return ""


def _fault_response(start_response: StartResponse, rule: faults.Rule, protocol: str) -> list:
    request_id = str(uuid.uuid4())
    if protocol in ("query", "s3"):
        payload = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{rule.error_code}</Code><Message>{rule.message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        if protocol == "s3":
            payload = (f"<Error><Code>{rule.error_code}</Code><Message>{rule.message}</Message>"
                       f"<RequestId>{request_id}</RequestId></Error>").encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    else:
        payload = json.dumps(
            {"__type": rule.error_code, "message": rule.message, "Message": rule.message}
        ).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"),
                   ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", rule.error_code)]
    return _respond(start_response, rule.status, payload, headers)


class EmulatorApp:
    """WSGI app: ``/_emu/`` → control routes, anything else → (faults, then) moto."""

    def __init__(self, moto_app: Any):
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_emu/"):
            return _control(environ, start_response)
        if faults.rules() and not path.startswith("/moto-api"):
            body = _read_body(environ)
            service, operation, protocol = _api_operation(environ, body)
            rule = faults.api_fault(service, operation) if operation or service else None
            if rule is not None:
                recorder.record("fault", service=service, operation=operation,
                                error_code=rule.error_code, rule_id=rule.id)
                return _fault_response(start_response, rule, protocol)
        return self.moto_app(environ, start_response)


def make_app() -> EmulatorApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return EmulatorApp(DomainDispatcherApplication(create_backend_app))


def start(host: str, port_number: int, scale: float, durations: dict | None = None,
          seed: int = 0) -> Any:
    """Configure, install every package and start serving on a background thread.

    Returns the werkzeug server (``.shutdown()`` stops it). Used by :func:`serve` and by tests
    that want an in-process emulator.
    """
    prepare_environment(port_number)
    clock.configure(scale=scale, durations=durations)
    faults.seed(seed)
    enable_sfn_execution()
    install_packages()
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    server = make_server(host, port_number, make_app(), threaded=True,
                         request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="emulator-http", daemon=True)
    thread.start()
    return server


def serve(host: str, port_number: int, scale: float, durations: dict | None = None,
          seed: int = 0) -> None:
    """Run in the foreground until interrupted."""
    server = start(host, port_number, scale, durations, seed)
    stop = threading.Event()
    # SIGTERM (how tests and CI stop us) and Ctrl-C both end the loop below, then clean up.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"emulator: listening on http://{host}:{port_number} (time scale {scale})",
          file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.shutdown()
        shutdown_packages()
        # Skip interpreter finalization: tearing down moto's thousands of modules takes seconds.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
