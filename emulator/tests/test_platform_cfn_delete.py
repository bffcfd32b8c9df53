"""A failed resource delete keeps what that resource depends on, like AWS CloudFormation.

AWS never deletes a resource while a resource that depends on it (Ref, Fn::GetAtt, Fn::Sub,
DependsOn) still exists. So when a delete fails, everything the failed resource depends on,
transitively, stays in place untouched and a retried DeleteStack can run the failed resource's
handler again; resources with no dependency path to it are still deleted.
"""

from __future__ import annotations

import json

import pytest
from conftest import bootstrap_zip, wait_for

# Custom resource handler in shell, per ResourceProperties:
#   Gate: a file path; while that file exists, Delete answers FAILED ("gate closed")
#   FailOn: a RequestType answered FAILED
HANDLER = r'''
REQ=$(echo "$1" | jq -r .RequestType)
URL=$(echo "$1" | jq -r .ResponseURL)
GATE=$(echo "$1" | jq -r '.ResourceProperties.Gate // ""')
FAILON=$(echo "$1" | jq -r '.ResourceProperties.FailOn // ""')
PHYS=$(echo "$1" | jq -r '.PhysicalResourceId // ("phys-" + .LogicalResourceId)')
STATUS=SUCCESS
REASON=ok
if [ "$REQ" = Delete ] && [ -n "$GATE" ] && [ -e "$GATE" ]; then STATUS=FAILED; REASON="gate closed"; fi
[ "$FAILON" = "$REQ" ] && STATUS=FAILED && REASON="fails on $REQ"
BODY=$(echo "$1" | jq -c --arg s "$STATUS" --arg p "$PHYS" --arg r "$REASON" \
  '{Status: $s, Reason: $r, PhysicalResourceId: $p, StackId: .StackId, RequestId: .RequestId,
    LogicalResourceId: .LogicalResourceId, Data: {}}')
curl -sS -X PUT -H 'Content-Type:' --data-binary "$BODY" "$URL"
echo '{}'
'''

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
    "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}

# The protected resource's own provider lives in the stack: the function, its role.
KEPT_WITH_GUARDED = {"Role", "Fn", "Param", "Base", "Root"}


@pytest.fixture
def provider(emu, make_function):
    """ARN of an out-of-stack provider with the same handler."""
    return make_function("provider", HANDLER, timeout=30)


@pytest.fixture
def gate(tmp_path):
    """A closed gate: the Guarded resource's Delete fails until the file is removed."""
    path = tmp_path / "gate"
    path.write_text("closed")
    return path


def custom(service_token, **props):
    return {"Type": "Custom::Thing", "Properties": {"ServiceToken": service_token, **props}}


def template(emu, provider, gate, extra=None):
    """Guarded (served by the in-stack Fn) depends on Fn → Role (GetAtt), Param (Fn::Sub) and
    Base → Root (DependsOn, then Ref). Dependent depends on Guarded; Sibling shares Root only;
    Independent and Loose are unrelated."""
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="assets")
    s3.put_object(Bucket="assets", Key="handler.zip", Body=bootstrap_zip(HANDLER))
    resources = {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": TRUST}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "provided.al2023", "Handler": "main", "Timeout": 30,
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"S3Bucket": "assets", "S3Key": "handler.zip"}}},
        "Param": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": "p"}},
        "Root": custom(provider),
        "Base": custom(provider, Value={"Ref": "Root"}),
        "Guarded": {**custom({"Fn::GetAtt": ["Fn", "Arn"]}, Gate=str(gate),
                             Label={"Fn::Sub": "uses-${Param}"}), "DependsOn": "Base"},
        "Dependent": custom(provider, Value={"Ref": "Guarded"}),
        "Sibling": custom(provider, Value={"Ref": "Root"}),
        "Independent": custom(provider, Value="i"),
        "Loose": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": "l"}},
        **(extra or {}),
    }
    return {"Resources": resources}


def settle(cfn, name_or_id, timeout=90):
    def done():
        stack = cfn.describe_stacks(StackName=name_or_id)["Stacks"][0]
        return stack if not stack["StackStatus"].endswith("IN_PROGRESS") else None

    return wait_for(done, timeout)


def events_since(cfn, stack_id, count):
    """Resource events (logical id, status) after the first ``count`` events of the stack."""
    events = list(reversed(cfn.describe_stack_events(StackName=stack_id)["StackEvents"]))
    return [(e["LogicalResourceId"], e["ResourceStatus"]) for e in events[count:]]


def event_count(cfn, stack_id):
    return len(cfn.describe_stack_events(StackName=stack_id)["StackEvents"])


def deletes(emu):
    return [r["request"]["LogicalResourceId"] for r in emu.introspect(kind="cfn_request")["records"]
            if r["request"]["RequestType"] == "Delete"]


def resource_statuses(cfn, stack_id):
    return {r["LogicalResourceId"]: r["ResourceStatus"]
            for r in cfn.describe_stack_resources(StackName=stack_id)["StackResources"]}


def physical_ids(cfn, stack_id):
    return {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.describe_stack_resources(StackName=stack_id)["StackResources"]}


def assert_present(emu, physical):
    emu.client("lambda").get_function(FunctionName=physical["Fn"])
    emu.client("iam").get_role(RoleName=physical["Role"])
    emu.client("ssm").get_parameter(Name=physical["Param"])


def assert_gone(emu, physical):
    with pytest.raises(Exception, match="ResourceNotFound|not found"):
        emu.client("lambda").get_function(FunctionName=physical["Fn"])
    with pytest.raises(Exception, match="NoSuchEntity"):
        emu.client("iam").get_role(RoleName=physical["Role"])
    with pytest.raises(Exception, match="ParameterNotFound"):
        emu.client("ssm").get_parameter(Name=physical["Param"])


