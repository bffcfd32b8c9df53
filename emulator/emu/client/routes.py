"""``/_emu/client/...``: what the stand-in executables call, and views for tests.

* ``POST /_emu/client/cloudhsm-cli`` — body ``{instance_id, argv, role, pin, servers, ca_pem,
  stdin_password?}`` from the ``cloudhsm-cli`` stand-in; answers ``{exit_code, stdout, stderr}``,
  or ``{prompt: true, confirm: bool}`` when the command must read a password from stdin first.
  The caller's security groups come from the instance (the emulator knows them), never from the
  request. The body holds passwords: it is never recorded; the record (kind ``log``, source
  ``cloudhsm-cli``) has the arguments with ``--password`` values masked.
* ``GET /_emu/client/instances`` — every emulated instance: state, online, SSM registration,
  security groups, sandbox root.
* ``GET /_emu/client/file?instance_id=i-...&path=/abs/path`` — a file of an instance's
  filesystem (``{"exists": bool, "content": str}``), for tests.
"""

from __future__ import annotations

from typing import Any

from emu import clock, control, recorder

from . import instances, sandbox
from .cli import cloudhsm_cli


def _node_json(n: instances.Node) -> dict[str, Any]:
    return {
        "instance_id": n.instance.id,
        "account_id": n.account_id,
        "region": n.region,
        "state": instances.state_name(n),
        "online": instances.is_online(n),
        "booted_once": n.booted_once,
        "ssm_managed": instances.is_managed(n),
        "security_groups": instances.security_group_ids(n.instance),
        "sandbox_root": str(sandbox.Sandbox(n.instance.id).root),
        "seconds_until_online": max(0.0, n.online_at - clock.now())
        if n.online_at != float("inf") else None,
    }


@control.route("POST", "client/cloudhsm-cli")
def _cloudhsm_cli(body: dict, query: dict) -> tuple[int, Any]:
    n = instances.node(str(body.get("instance_id") or ""))
    if n is None:
        return 404, {"error": "unknown instance"}
    argv = [str(a) for a in body.get("argv") or []]
    prompt, confirm = cloudhsm_cli.needs_password_prompt(argv)
    if prompt and body.get("stdin_password") is None:
        return 200, {"prompt": True, "confirm": confirm}
    outcome = cloudhsm_cli.run(
        account=n.account_id, region=n.region,
        security_groups=instances.security_group_ids(n.instance), argv=argv,
        role_env=body.get("role"), pin_env=body.get("pin"), servers=body.get("servers") or [],
        ca_pem=body.get("ca_pem"), stdin_password=body.get("stdin_password"))
    recorder.record("log", source="cloudhsm-cli", instance_id=n.instance.id,
                    argv=cloudhsm_cli.redacted(argv), exit_code=outcome.exit_code,
                    stdout=outcome.stdout, stderr=outcome.stderr)
    return 200, {"exit_code": outcome.exit_code, "stdout": outcome.stdout,
                 "stderr": outcome.stderr}


@control.route("GET", "client/instances")
def _instances(body: dict, query: dict) -> tuple[int, Any]:
    return 200, {"instances": [_node_json(n) for n in instances.all_nodes()]}


@control.route("GET", "client/file")
def _file(body: dict, query: dict) -> tuple[int, Any]:
    instance_id, path = query.get("instance_id", ""), query.get("path", "")
    if instances.node(instance_id) is None or not path.startswith("/"):
        return 404, {"error": "unknown instance or path not absolute"}
    box = sandbox.Sandbox(instance_id)
    target = box.path(path).resolve()
    if not str(target).startswith(str(box.root.resolve())):
        return 400, {"error": "path leaves the instance"}
    if not target.is_file():
        return 200, {"exists": False, "content": None}
    return 200, {"exists": True, "content": target.read_text(errors="replace")}
