"""Template parameters: defaults, UsePreviousValue, constraints, SSM and AWS-specific types."""

from __future__ import annotations

import re
from typing import Any

from emu.cfn.template import TemplateError

ACCOUNT_ID = "123456789012"

# AWS-specific parameter types whose values must exist (CloudFormation checks before creating).
_EC2_TYPES = {
    "AWS::EC2::Subnet::Id": "subnet",
    "AWS::EC2::VPC::Id": "vpc",
    "AWS::EC2::SecurityGroup::Id": "security_group",
    "AWS::EC2::Instance::Id": "instance",
    "AWS::EC2::KeyPair::KeyName": "key_pair",
    "AWS::EC2::AvailabilityZone::Name": "az",
}


def resolve(template: dict[str, Any], given: dict[str, Any], previous: dict[str, Any] | None,
            region: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (inputs as strings, resolved values). ``given[k] is None`` = UsePreviousValue."""
    declared = template.get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    inputs: dict[str, Any] = {}
    missing = []
    for name, declaration in declared.items():
        if name in given and given[name] is None:
            if previous is None or name not in previous:
                raise TemplateError(f"Invalid input for parameter key {name}. Need to specify "
                                    "either usePreviousValue as true or a value for the parameter")
            inputs[name] = previous[name]
        elif name in given:
            inputs[name] = str(given[name])
        elif "Default" in declaration:
            default = declaration["Default"]
            inputs[name] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        else:
            missing.append(name)
    if missing:
        raise TemplateError(f"Parameters: [{', '.join(missing)}] must have values")
    resolved = {name: _resolve_one(name, declared[name], inputs[name], region)
                for name in declared}
    return inputs, resolved


def _resolve_one(name: str, declaration: dict[str, Any], raw: str, region: str) -> Any:
    kind = declaration.get("Type", "String")
    if kind.startswith("AWS::SSM::Parameter::Value<"):
        inner = kind[len("AWS::SSM::Parameter::Value<"):-1]
        value = _ssm_value(raw, region)
        return value.split(",") if inner.startswith("List<") or inner == "CommaDelimitedList" \
            else value
    if kind == "AWS::SSM::Parameter::Name":
        _ssm_value(raw, region)
        return raw
    is_list = kind.startswith("List<") or kind == "CommaDelimitedList"
    values = [v.strip() for v in raw.split(",")] if is_list and raw != "" else \
        ([] if is_list else [raw])
    item_kind = kind[5:-1] if kind.startswith("List<") else kind
    for value in values:
        _check_constraints(name, declaration, value, item_kind)
        if item_kind in _EC2_TYPES:
            _check_exists(name, item_kind, value, region)
    if item_kind == "Number":
        numbers = [_number(name, v) for v in values]
        return numbers if is_list else numbers[0]
    return values if is_list else raw


def _number(name: str, value: str) -> int | float:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            raise TemplateError(f"Parameter '{name}' must be a number.") from None


def _check_constraints(name: str, declaration: dict[str, Any], value: str, kind: str) -> None:
    description = declaration.get("ConstraintDescription")

    def fail(default: str) -> None:
        raise TemplateError(f"Parameter '{name}' {description}" if description else default)

    allowed = declaration.get("AllowedValues")
    if allowed is not None and value not in [str(a) for a in allowed]:
        fail(f"Parameter '{name}' must be one of AllowedValues")
    pattern = declaration.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        fail(f"Parameter '{name}' must match pattern {pattern}")
    if "MinLength" in declaration and len(value) < int(declaration["MinLength"]):
        fail(f"Parameter '{name}' must contain at least {declaration['MinLength']} characters")
    if "MaxLength" in declaration and len(value) > int(declaration["MaxLength"]):
        fail(f"Parameter '{name}' must contain at most {declaration['MaxLength']} characters")
    if kind == "Number":
        number = _number(name, value)
        if "MinValue" in declaration and number < float(declaration["MinValue"]):
            fail(f"Parameter '{name}' must be a number not less than {declaration['MinValue']}")
        if "MaxValue" in declaration and number > float(declaration["MaxValue"]):
            fail(f"Parameter '{name}' must be a number not greater than {declaration['MaxValue']}")


def _ssm_value(parameter_name: str, region: str) -> str:
    from moto.ssm.models import ssm_backends

    backend = ssm_backends[ACCOUNT_ID][region]
    try:
        parameter = backend.get_parameter(parameter_name)
    except Exception:
        parameter = None
    if parameter is None:
        raise TemplateError(f"Unable to fetch parameters [{parameter_name}] from parameter store "
                            "for this account.")
    return parameter.value


def _check_exists(name: str, kind: str, value: str, region: str) -> None:
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[ACCOUNT_ID][region]
    what = _EC2_TYPES[kind]
    try:
        if what == "subnet":
            ok = bool(ec2.describe_subnets(subnet_ids=[value]))
        elif what == "vpc":
            ok = bool(ec2.describe_vpcs(vpc_ids=[value]))
        elif what == "security_group":
            ok = bool(ec2.describe_security_groups(group_ids=[value]))
        elif what == "instance":
            ok = bool(ec2.get_instance(value))
        elif what == "key_pair":
            ok = bool(ec2.describe_key_pairs(key_names=[value]))
        else:
            ok = value.startswith(region)
    except Exception:
        ok = False
    if not ok:
        raise TemplateError(f"Parameter validation failed: parameter value {value} for parameter "
                            f"name {name} does not exist")


def attribute(param_type: str, value: str, attr: str, region: str) -> str:
    """An attribute of an AWS-specific parameter value, for Fn::ValueOf/ValueOfAll in Rules.

    Supported like AWS for the types our templates use (subnets, VPCs, security groups)."""
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[ACCOUNT_ID][region]
    try:
        if param_type == "AWS::EC2::Subnet::Id":
            subnet = ec2.describe_subnets(subnet_ids=[value])[0]
            return {"VpcId": subnet.vpc_id, "AvailabilityZone": subnet.availability_zone,
                    "Tags": ""}[attr]
        if param_type == "AWS::EC2::SecurityGroup::Id":
            group = ec2.describe_security_groups(group_ids=[value])[0]
            return {"VpcId": group.vpc_id}[attr]
        if param_type == "AWS::EC2::VPC::Id":
            vpc = ec2.describe_vpcs(vpc_ids=[value])[0]
            return {"VpcId": vpc.id}[attr]
    except KeyError:
        pass
    except Exception:
        raise TemplateError(f"Parameter validation failed: parameter value {value} "
                            f"of type {param_type} does not exist") from None
    raise TemplateError(f"Template error: Fn::ValueOf attribute {attr} of {param_type} "
                        "is not supported by the emulator")
