"""Emulated EC2 instances as SSM managed nodes: boot, user-data, registration, security groups.

moto keeps the instance (state, tags, user-data, instance profile); this module adds what a real
instance does on its own:

* **Boot**: an instance becomes reachable ``ec2.instance_boot`` nominal seconds after it is
  launched or started (moto marks it ``running`` at once). Stopping it takes it offline.
* **User-data** runs once, at the end of the first boot, in the instance's sandbox, like
  cloud-init: ``#!`` scripts run (as root) from ``/var/lib/cloud/instance/scripts/part-001``,
  output appended to ``/var/log/cloud-init-output.log``; recorded as kind ``user_data``.
* **SSM registration**: the SSM agent registers when the instance has booted and its instance
  profile's role allows ``ssm:UpdateInstanceInformation`` (e.g. ``AmazonSSMManagedInstanceCore``).
  Until then the instance is not a managed node and ``SendCommand`` answers ``InvalidInstanceId``.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from emu import clock, recorder

from . import sandbox

_lock = threading.Lock()
_nodes: dict[str, "Node"] = {}  # by instance id
_generation = 0  # bumped by reset(); background work from an older generation stops


@dataclass
class Node:
    instance: Any  # moto Instance
    account_id: str
    region: str
    online_at: float  # real time the current boot is due to complete (inf while stopped)
    online: bool = False  # booted: filesystem ready, agent running
    booted_once: bool = False
    user_data_done: bool = False
    registered: bool = False
    registered_at: float | None = None
    offline_since: float | None = None
    timer: threading.Timer | None = field(default=None, repr=False)


def generation() -> int:
    return _generation


def node(instance_id: str) -> Node | None:
    with _lock:
        return _nodes.get(instance_id)


def all_nodes() -> list[Node]:
    with _lock:
        return list(_nodes.values())


def state_name(n: Node) -> str:
    return n.instance._state.name


def is_online(n: Node) -> bool:
    return state_name(n) == "running" and n.online


def security_group_ids(instance: Any) -> list[str]:
    """Every security group on the instance (its groups and those of its network interfaces)."""
    ids: list[str] = []
    for group in list(getattr(instance, "security_groups", []) or []):
        gid = getattr(group, "id", group)
        if gid not in ids:
            ids.append(gid)
    for nic in getattr(instance, "nics", {}).values():
        for group in getattr(nic, "group_set", []) or []:
            gid = getattr(group, "id", group)
            if gid not in ids:
                ids.append(gid)
    return ids


def instance_role(n: Node) -> Any | None:
    """The IAM role of the instance's profile (moto Role), if any."""
    backend = n.instance.ec2_backend
    assoc = getattr(backend, "iam_instance_profile_associations", {}).get(n.instance.id)
    if assoc is None:
        return None
    roles = getattr(assoc.iam_instance_profile, "roles", []) or []
    return roles[0] if roles else None


def _policy_documents(role: Any) -> list[dict[str, Any]]:
    docs = []
    for text in (getattr(role, "policies", {}) or {}).values():
        docs.append(text)
    for policy in (getattr(role, "managed_policies", {}) or {}).values():
        versions = getattr(policy, "versions", []) or []
        default = next((v for v in versions if getattr(v, "is_default", False)), None)
        text = getattr(default, "document", None) or getattr(policy, "document", None)
        if text:
            docs.append(text)
    parsed = []
    for text in docs:
        if isinstance(text, dict):
            parsed.append(text)
            continue
        try:
            parsed.append(json.loads(unquote(text) if "%" in str(text) else text))
        except (TypeError, ValueError):
            continue
    return parsed


def _allows(document: dict[str, Any], action: str) -> bool:
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if any(fnmatch.fnmatch(action.lower(), a.lower()) for a in actions):
            return True
    return False


def can_register(n: Node) -> bool:
    """Whether the SSM agent can register: an instance profile whose role allows it."""
    role = instance_role(n)
    if role is None:
        return False
    return any(_allows(doc, "ssm:UpdateInstanceInformation") for doc in _policy_documents(role))


def is_managed(n: Node) -> bool:
    """A managed node as SSM sees it (registration sticks once made, as on AWS)."""
    if state_name(n) in ("shutting-down", "terminated"):
        return False
    if not n.registered and n.booted_once and is_online(n) and can_register(n):
        n.registered = True
        n.registered_at = clock.now()
    return n.registered


