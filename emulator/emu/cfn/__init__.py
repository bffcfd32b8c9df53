"""CloudFormation: our own orchestrator behind moto's CloudFormation API surface.

moto's stack engine creates resources synchronously, in set order, ignores FAILED custom
resource responses and never sends Delete to custom resources. We keep moto's request parsing
and response serialisation (``CloudFormationResponse``) but route the stack operations to
:mod:`emu.cfn.engine`, which owns ordering, asynchrony, events and rollback, and reuses moto's
per-resource models where they are good enough (:class:`emu.cfn.models.MotoModel`).

Other packages add resource types with :func:`register` / :func:`resource_type`; see
``emulator/README.md`` ("Adding a CloudFormation resource model").
"""

from __future__ import annotations

from typing import Any

from emu.cfn import engine
from emu.cfn import parameters as params
from emu.cfn import template as tpl
from emu.cfn.models import (  # noqa: F401  (the public interface for other packages)
    Context,
    Resource,
    ResourceFailed,
    ResourceModel,
    model_for,
    register,
    resource_type,
)

_installed = False


def _errors() -> tuple[type, type, type]:
    from moto.cloudformation.exceptions import (
        AlreadyExistsException,
        CloudFormationError,
        ValidationError,
    )

    class InsufficientCapabilitiesException(CloudFormationError):
        code = "InsufficientCapabilitiesException"

    return AlreadyExistsException, ValidationError, InsufficientCapabilitiesException


def _validation(message: str) -> Exception:
    _, validation_error, _ = _errors()
    return validation_error(message=message)


def _template_body(response: Any, stack: engine.Stack | None = None) -> str:
    body = response._get_param("TemplateBody")
    url = response._get_param("TemplateURL")
    if response._get_param("UsePreviousTemplate") in (True, "true") and stack is not None:
        return stack.body
    if not body and url:
        body = _template_from_s3(url, response.current_account)
    if not body:
        raise _validation("Either Template URL or Template Body must be specified.")
    return body


def _template_from_s3(url: str, account_id: str) -> str:
    """TemplateURL: virtual-hosted or path-style S3 URLs, including the emulator's own
    endpoint (``http://127.0.0.1:P/bucket/key``)."""
    from urllib.parse import unquote, urlparse

    from moto.s3.models import s3_backends

    parts = urlparse(url)
    host = parts.hostname or ""
    path = unquote(parts.path.lstrip("/"))
    if ".s3" in host and host.endswith("amazonaws.com") and not host.startswith("s3"):
        bucket, key = host.split(".s3", 1)[0], path
    else:
        bucket, _, key = path.partition("/")
    try:
        return s3_backends[account_id]["aws"].get_object(bucket, key).value.decode("utf-8")
    except Exception:
        raise _validation(f"S3 error: Access Denied for TemplateURL {url}") from None


def _parse(body: str) -> dict[str, Any]:
    try:
        template = tpl.parse(body)
        engine.check_types(template)
        return template
    except tpl.TemplateError as err:
        raise _validation(str(err)) from None


def _given_parameters(response: Any) -> dict[str, Any]:
    given = {}
    for item in response._get_param("Parameters", []) or []:
        key = item["ParameterKey"]
        if str(item.get("UsePreviousValue", "")).lower() == "true":
            if item.get("ParameterValue"):
                raise _validation(f"Invalid input for parameter key {key}. Cannot specify "
                                  "usePreviousValue as true and non empty value for a parameter")
            given[key] = None
        else:
            given[key] = item.get("ParameterValue", "")
    return given


def _prepare(stack: engine.Stack, template: dict[str, Any], given: dict[str, Any],
             previous: dict[str, Any] | None, capabilities: list[str]) -> tuple[dict, dict]:
    _, _, insufficient = _errors()
    try:
        engine.check_capabilities(template, capabilities)
    except engine.InsufficientCapabilities as err:
        raise insufficient(str(err)) from None
    try:
        inputs, resolved = engine.resolve_parameters(template, given, previous, stack.region)
        tpl.check_rules(template, resolved,
                        lambda t, v, a: params.attribute(t, v, a, stack.region))
        # Conditions must evaluate (unknown conditions are template errors).
        evaluator = stack.evaluator(template, resolved, {})
        for name in template.get("Conditions") or {}:
            evaluator.condition(name)
        for resource in template["Resources"].values():
            evaluator.active(resource)
    except tpl.TemplateError as err:
        raise _validation(str(err)) from None
    return inputs, resolved


