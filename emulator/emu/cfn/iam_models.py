"""``AWS::IAM::Role`` through moto's own CloudFormation model, with what moto leaves out:

* create: ``ManagedPolicyArns`` — moto ignores them, so a role with
  ``AmazonSSMManagedInstanceCore`` would not let the SSM agent register.
* delete: CloudFormation detaches the role's managed policies before DeleteRole; moto does not,
  so DeleteRole would fail with DeleteConflict.

Both wrap moto's classmethods and only add what is missing, so they are harmless if moto later
models these properties itself.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    from moto.iam.models import Role, iam_backends
    from moto.utilities.utils import get_partition

    if getattr(Role, "_emu_cfn_patched", False):
        return

    original_create = Role.create_from_cloudformation_json.__func__

    def create_role(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str,
                    region_name: str, **kwargs: Any) -> Any:
        role = original_create(cls, resource_name, cloudformation_json, account_id, region_name,
                               **kwargs)
        arns = (cloudformation_json.get("Properties") or {}).get("ManagedPolicyArns") or []
        backend = iam_backends[account_id][get_partition(region_name)]
        for arn in arns:
            if arn not in role.managed_policies:
                backend.attach_role_policy(arn, role.name)
        return role

    original_delete = Role.delete_from_cloudformation_json.__func__

    def delete_role(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str,
                    region_name: str) -> None:
        backend = iam_backends[account_id][get_partition(region_name)]
        for role in list(backend.roles.values()):
            if role.name == resource_name:
                for arn in list(role.managed_policies):
                    backend.detach_role_policy(arn, role.name)
        original_delete(cls, resource_name, cloudformation_json, account_id, region_name)

    Role.create_from_cloudformation_json = classmethod(create_role)
    Role.delete_from_cloudformation_json = classmethod(delete_role)
    Role._emu_cfn_patched = True