def test_failed_delete_keeps_its_dependencies_and_a_retry_finishes(emu, provider, gate):
    cfn = emu.client("cloudformation")
    cfn.create_stack(StackName="keeps", TemplateBody=json.dumps(template(emu, provider, gate)),
                     Capabilities=["CAPABILITY_IAM"])
    stack = settle(cfn, "keeps")
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    stack_id = stack["StackId"]
    physical = physical_ids(cfn, stack_id)
    before = event_count(cfn, stack_id)

    cfn.delete_stack(StackName="keeps")
    stack = settle(cfn, stack_id)
    assert stack["StackStatus"] == "DELETE_FAILED"
    assert "[Guarded]" in stack["StackStatusReason"]
    first = events_since(cfn, stack_id, before)
    touched = {lid for lid, status in first if lid != "keeps"}
    assert touched == {"Dependent", "Guarded", "Sibling", "Independent", "Loose"}, first
    assert ("Guarded", "DELETE_FAILED") in first
    # Dependents go first: Dependent's Delete completes before Guarded's starts.
    assert first.index(("Dependent", "DELETE_COMPLETE")) < first.index(
        ("Guarded", "DELETE_IN_PROGRESS"))
    statuses = resource_statuses(cfn, stack_id)
    assert statuses == {"Guarded": "DELETE_FAILED",
                        **{lid: "CREATE_COMPLETE" for lid in KEPT_WITH_GUARDED}}, statuses
    assert_present(emu, physical)
    with pytest.raises(Exception, match="ParameterNotFound"):
        emu.client("ssm").get_parameter(Name=physical["Loose"])
    assert sorted(deletes(emu)) == ["Dependent", "Guarded", "Independent", "Sibling"]

    # The user opens the gate; the retried delete runs Guarded's handler (its function still
    # exists) and then what it kept, in reverse dependency order.
    gate.unlink()
    before = event_count(cfn, stack_id)
    cfn.delete_stack(StackName=stack_id)
    stack = settle(cfn, stack_id)
    assert stack["StackStatus"] == "DELETE_COMPLETE", events_since(cfn, stack_id, before)
    second = deletes(emu)[4:]
    assert second == ["Guarded", "Base", "Root"]
    retried = [lid for lid, status in events_since(cfn, stack_id, before)
               if status == "DELETE_IN_PROGRESS" and lid != "keeps"]
    assert set(retried) == {"Guarded"} | KEPT_WITH_GUARDED
    assert retried.index("Guarded") < min(retried.index(lid) for lid in KEPT_WITH_GUARDED)
    assert_gone(emu, physical)


def test_failed_rollback_delete_keeps_its_dependencies(emu, provider, gate):
    cfn = emu.client("cloudformation")
    body = template(emu, provider, gate, extra={
        "Broken": {**custom(provider, FailOn="Create"), "DependsOn": "Guarded"}})
    # Only what Broken waits for is created before it fails.
    for unrelated in ("Dependent", "Sibling", "Independent", "Loose"):
        del body["Resources"][unrelated]
    cfn.create_stack(StackName="rollback", TemplateBody=json.dumps(body),
                     Capabilities=["CAPABILITY_IAM"])
    stack = settle(cfn, "rollback")
    assert stack["StackStatus"] == "ROLLBACK_FAILED", stack
    stack_id = stack["StackId"]
    statuses = resource_statuses(cfn, stack_id)
    assert statuses == {"Guarded": "DELETE_FAILED",
                        **{lid: "CREATE_COMPLETE" for lid in KEPT_WITH_GUARDED}}, statuses
    physical = physical_ids(cfn, stack_id)
    assert_present(emu, physical)
    assert deletes(emu) == ["Broken", "Guarded"]

    gate.unlink()
    cfn.delete_stack(StackName=stack_id)
    assert settle(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert deletes(emu)[2:] == ["Guarded", "Base", "Root"]
    assert_gone(emu, physical)


def test_failed_update_rollback_delete_keeps_its_dependencies(emu, provider, gate):
    cfn = emu.client("cloudformation")
    full = template(emu, provider, gate, extra={
        "Broken": {**custom(provider, FailOn="Create"), "DependsOn": "Guarded"}})
    for unrelated in ("Dependent", "Sibling", "Independent", "Loose"):
        del full["Resources"][unrelated]
    cfn.create_stack(StackName="upd", TemplateBody=json.dumps(
        {"Resources": {"Root": full["Resources"]["Root"]}}), Capabilities=["CAPABILITY_IAM"])
    stack_id = settle(cfn, "upd")["StackId"]
    before = event_count(cfn, stack_id)
    # The update adds Guarded and what it depends on, then Broken fails: the rollback deletes
    # the new resources, dependents first; Guarded's Delete fails, so what it uses stays.
    cfn.update_stack(StackName="upd", TemplateBody=json.dumps(full),
                     Capabilities=["CAPABILITY_IAM"])
    assert settle(cfn, stack_id)["StackStatus"] == "UPDATE_ROLLBACK_FAILED"
    rollback = events_since(cfn, stack_id, before)
    rollback = rollback[rollback.index(("upd", "UPDATE_ROLLBACK_IN_PROGRESS")):]
    deleted = {lid for lid, status in rollback if status.startswith("DELETE")}
    assert deleted == {"Broken", "Guarded"}, rollback
    assert ("Guarded", "DELETE_FAILED") in rollback
    assert deletes(emu) == ["Broken", "Guarded"]
    emu.client("lambda").get_function(FunctionName=next(
        f["FunctionName"] for f in emu.client("lambda").list_functions()["Functions"]
        if f["FunctionName"].startswith("upd-Fn")))
