"""``AWS::CloudHSM::Cluster`` through CloudFormation: create waits for UNINITIALIZED, Ref/GetAtt,
in-place updates, replacement on create-only changes, delete refused while HSMs remain."""

from __future__ import annotations

import json
import time

from test_cloudhsm_support import Toolbox, hsm_env  # noqa: F401

TEMPLATE = {
    "Parameters": {
        "Subnets": {"Type": "List<AWS::EC2::Subnet::Id>"},
        "Mode": {"Type": "String", "Default": "FIPS"},
        "Days": {"Type": "String", "Default": "90"},
        "Owner": {"Type": "String", "Default": "team-a"},
    },
    "Resources": {
        "Cluster": {
            "Type": "AWS::CloudHSM::Cluster",
            "Properties": {
                "HsmType": "hsm2m.medium",
                "SubnetIds": {"Ref": "Subnets"},
                "Mode": {"Ref": "Mode"},
                "BackupRetentionPolicy": {"Type": "DAYS", "Value": {"Ref": "Days"}},
                "Tags": [{"Key": "owner", "Value": {"Ref": "Owner"}}],
            },
        }
    },
    "Outputs": {
        "Ref": {"Value": {"Ref": "Cluster"}},
        "ClusterId": {"Value": {"Fn::GetAtt": ["Cluster", "ClusterId"]}},
        "State": {"Value": {"Fn::GetAtt": ["Cluster", "State"]}},
        "SecurityGroup": {"Value": {"Fn::GetAtt": ["Cluster", "SecurityGroup"]}},
        "VpcId": {"Value": {"Fn::GetAtt": ["Cluster", "VpcId"]}},
        "BackupPolicy": {"Value": {"Fn::GetAtt": ["Cluster", "BackupPolicy"]}},
    },
}


def params(subnets: list[str], **extra: str) -> list[dict[str, str]]:
    values = {"Subnets": ",".join(subnets), **extra}
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def wait_stack(cfn, name: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("IN_PROGRESS"):
            return stack
        assert time.time() < deadline, stack["StackStatus"]
        time.sleep(0.1)


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def reasons(cfn, name: str) -> list[str]:
    return [e.get("ResourceStatusReason", "") for e in cfn.describe_stack_events(StackName=name)["StackEvents"]]


def test_create_waits_for_uninitialized_and_exposes_attributes(hsm_env: Toolbox):
    cfn = hsm_env.emu.client("cloudformation")
    vpc, subnets = hsm_env.vpc()
    cfn.create_stack(StackName="hsm", TemplateBody=json.dumps(TEMPLATE), Parameters=params(subnets))
    stack = wait_stack(cfn, "hsm")
    assert stack["StackStatus"] == "CREATE_COMPLETE", reasons(cfn, "hsm")
    out = outputs(stack)
    cid = out["ClusterId"]
    assert out["Ref"] == f"arn:aws:cloudhsm:us-east-1:123456789012:cluster/{cid}"
    assert out["State"] == "UNINITIALIZED" and out["VpcId"] == vpc and out["BackupPolicy"] == "DEFAULT"
    cluster = hsm_env.describe(cid)
    assert cluster["SecurityGroup"] == out["SecurityGroup"]
    assert cluster["BackupRetentionPolicy"] == {"Type": "DAYS", "Value": "90"}
    assert cluster["TagList"] == [{"Key": "owner", "Value": "team-a"}]
    physical = cfn.describe_stack_resource(StackName="hsm", LogicalResourceId="Cluster")
    assert physical["StackResourceDetail"]["PhysicalResourceId"] == out["Ref"]


def test_retention_and_tags_update_in_place(hsm_env: Toolbox):
    cfn = hsm_env.emu.client("cloudformation")
    _, subnets = hsm_env.vpc()
    cfn.create_stack(StackName="hsm", TemplateBody=json.dumps(TEMPLATE), Parameters=params(subnets))
    cid = outputs(wait_stack(cfn, "hsm"))["ClusterId"]
    cfn.update_stack(StackName="hsm", TemplateBody=json.dumps(TEMPLATE),
                     Parameters=params(subnets, Days="30", Owner="team-b"))
    stack = wait_stack(cfn, "hsm")
    assert stack["StackStatus"] == "UPDATE_COMPLETE", reasons(cfn, "hsm")
    assert outputs(stack)["ClusterId"] == cid
    cluster = hsm_env.describe(cid)
    assert cluster["BackupRetentionPolicy"] == {"Type": "DAYS", "Value": "30"}
    assert cluster["TagList"] == [{"Key": "owner", "Value": "team-b"}]


def test_create_only_change_replaces_the_cluster(hsm_env: Toolbox):
    cfn = hsm_env.emu.client("cloudformation")
    _, subnets = hsm_env.vpc()
    cfn.create_stack(StackName="hsm", TemplateBody=json.dumps(TEMPLATE), Parameters=params(subnets))
    old = outputs(wait_stack(cfn, "hsm"))["ClusterId"]
    cfn.update_stack(StackName="hsm", TemplateBody=json.dumps(TEMPLATE), Parameters=params(subnets, Mode="NON_FIPS"))
    stack = wait_stack(cfn, "hsm")
    assert stack["StackStatus"] == "UPDATE_COMPLETE", reasons(cfn, "hsm")
    new = outputs(stack)["ClusterId"]
    assert new != old
    assert hsm_env.describe(new)["Mode"] == "NON_FIPS"
    assert hsm_env.wait_cluster(old, "DELETED")["State"] == "DELETED"


def test_delete_fails_while_hsms_remain(hsm_env: Toolbox):
    cfn = hsm_env.emu.client("cloudformation")
    _, subnets = hsm_env.vpc()
    cfn.create_stack(StackName="hsm", TemplateBody=json.dumps(TEMPLATE), Parameters=params(subnets))
    cid = outputs(wait_stack(cfn, "hsm"))["ClusterId"]
    hsm = hsm_env.first_hsm(cid)
    cfn.delete_stack(StackName="hsm")
    stack = wait_stack(cfn, "hsm")
    assert stack["StackStatus"] == "DELETE_FAILED"
    assert any("Delete all HSMs" in r and "HandlerErrorCode: InvalidRequest" in r for r in reasons(cfn, "hsm"))
    hsm_env.hsm.delete_hsm(ClusterId=cid, HsmId=hsm["HsmId"])
    hsm_env.wait_hsm(cid, hsm["HsmId"], None)
    cfn.delete_stack(StackName="hsm")
    deadline = time.time() + 60
    while True:
        stacks = cfn.describe_stacks(StackName=stack["StackId"])["Stacks"]
        if stacks[0]["StackStatus"] == "DELETE_COMPLETE":
            break
        assert time.time() < deadline and not stacks[0]["StackStatus"].endswith("FAILED"), stacks[0]["StackStatus"]
        time.sleep(0.1)
    assert hsm_env.describe(cid)["State"] == "DELETED"


def test_invalid_properties_fail_the_create(hsm_env: Toolbox):
    cfn = hsm_env.emu.client("cloudformation")
    _, subnets = hsm_env.vpc()
    cfn.create_stack(StackName="hsm", TemplateBody=json.dumps(TEMPLATE), Parameters=params(subnets, Days="3"))
    stack = wait_stack(cfn, "hsm")
    assert stack["StackStatus"] in ("ROLLBACK_COMPLETE", "CREATE_FAILED")
    assert any("7 - 379" in r for r in reasons(cfn, "hsm"))
    assert hsm_env.hsm.describe_clusters()["Clusters"] == []
