"""SSM Run Command on emulated instances: scripts really run in the instance's sandbox.

Also holds the helpers the other ``test_client_*`` files use (an SSM-managed instance, running a
script and waiting for its invocation).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import wait_for

TERMINAL = ("Success", "Failed", "TimedOut", "Cancelled")
EC2_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


# ------------------------------------------------------------------------------------ helpers
class Client:
    """An emulated admin instance and ways to run scripts on it."""

    def __init__(self, emu: Any):
        self.emu = emu
        self.ec2 = emu.client("ec2")
        self.iam = emu.client("iam")
        self.ssm = emu.client("ssm")
        self._profiles: dict[bool, str] = {}

    def network(self) -> tuple[str, list[str]]:
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [self.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24",
                                          AvailabilityZone=az)["Subnet"]["SubnetId"]
                   for i, az in enumerate(["us-east-1a", "us-east-1b"])]
        return vpc, subnets

    def profile(self, ssm: bool = True) -> str:
        if ssm not in self._profiles:
            name = "client-ssm" if ssm else "client-nossm"
            self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST)
            if ssm:
                self.iam.attach_role_policy(RoleName=name, PolicyArn=SSM_CORE)
            self.iam.create_instance_profile(InstanceProfileName=name)
            self.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
            self._profiles[ssm] = name
        return self._profiles[ssm]

    def instance(self, subnet: str | None = None, security_groups: list[str] | None = None,
                 user_data: str | None = None, tags: dict[str, str] | None = None,
                 ssm: bool | None = True, wait: bool = True) -> str:
        if subnet is None:
            _, subnets = self.network()
            subnet = subnets[0]
        kwargs: dict[str, Any] = {"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1,
                                  "SubnetId": subnet}
        if security_groups:
            kwargs["SecurityGroupIds"] = security_groups
        if user_data is not None:
            kwargs["UserData"] = user_data
        if ssm is not None:
            kwargs["IamInstanceProfile"] = {"Name": self.profile(ssm)}
        if tags:
            kwargs["TagSpecifications"] = [{"ResourceType": "instance", "Tags": [
                {"Key": k, "Value": v} for k, v in tags.items()]}]
        instance_id = self.ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"]
        if wait:
            self.wait_online(instance_id)
        return instance_id

    def node(self, instance_id: str) -> dict[str, Any]:
        status, body = self.emu.emu("GET", "client/instances")
        assert status == 200, body
        return next(n for n in body["instances"] if n["instance_id"] == instance_id)

    def wait_online(self, instance_id: str, managed: bool = True) -> None:
        wait_for(lambda: self.node(instance_id)["online"]
                 and (self.node(instance_id)["ssm_managed"] or not managed), timeout=30)

    def file(self, instance_id: str, path: str) -> str | None:
        status, body = self.emu.emu("GET", f"client/file?instance_id={instance_id}&path={path}")
        assert status == 200, body
        return body["content"]

    def send(self, instance_id: str, script: str, **kwargs: Any) -> str:
        return self.ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                                     Parameters={"commands": [script]}, **kwargs)["Command"]["CommandId"]

    def invocation(self, command_id: str, instance_id: str, timeout: float = 60,
                   **kwargs: Any) -> dict[str, Any]:
        def done() -> Any:
            try:
                got = self.ssm.get_command_invocation(CommandId=command_id,
                                                      InstanceId=instance_id, **kwargs)
            except ClientError as err:
                if err.response["Error"]["Code"] == "InvocationDoesNotExist":
                    return None  # AWS answers this briefly after SendCommand too
                raise
            return got if got["Status"] in TERMINAL else None

        return wait_for(done, timeout=timeout)

    def run(self, instance_id: str, script: str, timeout: float = 60, **kwargs: Any) -> dict:
        return self.invocation(self.send(instance_id, script, **kwargs), instance_id, timeout)


@pytest.fixture
def client(emu: Any) -> Client:
    return Client(emu)


# -------------------------------------------------------------------------------------- tests
def test_shell_script_runs_and_output_is_returned(client: Client) -> None:
    iid = client.instance()
    inv = client.run(iid, "echo hello; echo oops >&2; echo data > /tmp/x; cat /tmp/x")
    assert inv["Status"] == "Success" and inv["StatusDetails"] == "Success", inv
    assert inv["ResponseCode"] == 0
    assert inv["StandardOutputContent"] == "hello\ndata\n"
    assert inv["StandardErrorContent"] == "oops\n"
    assert inv["PluginName"] == "aws:runShellScript"
    # The file landed in the instance's own /tmp, not the host's.
    assert client.file(iid, "/tmp/x") == "data\n"


def test_failing_script_reports_exit_code(client: Client) -> None:
    iid = client.instance()
    inv = client.run(iid, "echo partial; exit 7")
    assert inv["Status"] == "Failed" and inv["ResponseCode"] == 7
    assert inv["StandardOutputContent"] == "partial\n"
    command = client.ssm.list_commands(CommandId=inv["CommandId"])["Commands"][0]
    assert command["Status"] == "Failed" and command["ErrorCount"] == 1


def test_status_moves_pending_inprogress_success(client: Client) -> None:
    iid = client.instance()
    command = client.ssm.send_command(InstanceIds=[iid], DocumentName="AWS-RunShellScript",
                                      Parameters={"commands": ["sleep 1.5; echo done"]})["Command"]
    assert command["Status"] == "Pending"
    seen = set()

    def finished() -> bool:
        try:
            got = client.ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=iid)
        except ClientError:
            return False
        seen.add(got["Status"])
        return got["Status"] == "Success"

    wait_for(finished, timeout=30)
    assert "InProgress" in seen


def test_instances_are_isolated_from_each_other(client: Client) -> None:
    _, subnets = client.network()
    a = client.instance(subnets[0])
    b = client.instance(subnets[0])
    assert client.run(a, "echo a > /opt/mine")["Status"] == "Success"
    inv = client.run(b, "cat /opt/mine")
    assert inv["Status"] == "Failed" and "No such file" in inv["StandardErrorContent"]


def test_document_with_parameters_defaults_and_validation(client: Client) -> None:
    iid = client.instance()
    content = {
        "schemaVersion": "2.2",
        "description": "greets",
        "parameters": {
            "Name": {"type": "String", "allowedPattern": "^[a-z]+$"},
            "Greeting": {"type": "String", "default": "hello"},
        },
        "mainSteps": [{"action": "aws:runShellScript", "name": "greet",
                       "inputs": {"runCommand": ["set -e", "echo '{{ Greeting }} {{Name}}'"]}}],
    }
    client.ssm.create_document(Name="Greet", DocumentType="Command", DocumentFormat="JSON",
                               Content=json.dumps(content))
    cid = client.ssm.send_command(InstanceIds=[iid], DocumentName="Greet",
                                  Parameters={"Name": ["world"]})["Command"]["CommandId"]
    inv = client.invocation(cid, iid)
    assert inv["Status"] == "Success" and inv["StandardOutputContent"] == "hello world\n"
    assert inv["PluginName"] == "greet"

    for bad, why in [({"Name": ["World!"]}, "allowed pattern"), ({}, "required"),
                     ({"Name": ["x"], "Other": ["y"]}, "not declared")]:
        with pytest.raises(ClientError) as err:
            client.ssm.send_command(InstanceIds=[iid], DocumentName="Greet", Parameters=bad)
        assert err.value.response["Error"]["Code"] == "InvalidParameters"
        assert why in err.value.response["Error"]["Message"]


def test_ssm_parameter_references_and_working_directory(client: Client) -> None:
    iid = client.instance()
    client.ssm.put_parameter(Name="/cfg/greeting", Value="from-parameter-store", Type="String")
    cid = client.ssm.send_command(
        InstanceIds=[iid], DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["echo {{ssm:/cfg/greeting}}", "pwd"],
                    "workingDirectory": ["/tmp"]})["Command"]["CommandId"]
    inv = client.invocation(cid, iid)
    assert inv["StandardOutputContent"] == "from-parameter-store\n/tmp\n"


def test_multi_step_document_stops_at_failure(client: Client) -> None:
    iid = client.instance()
    content = {"schemaVersion": "2.2", "description": "two", "mainSteps": [
        {"action": "aws:runShellScript", "name": "first", "inputs": {"runCommand": ["exit 3"]}},
        {"action": "aws:runShellScript", "name": "second", "inputs": {"runCommand": ["touch /tmp/two"]}},
    ]}
    client.ssm.create_document(Name="Two", DocumentType="Command", Content=json.dumps(content))
    cid = client.ssm.send_command(InstanceIds=[iid], DocumentName="Two")["Command"]["CommandId"]
    one = client.invocation(cid, iid, PluginName="first")
    assert one["Status"] == "Failed" and one["ResponseCode"] == 3
    with pytest.raises(ClientError) as err:
        client.ssm.get_command_invocation(CommandId=cid, InstanceId=iid)
    assert err.value.response["Error"]["Code"] == "InvalidPluginName"
    assert client.file(iid, "/tmp/two") is None
    listed = client.ssm.list_command_invocations(CommandId=cid, Details=True)["CommandInvocations"]
    assert [p["Name"] for p in listed[0]["CommandPlugins"]] == ["first", "second"]
    assert listed[0]["CommandPlugins"][1]["Status"] == "Cancelled"


def test_document_from_cloudformation(client: Client) -> None:
    iid = client.instance()
    template = {"Resources": {"Doc": {"Type": "AWS::SSM::Document", "Properties": {
        "DocumentType": "Command", "Name": "FromStack",
        "Content": {"schemaVersion": "2.2", "description": "d",
                    "parameters": {"Word": {"type": "String"}},
                    "mainSteps": [{"action": "aws:runShellScript", "name": "say",
                                   "inputs": {"runCommand": ["echo {{ Word }}"]}}]}}}}}
    cfn = client.emu.client("cloudformation")
    cfn.create_stack(StackName="docs", TemplateBody=json.dumps(template))
    wait_for(lambda: cfn.describe_stacks(StackName="docs")["Stacks"][0]["StackStatus"]
             in ("CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE"), timeout=30)
    assert cfn.describe_stacks(StackName="docs")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    cid = client.ssm.send_command(InstanceIds=[iid], DocumentName="FromStack",
                                  Parameters={"Word": ["stacked"]})["Command"]["CommandId"]
    assert client.invocation(cid, iid)["StandardOutputContent"] == "stacked\n"


def test_unknown_document_is_refused(client: Client) -> None:
    iid = client.instance()
    with pytest.raises(ClientError) as err:
        client.ssm.send_command(InstanceIds=[iid], DocumentName="NoSuchDoc")
    assert err.value.response["Error"]["Code"] == "InvalidDocument"


def test_stopped_instance_runs_nothing(client: Client) -> None:
    iid = client.instance()
    client.ec2.stop_instances(InstanceIds=[iid])
    # Stopped is a valid state for SendCommand: the command waits for the node, then times out.
    cid = client.send(iid, "echo ran > /opt/marker", TimeoutSeconds=30)
    inv = client.invocation(cid, iid)
    assert inv["Status"] == "TimedOut" and inv["StatusDetails"] == "DeliveryTimedOut"
    assert client.ssm.list_commands(CommandId=cid)["Commands"][0]["DeliveryTimedOutCount"] == 1
    assert client.file(iid, "/opt/marker") is None


def test_command_waits_for_a_stopped_instance_to_start(client: Client) -> None:
    iid = client.instance()
    client.ec2.stop_instances(InstanceIds=[iid])
    cid = client.send(iid, "echo ran")
    time.sleep(0.5)
    pending = client.ssm.get_command_invocation(CommandId=cid, InstanceId=iid)
    assert pending["Status"] == "Pending"
    client.ec2.start_instances(InstanceIds=[iid])
    assert client.invocation(cid, iid)["StandardOutputContent"] == "ran\n"


def test_unmanaged_instances_are_refused(client: Client) -> None:
    _, subnets = client.network()
    no_profile = client.instance(subnets[0], ssm=None, wait=False)
    no_ssm_policy = client.instance(subnets[0], ssm=False, wait=False)
    terminated = client.instance(subnets[0])
    client.ec2.terminate_instances(InstanceIds=[terminated])
    client.wait_online(no_profile, managed=False)
    client.wait_online(no_ssm_policy, managed=False)
    for iid in (no_profile, no_ssm_policy, terminated, "i-0123456789abcdef0"):
        with pytest.raises(ClientError) as err:
            client.send(iid, "true")
        assert err.value.response["Error"]["Code"] == "InvalidInstanceId", iid


def test_execution_timeout(client: Client) -> None:
    iid = client.instance()
    cid = client.ssm.send_command(
        InstanceIds=[iid], DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["echo started", "sleep 30"], "executionTimeout": ["1"]},
    )["Command"]["CommandId"]
    inv = client.invocation(cid, iid, timeout=20)
    assert inv["Status"] == "TimedOut" and inv["StatusDetails"] == "ExecutionTimedOut"
    assert inv["StandardOutputContent"] == "started\n"


def test_targets_by_tag(client: Client) -> None:
    _, subnets = client.network()
    tagged = [client.instance(subnets[0], tags={"Role": "hsm-client"}) for _ in range(2)]
    client.instance(subnets[0], tags={"Role": "other"})
    cid = client.ssm.send_command(Targets=[{"Key": "tag:Role", "Values": ["hsm-client"]}],
                                  DocumentName="AWS-RunShellScript",
                                  Parameters={"commands": ["hostname >/dev/null; echo x"]},
                                  )["Command"]["CommandId"]
    for iid in tagged:
        assert client.invocation(cid, iid)["Status"] == "Success"
    listed = client.ssm.list_command_invocations(CommandId=cid)["CommandInvocations"]
    assert sorted(i["InstanceId"] for i in listed) == sorted(tagged)
    wait_for(lambda: client.ssm.list_commands(CommandId=cid)["Commands"][0]["Status"] == "Success")
    assert client.ssm.list_commands(CommandId=cid)["Commands"][0]["TargetCount"] == 2


def test_list_command_invocations_filters_and_details(client: Client) -> None:
    iid = client.instance()
    ok = client.send(iid, "echo fine")
    bad = client.send(iid, "echo no >&2; exit 2")
    client.invocation(ok, iid)
    client.invocation(bad, iid)
    failed = client.ssm.list_command_invocations(
        InstanceId=iid, Filters=[{"key": "Status", "value": "Failed"}], Details=True,
    )["CommandInvocations"]
    assert [i["CommandId"] for i in failed] == [bad]
    assert failed[0]["CommandPlugins"][0]["Output"] == "\n----------ERROR-------\nno\n"
    assert failed[0]["CommandPlugins"][0]["ResponseCode"] == 2
    mine = client.ssm.list_commands(InstanceId=iid)["Commands"]
    assert {c["CommandId"] for c in mine} == {ok, bad}


def test_command_failure_fault(client: Client) -> None:
    iid = client.instance()
    status, rule = client.emu.emu("POST", "faults", {
        "kind": "client_command", "match": {"instance_id": iid, "document": "AWS-RunShellScript"},
        "outcome": {"exit_code": 42, "stderr": "injected: cloudhsm-cli crashed"}})
    assert status == 200, rule
    inv = client.run(iid, "touch /tmp/should-not-exist")
    assert inv["Status"] == "Failed" and inv["ResponseCode"] == 42
    assert inv["StandardErrorContent"] == "injected: cloudhsm-cli crashed"
    assert client.file(iid, "/tmp/should-not-exist") is None
    # count=1: the next command runs normally.
    assert client.run(iid, "echo ok")["Status"] == "Success"


def test_user_data_runs_once_at_boot_and_installs_files(client: Client) -> None:
    user_data = "#!/bin/bash\nmkdir -p /opt/tools\necho installed >> /opt/tools/marker\n" \
                "echo boot-log-line\n"
    iid = client.instance(user_data=user_data)
    wait_for(lambda: client.file(iid, "/opt/tools/marker"), timeout=30)
    inv = client.run(iid, "cat /opt/tools/marker; grep boot-log-line /var/log/cloud-init-output.log")
    assert inv["StandardOutputContent"] == "installed\nboot-log-line\n"
    records = [r for r in client.emu.introspect(kind="user_data")["records"]
               if r.get("instance_id") == iid]
    assert len(records) == 1 and records[0]["exit_code"] == 0
    assert records[0]["script"] == user_data
    # A stop/start cycle boots again but does not run user-data again (cloud-init: once).
    client.ec2.stop_instances(InstanceIds=[iid])
    client.ec2.start_instances(InstanceIds=[iid])
    client.wait_online(iid)
    assert client.run(iid, "cat /opt/tools/marker")["StandardOutputContent"] == "installed\n"


def test_user_data_installing_the_cloudhsm_client_succeeds(client: Client) -> None:
    """Typical client user-data: dnf install of the CloudHSM CLI rpm (the emulated image has it)."""
    user_data = ("#!/bin/bash\nset -euo pipefail\n"
                 "dnf install -y https://s3.amazonaws.com/cloudhsmv2-software/CloudHsmClient/"
                 "Amzn2023/cloudhsm-cli-latest.amzn2023.x86_64.rpm\n"
                 "test -x /opt/cloudhsm/bin/cloudhsm-cli\necho ready > /tmp/ready\n")
    iid = client.instance(user_data=user_data)
    wait_for(lambda: client.file(iid, "/tmp/ready"), timeout=30)
    inv = client.run(iid, "yum install -y httpd")
    assert inv["Status"] == "Failed" and "Unable to find a match: httpd" in inv[
        "StandardErrorContent"]


def test_aws_cli_on_the_instance_reaches_secrets_manager(client: Client) -> None:
    iid = client.instance()
    sm = client.emu.client("secretsmanager")
    arn = sm.create_secret(Name="admin-password", SecretString="s3cretValue99")["ARN"]
    inv = client.run(iid, f"aws secretsmanager get-secret-value --secret-id {arn} "
                          "--query SecretString --output text")
    assert inv["Status"] == "Success", inv["StandardErrorContent"]
    assert inv["StandardOutputContent"] == "s3cretValue99\n"


def test_jq_is_available(client: Client) -> None:
    iid = client.instance()
    inv = client.run(iid, "echo '{\"a\": {\"b\": 5}}' | jq -r .a.b")
    assert inv["StandardOutputContent"] == "5\n"


def test_commands_are_recorded_with_rendered_script(client: Client) -> None:
    iid = client.instance()
    cid = client.send(iid, "echo recorded-output")
    client.invocation(cid, iid)
    status, body = client.emu.emu("GET", "introspect")
    assert status == 200
    text = json.dumps(body)
    assert cid in text and "echo recorded-output" in text and "recorded-output\\n" in text


def test_instance_from_cloudformation_is_a_managed_node(client: Client) -> None:
    """Role with ManagedPolicyArns + instance profile + SecurityGroupIds + UserData, as a stack
    declares its admin instance."""
    vpc, subnets = client.network()
    template = {"Resources": {
        "Sg": {"Type": "AWS::EC2::SecurityGroup",
               "Properties": {"GroupDescription": "admin client", "VpcId": vpc}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": json.loads(EC2_TRUST), "ManagedPolicyArns": [SSM_CORE]}},
        "Profile": {"Type": "AWS::IAM::InstanceProfile",
                    "Properties": {"Roles": [{"Ref": "Role"}]}},
        "Client": {"Type": "AWS::EC2::Instance", "Properties": {
            "ImageId": "ami-12345678", "InstanceType": "t3.micro", "SubnetId": subnets[0],
            "SecurityGroupIds": [{"Ref": "Sg"}], "IamInstanceProfile": {"Ref": "Profile"},
            "UserData": {"Fn::Base64": "#!/bin/bash\necho from-stack > /opt/booted\n"}}}},
        "Outputs": {"Instance": {"Value": {"Ref": "Client"}}, "Sg": {"Value": {"Ref": "Sg"}}}}
    cfn = client.emu.client("cloudformation")
    cfn.create_stack(StackName="admin", TemplateBody=json.dumps(template),
                     Capabilities=["CAPABILITY_IAM"])
    wait_for(lambda: not cfn.describe_stacks(StackName="admin")["Stacks"][0]["StackStatus"]
             .endswith("IN_PROGRESS"), timeout=60)
    stack = cfn.describe_stacks(StackName="admin")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    iid = outputs["Instance"]
    client.wait_online(iid)
    assert client.node(iid)["security_groups"] == [outputs["Sg"]]
    wait_for(lambda: client.file(iid, "/opt/booted"), timeout=30)
    assert client.run(iid, "cat /opt/booted")["StandardOutputContent"] == "from-stack\n"
    # Deleting the stack detaches the managed policy before DeleteRole, as CloudFormation does.
    iam = client.emu.client("iam")
    role = cfn.describe_stack_resource(StackName="admin", LogicalResourceId="Role")[
        "StackResourceDetail"]["PhysicalResourceId"]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    cfn.delete_stack(StackName="admin")
    wait_for(lambda: cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"]
             .endswith("COMPLETE") or "FAILED" in
             cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"],
             timeout=60)
    assert cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"] == \
        "DELETE_COMPLETE"
    assert role not in [r["RoleName"] for r in iam.list_roles()["Roles"]]


def test_instance_from_cloudformation_network_interfaces_subnet(client: Client) -> None:
    """An instance declared with NetworkInterfaces (no top-level SubnetId) lands in that subnet."""
    vpc, subnets = client.network()
    template = {"Resources": {
        "Sg": {"Type": "AWS::EC2::SecurityGroup",
               "Properties": {"GroupDescription": "admin client", "VpcId": vpc}},
        "Client": {"Type": "AWS::EC2::Instance", "Properties": {
            "ImageId": "ami-12345678", "InstanceType": "t3.micro",
            "NetworkInterfaces": [{"DeviceIndex": "0", "SubnetId": subnets[-1],
                                   "AssociatePublicIpAddress": False,
                                   "GroupSet": [{"Ref": "Sg"}]}]}}},
        "Outputs": {"Instance": {"Value": {"Ref": "Client"}}}}
    cfn = client.emu.client("cloudformation")
    cfn.create_stack(StackName="nic", TemplateBody=json.dumps(template))
    wait_for(lambda: not cfn.describe_stacks(StackName="nic")["Stacks"][0]["StackStatus"]
             .endswith("IN_PROGRESS"), timeout=60)
    stack = cfn.describe_stacks(StackName="nic")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    iid = stack["Outputs"][0]["OutputValue"]
    described = client.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert described["SubnetId"] == subnets[-1]
    assert described["VpcId"] == vpc


def test_instance_terminated_before_delivery_is_undeliverable(client: Client) -> None:
    iid = client.instance()
    client.ec2.stop_instances(InstanceIds=[iid])
    cid = client.send(iid, "echo never")
    client.ec2.terminate_instances(InstanceIds=[iid])
    inv = client.invocation(cid, iid)
    assert inv["Status"] == "Failed" and inv["StatusDetails"] == "Undeliverable"


def test_describe_instance_information_lists_managed_nodes(client: Client) -> None:
    _, subnets = client.network()
    managed = client.instance(subnets[0], tags={"Name": "admin"})
    unmanaged = client.instance(subnets[0], ssm=None, wait=False)
    client.wait_online(unmanaged, managed=False)
    info = client.ssm.describe_instance_information()["InstanceInformationList"]
    assert [i["InstanceId"] for i in info] == [managed]
    assert info[0]["PingStatus"] == "Online" and info[0]["PlatformType"] == "Linux"
    assert info[0]["IamRole"] == "client-ssm"
    client.ec2.stop_instances(InstanceIds=[managed])
    info = client.ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [managed]}])["InstanceInformationList"]
    assert info[0]["PingStatus"] == "ConnectionLost"
    online = client.ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "PingStatus", "valueSet": ["Online"]}],
    )["InstanceInformationList"]
    assert online == []


def test_moto_internals_we_patch_still_exist() -> None:
    """Smoke test per patched moto internal (moto is pinned; a bump must fail loudly here)."""
    from moto.ec2.models.instances import Instance
    from moto.ssm.models import SimpleSystemManagerBackend
    from moto.ssm.responses import SimpleSystemManagerResponse

    for name in ("__init__", "start", "stop", "terminate"):
        assert callable(getattr(Instance, name))
    for name in ("send_command", "get_command_invocation", "list_commands"):
        assert callable(getattr(SimpleSystemManagerResponse, name))
    from moto.iam.models import AWSManagedPolicy, IAMBackend, Role
    from moto.ssm.models import Document

    assert callable(Document.create_from_cloudformation_json)
    assert callable(Role.create_from_cloudformation_json)
    assert callable(Instance.create_from_cloudformation_json)
    assert callable(IAMBackend._init_aws_policies) and callable(AWSManagedPolicy)
    from moto.iam import models as iam_models

    assert isinstance(iam_models.aws_managed_policies_data, str)
    assert callable(getattr(SimpleSystemManagerBackend, "get_commands_by_instance_id"))
    assert callable(getattr(SimpleSystemManagerBackend, "get_parameter"))
    backend = SimpleSystemManagerBackend("us-east-1", "123456789012")
    assert isinstance(backend._commands, list) and isinstance(backend._documents, dict)
