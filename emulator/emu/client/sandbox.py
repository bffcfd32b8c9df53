"""The filesystem of an emulated EC2 instance, and running a script "on" it.

Each instance gets a directory ``<state dir>/instances/<instance id>/root`` holding its own
``/opt``, ``/etc``, ``/tmp``, ``/var``, ``/home`` and ``/usr/local/bin``. A script runs under
``unshare --mount`` (a private mount namespace; we run as root, no Docker needed) with those
directories bind-mounted over the real paths, so the literal absolute paths a real client uses
(``/opt/cloudhsm/bin/cloudhsm-cli``, ``/opt/cloudhsm/etc/customerCA.crt``, ``/tmp/x``) resolve
inside the instance and nothing leaks between instances or onto the host. Everything else
(``/usr``, ``/bin``, the Python the stand-ins run on) is the host's, read-through.

``/etc`` is a copy of the host's ``/etc`` taken when the sandbox is created (an instance boots
with a full ``/etc``; later writes stay in the instance).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
EMULATOR_DIR = HERE.parent.parent  # emulator/ (holds the emu package)
STANDIN_DIR = HERE / "bin"

# Stand-in executables (emu/client/bin/<name>) and where they live in the instance.
STANDINS = {
    "cloudhsm-cli": ["opt/cloudhsm/bin/cloudhsm-cli"],
    "configure-cli": ["opt/cloudhsm/bin/configure-cli"],
    "dnf": ["usr/local/bin/dnf", "usr/local/bin/yum"],
}

# Directories of the instance that are private to it (mounted over the host's).
PRIVATE_DIRS = ["opt", "etc", "home", "usr/local/bin", "var", "tmp"]

CONFIG_TEMPLATE = {
    "clusters": [{"type": "hsm1", "cluster": {
        "hsm_ca_file": "/opt/cloudhsm/etc/customerCA.crt", "servers": []}}],
    "logging": {"log_type": "file", "log_file": "/opt/cloudhsm/run/cloudhsm-cli.log",
                "log_level": "info", "log_interval": "daily"},
}

_lock = threading.Lock()
_create_lock = threading.Lock()
_state_dir: Path | None = None


def state_dir() -> Path:
    """The emulator's state directory: ``$EMU_STATE_DIR`` or a fresh temporary directory."""
    global _state_dir
    with _lock:
        if _state_dir is None:
            configured = os.environ.get("EMU_STATE_DIR")
            if configured:
                _state_dir = Path(configured)
                _state_dir.mkdir(parents=True, exist_ok=True)
            else:
                _state_dir = Path(tempfile.mkdtemp(prefix="emu-state-"))
        return _state_dir


def instances_dir() -> Path:
    return state_dir() / "instances"


def unshare_available() -> bool:
    """Whether private mount namespaces work here (checked once; the fallback is documented)."""
    global _unshare_ok
    if _unshare_ok is None:
        try:
            probe = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "true"],
                capture_output=True, timeout=10,
            )
            _unshare_ok = probe.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _unshare_ok = False
    return _unshare_ok


_unshare_ok: bool | None = None


@dataclass
class Identity:
    """What the instance knows about itself (IMDS stand-in), written to its /etc."""

    instance_id: str
    account_id: str
    region: str
    endpoint: str
    role_name: str | None


class Sandbox:
    def __init__(self, instance_id: str):
        self.instance_id = instance_id
        self.root = instances_dir() / instance_id / "root"

    def path(self, absolute: str) -> Path:
        """Host path of an absolute path inside the instance."""
        return self.root / absolute.lstrip("/")

    def exists(self) -> bool:
        return (self.root / "etc").is_dir()

    def create(self, identity: Identity) -> None:
        """Lay out the instance's filesystem (idempotent; boot and commands may race here)."""
        with _create_lock:
            self._create(identity)

    def _create(self, identity: Identity) -> None:
        if not (self.root / "etc").is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
            staging = self.root / ".etc-staging"
            shutil.rmtree(staging, ignore_errors=True)
            # cp -a: fast and outside the GIL; unreadable special files are skipped.
            subprocess.run(["cp", "-a", "/etc/.", str(staging)], capture_output=True)
            staging.rename(self.root / "etc")
        for sub in PRIVATE_DIRS:
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").chmod(0o1777)
        for sub in ["opt/cloudhsm/bin", "opt/cloudhsm/etc", "var/lib/amazon/ssm", "var/log",
                    "var/tmp", "var/lib/cloud/instance/scripts", "home/ssm-user"]:
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._install_standins()
        self._install_aws_cli()
        cfg = self.root / "opt/cloudhsm/etc/cloudhsm-cli.cfg"
        if not cfg.exists():  # the package's template: no servers until configure-cli runs
            cfg.write_text(json.dumps(CONFIG_TEMPLATE, indent=2) + "\n")
        meta = self.root / "etc/emu-instance.json"
        meta.write_text(json.dumps(identity.__dict__, indent=1) + "\n")

    def _install_standins(self) -> None:
        """Copy the stand-in executables into the instance, pointed at our Python."""
        for name, targets in STANDINS.items():
            text = (STANDIN_DIR / name).read_text()
            body = text.split("\n", 1)[1] if text.startswith("#!") else text
            for target in targets:
                path = self.root / target
                path.write_text(f"#!{sys.executable}\n{body}")
                path.chmod(0o755)

    def _install_aws_cli(self) -> None:
        """``aws`` on the instance: the pinned AWS CLI from the emulator's environment."""
        aws = Path(sys.executable).parent / "aws"
        target = self.root / "usr/local/bin/aws"
        target.write_text(f"#!/bin/sh\nexec {sys.executable} {aws} \"$@\"\n")
        target.chmod(0o755)

    def destroy(self) -> None:
        shutil.rmtree(self.root.parent, ignore_errors=True)


