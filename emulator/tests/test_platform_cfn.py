"""CloudFormation behaves like AWS for the resource types and protocols our stack uses."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError
from conftest import bootstrap_zip, wait_for

# A custom resource provider in shell: answers per ResourceProperties —
#   FailOn: RequestType to answer FAILED ("Reason": "custom reason <type>")
#   Id: the PhysicalResourceId to answer (default: keep the request's, or "phys-<logical id>")
#   Mode: on Create only, "silent" (never answer) or "big" (a response over 4096 bytes)
#   Sleep: seconds to sleep before answering
PROVIDER = r'''
REQ=$(echo "$1" | jq -r .RequestType)
URL=$(echo "$1" | jq -r .ResponseURL)
MODE=$(echo "$1" | jq -r '.ResourceProperties.Mode // "ok"')
FAILON=$(echo "$1" | jq -r '.ResourceProperties.FailOn // ""')
[ "$REQ" != "Create" ] && MODE=ok
SLEEP=$(echo "$1" | jq -r '.ResourceProperties.Sleep // "0"')
LOGICAL=$(echo "$1" | jq -r .LogicalResourceId)
PHYS=$(echo "$1" | jq -r '.ResourceProperties.Id // .PhysicalResourceId // empty')
[ -z "$PHYS" ] && PHYS="phys-$LOGICAL"
echo "provider $REQ $LOGICAL $PHYS" >&2
sleep "$SLEEP"
STATUS=SUCCESS
[ "$FAILON" = "$REQ" ] && STATUS=FAILED
PAD=""
[ "$MODE" = "big" ] && PAD=$(head -c 5000 /dev/zero | tr '\0' 'x')
BODY=$(echo "$1" | jq -c --arg s "$STATUS" --arg p "$PHYS" --arg pad "$PAD" --arg r "custom reason $REQ" \
  '{Status: $s, Reason: $r, PhysicalResourceId: $p, StackId: .StackId, RequestId: .RequestId,
    LogicalResourceId: .LogicalResourceId,
    Data: {Echo: (.ResourceProperties.Value // ""), Pad: $pad, Type: .RequestType}}')
if [ "$MODE" != "silent" ]; then
  curl -sS -X PUT -H 'Content-Type:' --data-binary "$BODY" "$URL"
fi
echo '{}'
'''

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
    "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture
def provider(emu, make_function):
    """ARN of the custom resource provider function."""
    return make_function("provider", PROVIDER, timeout=30)


def create(emu, name, template, parameters=None, wait=True, capabilities=("CAPABILITY_IAM",),
           timeout=60):
    cfn = emu.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template),
                     Parameters=[{"ParameterKey": k, "ParameterValue": v}
                                 for k, v in (parameters or {}).items()],
                     Capabilities=list(capabilities))
    return settle(emu, name, timeout) if wait else None


def settle(emu, name, timeout=60):
    cfn = emu.client("cloudformation")

    def done():
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        return stack if not stack["StackStatus"].endswith("IN_PROGRESS") else None

    return wait_for(done, timeout)


def events(emu, name):
    return list(reversed(emu.client("cloudformation")
                         .describe_stack_events(StackName=name)["StackEvents"]))


def failures(emu, name):
    """(logical id, status, reason) of every failed resource event: assertion messages."""
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason"))
            for e in events(emu, name) if e["ResourceStatus"].endswith("FAILED")]


def requests(emu):
    """Custom resource requests in the order CloudFormation sent them."""
    return [r["request"] for r in emu.introspect(kind="cfn_request")["records"]]


def custom(provider, **props):
    return {"Type": "Custom::Thing", "Properties": {"ServiceToken": provider, **props}}


def outputs(stack):
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


# ---------------------------------------------------------------------------------------------


def test_create_is_asynchronous_and_completes(emu, provider):
    cfn = emu.client("cloudformation")
    cfn.create_stack(StackName="async", TemplateBody=json.dumps(
        {"Resources": {"Slow": custom(provider, Sleep="1")}}))
    first = cfn.describe_stacks(StackName="async")["Stacks"][0]
    assert first["StackStatus"] == "CREATE_IN_PROGRESS"
    stack = settle(emu, "async")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    statuses = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in events(emu, "async")]
    assert statuses[0] == ("async", "CREATE_IN_PROGRESS")
    assert ("Slow", "CREATE_COMPLETE") in statuses
    assert statuses[-1] == ("async", "CREATE_COMPLETE")


def test_stack_with_native_resources(emu):
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="assets")
    s3.put_object(Bucket="assets", Key="fn.zip",
                  Body=bootstrap_zip('echo "{\\"group\\": \\"$_HANDLER\\", \\"t\\": \\"$TABLE\\"}"'))
    vpc = emu.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    template = {
        "Parameters": {
            "Ami": {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
                    "Default": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"},
            "Vpc": {"Type": "AWS::EC2::VPC::Id"}},
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": TRUST}},
            "Policy": {"Type": "AWS::IAM::Policy", "Properties": {
                "PolicyName": "p", "Roles": [{"Ref": "Role"}], "PolicyDocument": {
                    "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                            "Action": "states:StartExecution",
                                                            "Resource": "*"}]}}},
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
                "Runtime": "provided.al2023", "Handler": "bridge", "Timeout": 10,
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Code": {"S3Bucket": "assets", "S3Key": "fn.zip"},
                "Environment": {"Variables": {"TABLE": {"Ref": "AWS::StackName"}}}}},
            "Managed": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
                "Roles": [{"Ref": "Role"}], "PolicyDocument": {
                    "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                            "Action": "ec2:Describe*",
                                                            "Resource": "*"}]}}},
            "Profile": {"Type": "AWS::IAM::InstanceProfile", "Properties": {
                "Roles": [{"Ref": "Role"}]}},
            "Invoke": {"Type": "AWS::Lambda::Permission", "Properties": {
                "FunctionName": {"Fn::GetAtt": ["Fn", "Arn"]}, "Action": "lambda:InvokeFunction",
                "Principal": "cloudformation.amazonaws.com"}},
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {
                "LogGroupName": {"Fn::Sub": "/aws/lambda/${Fn}"}, "RetentionInDays": 7}},
            "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
                "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                "DefinitionString": {"Fn::Join": ["", [
                    '{"StartAt":"Call","States":{"Call":{"Type":"Task",',
                    '"Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"',
                    {"Fn::GetAtt": ["Fn", "Arn"]}, '","Payload":{"Step":"${StepName}"}},',
                    '"OutputPath":"$.Payload","End":true}}}']]},
                "DefinitionSubstitutions": {"StepName": "Ping"}}},
            "Sg": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
                "GroupDescription": "client", "VpcId": {"Ref": "Vpc"}}},
            "Ingress": {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {
                "GroupId": {"Ref": "Sg"}, "IpProtocol": "tcp", "FromPort": 2223, "ToPort": 2225,
                "SourceSecurityGroupId": {"Ref": "Sg"}}},
            "Egress": {"Type": "AWS::EC2::SecurityGroupEgress", "Properties": {
                "GroupId": {"Fn::GetAtt": ["Sg", "GroupId"]}, "IpProtocol": "tcp",
                "FromPort": 2223, "ToPort": 2225,
                "DestinationSecurityGroupId": {"Ref": "Sg"}}},
            "AmiParam": {"Type": "AWS::SSM::Parameter", "Properties": {
                "Type": "String", "Value": {"Ref": "Ami"}}},
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {
                "Version": "2012-10-17", "Statement": []}}},
            "Alias": {"Type": "AWS::KMS::Alias", "Properties": {
                "AliasName": "alias/emu-test", "TargetKeyId": {"Ref": "Key"}}},
        },
        "Outputs": {"Machine": {"Value": {"Ref": "Machine"}},
                    "Ami": {"Value": {"Ref": "Ami"}},
                    "Sg": {"Value": {"Ref": "Sg"}}},
    }
    stack = create(emu, "native", template, {"Vpc": vpc})
    assert stack["StackStatus"] == "CREATE_COMPLETE", failures(emu, "native")
    out = outputs(stack)
    assert out["Ami"].startswith("ami-")
    sfn = emu.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=out["Machine"], name="run1")
    result = wait_for(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(
        sfn.describe_execution(executionArn=execution["executionArn"])))
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"group": "bridge", "t": "native"}
    iam = emu.client("iam")
    role = next(r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("native-Role"))
    attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    assert len(attached) == 1
    assert iam.list_instance_profiles_for_role(RoleName=role["RoleName"])["InstanceProfiles"]
    group = emu.client("ec2").describe_security_groups(GroupIds=[out["Sg"]])["SecurityGroups"][0]
    assert any(p.get("FromPort") == 2223 for p in group["IpPermissions"])
    assert any(p.get("FromPort") == 2223 for p in group["IpPermissionsEgress"])


def test_custom_resource_request_shape_and_getatt(emu, provider):
    template = {"Resources": {
        "Thing": custom(provider, Value="v1", Count=2, Enabled=True, Nested={"N": 5},
                        ServiceTimeout=300),
        "User": custom(provider, Value={"Fn::GetAtt": ["Thing", "Echo"]})},
        "Outputs": {"Echo": {"Value": {"Fn::GetAtt": ["User", "Echo"]}},
                    "Id": {"Value": {"Ref": "Thing"}}}}
    stack = create(emu, "shape", template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", failures(emu, "shape")
    assert outputs(stack) == {"Echo": "v1", "Id": "phys-Thing"}
    first = next(r for r in requests(emu) if r["LogicalResourceId"] == "Thing")
    assert first["RequestType"] == "Create"
    assert "PhysicalResourceId" not in first
    assert first["ResourceProperties"] == {"ServiceToken": provider, "Value": "v1", "Count": "2",
                                           "Enabled": "true", "Nested": {"N": "5"},
                                           "ServiceTimeout": "300"}
    assert first["ResponseURL"].startswith(emu.endpoint + "/_emu/cfn-response/")
    assert "X-Amz-Signature=" in first["ResponseURL"]
    assert first["ResourceType"] == "Custom::Thing"


def test_failed_create_rolls_back_with_delete(emu, provider):
    template = {"Resources": {
        "First": custom(provider, Value="a"),
        "Broken": {**custom(provider, FailOn="Create", Id="broken-id"), "DependsOn": "First"}}}
    stack = create(emu, "failing", template)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = next(e for e in events(emu, "failing")
                  if e["LogicalResourceId"] == "Broken" and e["ResourceStatus"] == "CREATE_FAILED")
    assert "custom reason Create" in failed["ResourceStatusReason"]
    sent = [(r["RequestType"], r["LogicalResourceId"], r.get("PhysicalResourceId"))
            for r in requests(emu)]
    # The failed resource gets a Delete with the id its FAILED response carried, then First.
    assert sent == [("Create", "First", None), ("Create", "Broken", None),
                    ("Delete", "Broken", "broken-id"), ("Delete", "First", "phys-First")]
    reason = stack["StackStatusReason"] if "StackStatusReason" in stack else ""
    assert reason == "" or "Broken" in reason
    with pytest.raises(ClientError, match="ROLLBACK_COMPLETE state and can not be updated"):
        emu.client("cloudformation").update_stack(StackName="failing",
                                                  TemplateBody=json.dumps(template))


def test_disable_rollback_leaves_create_failed(emu, provider):
    cfn = emu.client("cloudformation")
    cfn.create_stack(StackName="norollback", DisableRollback=True, TemplateBody=json.dumps(
        {"Resources": {"Broken": custom(provider, FailOn="Create")}}))
    assert settle(emu, "norollback")["StackStatus"] == "CREATE_FAILED"
    assert [r["RequestType"] for r in requests(emu)] == ["Create"]


def test_delete_runs_in_reverse_dependency_order(emu, provider):
    template = {"Resources": {
        "A": custom(provider, Value="a"),
        "B": custom(provider, Value={"Ref": "A"}),
        "C": {**custom(provider, Value="c"), "DependsOn": ["B"]},
        "D": custom(provider, Value={"Fn::Sub": "${C}-${B.Echo}"})}}
    assert create(emu, "order", template)["StackStatus"] == "CREATE_COMPLETE"
    created = [r["LogicalResourceId"] for r in requests(emu) if r["RequestType"] == "Create"]
    assert created == ["A", "B", "C", "D"]
    emu.client("cloudformation").delete_stack(StackName="order")
    stack_id = emu.client("cloudformation").describe_stacks(StackName="order")["Stacks"][0]["StackId"]
    assert settle(emu, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    deleted = [r["LogicalResourceId"] for r in requests(emu) if r["RequestType"] == "Delete"]
    assert deleted == ["D", "C", "B", "A"]
    with pytest.raises(ClientError, match="does not exist"):
        emu.client("cloudformation").describe_stacks(StackName="order")


def test_independent_resources_are_created_in_parallel(emu, provider):
    template = {"Resources": {f"R{i}": custom(provider, Sleep="4") for i in range(3)}}
    assert create(emu, "parallel", template)["StackStatus"] == "CREATE_COMPLETE"
    history = [e for e in events(emu, "parallel") if e["LogicalResourceId"] != "parallel"]
    started = [e["Timestamp"] for e in history if e["ResourceStatus"] == "CREATE_IN_PROGRESS"
               and "ResourceStatusReason" not in e]
    completed = [e["Timestamp"] for e in history if e["ResourceStatus"] == "CREATE_COMPLETE"]
    # Every resource started before the first one (each takes 4 s, ample on a loaded machine) completed.
    assert max(started) < min(completed)


def test_service_timeout_fails_the_resource(emu, provider):
    # ServiceTimeout 300 s nominal = 3 s at scale 0.01 (the rollback's Delete, which the
    # provider answers, gets the same 3 s).
    template = {"Resources": {"Mute": custom(provider, Mode="silent", ServiceTimeout=300)}}
    started = time.time()
    stack = create(emu, "timeout", template)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE", failures(emu, "timeout")
    assert time.time() - started >= 300 * emu.time_scale
    failed = next(e for e in events(emu, "timeout") if e["ResourceStatus"] == "CREATE_FAILED")
    assert "ServiceTimeout" in failed["ResourceStatusReason"]


def test_response_over_4096_bytes_fails(emu, provider):
    stack = create(emu, "toolong", {"Resources": {"Big": custom(provider, Mode="big")}})
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = next(e for e in events(emu, "toolong") if e["ResourceStatus"] == "CREATE_FAILED")
    assert failed["ResourceStatusReason"] == "Response object is too long."


def test_update_with_parameter_change_sends_old_properties(emu, provider):
    template = {"Parameters": {"Size": {"Type": "Number"}, "Name": {"Type": "String"}},
                "Resources": {"Fleet": custom(provider, Value={"Ref": "Size"}),
                              "Other": custom(provider, Value={"Ref": "Name"})}}
    create(emu, "upd", template, {"Size": "2", "Name": "x"})
    cfn = emu.client("cloudformation")
    cfn.update_stack(StackName="upd", UsePreviousTemplate=True, Parameters=[
        {"ParameterKey": "Size", "ParameterValue": "3"},
        {"ParameterKey": "Name", "UsePreviousValue": True}])
    stack = settle(emu, "upd")
    assert stack["StackStatus"] == "UPDATE_COMPLETE", failures(emu, "upd")
    updates = [r for r in requests(emu) if r["RequestType"] == "Update"]
    assert len(updates) == 1  # Other did not change
    assert updates[0]["LogicalResourceId"] == "Fleet"
    assert updates[0]["PhysicalResourceId"] == "phys-Fleet"
    assert updates[0]["ResourceProperties"]["Value"] == "3"
    assert updates[0]["OldResourceProperties"]["Value"] == "2"
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params == {"Size": "3", "Name": "x"}
    with pytest.raises(ClientError, match="No updates are to be performed"):
        cfn.update_stack(StackName="upd", UsePreviousTemplate=True, Parameters=[
            {"ParameterKey": "Size", "UsePreviousValue": True},
            {"ParameterKey": "Name", "UsePreviousValue": True}])


def test_replacement_deletes_old_physical_id_after_update(emu, provider):
    template = {"Parameters": {"Id": {"Type": "String"}},
                "Resources": {"Store": custom(provider, Id={"Ref": "Id"})}}
    create(emu, "replace", template, {"Id": "old-id"})
    emu.client("cloudformation").update_stack(StackName="replace", UsePreviousTemplate=True,
                                              Parameters=[{"ParameterKey": "Id",
                                                           "ParameterValue": "new-id"}])
    assert settle(emu, "replace")["StackStatus"] == "UPDATE_COMPLETE"
    sent = [(r["RequestType"], r.get("PhysicalResourceId")) for r in requests(emu)]
    assert sent == [("Create", None), ("Update", "old-id"), ("Delete", "old-id")]
    statuses = [e["ResourceStatus"] for e in events(emu, "replace")
                if e["LogicalResourceId"] == "replace"]
    assert statuses[-2:] == ["UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_COMPLETE"]


def test_failed_update_rolls_back(emu, provider):
    template = {"Parameters": {"V": {"Type": "String"}},
                "Resources": {"Kept": custom(provider, Value={"Ref": "V"})}}
    create(emu, "updfail", template, {"V": "1"})
    broken = {"Parameters": template["Parameters"], "Resources": {
        "Kept": custom(provider, Value={"Ref": "V"}),
        "New": custom(provider, Value="n", Id="new-phys"),
        "Bad": {**custom(provider, FailOn="Create"), "DependsOn": ["Kept", "New"]}}}
    emu.client("cloudformation").update_stack(
        StackName="updfail", TemplateBody=json.dumps(broken),
        Parameters=[{"ParameterKey": "V", "ParameterValue": "2"}])
    stack = settle(emu, "updfail")
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", failures(emu, "updfail")
    sent = [(r["RequestType"], r["LogicalResourceId"], r.get("PhysicalResourceId"),
             r["ResourceProperties"].get("Value"), (r.get("OldResourceProperties") or {}).get("Value"))
            for r in requests(emu)]
    assert sent[0] == ("Create", "Kept", None, "1", None)
    assert set(sent[1:3]) == {("Update", "Kept", "phys-Kept", "2", "1"),
                              ("Create", "New", None, "n", None)}
    assert sent[3] == ("Create", "Bad", None, None, None)
    # Rollback: Kept back to 1, and Delete for what the update created (incl. the failed one).
    rollback = sent[4:]
    assert ("Update", "Kept", "phys-Kept", "1", "2") in rollback
    assert ("Delete", "New", "new-phys", "n", None) in rollback
    assert ("Delete", "Bad", "phys-Bad", None, None) in rollback
    assert len(rollback) == 3
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params == {"V": "1"}
    resources = emu.client("cloudformation").describe_stack_resources(StackName="updfail")
    assert [r["LogicalResourceId"] for r in resources["StackResources"]] == ["Kept"]


def test_rules_fail_create_with_assertion_description(emu, provider):
    template = {"Parameters": {"Env": {"Type": "String"}, "Hsms": {"Type": "Number"}},
                "Rules": {"ProdNeedsTwo": {
                    "RuleCondition": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                    "Assertions": [{"Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Hsms"}, "1"]}]},
                                    "AssertDescription": "Production needs at least 2 HSMs"}]}},
                "Resources": {"T": custom(provider)}}
    cfn = emu.client("cloudformation")
    with pytest.raises(ClientError) as err:
        cfn.create_stack(StackName="rules", TemplateBody=json.dumps(template), Parameters=[
            {"ParameterKey": "Env", "ParameterValue": "prod"},
            {"ParameterKey": "Hsms", "ParameterValue": "1"}])
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert err.value.response["Error"]["Message"] == "Production needs at least 2 HSMs"
    assert create(emu, "rules", template, {"Env": "dev", "Hsms": "1"})["StackStatus"] == \
        "CREATE_COMPLETE"
    with pytest.raises(ClientError, match="Production needs at least 2 HSMs"):
        cfn.update_stack(StackName="rules", UsePreviousTemplate=True, Parameters=[
            {"ParameterKey": "Env", "ParameterValue": "prod"},
            {"ParameterKey": "Hsms", "UsePreviousValue": True}])


def test_rules_value_of_all_reads_subnet_attributes(emu):
    """Fn::ValueOfAll/Fn::ValueOf/Fn::RefAll read live attributes of AWS-specific parameters."""
    ec2 = emu.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    inside = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24",
                               AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    outside = ec2.create_subnet(VpcId=other, CidrBlock="10.8.1.0/24",
                                AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    template = {"Parameters": {"VpcId": {"Type": "AWS::EC2::VPC::Id"},
                               "SubnetIds": {"Type": "List<AWS::EC2::Subnet::Id>"}},
                "Rules": {"SubnetsInVpc": {"Assertions": [
                    {"Assert": {"Fn::EachMemberEquals": [
                        {"Fn::ValueOfAll": ["AWS::EC2::Subnet::Id", "VpcId"]}, {"Ref": "VpcId"}]},
                     "AssertDescription": "All subnets must be in VpcId"},
                    {"Assert": {"Fn::EachMemberIn": [
                        {"Fn::ValueOf": ["SubnetIds", "AvailabilityZone"]},
                        ["us-east-1a", "us-east-1b"]]},
                     "AssertDescription": "Subnets must be in us-east-1a or us-east-1b"},
                    {"Assert": {"Fn::Contains": [
                        {"Fn::RefAll": "AWS::EC2::VPC::Id"}, {"Ref": "VpcId"}]},
                     "AssertDescription": "RefAll lists the VPC parameter"}]}},
                "Resources": {"L": {"Type": "AWS::Logs::LogGroup"}}}
    with pytest.raises(ClientError, match="All subnets must be in VpcId"):
        create(emu, "valueof-bad", template, {"VpcId": vpc, "SubnetIds": f"{inside},{outside}"})
    stack = create(emu, "valueof-ok", template, {"VpcId": vpc, "SubnetIds": inside})
    assert stack["StackStatus"] == "CREATE_COMPLETE"


def test_conditions_skip_resources_and_outputs(emu, provider):
    template = {"Parameters": {"KeyStore": {"Type": "String", "AllowedValues": ["true", "false"]}},
                "Conditions": {"KeyStoreEnabled": {"Fn::Equals": [{"Ref": "KeyStore"}, "true"]}},
                "Resources": {"Always": custom(provider, Value={"Fn::If": [
                    "KeyStoreEnabled", "with", {"Ref": "AWS::NoValue"}]}),
                    "Store": {**custom(provider), "Condition": "KeyStoreEnabled"}},
                "Outputs": {"Store": {"Condition": "KeyStoreEnabled",
                                      "Value": {"Ref": "Store"}}}}
    stack = create(emu, "cond", template, {"KeyStore": "false"})
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(stack) == {}
    sent = requests(emu)
    assert [r["LogicalResourceId"] for r in sent] == ["Always"]
    assert "Value" not in sent[0]["ResourceProperties"]
    with pytest.raises(ClientError, match="AllowedValues"):
        create(emu, "cond2", template, {"KeyStore": "maybe"})


def test_missing_parameter_and_unknown_type_are_validation_errors(emu):
    with pytest.raises(ClientError, match=r"Parameters: \[Vpc\] must have values"):
        create(emu, "noparam", {"Parameters": {"Vpc": {"Type": "String"}},
                                "Resources": {"L": {"Type": "AWS::Logs::LogGroup"}}})
    with pytest.raises(ClientError, match="Unrecognized resource types: \\[AWS::Nope::Thing\\]"):
        create(emu, "badtype", {"Resources": {"X": {"Type": "AWS::Nope::Thing"}}})
    with pytest.raises(ClientError, match="does not exist"):
        create(emu, "badsubnet", {"Parameters": {"S": {"Type": "List<AWS::EC2::Subnet::Id>"}},
                                  "Resources": {"L": {"Type": "AWS::Logs::LogGroup"}}},
               {"S": "subnet-00000000"})


def test_iam_resources_need_capabilities(emu):
    template = {"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": "named", "AssumeRolePolicyDocument": TRUST}}}}
    with pytest.raises(ClientError) as err:
        create(emu, "caps", template, capabilities=("CAPABILITY_IAM",))
    assert err.value.response["Error"]["Code"] == "InsufficientCapabilitiesException"
    assert "CAPABILITY_NAMED_IAM" in err.value.response["Error"]["Message"]
    assert create(emu, "caps", template, capabilities=("CAPABILITY_NAMED_IAM",))["StackStatus"] \
        == "CREATE_COMPLETE"


def test_secret_generate_secret_string_rules_and_retain(emu):
    template = {"Resources": {
        "Admin": {"Type": "AWS::SecretsManager::Secret", "Properties": {
            "Name": "admin", "GenerateSecretString": {
                "PasswordLength": 32, "ExcludePunctuation": True,
                "ExcludeCharacters": "0Oo1lI", "RequireEachIncludedType": True}}},
        "Json": {"Type": "AWS::SecretsManager::Secret", "Properties": {
            "GenerateSecretString": {"SecretStringTemplate": '{"user": "kmsuser"}',
                                     "GenerateStringKey": "password", "PasswordLength": 12}}},
        "Anchor": {"Type": "AWS::SecretsManager::Secret", "DeletionPolicy": "Retain",
                   "Properties": {"Name": "trust-anchor", "SecretString": "PEM"}}},
        "Outputs": {"Json": {"Value": {"Ref": "Json"}}}}
    stack = create(emu, "secrets", template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", failures(emu, "secrets")
    sm = emu.client("secretsmanager")
    password = sm.get_secret_value(SecretId="admin")["SecretString"]
    assert len(password) == 32 and password.isalnum()
    assert not set(password) & set("0Oo1lI")
    assert any(c.islower() for c in password) and any(c.isupper() for c in password)
    assert any(c.isdigit() for c in password)
    document = json.loads(sm.get_secret_value(SecretId=outputs(stack)["Json"])["SecretString"])
    assert document["user"] == "kmsuser" and len(document["password"]) == 12
    assert outputs(stack)["Json"].startswith("arn:aws:secretsmanager:")
    # Introspection has every generated value.
    values = {s["value"] for s in emu.introspect(sections="secrets")["secrets"]}
    assert password in values
    assert any(v.startswith("{") and json.loads(v).get("password") == document["password"]
               for v in values)
    cfn = emu.client("cloudformation")
    cfn.delete_stack(StackName="secrets")
    stack_id = stack["StackId"]
    assert settle(emu, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert sm.get_secret_value(SecretId="trust-anchor")["SecretString"] == "PEM"
    with pytest.raises(ClientError):
        sm.get_secret_value(SecretId="admin")
    skipped = [e for e in events(emu, stack_id) if e["ResourceStatus"] == "DELETE_SKIPPED"]
    assert [e["LogicalResourceId"] for e in skipped] == ["Anchor"]


def test_state_machine_definition_object_with_substitutions(emu):
    template = {"Resources": {"Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
        "RoleArn": "arn:aws:iam::123456789012:role/x",
        "Definition": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {
            "stack": "${Stack}", "n": "${N}"}, "End": True}}},
        "DefinitionSubstitutions": {"Stack": {"Ref": "AWS::StackName"}, "N": 3}}}},
        "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Machine", "Arn"]}},
                    "Name": {"Value": {"Fn::GetAtt": ["Machine", "Name"]}}}}
    stack = create(emu, "sfnstack", template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", failures(emu, "sfnstack")
    sfn = emu.client("stepfunctions")
    arn = outputs(stack)["Arn"]
    assert outputs(stack)["Name"] in arn
    execution = sfn.start_execution(stateMachineArn=arn, name="one")
    result = wait_for(lambda: (lambda d: d if d["status"] != "RUNNING" else None)(
        sfn.describe_execution(executionArn=execution["executionArn"])))
    assert json.loads(result["output"]) == {"stack": "sfnstack", "n": "3"}


def test_introspection_has_stack_events_and_outputs(emu, provider):
    create(emu, "seen", {"Resources": {"T": custom(provider, Value="x")},
                         "Outputs": {"O": {"Value": {"Fn::GetAtt": ["T", "Echo"]}}}})
    stacks = emu.introspect(sections="stacks")["stacks"]
    seen = next(s for s in stacks if s["StackName"] == "seen")
    assert seen["Outputs"] == [{"OutputKey": "O", "OutputValue": "x"}]
    assert [e["ResourceStatus"] for e in seen["Events"]][-1] == "CREATE_COMPLETE"


def test_response_url_rejects_unknown_tokens(emu):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{emu.endpoint}/_emu/cfn-response/nope", data=b"{}",
                                     method="PUT")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request)
    assert err.value.code == 403


def test_wait_condition_stabilizes_on_signal(emu, make_function):
    """Exercises the stabilization hook: the condition blocks until a signal arrives."""
    signaller = make_function("signaller", r'''URL=$(echo "$1" | jq -r .Url)
curl -sS -X PUT -H 'Content-Type:' --data-binary '{"Status":"SUCCESS","UniqueId":"i-1","Data":"ready","Reason":"ok"}' "$URL"
echo '{}' ''')
    template = {"Resources": {
        "Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
        "Wait": {"Type": "AWS::CloudFormation::WaitCondition", "Properties": {
            "Handle": {"Ref": "Handle"}, "Timeout": 300}}},
        "Outputs": {"Url": {"Value": {"Ref": "Handle"}},
                    "Data": {"Value": {"Fn::GetAtt": ["Wait", "Data"]}}}}
    emu.client("cloudformation").create_stack(StackName="waiter", TemplateBody=json.dumps(template))
    url = wait_for(lambda: next((e["PhysicalResourceId"] for e in events(emu, "waiter")
                                 if e["LogicalResourceId"] == "Handle"
                                 and e["ResourceStatus"] == "CREATE_COMPLETE"), None))
    time.sleep(0.5)
    assert emu.client("cloudformation").describe_stacks(
        StackName="waiter")["Stacks"][0]["StackStatus"] == "CREATE_IN_PROGRESS"
    emu.client("lambda").invoke(FunctionName=signaller, Payload=json.dumps({"Url": url}).encode())
    stack = settle(emu, "waiter")
    assert stack["StackStatus"] == "CREATE_COMPLETE", failures(emu, "waiter")
    assert json.loads(outputs(stack)["Data"]) == {"i-1": "ready"}


def test_wait_condition_times_out(emu):
    template = {"Resources": {
        "Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
        "Wait": {"Type": "AWS::CloudFormation::WaitCondition", "Properties": {
            "Handle": {"Ref": "Handle"}, "Timeout": 50, "Count": 2}}}}
    stack = create(emu, "nowait", template)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert ("Wait", "CREATE_FAILED",
            "WaitCondition timed out. Received 0 conditions when expecting 2") in \
        failures(emu, "nowait")


def test_failure_cancels_resources_in_progress(emu, provider):
    # Mute never answers (ServiceTimeout 3600 nominal = 36 s real); Broken fails at once.
    template = {"Resources": {"Mute": custom(provider, Mode="silent"),
                              "Broken": custom(provider, FailOn="Create", Sleep="0.5")}}
    started = time.time()
    stack = create(emu, "cancel", template)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert time.time() - started < 20
    assert ("Mute", "CREATE_FAILED", "Resource creation cancelled") in failures(emu, "cancel")
    deletes = {r["LogicalResourceId"] for r in requests(emu) if r["RequestType"] == "Delete"}
    assert deletes == {"Mute", "Broken"}


def test_reference_to_unknown_resource_is_a_validation_error(emu):
    template = {"Resources": {"L": {"Type": "AWS::Logs::LogGroup", "Properties": {
        "LogGroupName": {"Fn::Sub": "/x/${Missing}"}}}}}
    with pytest.raises(ClientError, match=r"Unresolved resource dependencies \[Missing\]"):
        create(emu, "unresolved", template)


def test_template_url_on_the_emulators_s3(emu):
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="cdk-assets")
    s3.put_object(Bucket="cdk-assets", Key="t/stack.json", Body=json.dumps(
        {"Resources": {"L": {"Type": "AWS::Logs::LogGroup"}}}))
    cfn = emu.client("cloudformation")
    cfn.create_stack(StackName="fromurl",
                     TemplateURL=f"{emu.endpoint}/cdk-assets/t/stack.json")
    assert settle(emu, "fromurl")["StackStatus"] == "CREATE_COMPLETE"
    cfn.create_stack(StackName="fromurl2", TemplateURL=(
        "https://cdk-assets.s3.us-east-1.amazonaws.com/t/stack.json"))
    assert settle(emu, "fromurl2")["StackStatus"] == "CREATE_COMPLETE"
    with pytest.raises(ClientError, match="Access Denied"):
        cfn.create_stack(StackName="nourl", TemplateURL=f"{emu.endpoint}/cdk-assets/missing")


def test_secret_without_value_is_empty_until_put(emu):
    stack = create(emu, "empty", {"Resources": {"Anchor": {
        "Type": "AWS::SecretsManager::Secret", "Properties": {"Description": "trust anchor"}}},
        "Outputs": {"Arn": {"Value": {"Ref": "Anchor"}}}})
    assert stack["StackStatus"] == "CREATE_COMPLETE", failures(emu, "empty")
    sm = emu.client("secretsmanager")
    arn = outputs(stack)["Arn"]
    with pytest.raises(ClientError) as err:
        sm.get_secret_value(SecretId=arn)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    sm.put_secret_value(SecretId=arn, SecretString="-----BEGIN CERTIFICATE-----")
    assert sm.get_secret_value(SecretId=arn)["SecretString"].startswith("-----BEGIN")
