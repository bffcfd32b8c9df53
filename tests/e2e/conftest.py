"""End-to-end fixtures: one emulator per session, a fresh VPC per test, `synth deploy` as a user runs it.

The emulator is started exactly as `emulator/serve --port P --time-scale S` starts it (the module
`emu` in emulator/.venv), once per session, on a free port. `POST /_emu/reset` gives every test a
clean account. `E2E_TIME_SCALE` (default 0.01) scales every emulated duration; `E2E_ENDPOINT`
points the suite at an emulator that is already running; `E2E_SYNTH` at another synth binary.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_support import LOG_DIR_DEFAULT, REPO, Emulator, Network, Stack, make_network  # noqa: E402

TIME_SCALE = float(os.environ.get("E2E_TIME_SCALE", "0.01"))
LOG_DIR = LOG_DIR_DEFAULT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(endpoint: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited early:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{endpoint}/_emu/health", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"emulator did not answer /_emu/health:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    if os.environ.get("E2E_ENDPOINT"):
        yield Emulator(os.environ["E2E_ENDPOINT"], None)
        return
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log_path = LOG_DIR / f"emulator-{port}.log"
    python = REPO / "emulator" / ".venv" / "bin" / "python"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(python), "-m", "emu", "--port", str(port), "--time-scale", str(TIME_SCALE)],
            cwd=REPO / "emulator", stdout=log, stderr=subprocess.STDOUT)
        endpoint = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(endpoint, process, log_path)
            sys.stderr.write(f"\ne2e: emulator {endpoint} (time scale {TIME_SCALE}), log {log_path}\n")
            yield Emulator(endpoint, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    """The emulator with a clean account: reset before the test, no fault rules left."""
    emulator.reset()
    return emulator


@pytest.fixture(scope="module")
def module_emu(emulator: Emulator) -> Emulator:
    """For modules whose tests share one stack: reset once, at the start of the module."""
    emulator.reset()
    return emulator


@pytest.fixture
def network(emu: Emulator) -> Network:
    """A VPC with HSM subnets in us-east-1a/b/c and a client subnet (in us-east-1a)."""
    return make_network(emu)


@pytest.fixture
def stack_factory(emu: Emulator, request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Stack]:
    def make(name: str | None = None, app: str | None = None) -> Stack:
        base = name or request.node.name
        stack_name = "e2e-" + "".join(c if c.isalnum() else "-" for c in base).strip("-")[:40]
        return Stack(emu, stack_name, LOG_DIR, app=app)

    return make


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"e2e: time scale {TIME_SCALE}, synth {os.environ.get('E2E_SYNTH', REPO / 'target/debug/synth')}"]


ORDER = ["test_lifecycle.py", "test_invalid_inputs.py", "test_leaks.py", "test_faults.py",
         "test_key_store.py", "test_key_store_faults.py", "test_restore.py"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the basic lifecycle first: when it fails, everything after it explains less."""
    rank = {name: i for i, name in enumerate(ORDER)}
    items.sort(key=lambda item: rank.get(item.path.name, len(ORDER)))
