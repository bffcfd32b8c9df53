"""``GET /_emu/introspect``: everything the emulator saw, for leak tests and debugging.

Returns the recorder's records plus live data from moto: every state machine execution with input,
output and full history (and its state transition count), every CloudFormation stack with events,
parameters and outputs, every Lambda function's configuration including environment, and every
secret value ever stored (recorded at store time, so deleted secrets and old versions stay listed).

Query ``?kind=log`` limits ``records`` to one kind; ``?sections=records,secrets`` limits sections.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterator

from emu import control, recorder

_installed = False


def _record_secret_store() -> None:
    from moto.secretsmanager.models import SecretsManagerBackend

    original_add = SecretsManagerBackend._add_secret

    def add_secret(self: Any, secret_id: str, secret_string: str | None = None,
                   secret_binary: Any = None, *args: Any, **kwargs: Any) -> Any:
        result = original_add(self, secret_id, secret_string, secret_binary, *args, **kwargs)
        if secret_string is not None:
            recorder.record("secret_value", source="secretsmanager", secret_id=secret_id,
                            value=secret_string)
        if secret_binary is not None:
            value = secret_binary if isinstance(secret_binary, str) else \
                base64.b64encode(secret_binary).decode()
            recorder.record("secret_value", source="secretsmanager", secret_id=secret_id,
                            value=value, binary=True)
        return result

    SecretsManagerBackend._add_secret = add_secret

    original_random = SecretsManagerBackend.get_random_password

    def get_random_password(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original_random(self, *args, **kwargs)
        password = result
        try:  # moto returns the response document, {"RandomPassword": ...}
            password = json.loads(result)["RandomPassword"]
        except (ValueError, TypeError, KeyError):
            pass
        recorder.record("secret_value", source="secretsmanager.GetRandomPassword", value=password)
        return result

    SecretsManagerBackend.get_random_password = get_random_password


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    _record_secret_store()
    control.route("GET", "introspect")(_introspect)


def _backends(service: str) -> Iterator[tuple[str, str, Any]]:
    from moto.backends import get_backend

    backend_dict = get_backend(service)  # type: ignore[arg-type]
    for account_id, regions in list(backend_dict.items()):
        for region, backend in list(regions.items()):
            yield account_id, region, backend


def state_machines() -> list[dict[str, Any]]:
    from emu import sfn
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    out = []
    for account_id, regions in list(stepfunctions_parser_backends.items()):
        for region, backend in list(regions.items()):
            for machine in list(backend.state_machines):
                executions = []
                for execution in list(machine.executions):
                    events = sfn.history(execution)
                    executions.append({
                        "executionArn": execution.exec_arn,
                        "name": execution.name,
                        "status": execution.exec_status.value if execution.exec_status else None,
                        "input": execution.input_data,
                        "output": execution.output,
                        "error": execution.error,
                        "cause": execution.cause,
                        "startDate": execution.start_date,
                        "stopDate": execution.stop_date,
                        "transitions": sfn.transitions(execution, events),
                        "history": events,
                    })
                out.append({"stateMachineArn": machine.arn, "name": machine.name,
                            "definition": machine.definition, "executions": executions})
    return out


def lambda_functions() -> list[dict[str, Any]]:
    out = []
    for _account, _region, backend in _backends("lambda"):
        for fn in list(backend.list_functions()):
            try:
                out.append(fn.get_configuration())
            except Exception as err:  # keep introspection working if one function is odd
                out.append({"FunctionName": fn.function_name, "error": str(err)})
    return out


def secrets() -> list[dict[str, Any]]:
    """Every secret value ever stored (from the recorder) plus live values not recorded."""
    values = [r for r in recorder.records("secret_value")]
    seen = {r.get("value") for r in values}
    for _account, _region, backend in _backends("secretsmanager"):
        for secret in list(backend.secrets.values()):
            for version_id, version in list(getattr(secret, "versions", {}).items()):
                value = version.get("secret_string")
                if value is not None and value not in seen:
                    values.append({"kind": "secret_value", "source": "live",
                                   "secret_id": secret.name, "version": version_id,
                                   "value": value})
                    seen.add(value)
    return values


def stacks() -> list[dict[str, Any]]:
    try:
        from emu import cfn
    except ImportError:
        return []
    return cfn.introspect()


def snapshot(kind: str | None = None, sections: set[str] | None = None) -> dict[str, Any]:
    builders = {
        "records": lambda: recorder.records(kind),
        "secrets": secrets,
        "state_machines": state_machines,
        "stacks": stacks,
        "lambda_functions": lambda_functions,
    }
    return {name: build() for name, build in builders.items()
            if sections is None or name in sections}


def _introspect(body: dict, query: dict) -> tuple[int, Any]:
    sections = set(query["sections"].split(",")) if query.get("sections") else None
    data = snapshot(query.get("kind"), sections)
    # Round-trip through JSON here so a non-serialisable value fails loudly in one place.
    return 200, json.loads(json.dumps(data, default=str))
