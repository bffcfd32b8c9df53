"""SSM Command documents: the built-in ``AWS-RunShellScript`` and documents created with
``CreateDocument`` / ``AWS::SSM::Document`` (schema 2.2, ``aws:runShellScript`` steps).

:func:`render` validates the ``SendCommand`` parameters against the document's parameter
declarations (type, required, ``allowedValues``, ``allowedPattern``, defaults) and substitutes
``{{ name }}`` (and ``{{ssm:/parameter}}``) into each step's ``runCommand``, giving the shell
script each step runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from moto.core.exceptions import JsonRESTError

# The public document as AWS publishes it (schemaVersion 1.2 on AWS; the shape that matters here:
# parameters commands / workingDirectory / executionTimeout and one aws:runShellScript plugin).
RUN_SHELL_SCRIPT = {
    "schemaVersion": "2.2",
    "description": "Run a shell script.",
    "parameters": {
        "commands": {"type": "StringList", "description": "Specify a shell script or a command to run."},
        "workingDirectory": {"type": "String", "default": "",
                             "description": "The path to the working directory on your instance."},
        "executionTimeout": {
            "type": "String", "default": "3600",
            "description": "The time in seconds for a command to complete before it is considered"
                           " to have failed. Default is 3600 (1 hour). Maximum is 172800 (48 hours).",
            "allowedPattern": "([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|"
                              "(172[0-7][0-9]{2})|(172800)",
        },
    },
    "mainSteps": [{
        "action": "aws:runShellScript",
        "name": "aws:runShellScript",
        "inputs": {"runCommand": "{{ commands }}", "workingDirectory": "{{ workingDirectory }}",
                   "timeoutSeconds": "{{ executionTimeout }}"},
    }],
}

BUILTIN = {"AWS-RunShellScript": RUN_SHELL_SCRIPT}

DEFAULT_STEP_TIMEOUT = 3600
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.:/-]+)\s*\}\}")


def invalid_parameters(message: str) -> JsonRESTError:
    return JsonRESTError("InvalidParameters", message)


def invalid_document(message: str) -> JsonRESTError:
    return JsonRESTError("InvalidDocument", message)


@dataclass
class Step:
    name: str
    action: str
    script: str  # rendered shell script
    working_directory: str
    timeout_seconds: int


@dataclass
class Loaded:
    name: str
    version: str
    content: dict[str, Any]


def load(ssm_backend: Any, name: str, version: str | None) -> Loaded:
    """The document's content (parsed), from the built-ins or moto's SSM backend."""
    if name in BUILTIN:
        return Loaded(name, "1", BUILTIN[name])
    if name.startswith("arn:"):
        name = name.rsplit("/", 1)[-1]
    documents = ssm_backend._documents.get(name)
    if documents is None:
        raise invalid_document("The specified document does not exist.")
    doc = documents.find(document_version=version) if version else documents.get_default_version()
    if doc.document_type != "Command":
        raise invalid_document(
            f"Document {name} of type {doc.document_type} cannot be run with SendCommand.")
    return Loaded(name, doc.document_version, doc.content_json)


def _declared(content: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(content.get("parameters") or {})


def resolve_parameters(content: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Validated values by name: a string, or a list of strings for ``StringList``."""
    declared = _declared(content)
    given = dict(given or {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise invalid_parameters(
            f"Parameters {unknown} are not declared by the document.")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        kind = spec.get("type", "String")
        if name in given:
            raw = given[name]
            items = raw if isinstance(raw, list) else [raw]
            items = [str(v) for v in items]
        elif "default" in spec:
            default = spec["default"]
            items = [str(v) for v in default] if isinstance(default, list) else [str(default)]
        else:
            raise invalid_parameters(f"Parameter {name} is required but was not provided.")
        if kind == "StringList":
            value: Any = items
        elif kind == "StringMap":
            value = items[0] if len(items) == 1 else json.dumps(items)
        else:
            if len(items) != 1:
                raise invalid_parameters(f"Parameter {name} of type {kind} takes one value.")
            value = items[0]
            if kind == "Integer" and not re.fullmatch(r"-?[0-9]+", value):
                raise invalid_parameters(f"Parameter {name} must be an integer.")
            if kind == "Boolean" and value not in ("true", "false"):
                raise invalid_parameters(f"Parameter {name} must be true or false.")
        checked = value if isinstance(value, list) else [value]
        allowed_values = spec.get("allowedValues")
        pattern = spec.get("allowedPattern")
        for item in checked:
            if allowed_values is not None and item not in [str(v) for v in allowed_values]:
                raise invalid_parameters(
                    f"Parameter value '{item}' for {name} is not one of {allowed_values}.")
            if pattern and re.fullmatch(pattern, item) is None:
                raise invalid_parameters(
                    f"Parameter value for {name} does not match the allowed pattern {pattern}.")
        values[name] = value
    return values


def _substitute(text: str, values: dict[str, Any], ssm_lookup: Callable[[str], str]) -> str:
    def replace(match: re.Match) -> str:
        key = match.group(1)
        if key.startswith("ssm:"):
            return ssm_lookup(key[4:])
        if key not in values:
            return match.group(0)  # AWS leaves unknown placeholders untouched
        value = values[key]
        return "\n".join(value) if isinstance(value, list) else str(value)

    return _PLACEHOLDER.sub(replace, text)


_SSM_REF = re.compile(r"\{\{\s*ssm:([A-Za-z0-9_.:/-]+)\s*\}\}")


def _resolve_ssm_refs(value: Any, ssm_lookup: Callable[[str], str]) -> Any:
    """``{{ssm:/name}}`` in parameter values reads Parameter Store (documented for Run Command)."""
    if isinstance(value, list):
        return [_resolve_ssm_refs(v, ssm_lookup) for v in value]
    return _SSM_REF.sub(lambda m: ssm_lookup(m.group(1)), str(value))


def _render_run_command(run_command: Any, values: dict[str, Any],
                        ssm_lookup: Callable[[str], str]) -> str:
    lines = run_command if isinstance(run_command, list) else [run_command]
    return "\n".join(_substitute(str(line), values, ssm_lookup) for line in lines)


def render(content: dict[str, Any], values: dict[str, Any],
           ssm_lookup: Callable[[str], str]) -> list[Step]:
    """The steps to run, with parameters substituted."""
    values = {k: _resolve_ssm_refs(v, ssm_lookup) for k, v in values.items()}
    schema = str(content.get("schemaVersion", ""))
    if schema not in ("2.0", "2.2"):
        raise invalid_document(
            f"Schema version {schema} is not supported by the emulator (use 2.2).")
    steps = []
    for raw in content.get("mainSteps") or []:
        action = raw.get("action")
        if action != "aws:runShellScript":
            raise invalid_document(f"Action {action} is not supported by the emulator.")
        inputs = raw.get("inputs") or {}
        script = _render_run_command(inputs.get("runCommand", []), values, ssm_lookup)
        workdir = _substitute(str(inputs.get("workingDirectory", "")), values, ssm_lookup)
        timeout_text = _substitute(str(inputs.get("timeoutSeconds", DEFAULT_STEP_TIMEOUT)),
                                   values, ssm_lookup).strip()
        try:
            timeout = int(timeout_text) if timeout_text else DEFAULT_STEP_TIMEOUT
        except ValueError:
            raise invalid_parameters(f"timeoutSeconds '{timeout_text}' is not a number.")
        steps.append(Step(raw.get("name", action), action, script, workdir, timeout))
    if not steps:
        raise invalid_document("The document has no steps.")
    return steps
