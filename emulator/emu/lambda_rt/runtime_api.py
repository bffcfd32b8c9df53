"""A local implementation of the Lambda Runtime API, one server per sandbox process.

The bootstrap loops on ``GET /2018-06-01/runtime/invocation/next`` and answers with
``POST .../invocation/{id}/response`` or ``.../error``; ``POST .../init/error`` reports a failed
start. https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"


@dataclass
class Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    function_arn: str
    done: threading.Event = field(default_factory=threading.Event)
    payload: bytes = b""
    errored: bool = False


class RuntimeApi:
    """Hands invocations to one runtime process and collects its answers."""

    def __init__(self) -> None:
        self.pending: "queue.Queue[Invocation]" = queue.Queue()
        self.current: Invocation | None = None
        self.init_error: bytes | None = None
        self.init_failed = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._send(404, b'{"errorMessage":"not found"}')
                    return
                invocation = api.pending.get()
                api.current = invocation
                self._send(200, invocation.event, {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                    "Lambda-Runtime-Trace-Id":
                        f"Root=1-00000000-{invocation.request_id.replace('-', '')[:24]};Sampled=0",
                })

            def do_POST(self) -> None:
                body = self._body()
                if self.path == f"{PREFIX}/init/error":
                    api.init_error = body
                    api.init_failed.set()
                    self._send(202, b'{"status":"OK"}')
                    return
                parts = self.path[len(PREFIX):].strip("/").split("/")
                # invocation/{id}/response | invocation/{id}/error
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    invocation = api.current
                    if invocation is None or invocation.request_id != parts[1]:
                        self._send(400, b'{"errorMessage":"unknown request id"}')
                        return
                    invocation.payload = body
                    invocation.errored = parts[2] == "error"
                    if invocation.errored:
                        invocation.payload = _error_body(
                            body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
                    api.current = None
                    self._send(202, b'{"status":"OK"}')
                    invocation.done.set()
                    return
                self._send(404, b'{"errorMessage":"not found"}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.2}, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        # shutdown() blocks up to the poll interval: do it off the caller's thread.
        def stop() -> None:
            self.server.shutdown()
            self.server.server_close()

        threading.Thread(target=stop, daemon=True).start()


def _error_body(body: bytes, error_type_header: str | None) -> bytes:
    """Lambda's error shape: errorMessage, errorType, stackTrace."""
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(parsed, dict):
        parsed = {"errorMessage": str(parsed)}
    parsed.setdefault("errorType", error_type_header or "Unhandled")
    parsed.setdefault("errorMessage", "")
    parsed.setdefault("stackTrace", [])
    return json.dumps(parsed).encode()