# ---------------------------------------------------------------------------------------------
# API handlers (replace CloudFormationResponse methods)


def create_stack(self: Any) -> Any:
    from moto.core.responses import ActionResult

    already_exists, _, _ = _errors()
    name = self._get_param("StackName")
    if engine.find(name, include_deleted=False) is not None:
        raise already_exists(f"Stack [{name}] already exists")
    body = _template_body(self)
    template = _parse(body)
    stack = engine.Stack(name, body, template, self.region)
    stack.capabilities = self._get_param("Capabilities", []) or []
    inputs, resolved = _prepare(stack, template, _given_parameters(self), None, stack.capabilities)
    stack.inputs, stack.parameters = inputs, resolved
    stack.tags = {t["Key"]: t["Value"] for t in self._get_param("Tags", []) or []}
    stack.disable_rollback = str(self._get_param("DisableRollback", False)).lower() == "true" or \
        self._get_param("OnFailure") == "DO_NOTHING"
    stack.notification_arns = self._get_param("NotificationARNs", []) or []
    stack.role_arn = self._get_param("RoleARN")
    stack.timeout_minutes = self._get_param("TimeoutInMinutes")
    stack.termination_protection = str(self._get_param("EnableTerminationProtection",
                                                       False)).lower() == "true"
    engine.register(stack)
    stack.stack_event("CREATE_IN_PROGRESS", "User Initiated")
    engine.start(engine.run_create, stack)
    return ActionResult({"StackId": stack.stack_id})


def _get(name: str, include_deleted: bool = True) -> engine.Stack:
    stack = engine.find(name, include_deleted)
    if stack is None:
        raise _validation(f"Stack with id {name} does not exist")
    return stack


def update_stack(self: Any) -> Any:
    from moto.core.responses import ActionResult

    stack = _get(self._get_param("StackName"), include_deleted=False)
    if stack.status.endswith("_IN_PROGRESS") or stack.operation.locked():
        raise _validation(f"Stack:{stack.stack_id} is in {stack.status} state and can not be "
                          "updated.")
    if stack.status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED",
                        "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED"):
        raise _validation(f"Stack:{stack.stack_id} is in {stack.status} state and can not be "
                          "updated.")
    body = _template_body(self, stack)
    template = _parse(body)
    capabilities = self._get_param("Capabilities", []) or []
    inputs, resolved = _prepare(stack, template, _given_parameters(self), stack.inputs,
                                capabilities)
    if template == stack.template and inputs == stack.inputs:
        raise _validation("No updates are to be performed.")
    stack.capabilities = capabilities
    tags = self._get_param("Tags")
    if tags:
        stack.tags = {t["Key"]: t["Value"] for t in tags}
    stack.status = "UPDATE_IN_PROGRESS"  # visible at once, like AWS
    engine.start(engine.run_update, stack, body, template, inputs, resolved)
    return ActionResult({"StackId": stack.stack_id})


