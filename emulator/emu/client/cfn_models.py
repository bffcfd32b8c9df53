"""``AWS::EC2::Instance`` properties moto's own CloudFormation model drops, which decide whether an
admin instance works: ``SecurityGroupIds`` (and ``NetworkInterfaces[0].GroupSet``) — moto only
reads ``SecurityGroups``, so the instance would sit in the VPC's default group and could never be
admitted by the cluster security group — and the primary ``NetworkInterfaces`` entry's
``SubnetId``.

It wraps moto's ``create_from_cloudformation_json`` and only adds what is missing, so it is
harmless if the CloudFormation package later models these properties itself. (The instance role's
``ManagedPolicyArns`` are handled with the other IAM patches in :mod:`emu.cfn.iam_models`.)
"""

from __future__ import annotations

from typing import Any


def _instance_groups(properties: dict[str, Any]) -> list[str]:
    ids = [str(g) for g in properties.get("SecurityGroupIds") or []]
    for nic in properties.get("NetworkInterfaces") or []:
        if str(nic.get("DeviceIndex", "0")) == "0":
            ids += [str(g) for g in nic.get("GroupSet") or []]
    return ids


def _primary_subnet(properties: dict[str, Any]) -> str | None:
    for nic in properties.get("NetworkInterfaces") or []:
        if str(nic.get("DeviceIndex", "0")) == "0" and nic.get("SubnetId"):
            return str(nic["SubnetId"])
    return None


def install() -> None:
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.instances import Instance

    if getattr(Instance, "_emu_cfn_patched", False):
        return

    original_instance = Instance.create_from_cloudformation_json.__func__

    def create_instance(cls: Any, resource_name: str, cloudformation_json: Any,
                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        subnet = _primary_subnet(properties)
        if subnet and not properties.get("SubnetId"):
            # moto reads only Properties.SubnetId; the primary NetworkInterfaces entry is where
            # templates with AssociatePublicIpAddress put the subnet.
            cloudformation_json = {**cloudformation_json,
                                   "Properties": {**properties, "SubnetId": subnet}}
        instance = original_instance(cls, resource_name, cloudformation_json, account_id,
                                     region_name, **kwargs)
        wanted = _instance_groups(cloudformation_json.get("Properties") or {})
        if wanted:
            ec2 = ec2_backends[account_id][region_name]
            groups = [ec2.get_security_group_from_id(g) for g in wanted]
            for group in groups:
                if group is not None and group not in instance.security_groups:
                    instance.security_groups.append(group)
            # The primary interface got the VPC default group because none was given to moto.
            for nic in instance.nics.values():
                default = [g for g in nic._group_set if g.name == "default" and g not in groups]
                for g in default:
                    nic._group_set.remove(g)
        return instance

    Instance.create_from_cloudformation_json = classmethod(create_instance)
    Instance._emu_cfn_patched = True
