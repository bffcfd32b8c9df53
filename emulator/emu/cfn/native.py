"""Resource models moto lacks or gets wrong for our stack.

* ``AWS::StepFunctions::StateMachine``: into the *executing* backend, with Definition /
  DefinitionString and DefinitionSubstitutions applied.
* ``AWS::SecretsManager::Secret``: moto skips it; GenerateSecretString honours PasswordLength,
  ExcludeCharacters, ExcludePunctuation, ExcludeNumbers, ExcludeUppercase, ExcludeLowercase,
  IncludeSpace, RequireEachIncludedType, SecretStringTemplate + GenerateStringKey.
* ``AWS::EC2::SecurityGroupEgress``: moto has no model.
"""

from __future__ import annotations

import json
import random
import string
from typing import Any

from emu.cfn.models import Context, Resource, ResourceFailed, ResourceModel, register

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


# ---------------------------------------------------------------------------------------------
# Step Functions


def _definition(properties: dict[str, Any]) -> str:
    if "Definition" in properties and "DefinitionString" in properties:
        raise ResourceFailed("Definition and DefinitionString cannot both be specified")
    if "Definition" in properties:
        text = json.dumps(properties["Definition"])
    elif "DefinitionString" in properties:
        text = properties["DefinitionString"]
    else:
        raise ResourceFailed("Either Definition or DefinitionString must be specified "
                             "(DefinitionS3Location is not emulated)")
    for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
        replacement = value if isinstance(value, str) else json.dumps(value)
        if isinstance(value, bool):
            replacement = str(value).lower()
        text = text.replace("${" + key + "}", replacement)
    return text


def _sfn_error(err: Exception) -> ResourceFailed:
    message = getattr(err, "message", None) or str(err)
    code = getattr(err, "error_type", None) or getattr(err, "code", None) or type(err).__name__
    return ResourceFailed(f"{message} (Service: AWSStepFunctions; Error Code: {code})")


class StateMachine(ResourceModel):
    def create(self, ctx: Context) -> Resource:
        from emu import sfn

        props = ctx.properties
        name = props.get("StateMachineName") or ctx.physical_name[:80]
        tags = [{"key": t["Key"], "value": t["Value"]} for t in props.get("Tags", [])]
        try:
            machine = sfn.backend(ctx.account_id, ctx.region).create_state_machine(
                name=name, definition=_definition(props), roleArn=props.get("RoleArn"),
                tags=tags, loggingConfiguration=props.get("LoggingConfiguration"),
                tracingConfiguration=props.get("TracingConfiguration"),
                sm_type=props.get("StateMachineType", "STANDARD"))
        except ResourceFailed:
            raise
        except Exception as err:
            raise _sfn_error(err) from err
        return Resource(machine.arn, {"Arn": machine.arn, "Name": machine.name,
                                      "StateMachineRevisionId": machine.arn}, machine)

    def update(self, ctx: Context, old: Resource) -> Resource:
        from emu import sfn

        props, old_props = ctx.properties, ctx.old_properties or {}
        if props.get("StateMachineName") != old_props.get("StateMachineName") or \
                props.get("StateMachineType", "STANDARD") != old_props.get("StateMachineType",
                                                                           "STANDARD"):
            return super().update(ctx, old)  # replacement
        try:
            sfn.backend(ctx.account_id, ctx.region).update_state_machine(
                old.physical_id, definition=_definition(props), role_arn=props.get("RoleArn"))
        except ResourceFailed:
            raise
        except Exception as err:
            raise _sfn_error(err) from err
        return Resource(old.physical_id, dict(old.attributes), old.handle)

    def delete(self, ctx: Context, resource: Resource) -> None:
        from emu import sfn

        sfn.backend(ctx.account_id, ctx.region).delete_state_machine(resource.physical_id)


# ---------------------------------------------------------------------------------------------
# Secrets Manager


