"""SSM Run Command on emulated instances: SendCommand, GetCommandInvocation,
ListCommandInvocations, ListCommands, and DescribeInstanceInformation (managed nodes).

moto 5.2.5 records a command and reports every invocation ``Success`` at once without running
anything, has no ``ListCommandInvocations`` and no ``AWS-RunShellScript``. We replace its
``send_command`` / ``list_commands`` / ``get_command_invocation`` (backend and response) and add
``list_command_invocations``; commands still live in the SSM backend (``_commands``), so
moto's reset clears them.

Life of an invocation (one per target instance), following the SSM documentation:

* ``Pending`` until delivered: delivery takes ``ssm.command`` nominal seconds and needs the
  instance online (running and booted). A stopped instance runs nothing: the invocation waits;
  if the instance is not back before the command's ``TimeoutSeconds`` (nominal, default 3600)
  it ends ``TimedOut`` / ``DeliveryTimedOut``. An instance terminated meanwhile: ``Failed`` /
  ``Undeliverable``.
* ``InProgress`` while the steps run, one after another, each with bash in the instance's sandbox.
  A step's ``timeoutSeconds`` (``executionTimeout`` of ``AWS-RunShellScript``) is in *real*
  seconds, not scaled: the script's work is real work. Exceeded: ``TimedOut`` /
  ``ExecutionTimedOut``, exit code -1.
* ``Success`` (exit 0) or ``Failed`` (non-zero; later steps do not run — reported ``Cancelled``).

Instances that are not managed nodes (unknown, terminated, never booted, or without an instance
profile allowing SSM) are refused by ``SendCommand`` with ``InvalidInstanceId``, as on AWS.
Outcome faults of kind ``client_command`` (match ``instance_id`` / ``document``) make an
invocation fail with ``exit_code`` / ``stdout`` / ``stderr`` instead of running its script.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import JsonRESTError

from emu import clock, faults, recorder

from . import documents, instances, sandbox

STDOUT_LIMIT = 24000  # GetCommandInvocation StandardOutputContent / StandardErrorContent
PLUGIN_OUTPUT_LIMIT = 2500  # ListCommandInvocations CommandPlugins[].Output
VISIBILITY_DELAY = 0.2  # fraction of ssm.command before invocations can be read (as on AWS,
# GetCommandInvocation right after SendCommand may answer InvocationDoesNotExist)



def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(ts: datetime.datetime | None) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z" if ts else ""


def _elapsed(start: datetime.datetime | None, end: datetime.datetime | None) -> str:
    if not start:
        return ""
    seconds = ((end or _utcnow()) - start).total_seconds()
    return f"PT{seconds:.3f}S"


@dataclass
class PluginRun:
    name: str
    status: str = "Pending"
    details: str = "Pending"
    code: int = -1
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None
    stdout: str = ""
    stderr: str = ""

    def output(self) -> str:
        text = self.stdout
        if self.stderr:
            text += "\n----------ERROR-------\n" + self.stderr
        return text[:PLUGIN_OUTPUT_LIMIT]


@dataclass
class Invocation:
    command: "EmuCommand"
    instance_id: str
    instance_name: str
    plugins: list[PluginRun]
    status: str = "Pending"
    details: str = "Pending"
    code: int = -1
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None
    visible_at: float = 0.0

    @property
    def terminal(self) -> bool:
        return self.status in ("Success", "Failed", "TimedOut", "Cancelled")

    def stdout(self) -> str:
        return "".join(p.stdout for p in self.plugins)

    def stderr(self) -> str:
        return "".join(p.stderr for p in self.plugins)

    def finish(self, status: str, details: str, code: int) -> None:
        self.status, self.details, self.code = status, details, code
        self.end = _utcnow()
        for plugin in self.plugins:
            if plugin.status in ("Pending", "InProgress"):
                plugin.status = "Cancelled" if status != "TimedOut" else "TimedOut"
                plugin.details = details if status == "TimedOut" else "Cancelled"
                plugin.end = self.end

    def summary(self, details: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "CommandId": self.command.command_id,
            "InstanceId": self.instance_id,
            "InstanceName": self.instance_name,
            "Comment": self.command.comment,
            "DocumentName": self.command.document_name,
            "DocumentVersion": self.command.document_version,
            "RequestedDateTime": self.command.requested_date_time,
            "Status": self.status,
            "StatusDetails": self.details,
            "TraceOutput": "",
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "CommandPlugins": [],
            "ServiceRole": self.command.service_role_arn,
            "NotificationConfig": self.command.notification_config,
            "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
        }
        if details:
            out["CommandPlugins"] = [{
                "Name": p.name, "Status": p.status, "StatusDetails": p.details,
                "ResponseCode": p.code,
                **({"ResponseStartDateTime": p.start} if p.start else {}),
                **({"ResponseFinishDateTime": p.end} if p.end else {}),
                "Output": p.output(), "StandardOutputUrl": "", "StandardErrorUrl": "",
                "OutputS3Region": self.command.output_s3_region,
                "OutputS3BucketName": self.command.output_s3_bucket_name,
                "OutputS3KeyPrefix": self.command.output_s3_key_prefix,
            } for p in self.plugins]
        return out


class EmuCommand:
    """Stands in for moto's ``Command`` in the SSM backend's ``_commands`` list."""

    def __init__(self, *, account_id: str, region: str, document_name: str,
                 document_version: str, parameters: dict[str, Any], steps: list[documents.Step],
                 instance_ids: list[str], targets: list[dict[str, Any]], comment: str,
                 timeout_seconds: int, max_concurrency: str, max_errors: str,
                 notification_config: dict[str, Any] | None, output_s3_bucket_name: str,
                 output_s3_key_prefix: str, output_s3_region: str, service_role_arn: str):
        self.command_id = str(uuid.uuid4())
        self.account_id = account_id
        self.region = region
        self.document_name = document_name
        self.document_version = document_version
        self.parameters = parameters  # resolved, defaults included
        self.given_parameters: dict[str, list[str]] = {}  # as sent (what AWS echoes back)
        self.steps = steps
        self.instance_ids = instance_ids
        self.targets = targets
        self.comment = comment
        self.timeout_seconds = timeout_seconds
        self.max_concurrency = max_concurrency
        self.max_errors = max_errors
        self.notification_config = notification_config or {
            "NotificationArn": "", "NotificationEvents": [], "NotificationType": ""}
        self.output_s3_bucket_name = output_s3_bucket_name
        self.output_s3_key_prefix = output_s3_key_prefix
        self.output_s3_region = output_s3_region
        self.service_role_arn = service_role_arn
        self.requested_date_time = _utcnow()
        self.expires_after = self.requested_date_time + datetime.timedelta(seconds=timeout_seconds)
        self.sent_at = clock.now()
        self.invocations: list[Invocation] = []

    # Aggregate status of the command over its invocations (ListCommands).
    def status(self) -> tuple[str, str]:
        invs = self.invocations
        if not invs:
            return "Success", "Success"
        if any(i.status == "InProgress" for i in invs) or (
                any(i.terminal for i in invs) and not all(i.terminal for i in invs)):
            return "InProgress", "InProgress"
        if any(i.status == "Pending" for i in invs):
            return "Pending", "Pending"
        counted = [i for i in invs if i.details != "Undeliverable"]
        if all(i.status == "Success" for i in counted):
            return "Success", "Success"
        if any(i.status == "Failed" for i in counted):
            return "Failed", "Failed"
        if any(i.details == "DeliveryTimedOut" for i in counted):
            return "TimedOut", "Delivery Timed Out"
        if any(i.status == "TimedOut" for i in counted):
            return "TimedOut", "Execution Timed Out"
        return "Failed", "Failed"

    def response_object(self) -> dict[str, Any]:
        status, details = self.status()
        invs = self.invocations
        return {
            "CommandId": self.command_id,
            "DocumentName": self.document_name,
            "DocumentVersion": self.document_version,
            "Comment": self.comment,
            "ExpiresAfter": self.expires_after,
            "Parameters": self.given_parameters,
            "InstanceIds": self.instance_ids,
            "Targets": self.targets,
            "RequestedDateTime": self.requested_date_time,
            "Status": status,
            "StatusDetails": details,
            "OutputS3Region": self.output_s3_region,
            "OutputS3BucketName": self.output_s3_bucket_name,
            "OutputS3KeyPrefix": self.output_s3_key_prefix,
            "MaxConcurrency": self.max_concurrency,
            "MaxErrors": self.max_errors,
            "TargetCount": len(invs),
            "CompletedCount": sum(1 for i in invs if i.terminal),
            "ErrorCount": sum(1 for i in invs if i.status in ("Failed", "TimedOut")
                              and i.details not in ("Undeliverable", "DeliveryTimedOut")),
            "DeliveryTimedOutCount": sum(1 for i in invs if i.details == "DeliveryTimedOut"),
            "ServiceRole": self.service_role_arn,
            "NotificationConfig": self.notification_config,
            "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
            "TimeoutSeconds": self.timeout_seconds,
        }

    def invocation(self, instance_id: str) -> Invocation | None:
        return next((i for i in self.invocations if i.instance_id == instance_id), None)


# ---------------------------------------------------------------------------------------------
# Targets


def _invalid_instance(ids: list[str], account_id: str) -> JsonRESTError:
    listed = ", ".join(ids)
    return JsonRESTError("InvalidInstanceId",
                         f"Instances [[{listed}]] not in a valid state for account {account_id}")


def _managed_node(instance_id: str, account_id: str, region: str) -> instances.Node | None:
    n = instances.node(instance_id)
    if n is None or n.account_id != account_id or n.region != region:
        return None
    return n if instances.is_managed(n) else None


def _resolve_targets(ssm_backend: Any, targets: list[dict[str, Any]]) -> list[str]:
    """Instance ids for ``Targets`` (``InstanceIds``, ``tag:<key>``, ``tag-key``); nodes that
    are not managed are left out, as on AWS."""
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[ssm_backend.account_id][ssm_backend.region_name]
    filters: dict[str, list[str]] = {}
    explicit: list[str] | None = None
    for target in targets:
        key, values = target.get("Key", ""), list(target.get("Values", []))
        if key == "InstanceIds":
            explicit = values
        elif key.startswith("tag:") or key == "tag-key":
            filters[key] = values
        else:
            raise documents.invalid_parameters(f"Target key {key} is not supported.")
    found: list[str] = []
    if filters:
        for reservation in ec2.all_reservations(filters=filters):
            found.extend(i.id for i in reservation.instances)
    if explicit is not None:
        found = [i for i in (found if filters else explicit) if i in explicit]
    return [i for i in dict.fromkeys(found)
            if _managed_node(i, ssm_backend.account_id, ssm_backend.region_name)]


# ---------------------------------------------------------------------------------------------
# Backend operations (bound onto moto's SimpleSystemManagerBackend by install())


def send_command(backend: Any, *, document_name: str | None, document_version: str | None,
                 instance_ids: list[str], targets: list[dict[str, Any]],
                 parameters: dict[str, Any], timeout_seconds: int | None, comment: str,
                 max_concurrency: str, max_errors: str, notification_config: Any,
                 output_s3_bucket_name: str, output_s3_key_prefix: str, output_s3_region: str,
                 service_role_arn: str) -> EmuCommand:
    if not document_name:
        raise JsonRESTError("ValidationException", "DocumentName is required.")
    if instance_ids and targets:
        raise documents.invalid_parameters("Specify either InstanceIds or Targets, not both.")
    if not instance_ids and not targets:
        raise documents.invalid_parameters("Specify InstanceIds or Targets.")
    timeout = int(timeout_seconds) if timeout_seconds else 3600
    if timeout < 30 or timeout > 2592000:
        raise JsonRESTError("ValidationException",
                            "TimeoutSeconds must be between 30 and 2592000.")
    doc = documents.load(backend, document_name, document_version)
    values = documents.resolve_parameters(doc.content, parameters)

    def ssm_lookup(name: str) -> str:
        try:
            return backend.get_parameter(name).value
        except Exception:
            raise documents.invalid_parameters(f"SSM parameter {name} cannot be resolved.")

    steps = documents.render(doc.content, values, ssm_lookup)

    if instance_ids:
        if len(set(instance_ids)) != len(instance_ids):
            raise JsonRESTError("DuplicateInstanceId", "Duplicate instance ids are not allowed.")
        bad = [i for i in instance_ids
               if _managed_node(i, backend.account_id, backend.region_name) is None]
        if bad:
            raise _invalid_instance(bad, backend.account_id)
        chosen = list(instance_ids)
    else:
        chosen = _resolve_targets(backend, targets)

    command = EmuCommand(
        account_id=backend.account_id, region=backend.region_name, document_name=document_name,
        document_version=doc.version, parameters=values, steps=steps,
        instance_ids=list(instance_ids), targets=list(targets or []), comment=comment or "",
        timeout_seconds=timeout, max_concurrency=max_concurrency or "50",
        max_errors=max_errors or "0", notification_config=notification_config,
        output_s3_bucket_name=output_s3_bucket_name or "",
        output_s3_key_prefix=output_s3_key_prefix or "",
        output_s3_region=output_s3_region or "", service_role_arn=service_role_arn or "")
    visible_at = command.sent_at + clock.real_seconds(
        VISIBILITY_DELAY * clock.nominal("ssm.command"))
    for instance_id in chosen:
        n = instances.node(instance_id)
        name = ""
        if n is not None:
            name = next((t["value"] for t in n.instance.get_tags() if t["key"] == "Name"), "")
        command.invocations.append(Invocation(
            command=command, instance_id=instance_id, instance_name=name,
            plugins=[PluginRun(step.name) for step in steps], visible_at=visible_at))
    command.given_parameters = {k: [str(x) for x in (v if isinstance(v, list) else [v])]
                                for k, v in (parameters or {}).items()}
    backend._commands.append(command)
    recorder.record("ssm_command", phase="sent", command_id=command.command_id,
                    document=document_name, document_version=doc.version,
                    parameters=command.given_parameters,
                    instance_ids=chosen, script="\n".join(s.script for s in steps))
    for invocation in command.invocations:
        threading.Thread(target=_deliver_and_run, args=(invocation, instances.generation()),
                         name=f"ssm-{command.command_id[:8]}-{invocation.instance_id}",
                         daemon=True).start()
    return command


def get_command_invocation(backend: Any, command_id: str, instance_id: str,
                           plugin_name: str | None) -> dict[str, Any]:
    command = _find(backend, command_id)
    invocation = command.invocation(instance_id) if command else None
    if invocation is None or clock.now() < invocation.visible_at:
        raise JsonRESTError("InvocationDoesNotExist",
                            "An error occurred (InvocationDoesNotExist) when calling the "
                            "GetCommandInvocation operation")
    if plugin_name:
        plugin = next((p for p in invocation.plugins if p.name == plugin_name), None)
        if plugin is None:
            raise JsonRESTError("InvalidPluginName", f"Plugin {plugin_name} does not exist.")
    elif len(invocation.plugins) > 1:
        raise JsonRESTError("InvalidPluginName",
                            "The document has more than one step: specify PluginName.")
    else:
        plugin = invocation.plugins[0]
    status, details, code = plugin.status, plugin.details, plugin.code
    if all(p.start is None for p in invocation.plugins):
        # Nothing ran yet (or ever: delivery timed out, undeliverable): the invocation's status.
        status, details, code = invocation.status, invocation.details, invocation.code
    return {
        "CommandId": command_id,
        "InstanceId": instance_id,
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": command.document_version,
        "PluginName": plugin.name,
        "ResponseCode": code,
        "ExecutionStartDateTime": _iso(plugin.start),
        "ExecutionElapsedTime": _elapsed(plugin.start, plugin.end),
        "ExecutionEndDateTime": _iso(plugin.end),
        "Status": status,
        "StatusDetails": details,
        "StandardOutputContent": plugin.stdout[:STDOUT_LIMIT],
        "StandardOutputUrl": "",
        "StandardErrorContent": plugin.stderr[:STDOUT_LIMIT],
        "StandardErrorUrl": "",
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
    }


_STATUS_FILTER = {
    "DeliveryTimedOut": lambda i: i.details == "DeliveryTimedOut",
    "ExecutionTimedOut": lambda i: i.details == "ExecutionTimedOut",
    "Undeliverable": lambda i: i.details == "Undeliverable",
}


def list_command_invocations(backend: Any, command_id: str | None, instance_id: str | None,
                             filters: list[dict[str, str]], details: bool, max_results: int,
                             next_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
    commands = list(backend._commands)
    if command_id:
        command = _find(backend, command_id)
        if command is None:
            raise JsonRESTError("InvalidCommandId", "Invalid command id.")
        commands = [command]
    found: list[Invocation] = []
    for command in commands:
        if not isinstance(command, EmuCommand):
            continue
        for inv in command.invocations:
            if instance_id and inv.instance_id != instance_id:
                continue
            if clock.now() < inv.visible_at:
                continue
            found.append(inv)
    for flt in filters or []:
        key, value = flt.get("key") or flt.get("Key"), flt.get("value") or flt.get("Value")
        if key == "Status":
            test = _STATUS_FILTER.get(value, lambda i, v=value: i.status == v)
            found = [i for i in found if test(i)]
        elif key == "DocumentName":
            found = [i for i in found if i.command.document_name == value]
        elif key in ("InvokedAfter", "InvokedBefore"):
            when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            after = key == "InvokedAfter"
            found = [i for i in found
                     if (i.command.requested_date_time >= when) == after]
        else:
            raise JsonRESTError("InvalidFilterKey", f"Filter key {key} is not valid here.")
    start = 0
    if next_token:
        try:
            start = int(next_token)
        except ValueError:
            raise JsonRESTError("InvalidNextToken", "The token is not valid.")
    page = found[start:start + max_results]
    token = str(start + max_results) if start + max_results < len(found) else None
    return [i.summary(details) for i in page], token


def describe_instance_information(backend: Any, filters: list[dict[str, Any]],
                                  max_results: int, next_token: str | None
                                  ) -> tuple[list[dict[str, Any]], str | None]:
    """Managed nodes of the account and region (registered, not terminated)."""
    nodes = [n for n in instances.all_nodes()
             if n.account_id == backend.account_id and n.region == backend.region_name
             and instances.is_managed(n)]
    for flt in filters:
        key = flt.get("Key") or flt.get("key")
        values = [str(v) for v in (flt.get("Values") or flt.get("valueSet") or [])]
        if key == "InstanceIds":
            nodes = [n for n in nodes if n.instance.id in values]
        elif key == "PingStatus":
            nodes = [n for n in nodes if _ping(n) in values]
        elif key in ("ResourceType",):
            nodes = [n for n in nodes if "EC2Instance" in values]
        elif key in ("PlatformTypes",):
            nodes = [n for n in nodes if "Linux" in values]
        elif key and key.startswith("tag:"):
            nodes = [n for n in nodes if any(t["key"] == key[4:] and t["value"] in values
                                             for t in n.instance.get_tags())]
        else:
            raise JsonRESTError("InvalidFilterKey", f"Filter key {key} is not supported.")
    start = int(next_token) if next_token and next_token.isdigit() else 0
    page = nodes[start:start + max_results]
    token = str(start + max_results) if start + max_results < len(nodes) else None
    return [_information(n) for n in page], token


def _ping(n: instances.Node) -> str:
    return "Online" if instances.is_online(n) else "ConnectionLost"


def _information(n: instances.Node) -> dict[str, Any]:
    role = instances.instance_role(n)
    ip = getattr(n.instance, "private_ip", None) or ""
    now = clock.now()
    last_ping = now if instances.is_online(n) else (n.offline_since or now)
    return {
        "InstanceId": n.instance.id,
        "PingStatus": _ping(n),
        "LastPingDateTime": datetime.datetime.fromtimestamp(last_ping, datetime.timezone.utc),
        "AgentVersion": "3.3.0.0",
        "IsLatestVersion": True,
        "PlatformType": "Linux",
        "PlatformName": "Amazon Linux",
        "PlatformVersion": "2023",
        "IamRole": getattr(role, "name", ""),
        "RegistrationDate": datetime.datetime.fromtimestamp(n.registered_at or now,
                                                            datetime.timezone.utc),
        "ResourceType": "EC2Instance",
        "IPAddress": ip,
        "ComputerName": f"ip-{ip.replace('.', '-')}.ec2.internal" if ip else n.instance.id,
        "SourceId": n.instance.id,
        "SourceType": "AWS::EC2::Instance",
    }


def _find(backend: Any, command_id: str) -> EmuCommand | None:
    return next((c for c in backend._commands
                 if isinstance(c, EmuCommand) and c.command_id == command_id), None)


# ---------------------------------------------------------------------------------------------
# Execution


def _deliver_and_run(inv: Invocation, gen: int) -> None:
    command = inv.command
    deliver_at = command.sent_at + clock.real_seconds(clock.nominal("ssm.command"))
    give_up_at = command.sent_at + clock.real_seconds(command.timeout_seconds)
    while True:
        if gen != instances.generation():
            return
        n = instances.node(inv.instance_id)
        state = instances.state_name(n) if n else "terminated"
        now = clock.now()
        if state in ("shutting-down", "terminated"):
            inv.finish("Failed", "Undeliverable", -1)
            _record_done(inv)
            return
        if now >= give_up_at:
            inv.finish("TimedOut", "DeliveryTimedOut", -1)
            _record_done(inv)
            return
        if now >= deliver_at and instances.is_online(n):
            break
        time.sleep(min(0.05, max(0.005, min(deliver_at, give_up_at) - now)))
    inv.status, inv.details = "InProgress", "InProgress"
    inv.start = _utcnow()
    try:
        _run_steps(inv, n)
    except Exception as err:  # an emulator bug must not leave the invocation hanging
        inv.plugins[0].stderr += f"emulator error: {type(err).__name__}: {err}\n"
        inv.finish("Failed", "Failed", -1)
    _record_done(inv)


def _run_steps(inv: Invocation, n: instances.Node) -> None:
    command = inv.command
    fault = faults.outcome("client_command", instance_id=inv.instance_id,
                           document=command.document_name)
    box = instances.ensure_sandbox(n)
    env = sandbox.base_environment(instances.identity(n))
    orchestration = f"/var/lib/amazon/ssm/{inv.instance_id}/document/orchestration/" \
                    f"{command.command_id}"
    for step, plugin in zip(command.steps, inv.plugins):
        plugin.status, plugin.details = "InProgress", "InProgress"
        plugin.start = _utcnow()
        if fault is not None:
            plugin.stdout = str(fault.get("stdout", ""))
            plugin.stderr = str(fault.get("stderr", "failed to run commands: exit status 1"))
            code = int(fault.get("exit_code", 1))
            _finish_plugin(plugin, code)
            inv.finish("Failed", "Failed", code)
            return
        step_dir = f"{orchestration}/{re.sub(r'[^A-Za-z0-9_.-]', '', step.name) or 'step'}"
        box.path(step_dir).mkdir(parents=True, exist_ok=True)
        script_path = f"{step_dir}/_script.sh"
        box.path(script_path).write_text(step.script + "\n")
        cwd = step.working_directory or step_dir
        running = sandbox.start(box, script_path, cwd, env, timeout=float(step.timeout_seconds))
        result = running.wait()
        plugin.stdout, plugin.stderr = result.stdout, result.stderr
        if result.timed_out:
            plugin.status, plugin.details, plugin.code = "TimedOut", "ExecutionTimedOut", -1
            plugin.end = _utcnow()
            inv.finish("TimedOut", "ExecutionTimedOut", -1)
            return
        if result.killed:
            _finish_plugin(plugin, -1)
            inv.finish("Failed", "Failed", -1)
            return
        code = result.exit_code if result.exit_code >= 0 else 128 - result.exit_code
        _finish_plugin(plugin, code)
        if code != 0:
            inv.finish("Failed", "Failed", code)
            return
    inv.finish("Success", "Success", 0)


def _finish_plugin(plugin: PluginRun, code: int) -> None:
    plugin.code = code
    plugin.status = plugin.details = "Success" if code == 0 else "Failed"
    plugin.end = _utcnow()


def _record_done(inv: Invocation) -> None:
    recorder.record("ssm_command", phase="finished", command_id=inv.command.command_id,
                    instance_id=inv.instance_id, document=inv.command.document_name,
                    status=inv.status, status_details=inv.details, response_code=inv.code,
                    stdout=inv.stdout(), stderr=inv.stderr())


def instance_went_offline(instance_id: str) -> None:
    """Stop/terminate: scripts running on the instance are killed (their invocations fail)."""
    sandbox.kill_instance(instance_id)


def reset() -> None:
    sandbox.kill_all()


# ---------------------------------------------------------------------------------------------
# Patching moto


def install() -> None:
    from moto.core.responses import ActionResult
    from moto.ssm.models import SimpleSystemManagerBackend
    from moto.ssm.responses import SimpleSystemManagerResponse

    if getattr(SimpleSystemManagerBackend, "_emu_client_patched", False):
        return

    def r_send_command(self: Any) -> ActionResult:
        command = send_command(
            self.ssm_backend,
            document_name=self._get_param("DocumentName"),
            document_version=self._get_param("DocumentVersion"),
            instance_ids=self._get_param("InstanceIds", []) or [],
            targets=self._get_param("Targets", []) or [],
            parameters=self._get_param("Parameters", {}) or {},
            timeout_seconds=self._get_param("TimeoutSeconds"),
            comment=self._get_param("Comment", ""),
            max_concurrency=self._get_param("MaxConcurrency", "50"),
            max_errors=self._get_param("MaxErrors", "0"),
            notification_config=self._get_param("NotificationConfig"),
            output_s3_bucket_name=self._get_param("OutputS3BucketName", ""),
            output_s3_key_prefix=self._get_param("OutputS3KeyPrefix", ""),
            output_s3_region=self._get_param("OutputS3Region", ""),
            service_role_arn=self._get_param("ServiceRoleArn", ""),
        )
        return ActionResult({"Command": command.response_object()})

    def r_get_command_invocation(self: Any) -> ActionResult:
        return ActionResult(get_command_invocation(
            self.ssm_backend, self._get_param("CommandId"), self._get_param("InstanceId"),
            self._get_param("PluginName")))

    def r_list_command_invocations(self: Any) -> ActionResult:
        items, token = list_command_invocations(
            self.ssm_backend, self._get_param("CommandId"), self._get_param("InstanceId"),
            self._get_param("Filters", []) or [], bool(self._get_param("Details", False)),
            int(self._get_param("MaxResults") or 50), self._get_param("NextToken"))
        result: dict[str, Any] = {"CommandInvocations": items}
        if token:
            result["NextToken"] = token
        return ActionResult(result)

    def r_describe_instance_information(self: Any) -> ActionResult:
        filters = list(self._get_param("Filters", []) or []) + list(
            self._get_param("InstanceInformationFilterList", []) or [])
        items, token = describe_instance_information(
            self.ssm_backend, filters, int(self._get_param("MaxResults") or 50),
            self._get_param("NextToken"))
        result: dict[str, Any] = {"InstanceInformationList": items}
        if token:
            result["NextToken"] = token
        return ActionResult(result)

    def b_get_commands_by_instance_id(self: Any, instance_id: str) -> list[Any]:
        return [c for c in self._commands
                if isinstance(c, EmuCommand) and c.invocation(instance_id) is not None]

    # AWS::SSM::Document: CloudFormation defaults DocumentFormat to JSON and accepts Content as a
    # JSON object; moto passes DocumentFormat None (→ "Invalid document format None") and
    # hashes Content as a string.
    from moto.ssm.models import Document

    original_cfn_create = Document.create_from_cloudformation_json.__func__

    def cfn_create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str,
                   region_name: str, **kwargs: Any) -> Any:
        spec = dict(cloudformation_json)
        properties = dict(spec.get("Properties") or {})
        properties.setdefault("DocumentFormat", "JSON")
        if isinstance(properties.get("Content"), (dict, list)):
            properties["Content"] = json.dumps(properties["Content"])
        spec["Properties"] = properties
        return original_cfn_create(cls, resource_name, spec, account_id, region_name, **kwargs)

    Document.create_from_cloudformation_json = classmethod(cfn_create)

    SimpleSystemManagerResponse.send_command = r_send_command
    SimpleSystemManagerResponse.get_command_invocation = r_get_command_invocation
    SimpleSystemManagerResponse.list_command_invocations = r_list_command_invocations
    SimpleSystemManagerResponse.describe_instance_information = r_describe_instance_information
    SimpleSystemManagerBackend.get_commands_by_instance_id = b_get_commands_by_instance_id
    SimpleSystemManagerBackend._emu_client_patched = True