def delete_stack(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    stack = engine.find(self._get_param("StackName"), include_deleted=False)
    if stack is None or stack.status == "DELETE_IN_PROGRESS":
        return EmptyResult()  # AWS: deleting a missing stack succeeds silently
    if stack.termination_protection:
        raise _validation(f"Stack [{stack.name}] cannot be deleted while TerminationProtection "
                          "is enabled")
    stack.status = "DELETE_IN_PROGRESS"
    engine.start(engine.run_delete, stack)
    return EmptyResult()


def _parameters_json(stack: engine.Stack) -> list[dict[str, Any]]:
    declared = stack.template.get("Parameters") or {}
    out = []
    for key, value in stack.inputs.items():
        entry = {"ParameterKey": key,
                 "ParameterValue": "****" if declared.get(key, {}).get("NoEcho") in
                 (True, "true", "True") else value}
        if str(declared.get(key, {}).get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
            resolved = stack.parameters.get(key)
            entry["ResolvedValue"] = ",".join(resolved) if isinstance(resolved, list) else resolved
        out.append(entry)
    return out


def stack_json(stack: engine.Stack) -> dict[str, Any]:
    out: dict[str, Any] = {
        "StackId": stack.stack_id, "StackName": stack.name,
        "Parameters": _parameters_json(stack), "CreationTime": stack.created,
        "StackStatus": stack.status, "DisableRollback": stack.disable_rollback,
        "NotificationARNs": stack.notification_arns, "Capabilities": stack.capabilities,
        "Tags": dict(stack.tags), "EnableTerminationProtection": stack.termination_protection,
        "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
    }
    if stack.description:
        out["Description"] = stack.description
    if stack.status_reason:
        out["StackStatusReason"] = stack.status_reason
    if stack.updated:
        out["LastUpdatedTime"] = stack.updated
    if stack.deleted:
        out["DeletionTime"] = stack.deleted
    if stack.outputs and stack.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE",
                                           "UPDATE_ROLLBACK_COMPLETE",
                                           "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
                                           "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"):
        out["Outputs"] = stack.outputs
    if stack.role_arn:
        out["RoleARN"] = stack.role_arn
    if stack.timeout_minutes:
        out["TimeoutInMinutes"] = int(stack.timeout_minutes)
    return out


def describe_stacks(self: Any) -> Any:
    from moto.core.responses import ActionResult

    name = self._get_param("StackName")
    if name:
        stacks = [_get(name)]
    else:
        stacks = [s for s in engine.all_stacks() if s.deleted is None]
    return ActionResult({"Stacks": [stack_json(s) for s in stacks]})


def list_stacks(self: Any) -> Any:
    from moto.core.responses import ActionResult

    wanted = set(self._get_param("StackStatusFilter", []) or [])
    summaries = []
    for stack in reversed(engine.all_stacks()):
        if wanted and stack.status not in wanted:
            continue
        entry = {"StackId": stack.stack_id, "StackName": stack.name,
                 "CreationTime": stack.created, "StackStatus": stack.status}
        for key, value in (("TemplateDescription", stack.description),
                           ("LastUpdatedTime", stack.updated), ("DeletionTime", stack.deleted),
                           ("StackStatusReason", stack.status_reason)):
            if value:
                entry[key] = value
        summaries.append(entry)
    return ActionResult({"StackSummaries": summaries})


def describe_stack_events(self: Any) -> Any:
    from moto.core.responses import ActionResult

    stack = _get(self._get_param("StackName"))
    with stack.lock:
        events = list(reversed(stack.events))
    return ActionResult({"StackEvents": events})


def _resource_rows(stack: engine.Stack) -> list[engine.ResourceState]:
    return [s for s in stack.resources.values() if s.status != "DELETE_COMPLETE" or
            stack.deleted is not None]


def describe_stack_resources(self: Any) -> Any:
    from moto.core.responses import ActionResult

    stack = _get(self._get_param("StackName"))
    logical_id = self._get_param("LogicalResourceId")
    rows = []
    for state in _resource_rows(stack):
        if logical_id and state.logical_id != logical_id:
            continue
        row = {"StackName": stack.name, "StackId": stack.stack_id,
               "LogicalResourceId": state.logical_id, "ResourceType": state.resource_type,
               "Timestamp": state.updated, "ResourceStatus": state.status,
               "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"}}
        if state.physical_id:
            row["PhysicalResourceId"] = state.physical_id
        if state.status_reason:
            row["ResourceStatusReason"] = state.status_reason
        rows.append(row)
    return ActionResult({"StackResources": rows})