def _flag(options: dict[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    return value if isinstance(value, bool) else str(value).lower() == "true"


def generate_password(options: dict[str, Any]) -> str:
    """GetRandomPassword semantics (defaults: 32 characters, every type, each type required)."""
    length = int(options.get("PasswordLength", 32))
    if not 1 <= length <= 4096:
        raise ResourceFailed("PasswordLength must be between 1 and 4096")
    excluded = set(options.get("ExcludeCharacters", ""))
    classes = []
    if not _flag(options, "ExcludeLowercase", False):
        classes.append(string.ascii_lowercase)
    if not _flag(options, "ExcludeUppercase", False):
        classes.append(string.ascii_uppercase)
    if not _flag(options, "ExcludeNumbers", False):
        classes.append(string.digits)
    if not _flag(options, "ExcludePunctuation", False):
        classes.append(PUNCTUATION)
    if _flag(options, "IncludeSpace", False):
        classes.append(" ")
    classes = ["".join(c for c in group if c not in excluded) for group in classes]
    classes = [group for group in classes if group]
    if not classes:
        raise ResourceFailed("No characters left to generate a password from")
    rng = random.SystemRandom()
    chars = [rng.choice("".join(classes)) for _ in range(length)]
    if _flag(options, "RequireEachIncludedType", True):
        if length < len(classes):
            raise ResourceFailed("Password length is too short based on the required types.")
        positions = rng.sample(range(length), len(classes))
        for position, group in zip(positions, classes):
            chars[position] = rng.choice(group)
    return "".join(chars)


def _secret_value(props: dict[str, Any]) -> str | None:
    if "SecretString" in props and "GenerateSecretString" in props:
        raise ResourceFailed("You can't specify both SecretString and GenerateSecretString")
    if "SecretString" in props:
        return props["SecretString"]
    options = props.get("GenerateSecretString")
    if options is None:
        # Neither given: an empty secret (current AWS docs: "If you omit both
        # GenerateSecretString and SecretString, you create an empty secret"; older docs
        # differed — uncertain). A later PutSecretValue fills it, e.g. the trust anchor.
        return None
    password = generate_password(options)
    template = options.get("SecretStringTemplate")
    key = options.get("GenerateStringKey")
    if bool(template) != bool(key):
        raise ResourceFailed("SecretStringTemplate and GenerateStringKey must be used together")
    if template:
        document = json.loads(template)
        document[key] = password
        return json.dumps(document)
    return password


class Secret(ResourceModel):
    def _backend(self, ctx: Context) -> Any:
        from moto.secretsmanager.models import secretsmanager_backends

        return secretsmanager_backends[ctx.account_id][ctx.region]

    def create(self, ctx: Context) -> Resource:
        props = ctx.properties
        # AWS names an unnamed secret after the logical id plus a random suffix.
        name = props.get("Name") or f"{ctx.logical_id}-{ctx.physical_name[-12:]}"
        value = _secret_value(props)
        try:
            self._backend(ctx).create_secret(
                name=name, secret_string=value, secret_binary=None,
                description=props.get("Description"), tags=props.get("Tags", []),
                kms_key_id=props.get("KmsKeyId"), client_request_token=None,
                replica_regions=props.get("ReplicaRegions", []), force_overwrite=False)
        except Exception as err:
            message = getattr(err, "message", None) or str(err)
            raise ResourceFailed(f"{message} (Service: AWSSecretsManager)") from err
        arn = self._backend(ctx).describe_secret(name).arn
        return Resource(arn, {"Id": arn, "Name": name}, name)

    def update(self, ctx: Context, old: Resource) -> Resource:
        props, old_props = ctx.properties, ctx.old_properties or {}
        if props.get("Name") != old_props.get("Name"):
            return super().update(ctx, old)
        backend = self._backend(ctx)
        value_changed = (props.get("SecretString") != old_props.get("SecretString") or
                         props.get("GenerateSecretString") != old_props.get("GenerateSecretString"))
        backend.update_secret(
            secret_id=old.physical_id,
            secret_string=_secret_value(props) if value_changed else None,
            secret_binary=None, client_request_token=None,
            kms_key_id=props.get("KmsKeyId"), description=props.get("Description"))
        return Resource(old.physical_id, dict(old.attributes), old.handle)

    def delete(self, ctx: Context, resource: Resource) -> None:
        # Uncertain whether CloudFormation forces deletion without a recovery window; we do,
        # so a new stack can reuse the name at once.
        try:
            self._backend(ctx).delete_secret(resource.physical_id, None, True)
        except Exception as err:
            if "ResourceNotFound" not in type(err).__name__:
                raise


# ---------------------------------------------------------------------------------------------
# EC2 security group egress rules


class SecurityGroupEgress(ResourceModel):
    direction = "egress"
    peer = "Destination"

    def _args(self, ctx: Context) -> dict[str, Any]:
        props = ctx.properties
        group = props.get("GroupId") or props.get("GroupName")
        if not group or not props.get("IpProtocol"):
            raise ResourceFailed("Properties validation failed: GroupId and IpProtocol are required")
        ip_ranges = [{"CidrIp": props["CidrIp"], "Description": props.get("Description")}] \
            if props.get("CidrIp") else []
        source_groups = [{"GroupId": props[f"{self.peer}SecurityGroupId"]}] \
            if props.get(f"{self.peer}SecurityGroupId") else []
        if props.get(f"{self.peer}SecurityGroupName"):
            source_groups.append({"GroupName": props[f"{self.peer}SecurityGroupName"]})
        prefix_lists = [{"PrefixListId": props[f"{self.peer}PrefixListId"]}] \
            if props.get(f"{self.peer}PrefixListId") else []
        if not (ip_ranges or source_groups or prefix_lists or props.get("CidrIpv6")):
            raise ResourceFailed("Properties validation failed: a destination is required")
        return dict(group_name_or_id=group, ip_protocol=str(props["IpProtocol"]),
                    from_port=props.get("FromPort"), to_port=props.get("ToPort"),
                    ip_ranges=ip_ranges, source_groups=source_groups,
                    prefix_list_ids=prefix_lists)

    def create(self, ctx: Context) -> Resource:
        from moto.ec2.models import ec2_backends

        args = self._args(ctx)
        backend = ec2_backends[ctx.account_id][ctx.region]
        try:
            authorize = getattr(backend, f"authorize_security_group_{self.direction}")
            rules, _ = authorize(**args)
        except Exception as err:
            message = getattr(err, "message", None) or str(err)
            raise ResourceFailed(f"{message} (Service: AmazonEC2)") from err
        rule_id = rules[0].id if rules else f"sgr-{ctx.physical_name[-12:].lower()}"
        return Resource(rule_id, {"Id": rule_id}, args)

    def delete(self, ctx: Context, resource: Resource) -> None:
        from moto.ec2.models import ec2_backends

        args = dict(resource.handle)
        try:
            backend = ec2_backends[ctx.account_id][ctx.region]
            getattr(backend, f"revoke_security_group_{self.direction}")(**args)
        except Exception as err:
            if "NotFound" not in type(err).__name__:
                raise


class SecurityGroupIngress(SecurityGroupEgress):
    """moto's model has no physical id and no delete; ours revokes the rule on delete."""

    direction = "ingress"
    peer = "Source"


def install() -> None:
    register("AWS::StepFunctions::StateMachine", StateMachine())
    register("AWS::SecretsManager::Secret", Secret())
    register("AWS::EC2::SecurityGroupEgress", SecurityGroupEgress())
    register("AWS::EC2::SecurityGroupIngress", SecurityGroupIngress())