def identity(n: Node) -> sandbox.Identity:
    from emu import server

    role = instance_role(n)
    return sandbox.Identity(instance_id=n.instance.id, account_id=n.account_id,
                            region=n.region, endpoint=server.endpoint(),
                            role_name=getattr(role, "name", None))


def ensure_sandbox(n: Node) -> sandbox.Sandbox:
    box = sandbox.Sandbox(n.instance.id)
    box.create(identity(n))
    return box


def _user_data_text(instance: Any) -> str | None:
    raw = getattr(instance, "user_data", None)
    if raw is None:
        return None
    if isinstance(raw, list):  # older moto shapes
        raw = raw[0] if raw else None
        if raw is None:
            return None
    if hasattr(raw, "decode") and not isinstance(raw, (bytes, str)):
        return raw.decode()
    if isinstance(raw, bytes):
        raw = raw.decode()
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return str(raw)


def _boot_complete(instance_id: str, gen: int) -> None:
    n = node(instance_id)
    if n is None or gen != _generation or state_name(n) != "running":
        return
    first = not n.booted_once
    text = _user_data_text(n.instance) if first and not n.user_data_done else None
    # The filesystem is laid out lazily (first command or user-data): most instances other
    # packages create never run anything.
    box = ensure_sandbox(n) if text else None
    n.online_at = min(n.online_at, clock.now())
    n.online = True
    n.booted_once = True
    is_managed(n)
    if first:
        n.user_data_done = True
        if text and box is not None:
            _run_user_data(n, box, text)


def _run_user_data(n: Node, box: sandbox.Sandbox, text: str) -> None:
    """cloud-init's part handler for a shell script (other formats are recorded, not run)."""
    if not text.startswith("#!"):
        recorder.record("user_data", instance_id=n.instance.id, script=text, ran=False,
                        reason="not a #! script (cloud-config and MIME parts are not emulated)")
        return
    script = "/var/lib/cloud/instance/scripts/part-001"
    path = box.path(script)
    path.write_text(text)
    path.chmod(0o700)
    env = sandbox.base_environment(identity(n))
    result = sandbox.start(box, script, "/", env, timeout=None).wait()
    log = box.path("/var/log/cloud-init-output.log")
    with open(log, "a") as out:
        out.write(result.stdout)
        out.write(result.stderr)
    recorder.record("user_data", instance_id=n.instance.id, script=text, ran=True,
                    exit_code=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def _schedule_boot(n: Node) -> None:
    delay = clock.real_seconds(clock.nominal("ec2.instance_boot"))
    n.online = False
    n.online_at = clock.now() + delay
    if n.timer is not None:
        n.timer.cancel()
    timer = threading.Timer(delay, _boot_complete, args=(n.instance.id, _generation))
    timer.daemon = True
    n.timer = timer
    timer.start()


def track(instance: Any) -> None:
    """Called for every new moto instance: start its first boot."""
    backend = instance.ec2_backend
    n = Node(instance=instance, account_id=backend.account_id, region=backend.region_name,
             online_at=float("inf"))
    with _lock:
        _nodes[instance.id] = n
    _schedule_boot(n)


def on_start(instance: Any) -> None:
    n = node(instance.id)
    if n is None:
        track(instance)
    else:
        _schedule_boot(n)


def on_stop(instance: Any) -> None:
    n = node(instance.id)
    if n is None:
        return
    n.online = False
    n.online_at = float("inf")
    n.offline_since = clock.now()
    if n.timer is not None:
        n.timer.cancel()
    from . import ssm_run

    ssm_run.instance_went_offline(instance.id)


def install() -> None:
    from moto.ec2.models.instances import Instance

    if getattr(Instance, "_emu_client_patched", False):
        return
    original_init = Instance.__init__
    original_start = Instance.start
    original_stop = Instance.stop
    original_terminate = Instance.terminate

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        track(self)

    def start(self: Any) -> Any:
        previous = original_start(self)
        if previous.name != "running":
            on_start(self)
        return previous

    def stop(self: Any) -> Any:
        previous = original_stop(self)
        on_stop(self)
        return previous

    def terminate(self: Any) -> Any:
        previous = original_terminate(self)
        on_stop(self)
        return previous

    Instance.__init__ = __init__
    Instance.start = start
    Instance.stop = stop
    Instance.terminate = terminate
    Instance._emu_client_patched = True


def reset() -> None:
    global _generation
    with _lock:
        _generation += 1
        for n in _nodes.values():
            if n.timer is not None:
                n.timer.cancel()
        ids = list(_nodes)
        _nodes.clear()
    for instance_id in ids:
        sandbox.Sandbox(instance_id).destroy()