def describe_stack_resource(self: Any) -> Any:
    from moto.core.responses import ActionResult

    stack = _get(self._get_param("StackName"))
    logical_id = self._get_param("LogicalResourceId")
    state = stack.resources.get(logical_id)
    if state is None:
        raise _validation(f"Resource {logical_id} does not exist for stack {stack.name}")
    detail = {"StackName": stack.name, "StackId": stack.stack_id,
              "LogicalResourceId": logical_id, "ResourceType": state.resource_type,
              "LastUpdatedTimestamp": state.updated, "ResourceStatus": state.status,
              "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"}}
    if state.physical_id:
        detail["PhysicalResourceId"] = state.physical_id
    if state.status_reason:
        detail["ResourceStatusReason"] = state.status_reason
    if "Metadata" in state.definition:
        import json

        detail["Metadata"] = json.dumps(state.definition["Metadata"])
    return ActionResult({"StackResourceDetail": detail})


def list_stack_resources(self: Any) -> Any:
    from moto.core.responses import ActionResult

    stack = _get(self._get_param("StackName"))
    rows = []
    for state in _resource_rows(stack):
        row = {"LogicalResourceId": state.logical_id, "ResourceType": state.resource_type,
               "LastUpdatedTimestamp": state.updated, "ResourceStatus": state.status,
               "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"}}
        if state.physical_id:
            row["PhysicalResourceId"] = state.physical_id
        if state.status_reason:
            row["ResourceStatusReason"] = state.status_reason
        rows.append(row)
    return ActionResult({"StackResourceSummaries": rows})


def get_template(self: Any) -> Any:
    from moto.core.responses import ActionResult

    stack = _get(self._get_param("StackName"))
    return ActionResult({"TemplateBody": stack.body, "StagesAvailable": ["Original", "Processed"]})


def _wrap_get_template_summary(original: Any) -> Any:
    def get_template_summary(self: Any) -> Any:
        from moto.cloudformation.responses import get_template_summary_response_from_template
        from moto.core.responses import ActionResult

        name = self._get_param("StackName")
        if not name:
            return original(self)
        return ActionResult(get_template_summary_response_from_template(_get(name).body))

    return get_template_summary


def list_exports(self: Any) -> Any:
    from moto.core.responses import ActionResult

    exports = []
    for stack in engine.all_stacks():
        if stack.deleted is None:
            for output in stack.outputs:
                if output.get("ExportName"):
                    exports.append({"ExportingStackId": stack.stack_id,
                                    "Name": output["ExportName"], "Value": output["OutputValue"]})
    return ActionResult({"Exports": exports})


def _seed_ssm() -> None:
    """Make sure the AL2023 AMI parameters resolve (moto loads them lazily per region)."""
    from moto.ssm.models import ssm_backends

    for arch in ("x86_64", "arm64"):
        try:
            ssm_backends[engine.ACCOUNT_ID]["us-east-1"].get_parameter(
                f"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}")
        except Exception:
            pass


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    from moto.cloudformation.responses import CloudFormationResponse

    from emu.cfn import custom, iam_models, native, wait_condition

    custom.install()
    native.install()
    iam_models.install()
    wait_condition.install()
    for name, handler in {
        "create_stack": create_stack, "update_stack": update_stack,
        "delete_stack": delete_stack, "describe_stacks": describe_stacks,
        "list_stacks": list_stacks, "describe_stack_events": describe_stack_events,
        "describe_stack_resources": describe_stack_resources,
        "describe_stack_resource": describe_stack_resource,
        "list_stack_resources": list_stack_resources, "get_template": get_template,
        "list_exports": list_exports,
    }.items():
        setattr(CloudFormationResponse, name, handler)
    CloudFormationResponse.get_template_summary = _wrap_get_template_summary(
        CloudFormationResponse.get_template_summary)
    _seed_ssm()


def reset() -> None:
    from emu.cfn import custom, wait_condition

    engine.reset()
    custom.reset()
    wait_condition.reset()
    _seed_ssm()


def introspect() -> list[dict[str, Any]]:
    out = []
    for stack in engine.all_stacks():
        entry = stack_json(stack)
        entry["Outputs"] = stack.outputs
        entry["Events"] = list(stack.events)
        entry["Resources"] = [
            {"LogicalResourceId": s.logical_id, "ResourceType": s.resource_type,
             "PhysicalResourceId": s.physical_id, "ResourceStatus": s.status,
             "ResourceStatusReason": s.status_reason, "Properties": s.properties}
            for s in stack.resources.values()]
        entry["TemplateBody"] = stack.body
        out.append(entry)
    return out