# The mount setup runs as the first thing inside the new mount namespace. Arguments: the sandbox
# root, the working directory, the script path (inside the instance), then "target" pairs.
# Then the number of host paths to keep and those paths, then the mount targets. A kept path is
# bound into the instance's own directory first, so the recursive bind carries it along.
_SETUP = r"""
set -e
root=$1; cwd=$2; script=$3; nkeep=$4; shift 4
for ((i = 0; i < nkeep; i++)); do
  mkdir -p "$root/$1"
  mount --bind "/$1" "$root/$1"
  shift
done
for target in "$@"; do
  mount --rbind "$root/$target" "/$target"
done
cd "$cwd"
exec /bin/bash "$script"
"""


def _host_paths_to_keep() -> list[str]:
    """Host directories the stand-ins run from (the emulator's Python environment and package)
    that lie under a directory the instance makes private, e.g. a checkout under /tmp: without
    them the stand-ins' interpreter would not exist inside the instance."""
    wanted = {Path(sys.prefix).resolve(), EMULATOR_DIR.resolve()}
    keep = []
    for p in sorted(wanted):
        rel = str(p).lstrip("/")
        if any(rel == d or rel.startswith(d + "/") for d in PRIVATE_DIRS):
            keep.append(rel)
    return keep


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    killed: bool = False


_live_lock = threading.Lock()
_live: dict[str, set["Running"]] = {}  # instance id -> scripts running on it


class Running:
    """A script running in an instance; :meth:`wait` collects its result."""

    def __init__(self, proc: subprocess.Popen, timeout: float | None, instance_id: str):
        self.proc = proc
        self.timeout = timeout
        self.instance_id = instance_id
        self._killed = False
        with _live_lock:
            _live.setdefault(instance_id, set()).add(self)

    def kill(self) -> None:
        self._killed = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self) -> Result:
        timed_out = False
        try:
            out, err = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
            out, err = self.proc.communicate()
        code = self.proc.returncode
        with _live_lock:
            _live.get(self.instance_id, set()).discard(self)
        return Result(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                      timed_out=timed_out, killed=self._killed and not timed_out)


def _mount_order(root: Path) -> list[str]:
    """Mount targets so that a target holding the sandbox root itself is mounted last."""
    root_s = str(root)

    def holds_root(target: str) -> bool:
        return root_s == "/" + target or root_s.startswith("/" + target + "/")

    return sorted(PRIVATE_DIRS, key=holds_root)


def start(sandbox: Sandbox, script_path: str, cwd: str, env: dict[str, str],
          timeout: float | None) -> Running:
    """Start ``bash <script_path>`` (a path inside the instance) in the instance's namespace."""
    if unshare_available():
        keep = _host_paths_to_keep()
        argv = ["unshare", "--mount", "--propagation", "private", "/bin/bash", "-c", _SETUP,
                "emu-setup", str(sandbox.root), cwd, script_path, str(len(keep)), *keep,
                *_mount_order(sandbox.root)]
    else:
        # Fallback without mount namespaces: run from the sandbox paths directly. Absolute
        # /opt/cloudhsm paths in scripts will not resolve; documented in the README.
        argv = ["/bin/bash", str(sandbox.path(script_path))]
        cwd = str(sandbox.path(cwd))
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            cwd="/" if unshare_available() else cwd)
    return Running(proc, timeout, sandbox.instance_id)


def kill_instance(instance_id: str) -> None:
    """Kill every script running on the instance (it stopped or was terminated)."""
    with _live_lock:
        victims = list(_live.get(instance_id, ()))
    for running in victims:
        running.kill()


def kill_all() -> None:
    with _live_lock:
        victims = [r for runs in _live.values() for r in runs]
    for running in victims:
        running.kill()


def remove_state_dir() -> None:
    """On exit: delete the state directory if we created it (not a configured one)."""
    global _state_dir
    with _lock:
        if _state_dir is not None and not os.environ.get("EMU_STATE_DIR"):
            shutil.rmtree(_state_dir, ignore_errors=True)
            _state_dir = None


def base_environment(identity: Identity) -> dict[str, str]:
    """The environment the SSM agent / cloud-init give a script, plus the instance's AWS
    credentials and region (what IMDS would provide to the AWS CLI on a real instance)."""
    role = identity.role_name or "none"
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "AWS_ENDPOINT_URL": identity.endpoint,
        "AWS_DEFAULT_REGION": identity.region,
        "AWS_REGION": identity.region,
        # Dummy keys naming the role (the emulator does not enforce IAM).
        "AWS_ACCESS_KEY_ID": "ASIAEMU" + "".join(c for c in role.upper() if c.isalnum())[:13],
        "AWS_SECRET_ACCESS_KEY": "emulated-instance-role-secret",
        "AWS_SESSION_TOKEN": f"emulated-session-{identity.instance_id}",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
