"""Template evaluation: parameters, conditions, rules, intrinsic functions, dependencies."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

import yaml


class TemplateError(Exception):
    """A ValidationError CloudFormation returns synchronously (message is AWS's text)."""


class NotReady(Exception):
    """An intrinsic referenced a resource that does not exist (yet)."""


def parse(body: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        try:
            data = yaml.load(body, Loader=_loader())
        except yaml.YAMLError as err:
            raise TemplateError(f"Template format error: {err}") from None
    if not isinstance(data, dict):
        raise TemplateError("Template format error: JSON not well-formed.")
    if not isinstance(data.get("Resources"), dict) or not data["Resources"]:
        raise TemplateError("Template format error: At least one Resources member must be defined.")
    return data


def _loader() -> type:
    """A YAML loader that understands CloudFormation short forms (!Ref, !Sub, !GetAtt, ...)."""

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: Any, suffix: str, node: Any) -> Any:
        name = "Ref" if suffix == "Ref" else ("Condition" if suffix == "Condition" else f"Fn::{suffix}")
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    Loader.add_multi_constructor("!", construct)
    return Loader


PSEUDO = ("AWS::AccountId", "AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
          "AWS::Partition", "AWS::NoValue", "AWS::NotificationARNs")


def references(node: Any) -> set[str]:
    """Logical ids a node refers to (Ref, Fn::GetAtt, ${X} / ${X.Attr} in Fn::Sub)."""
    found: set[str] = set()

    def walk(value: Any, sub_locals: frozenset = frozenset()) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "Ref" and isinstance(inner, str):
                    found.add(inner)
                elif key == "Fn::GetAtt":
                    target = inner.split(".", 1)[0] if isinstance(inner, str) else inner[0]
                    if isinstance(target, str):
                        found.add(target)
                    if isinstance(inner, list):
                        walk(inner[1:])
                elif key == "Fn::Sub":
                    text, local = (inner, {}) if isinstance(inner, str) else (inner[0], inner[1])
                    walk(local)
                    for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                        target = name.split(".", 1)[0]
                        if target not in local:
                            found.add(target)
                else:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(node)
    return {name for name in found if not name.startswith("AWS::")}


def depends_on(resource: dict[str, Any]) -> set[str]:
    value = resource.get("DependsOn", [])
    return set([value] if isinstance(value, str) else value)


class Evaluator:
    """Evaluates intrinsic functions against parameters, conditions and resources.

    ``resource_ref(logical_id)`` and ``resource_att(logical_id, name)`` come from the engine;
    they raise :class:`NotReady` for resources that are not created.
    """

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any],
                 pseudo: dict[str, Any], resource_ref: Callable[[str], Any],
                 resource_att: Callable[[str, str], Any],
                 exports: Callable[[str], Any] | None = None, azs: list[str] | None = None):
        self.template = template
        self.parameters = parameters
        self.pseudo = pseudo
        self.resource_ref = resource_ref
        self.resource_att = resource_att
        self.exports = exports
        self.azs = azs or []
        self._conditions: dict[str, bool] = {}

    # -- conditions ---------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"Template format error: Unresolved condition dependency "
                                    f"{name} in Fn::If")
            self._conditions[name] = bool(self.condition_value(conditions[name]))
        return self._conditions[name]

    def condition_value(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Equals":
                left, right = (self.condition_value(x) for x in arg)
                return _canon(left) == _canon(right)
            if key == "Fn::Not":
                return not self.condition_value(arg[0])
            if key == "Fn::And":
                return all(self.condition_value(x) for x in arg)
            if key == "Fn::Or":
                return any(self.condition_value(x) for x in arg)
        return self.value(node)

    def active(self, resource: dict[str, Any]) -> bool:
        name = resource.get("Condition")
        return True if name is None else self.condition(name)

    # -- values -------------------------------------------------------------------------------
    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.value(x) for x in node]
            return [x for x in out if x is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            handler = getattr(self, "_fn_" + key.replace("Fn::", "").replace("::", "_"), None)
            if key == "Ref":
                return self._ref(arg)
            if key.startswith("Fn::") and handler is not None:
                return handler(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
        out = {}
        for key, inner in node.items():
            value = self.value(inner)
            if value is not _NO_VALUE:
                out[key] = value
        return out

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.resource_ref(name)

    def _fn_GetAtt(self, arg: Any) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        logical_id, attribute = arg[0], self.value(arg[1])
        return self.resource_att(logical_id, attribute)

    def _fn_Join(self, arg: Any) -> str:
        delimiter, items = arg
        values = self.value(items)
        return str(delimiter).join(_text(v) for v in values)

    def _fn_Sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, local = arg, {}
        else:
            text, local = arg[0], {k: self.value(v) for k, v in arg[1].items()}

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return _text(local[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return _text(self.resource_att(logical_id, attribute))
            return _text(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _fn_Select(self, arg: Any) -> Any:
        index, items = int(self.value(arg[0])), self.value(arg[1])
        if not isinstance(items, list) or not 0 <= index < len(items):
            raise TemplateError("Template error: Fn::Select cannot select nonexistent value at "
                                f"index {index}")
        return items[index]

    def _fn_Split(self, arg: Any) -> list[str]:
        return str(self.value(arg[1])).split(arg[0])

    def _fn_If(self, arg: Any) -> Any:
        name, when_true, when_false = arg
        return self.value(when_true if self.condition(name) else when_false)

    def _fn_Equals(self, arg: Any) -> bool:
        return self.condition_value({"Fn::Equals": arg})

    def _fn_Not(self, arg: Any) -> bool:
        return self.condition_value({"Fn::Not": arg})

    def _fn_And(self, arg: Any) -> bool:
        return self.condition_value({"Fn::And": arg})

    def _fn_Or(self, arg: Any) -> bool:
        return self.condition_value({"Fn::Or": arg})

    def _fn_FindInMap(self, arg: Any) -> Any:
        name, top, second = (self.value(x) for x in arg[:3])
        try:
            return self.template["Mappings"][name][top][second]
        except (KeyError, TypeError):
            if len(arg) > 3 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                return self.value(arg[3]["DefaultValue"])
            raise TemplateError(f"Template error: Unable to get mapping for {name}::{top}::{second}")

    def _fn_Base64(self, arg: Any) -> str:
        return base64.b64encode(_text(self.value(arg)).encode()).decode()

    def _fn_GetAZs(self, arg: Any) -> list[str]:
        return list(self.azs)

    def _fn_ImportValue(self, arg: Any) -> Any:
        name = self.value(arg)
        if self.exports is None:
            raise TemplateError(f"No export named {name} found.")
        return self.exports(name)

    def _fn_ToJsonString(self, arg: Any) -> str:
        return json.dumps(self.value(arg), separators=(",", ":"))

    def _fn_Length(self, arg: Any) -> int:
        return len(self.value(arg))

    def _fn_Cidr(self, arg: Any) -> list[str]:
        import ipaddress

        block, count, bits = self.value(arg[0]), int(self.value(arg[1])), int(self.value(arg[2]))
        network = ipaddress.ip_network(block)
        prefix = network.max_prefixlen - bits
        return [str(n) for n in list(network.subnets(new_prefix=prefix))[:count]]


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValue()


def _canon(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def stringify(value: Any) -> Any:
    """Custom resource properties as CloudFormation sends them: every scalar a string."""
    if isinstance(value, dict):
        return {k: stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stringify(v) for v in value]
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return value
    return str(value)


# ---------------------------------------------------------------------------------------------
# Rules (template section "Rules"): evaluated before any resource is touched.

def check_rules(template: dict[str, Any], parameters: dict[str, Any],
                attribute: Callable[[str, str, str], Any] | None = None) -> None:
    """Raise TemplateError with the assertion's description when a rule fails, like AWS.

    ``attribute(param_type, value, attr)`` looks up an attribute of an AWS-specific parameter
    value for ``Fn::ValueOf``/``Fn::ValueOfAll`` (e.g. a subnet's ``VpcId``)."""
    types = {name: decl.get("Type", "String")
             for name, decl in (template.get("Parameters") or {}).items()}
    ctx = _RuleContext(parameters, types, attribute or _no_attribute)
    for rule_name, rule in (template.get("Rules") or {}).items():
        condition = rule.get("RuleCondition")
        if condition is not None and not _rule_value(condition, ctx):
            continue
        for assertion in rule.get("Assertions", []):
            if not _rule_value(assertion["Assert"], ctx):
                # AWS returns the AssertDescription as the ValidationError message (uncertain
                # for the no-description case; we then name the rule).
                raise TemplateError(assertion.get("AssertDescription")
                                    or f"Template error: rule {rule_name} failed")


@dataclass
class _RuleContext:
    parameters: dict[str, Any]
    types: dict[str, str]
    attribute: Callable[[str, str, str], Any]

    def values_of_type(self, param_type: str) -> list[tuple[str, str]]:
        """(element type, value) for every value of every parameter of this type or List<type>."""
        out = []
        for name, kind in self.types.items():
            if kind in (param_type, f"List<{param_type}>"):
                value = self.parameters.get(name)
                for item in value if isinstance(value, list) else [value]:
                    out.append((param_type, item))
        return out


def _no_attribute(param_type: str, value: str, attr: str) -> Any:
    raise TemplateError(f"Template error: cannot read {attr} of {param_type} {value}")


def _rule_value(node: Any, ctx: _RuleContext) -> Any:
    if isinstance(node, list):
        return [_rule_value(x, ctx) for x in node]
    if not isinstance(node, dict) or len(node) != 1:
        return node
    (key, arg), = node.items()
    value = lambda x: _rule_value(x, ctx)  # noqa: E731
    parameters = ctx.parameters
    if key == "Ref":
        return parameters.get(arg, arg)
    if key == "Fn::RefAll":
        return [v for _, v in ctx.values_of_type(arg)]
    if key == "Fn::ValueOfAll":
        param_type, attr = arg
        return [ctx.attribute(t, v, attr) for t, v in ctx.values_of_type(param_type)]
    if key == "Fn::ValueOf":
        name, attr = value(arg[0]), arg[1]
        kind = ctx.types.get(name, "String")
        element = kind[5:-1] if kind.startswith("List<") else kind
        current = parameters.get(name)
        if isinstance(current, list):
            return [ctx.attribute(element, v, attr) for v in current]
        return ctx.attribute(element, current, attr)
    if key == "Fn::Equals":
        return _canon(value(arg[0])) == _canon(value(arg[1]))
    if key == "Fn::Not":
        return not value(arg[0])
    if key == "Fn::And":
        return all(value(x) for x in arg)
    if key == "Fn::Or":
        return any(value(x) for x in arg)
    if key == "Fn::Contains":
        return _canon(value(arg[1])) in [_canon(x) for x in value(arg[0])]
    if key == "Fn::EachMemberEquals":
        return all(_canon(x) == _canon(value(arg[1])) for x in value(arg[0]))
    if key == "Fn::EachMemberIn":
        allowed = [_canon(x) for x in value(arg[1])]
        return all(_canon(x) in allowed for x in value(arg[0]))
    if key == "Fn::If":
        return value(arg[1]) if value(arg[0]) else value(arg[2])
    return node
