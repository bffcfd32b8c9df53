"""The stack orchestrator: asynchronous create/update/delete with rollback and stack events.

Resources are handled on worker threads in dependency order (Ref, Fn::GetAtt, Fn::Sub and
DependsOn); independent resources run in parallel; deletes run in reverse dependency order.
A failure stops new work, lets running operations finish, then rolls back like AWS:

* create: ROLLBACK_IN_PROGRESS, delete what was created (a custom resource whose Create
  failed still gets a Delete with the physical id it answered or one we invent) → ROLLBACK_COMPLETE
  (or CREATE_FAILED with DisableRollback).
* update: UPDATE_ROLLBACK_IN_PROGRESS, revert in-place updates (custom resources get an Update
  with the old properties), delete new resources and new physical ids of replacements →
  UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS → UPDATE_ROLLBACK_COMPLETE. On success, old
  physical ids of replacements and removed resources are deleted in
  UPDATE_COMPLETE_CLEANUP_IN_PROGRESS.
* delete (and the deletes of a rollback): a failed delete does not stop independent resources,
  but everything the failed resource depends on is left in place, untouched, so a retried
  DeleteStack (on DELETE_FAILED) can run its handler again — its ServiceToken function and
  whatever that uses still exist.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import string
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from emu import recorder
from emu.cfn import template as tpl
from emu.cfn.models import Context, Resource, ResourceFailed, model_for

ACCOUNT_ID = "123456789012"


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.timezone.utc)


@dataclass
class ResourceState:
    logical_id: str
    resource_type: str
    status: str = "CREATE_IN_PROGRESS"
    status_reason: str | None = None
    resource: Resource | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    definition: dict[str, Any] = field(default_factory=dict)  # the template entry
    updated: datetime.datetime = field(default_factory=_now)

    @property
    def physical_id(self) -> str | None:
        return self.resource.physical_id if self.resource else None


class Stack:
    def __init__(self, name: str, body: str, template: dict[str, Any], region: str):
        self.name = name
        self.region = region
        self.account_id = ACCOUNT_ID
        self.stack_id = (f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{name}/"
                         f"{uuid.uuid4()}")
        self.body = body
        self.template = template
        self.inputs: dict[str, Any] = {}  # parameter values as given (strings)
        self.parameters: dict[str, Any] = {}  # resolved values used by Ref
        self.status = "CREATE_IN_PROGRESS"
        self.status_reason: str | None = None
        self.created = _now()
        self.updated: datetime.datetime | None = None
        self.deleted: datetime.datetime | None = None
        self.events: list[dict[str, Any]] = []
        self.resources: dict[str, ResourceState] = {}
        self.outputs: list[dict[str, Any]] = []
        self.tags: dict[str, str] = {}
        self.capabilities: list[str] = []
        self.disable_rollback = False
        self.notification_arns: list[str] = []
        self.role_arn: str | None = None
        self.timeout_minutes: int | None = None
        self.termination_protection = False
        self.lock = threading.RLock()
        self.operation = threading.Lock()  # one stack operation at a time
        self.cancel = threading.Event()
        self.abandoned = False  # set by POST /_emu/reset: stop touching the (new) backends

    @property
    def description(self) -> str | None:
        return self.template.get("Description")

    def event(self, logical_id: str, resource_type: str, status: str, reason: str | None = None,
              physical_id: str | None = None, properties: Any = None) -> None:
        entry = {
            "StackId": self.stack_id, "EventId": str(uuid.uuid4()), "StackName": self.name,
            "LogicalResourceId": logical_id, "PhysicalResourceId": physical_id or "",
            "ResourceType": resource_type, "Timestamp": _now(), "ResourceStatus": status,
        }
        if reason:
            entry["ResourceStatusReason"] = reason
        if properties is not None:
            entry["ResourceProperties"] = json.dumps(properties, default=str)
        with self.lock:
            self.events.append(entry)
        recorder.record("cfn_event", **{k: v for k, v in entry.items() if k != "Timestamp"})

    def stack_event(self, status: str, reason: str | None = None) -> None:
        with self.lock:
            self.status = status
            self.status_reason = reason
        self.event(self.name, "AWS::CloudFormation::Stack", status, reason, self.stack_id)

    def pseudo(self) -> dict[str, Any]:
        return {
            "AWS::AccountId": self.account_id, "AWS::Region": self.region,
            "AWS::StackId": self.stack_id, "AWS::StackName": self.name,
            "AWS::URLSuffix": "amazonaws.com", "AWS::Partition": "aws",
            "AWS::NotificationARNs": list(self.notification_arns),
        }

    def evaluator(self, template: dict[str, Any] | None = None,
                  parameters: dict[str, Any] | None = None,
                  resources: dict[str, ResourceState] | None = None) -> tpl.Evaluator:
        template = template if template is not None else self.template
        states = resources if resources is not None else self.resources

        def ref(logical_id: str) -> Any:
            state = states.get(logical_id)
            if state is None or state.resource is None:
                if logical_id not in template.get("Resources", {}):
                    raise tpl.TemplateError(
                        f"Template format error: Unresolved resource dependencies [{logical_id}] "
                        "in the Resources block of the template")
                raise tpl.NotReady(logical_id)
            return state.resource.physical_id

        def att(logical_id: str, name: str) -> Any:
            state = states.get(logical_id)
            if state is None or state.resource is None:
                raise tpl.NotReady(logical_id)
            model = model_for(state.resource_type)
            assert model is not None
            return model.attribute(state.resource, name)

        return tpl.Evaluator(template, parameters if parameters is not None else self.parameters,
                             self.pseudo(), ref, att, exports=_export_value,
                             azs=[f"{self.region}{z}" for z in "abcdef"])

    def context(self, state: ResourceState, properties: dict[str, Any],
                old_properties: dict[str, Any] | None = None) -> Context:
        return Context(
            stack_name=self.name, stack_id=self.stack_id, logical_id=state.logical_id,
            resource_type=state.resource_type, properties=properties,
            old_properties=old_properties, account_id=self.account_id, region=self.region,
            physical_name=_physical_name(self.name, state.logical_id, state.resource_type,
                                         self.stack_id),
            cancel_event=self.cancel)


def _physical_name(stack: str, logical_id: str, resource_type: str, stack_id: str) -> str:
    """AWS-style generated name; stable per stack and logical id (create, update and delete of
    the same resource must agree on it)."""
    digest = hashlib.sha256(f"{stack_id}/{logical_id}".encode()).digest()
    suffix = "".join(string.ascii_uppercase[b % 26] if b % 2 else string.digits[b % 10]
                     for b in digest[:12])
    name = f"{stack}-{logical_id}-{suffix}"
    if resource_type in ("AWS::IAM::Role", "AWS::IAM::InstanceProfile", "AWS::IAM::ManagedPolicy",
                         "AWS::Lambda::Function"):
        name = f"{stack[:20]}-{logical_id[:30]}-{suffix}"[:64]
    if resource_type == "AWS::S3::Bucket":
        name = name.lower()[:63]
    return name


# ---------------------------------------------------------------------------------------------
# Registry of stacks (per region)

_stacks_lock = threading.RLock()
_stacks: list[Stack] = []


def all_stacks() -> list[Stack]:
    with _stacks_lock:
        return list(_stacks)


def find(name_or_id: str, include_deleted: bool = True) -> Stack | None:
    with _stacks_lock:
        for stack in reversed(_stacks):
            if stack.stack_id == name_or_id and (include_deleted or stack.deleted is None):
                return stack
        for stack in reversed(_stacks):
            if stack.name == name_or_id and stack.deleted is None:
                return stack
    return None


def reset() -> None:
    with _stacks_lock:
        for stack in _stacks:
            stack.abandoned = True
            stack.cancel.set()
        _stacks.clear()


class _Abandoned(ResourceFailed):
    pass


def _export_value(name: str) -> Any:
    for stack in all_stacks():
        if stack.deleted is None:
            for output in stack.outputs:
                if output.get("ExportName") == name:
                    return output["OutputValue"]
    raise tpl.TemplateError(f"No export named {name} found.")


# ---------------------------------------------------------------------------------------------
# Validation done synchronously in the API call


class InsufficientCapabilities(Exception):
    pass


_IAM_NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName", "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName", "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
}


def check_capabilities(template: dict[str, Any], capabilities: list[str]) -> None:
    needed = None
    for resource in template["Resources"].values():
        kind = resource.get("Type", "")
        if kind.startswith("AWS::IAM::"):
            needed = needed or "CAPABILITY_IAM"
            name_property = _IAM_NAME_PROPERTIES.get(kind)
            if name_property and name_property in (resource.get("Properties") or {}):
                needed = "CAPABILITY_NAMED_IAM"
    if needed == "CAPABILITY_IAM" and not {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"} & set(capabilities):
        raise InsufficientCapabilities(f"Requires capabilities : [{needed}]")
    if needed == "CAPABILITY_NAMED_IAM" and "CAPABILITY_NAMED_IAM" not in capabilities:
        raise InsufficientCapabilities(f"Requires capabilities : [{needed}]")


def check_types(template: dict[str, Any]) -> None:
    unknown = sorted({r.get("Type", "") for r in template["Resources"].values()
                      if model_for(r.get("Type", "")) is None})
    if unknown:
        raise tpl.TemplateError(
            f"Template format error: Unrecognized resource types: [{', '.join(unknown)}]")
    known = set(template["Resources"]) | set(template.get("Parameters") or {})
    for logical_id, resource in template["Resources"].items():
        unresolved = sorted(tpl.references(resource.get("Properties", {})) - known)
        if unresolved:
            raise tpl.TemplateError(
                f"Template format error: Unresolved resource dependencies [{', '.join(unresolved)}]"
                " in the Resources block of the template")
        for dependency in tpl.depends_on(resource):
            if dependency not in template["Resources"]:
                raise tpl.TemplateError(
                    f"Template format error: Unresolved resource dependencies [{dependency}] in "
                    "the Resources block of the template")


def resolve_parameters(template: dict[str, Any], given: dict[str, Any],
                       previous: dict[str, Any] | None, region: str) -> tuple[dict, dict]:
    """(inputs, resolved). ``given`` maps key → value or ``None`` for UsePreviousValue."""
    from emu.cfn import parameters as params

    return params.resolve(template, given, previous, region)


# ---------------------------------------------------------------------------------------------
# Parallel execution in dependency order


def run_graph(nodes: list[str], prerequisites: dict[str, set[str]],
              action: Callable[[str], None], on_failure: Callable[[], None] | None = None,
              stop_on_failure: bool = True) -> tuple[list[str], dict[str, str], list[str]]:
    """Run ``action(node)`` once every prerequisite succeeded; independent nodes in parallel.

    Returns (succeeded, failed{node: reason}, not_started). A node whose prerequisite failed never
    starts, and so neither does anything waiting for it (transitively). With ``stop_on_failure``
    no new node starts at all after the first failure and ``on_failure`` is called (the
    orchestrator cancels running operations with it, like AWS's "Resource creation
    cancelled"); running ones finish.
    """
    done: list[str] = []
    failed: dict[str, str] = {}
    running: set[str] = set()
    condition = threading.Condition()

    def worker(node: str) -> None:
        try:
            action(node)
            outcome = None
        except ResourceFailed as err:
            outcome = str(err) or type(err).__name__
        except Exception as err:  # a model bug fails the resource, not the orchestrator
            traceback.print_exc()
            outcome = f"Internal Failure: {type(err).__name__}: {err}"
        with condition:
            running.discard(node)
            if outcome is None:
                done.append(node)
            else:
                failed[node] = outcome
                if on_failure is not None:
                    on_failure()
            condition.notify_all()

    pending = list(nodes)
    with condition:
        while True:
            if not (failed and stop_on_failure):
                for node in list(pending):
                    if prerequisites.get(node, set()) <= set(done):
                        pending.remove(node)
                        running.add(node)
                        threading.Thread(target=worker, args=(node,), daemon=True,
                                         name=f"cfn-{node}").start()
            if not running:
                break
            condition.wait()
    return done, failed, pending


def dependency_map(template: dict[str, Any], active: list[str]) -> dict[str, set[str]]:
    resources = template["Resources"]
    deps = {}
    for logical_id in active:
        definition = resources[logical_id]
        refs = tpl.references(definition.get("Properties", {})) | tpl.depends_on(definition)
        deps[logical_id] = {r for r in refs if r in active and r != logical_id}
    return deps


def reverse_map(deps: dict[str, set[str]], nodes: list[str]) -> dict[str, set[str]]:
    """Prerequisites for deletion: a node waits for every node that depends on it."""
    rev: dict[str, set[str]] = {n: set() for n in nodes}
    for node, requires in deps.items():
        for required in requires:
            if required in rev and node in rev:
                rev[required].add(node)
    return rev


# ---------------------------------------------------------------------------------------------
# Resource operations


def _resolve_properties(stack: Stack, evaluator: tpl.Evaluator,
                        definition: dict[str, Any]) -> dict[str, Any]:
    value = evaluator.value(definition.get("Properties") or {})
    return value if isinstance(value, dict) else {}


def _create_resource(stack: Stack, state: ResourceState, evaluator: tpl.Evaluator) -> None:
    if stack.abandoned:
        raise _Abandoned("stack abandoned by a reset")
    model = model_for(state.resource_type)
    assert model is not None
    stack.event(state.logical_id, state.resource_type, "CREATE_IN_PROGRESS")
    try:
        properties = _resolve_properties(stack, evaluator, state.definition)
    except (tpl.TemplateError, ResourceFailed) as err:
        state.status, state.status_reason = "CREATE_FAILED", str(err)
        stack.event(state.logical_id, state.resource_type, "CREATE_FAILED", str(err))
        raise ResourceFailed(str(err)) from None
    state.properties = properties
    ctx = stack.context(state, properties)
    try:
        resource = model.create(ctx)
        state.resource = resource
        stack.event(state.logical_id, state.resource_type, "CREATE_IN_PROGRESS",
                    "Resource creation Initiated", resource.physical_id, properties)
        model.wait_ready(ctx, resource)
    except ResourceFailed as err:
        partial = getattr(err, "resource", None)
        if partial is not None:
            state.resource = partial
        _fail(stack, state, "CREATE_FAILED", str(err))
        raise
    except Exception as err:
        reason = _aws_error_text(err)
        _fail(stack, state, "CREATE_FAILED", reason)
        raise ResourceFailed(reason) from err
    if stack.cancel.is_set():
        _fail(stack, state, "CREATE_FAILED", "Resource creation cancelled")
        raise ResourceFailed("Resource creation cancelled")
    state.status, state.status_reason, state.updated = "CREATE_COMPLETE", None, _now()
    stack.event(state.logical_id, state.resource_type, "CREATE_COMPLETE", None,
                state.physical_id, properties)


def _fail(stack: Stack, state: ResourceState, status: str, reason: str) -> None:
    state.status, state.status_reason, state.updated = status, reason, _now()
    stack.event(state.logical_id, state.resource_type, status, reason, state.physical_id)


def _aws_error_text(err: Exception) -> str:
    """moto raises its own exception types; turn them into AWS-looking reasons."""
    code = getattr(err, "code", None) or getattr(err, "error_type", None)
    message = getattr(err, "message", None) or getattr(err, "description", None) or str(err)
    if code and isinstance(code, str):
        return f"{message} (Service: {code})"
    return f"{type(err).__name__}: {message}"


def _delete_resource(stack: Stack, state: ResourceState, properties: dict[str, Any] | None = None,
                     resource: Resource | None = None, honour_retain: bool = True,
                     policy_key: str = "DeletionPolicy") -> None:
    """Delete one physical resource (the current one unless ``resource`` is given)."""
    if stack.abandoned:
        return
    resource = resource or state.resource
    if honour_retain and state.definition.get(policy_key) == "Retain":
        stack.event(state.logical_id, state.resource_type, "DELETE_SKIPPED", None,
                    resource.physical_id if resource else None)
        if resource is state.resource:
            state.status = "DELETE_SKIPPED"
        return
    if resource is None:
        # Never created: nothing to delete (AWS reports it deleted).
        state.status = "DELETE_COMPLETE"
        stack.event(state.logical_id, state.resource_type, "DELETE_COMPLETE")
        return
    model = model_for(state.resource_type)
    assert model is not None
    stack.event(state.logical_id, state.resource_type, "DELETE_IN_PROGRESS", None,
                resource.physical_id)
    ctx = stack.context(state, properties if properties is not None else state.properties)
    ctx.cancel_event = threading.Event()  # deletes run to the end even during a reset of work
    try:
        model.delete(ctx, resource)
    except Exception as err:
        reason = str(err) if isinstance(err, ResourceFailed) else _aws_error_text(err)
        state.status, state.status_reason = "DELETE_FAILED", reason
        stack.event(state.logical_id, state.resource_type, "DELETE_FAILED", reason,
                    resource.physical_id)
        raise ResourceFailed(reason) from err
    if resource is state.resource:
        state.status, state.status_reason = "DELETE_COMPLETE", None
    stack.event(state.logical_id, state.resource_type, "DELETE_COMPLETE", None,
                resource.physical_id)


def _compute_outputs(stack: Stack) -> list[dict[str, Any]]:
    evaluator = stack.evaluator()
    outputs = []
    for key, output in (stack.template.get("Outputs") or {}).items():
        if "Condition" in output and not evaluator.condition(output["Condition"]):
            continue
        value = evaluator.value(output.get("Value"))
        entry = {"OutputKey": key, "OutputValue": tpl._text(value) if not isinstance(value, str)
                 else value}
        if output.get("Description"):
            entry["Description"] = output["Description"]
        if output.get("Export"):
            entry["ExportName"] = evaluator.value(output["Export"]["Name"])
        outputs.append(entry)
    return outputs


# ---------------------------------------------------------------------------------------------
# Stack operations (run on a background thread)


def _active(template: dict[str, Any], evaluator: tpl.Evaluator) -> list[str]:
    return [lid for lid, res in template["Resources"].items() if evaluator.active(res)]


def run_create(stack: Stack) -> None:
    with stack.operation:
        stack.cancel = threading.Event()
        try:
            _create(stack)
        except Exception as err:  # never leave a stack IN_PROGRESS because of our bug
            traceback.print_exc()
            stack.stack_event("CREATE_FAILED", f"Internal Failure: {err}")


def _create(stack: Stack) -> None:
    evaluator = stack.evaluator()
    active = _active(stack.template, evaluator)
    deps = dependency_map(stack.template, active)
    for logical_id in active:
        definition = stack.template["Resources"][logical_id]
        stack.resources[logical_id] = ResourceState(logical_id, definition["Type"],
                                                    definition=definition)

    def create(logical_id: str) -> None:
        _create_resource(stack, stack.resources[logical_id], stack.evaluator())

    done, failed, not_started = run_graph(active, deps, create, stack.cancel.set)
    if not failed:
        try:
            stack.outputs = _compute_outputs(stack)
        except (tpl.TemplateError, ResourceFailed) as err:
            failed["Outputs"] = str(err)
    if not failed:
        stack.stack_event("CREATE_COMPLETE")
        return
    for logical_id in not_started:
        del stack.resources[logical_id]
    reason = f"The following resource(s) failed to create: [{', '.join(sorted(failed))}]. "
    if stack.disable_rollback:
        stack.stack_event("CREATE_FAILED", reason)
        return
    if stack.abandoned:
        return
    stack.stack_event("ROLLBACK_IN_PROGRESS", reason + "Rollback requested by user.")
    ok = _delete_all(stack, deps, rollback=True)
    stack.stack_event("ROLLBACK_COMPLETE" if ok else "ROLLBACK_FAILED")


def _delete_all(stack: Stack, deps: dict[str, set[str]], rollback: bool = False) -> bool:
    nodes = [lid for lid, state in stack.resources.items()
             if state.status not in ("DELETE_COMPLETE", "DELETE_SKIPPED")]

    def delete(logical_id: str) -> None:
        state = stack.resources[logical_id]
        if rollback and state.resource is None:
            # Failed before it existed: AWS reports the rollback's delete as complete.
            state.status = "DELETE_COMPLETE"
            stack.event(logical_id, state.resource_type, "DELETE_COMPLETE")
            return
        _delete_resource(stack, state)

    _, failed, _ = run_graph_all(nodes, reverse_map(deps, nodes), delete)
    return not failed


def run_graph_all(nodes: list[str], prerequisites: dict[str, set[str]],
                  action: Callable[[str], None]) -> tuple[list[str], dict[str, str], list[str]]:
    """Deletes: a failure does not stop independent nodes, but a node never runs while anything
    it waits for failed or is still there (transitively). With ``reverse_map`` prerequisites this
    is AWS's rule: a resource whose delete failed keeps everything it depends on, so a retried
    delete can run its handler again."""
    return run_graph(nodes, prerequisites, action, stop_on_failure=False)


def run_delete(stack: Stack) -> None:
    with stack.operation:
        try:
            stack.stack_event("DELETE_IN_PROGRESS", "User Initiated")
            deps = dependency_map(stack.template, [lid for lid in stack.resources
                                                   if lid in stack.template["Resources"]])
            ok = _delete_all(stack, deps)
            if ok:
                stack.stack_event("DELETE_COMPLETE")
                stack.deleted = _now()
            else:
                failed = [lid for lid, s in stack.resources.items() if s.status == "DELETE_FAILED"]
                stack.stack_event("DELETE_FAILED", "The following resource(s) failed to delete: "
                                  f"[{', '.join(sorted(failed))}]. ")
        except Exception as err:
            traceback.print_exc()
            stack.stack_event("DELETE_FAILED", f"Internal Failure: {err}")


# -- update -----------------------------------------------------------------------------------


@dataclass
class _Change:
    logical_id: str
    kind: str  # "add" | "modify" | "replace"
    old_state: ResourceState | None = None
    new_resource: Resource | None = None
    new_properties: dict[str, Any] = field(default_factory=dict)


def run_update(stack: Stack, body: str, template: dict[str, Any], inputs: dict[str, Any],
               parameters: dict[str, Any]) -> None:
    with stack.operation:
        stack.cancel = threading.Event()
        try:
            _update(stack, body, template, inputs, parameters)
        except Exception as err:
            traceback.print_exc()
            stack.stack_event("UPDATE_ROLLBACK_FAILED", f"Internal Failure: {err}")


def _update(stack: Stack, body: str, template: dict[str, Any], inputs: dict[str, Any],
            parameters: dict[str, Any]) -> None:
    stack.stack_event("UPDATE_IN_PROGRESS", "User Initiated")
    stack.updated = _now()
    old = {"body": stack.body, "template": stack.template, "inputs": stack.inputs,
           "parameters": stack.parameters, "resources": dict(stack.resources),
           "outputs": stack.outputs}
    new_states: dict[str, ResourceState] = {}
    evaluator_probe = stack.evaluator(template, parameters, new_states)
    active = _active(template, evaluator_probe)
    deps = dependency_map(template, active)
    changes: dict[str, _Change] = {}
    lock = threading.Lock()

    def update(logical_id: str) -> None:
        definition = template["Resources"][logical_id]
        previous = old["resources"].get(logical_id)
        evaluator = stack.evaluator(template, parameters, new_states)
        if previous is None or previous.resource is None or \
                previous.resource_type != definition["Type"]:
            state = ResourceState(logical_id, definition["Type"], definition=definition)
            new_states[logical_id] = state
            stack.resources[logical_id] = state  # visible while in progress, like AWS
            with lock:
                changes[logical_id] = _Change(logical_id, "add")
            _create_resource(stack, state, evaluator)
            with lock:
                changes[logical_id].new_resource = state.resource
            if previous is not None and previous.resource is not None:
                with lock:  # type changed: the old one goes in cleanup
                    changes[logical_id] = _Change(logical_id, "replace", previous, state.resource)
            return
        try:
            properties = _resolve_properties(stack, evaluator, definition)
        except (tpl.TemplateError, ResourceFailed) as err:
            stack.event(logical_id, definition["Type"], "UPDATE_FAILED", str(err),
                        previous.physical_id)
            raise ResourceFailed(str(err)) from None
        if properties == previous.properties and definition == previous.definition:
            new_states[logical_id] = previous
            return
        if properties == previous.properties:
            # Only attributes such as DeletionPolicy changed: no resource update.
            new_states[logical_id] = ResourceState(
                logical_id, previous.resource_type, previous.status, None, previous.resource,
                previous.properties, definition)
            return
        model = model_for(definition["Type"])
        assert model is not None
        state = ResourceState(logical_id, definition["Type"], "UPDATE_IN_PROGRESS",
                              resource=previous.resource, properties=properties,
                              definition=definition)
        new_states[logical_id] = state
        stack.resources[logical_id] = state
        stack.event(logical_id, state.resource_type, "UPDATE_IN_PROGRESS", None,
                    previous.physical_id, properties)
        ctx = stack.context(state, properties, previous.properties)
        change = _Change(logical_id, "modify", previous, None, properties)
        with lock:
            changes[logical_id] = change
        try:
            resource = model.update(ctx, previous.resource)
        except Exception as err:
            reason = str(err) if isinstance(err, ResourceFailed) else _aws_error_text(err)
            partial = getattr(err, "resource", None)
            if partial is not None and partial.physical_id != previous.physical_id:
                change.kind, change.new_resource = "replace", partial
            state.status, state.status_reason = "UPDATE_FAILED", reason
            stack.event(logical_id, state.resource_type, "UPDATE_FAILED", reason,
                        previous.physical_id)
            raise ResourceFailed(reason) from err
        change.new_resource = resource
        if resource.physical_id != previous.physical_id:
            change.kind = "replace"
        state.resource = resource
        state.status, state.updated = "UPDATE_COMPLETE", _now()
        stack.event(logical_id, state.resource_type, "UPDATE_COMPLETE", None,
                    resource.physical_id, properties)

    done, failed, not_started = run_graph(active, deps, update, stack.cancel.set)
    if not failed:
        stack.template, stack.body, stack.inputs, stack.parameters = template, body, inputs, parameters
        merged = dict(new_states)
        stack.resources = merged
        try:
            stack.outputs = _compute_outputs(stack)
        except (tpl.TemplateError, ResourceFailed) as err:
            failed["Outputs"] = str(err)
    if not failed:
        stack.stack_event("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        # Old physical resources of replacements, then resources no longer in the template.
        for change in changes.values():
            if change.kind == "replace" and change.old_state is not None:
                _safe_delete(stack, change.old_state, change.old_state.resource,
                             change.old_state.properties, policy_key="UpdateReplacePolicy")
        removed = [lid for lid in old["resources"] if lid not in new_states]
        removed_deps = dependency_map(old["template"], removed)
        for_removal = {lid: old["resources"][lid] for lid in removed}
        stack.resources.update(for_removal)

        def delete_removed(logical_id: str) -> None:
            _delete_resource(stack, old["resources"][logical_id])

        run_graph_all(removed, reverse_map(removed_deps, removed), delete_removed)
        for lid in removed:
            stack.resources.pop(lid, None)
        stack.stack_event("UPDATE_COMPLETE")
        return

    # Roll back: restore the previous template and undo each change, newest first.
    stack.template, stack.body = old["template"], old["body"]
    stack.inputs, stack.parameters = old["inputs"], old["parameters"]
    if stack.abandoned:
        return
    stack.stack_event("UPDATE_ROLLBACK_IN_PROGRESS",
                      f"The following resource(s) failed to update: [{', '.join(sorted(failed))}]. ")
    rollback_ok = True
    ordered = [c for c in changes.values()]
    ordered.sort(key=lambda c: -_depth(c.logical_id, deps))
    to_delete: list[tuple[ResourceState, Resource | None, dict]] = []
    for change in ordered:
        old_state = change.old_state
        new_state = new_states.get(change.logical_id)
        if change.kind == "add":
            if new_state is not None and new_state.resource is not None:
                to_delete.append((new_state, new_state.resource, new_state.properties))
            elif new_state is not None:
                stack.event(change.logical_id, new_state.resource_type, "DELETE_COMPLETE")
        elif change.kind == "replace":
            if change.new_resource is not None:
                state = new_state or old_state
                to_delete.append((state, change.new_resource, change.new_properties))
            if old_state is not None:
                stack.event(change.logical_id, old_state.resource_type, "UPDATE_COMPLETE", None,
                            old_state.physical_id)
        elif change.kind == "modify" and old_state is not None and old_state.resource is not None:
            rollback_ok &= _revert(stack, old_state, change)
    stack.resources = dict(old["resources"])
    stack.outputs = old["outputs"]
    stack.stack_event("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    kept: set[str] = set()  # what a resource whose delete failed depends on stays, like AWS
    for state, resource, properties in to_delete:  # dependents first (ordered by depth)
        if state.logical_id in kept:
            continue
        if not _safe_delete(stack, state, resource, properties, honour_retain=False):
            rollback_ok = False
            kept |= _dependencies(state.logical_id, deps)
    stack.stack_event("UPDATE_ROLLBACK_COMPLETE" if rollback_ok else "UPDATE_ROLLBACK_FAILED")


def _revert(stack: Stack, old_state: ResourceState, change: _Change) -> bool:
    """Put an in-place-updated resource back to its previous properties."""
    model = model_for(old_state.resource_type)
    assert model is not None
    current = change.new_resource or old_state.resource
    stack.event(old_state.logical_id, old_state.resource_type, "UPDATE_IN_PROGRESS", None,
                current.physical_id if current else None)
    ctx = stack.context(old_state, old_state.properties, change.new_properties)
    ctx.cancel_event = threading.Event()
    try:
        restored = model.update(ctx, current)
    except Exception as err:
        reason = str(err) if isinstance(err, ResourceFailed) else _aws_error_text(err)
        stack.event(old_state.logical_id, old_state.resource_type, "UPDATE_FAILED", reason,
                    current.physical_id if current else None)
        return False
    old_state.resource = restored
    old_state.status = "UPDATE_COMPLETE"
    stack.event(old_state.logical_id, old_state.resource_type, "UPDATE_COMPLETE", None,
                restored.physical_id)
    return True


def _safe_delete(stack: Stack, state: ResourceState, resource: Resource | None,
                 properties: dict[str, Any], honour_retain: bool = True,
                 policy_key: str = "DeletionPolicy") -> bool:
    try:
        _delete_resource(stack, state, properties, resource, honour_retain, policy_key)
        return True
    except ResourceFailed:
        return False


def _dependencies(node: str, deps: dict[str, set[str]]) -> set[str]:
    """Everything ``node`` depends on, transitively."""
    found: set[str] = set()
    todo = list(deps.get(node, ()))
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(deps.get(current, ()))
    return found


def _depth(node: str, deps: dict[str, set[str]], seen: frozenset = frozenset()) -> int:
    if node in seen:
        return 0
    return 1 + max((_depth(d, deps, seen | {node}) for d in deps.get(node, ())), default=0)


# ---------------------------------------------------------------------------------------------


def start(target: Callable[..., None], *args: Any) -> None:
    threading.Thread(target=target, args=args, daemon=True, name="cfn-stack").start()


def register(stack: Stack) -> None:
    with _stacks_lock:
        _stacks.append(stack)
