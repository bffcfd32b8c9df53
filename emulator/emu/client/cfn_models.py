"""CloudFormation properties moto's own models drop, which decide whether an admin instance works:

* ``AWS::EC2::Instance``: ``SecurityGroupIds`` (and ``NetworkInterfaces[0].GroupSet``) — moto
  only reads ``SecurityGroups``, so the instance would sit in the VPC's default group and could
  never be admitted by the cluster security group.
* ``AWS::IAM::Role``: ``ManagedPolicyArns`` — moto ignores them, so a role with
  ``AmazonSSMManagedInstanceCore`` would not let the SSM agent register.

Both wrap moto's ``create_from_cloudformation_json`` and only add what is missing, so they are
harmless if the CloudFormation package later models these types itself.
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
    from moto.iam.models import Role, iam_backends
    from moto.utilities.utils import get_partition

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

    original_role = Role.create_from_cloudformation_json.__func__

    def create_role(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str,
                    region_name: str, **kwargs: Any) -> Any:
        role = original_role(cls, resource_name, cloudformation_json, account_id, region_name,
                             **kwargs)
        arns = (cloudformation_json.get("Properties") or {}).get("ManagedPolicyArns") or []
        backend = iam_backends[account_id][get_partition(region_name)]
        for arn in arns:
            if arn not in role.managed_policies:
                backend.attach_role_policy(arn, role.name)
        return role

    Role.create_from_cloudformation_json = classmethod(create_role)

    original_delete_role = Role.delete_from_cloudformation_json.__func__

    def delete_role(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str,
                    region_name: str) -> None:
        # CloudFormation detaches managed policies itself before DeleteRole; moto does not,
        # so DeleteRole would fail with DeleteConflict.
        backend = iam_backends[account_id][get_partition(region_name)]
        for role in list(backend.roles.values()):
            if role.name == resource_name:
                for arn in list(role.managed_policies):
                    backend.detach_role_policy(arn, role.name)
        original_delete_role(cls, resource_name, cloudformation_json, account_id, region_name)

    Role.delete_from_cloudformation_json = classmethod(delete_role)
    Instance._emu_cfn_patched = True
