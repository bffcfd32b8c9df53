"""Create, update and delete the stack with `synth deploy|destroy` (issue 4, "Tests").

Every test starts from a reset emulator with a fresh VPC (us-east-1a/b/c HSM subnets + a client
subnet), deploys with the dev app and EnableKeyStore=false, and asserts the live state with boto3
and the emulator's introspection — never the deploy's own claims alone.
"""

from __future__ import annotations

import time

import pytest

from e2e_support import (AZS, assert_converged, assert_nothing_billing, cluster, secret_value,
                         verify_trust_anchor)


def base_params(network, n_subnets: int, per_subnet: int, **extra):
    return {"VpcId": network.vpc_id, "SubnetIds": network.hsm_subnets(n_subnets),
            "HsmsPerSubnet": per_subnet, "ClientSubnetId": network.client_subnet,
            "EnableKeyStore": "false", **extra}


def assert_deleted(emu, stack, network, outputs) -> None:
    """Nothing left billing; the trust anchor secret is retained, the admin password is not."""
    result = stack.destroy()
    assert result.returncode == 0 and result.status == "DELETE_COMPLETE", result.describe()
    assert stack.cfn_status() in (None, "DELETE_COMPLETE")
    assert "TrustAnchor" in str(result.out.get("retained")), \
        f"destroy must report the retained trust anchor secret: {result.out.get('retained')}"
    assert_nothing_billing(emu, network)
    sm = emu.client("secretsmanager")
    anchor = sm.describe_secret(SecretId=outputs["TrustAnchorSecretArn"])
    assert "DeletedDate" not in anchor, "the trust anchor secret must be retained"
    assert "BEGIN CERTIFICATE" in secret_value(emu, outputs["TrustAnchorSecretArn"])
    try:
        admin = sm.describe_secret(SecretId=outputs["AdminPasswordSecretArn"])
        assert "DeletedDate" in admin, "the admin password secret must be deleted with the stack"
    except sm.exceptions.ResourceNotFoundException:
        pass


@pytest.mark.parametrize("n_subnets,per_subnet", [(1, 1), (2, 1), (3, 2)],
                         ids=["1x1", "2x1", "3x2"])
def test_create_then_delete(emu, network, stack_factory, n_subnets, per_subnet):
    stack = stack_factory()
    result = stack.deploy_ok(**base_params(network, n_subnets, per_subnet))
    assert result.status == "CREATE_COMPLETE"
    c = assert_converged(emu, result, network, network.hsm_subnets(n_subnets), per_subnet)
    # The outputs agree with what CloudFormation itself reports.
    cfn_outputs = {o["OutputKey"]: o["OutputValue"] for o in emu.client("cloudformation")
                   .describe_stacks(StackName=stack.name)["Stacks"][0].get("Outputs", [])}
    assert {k: cfn_outputs.get(k) for k in result.outputs} == result.outputs
    # The cluster's certificate chain ends at the stored trust anchor (also checked above).
    verify_trust_anchor(secret_value(emu, result.outputs["TrustAnchorSecretArn"]),
                        c["Certificates"]["ClusterCertificate"])
    assert_deleted(emu, stack, network, result.outputs)


def test_update_hsm_count_1_2_0_1(emu, network, stack_factory):
    """HsmsPerSubnet 1 → 2 → 0 (cluster kept, no HSM) → 1, on two subnets."""
    stack = stack_factory()
    subnets = network.hsm_subnets(2)
    first = stack.deploy_ok(**base_params(network, 2, 1))
    cluster_id = assert_converged(emu, first, network, subnets, 1)["ClusterId"]
    for count in (2, 0, 1):
        result = stack.deploy_ok(**base_params(network, 2, count))
        assert result.status == "UPDATE_COMPLETE", result.describe()
        assert result.outputs["ClusterId"] == cluster_id, "an HSM count change must keep the cluster"
        if count:
            assert_converged(emu, result, network, subnets, count)
        else:
            c = cluster(emu, cluster_id)
            assert c["State"] == "ACTIVE", c["State"]
            assert c.get("Hsms", []) == [], f"HsmsPerSubnet=0 left HSMs: {c['Hsms']}"
            assert c["SubnetMapping"], "the cluster keeps its subnets with no HSMs"
    assert_deleted(emu, stack, network, first.outputs)


@pytest.mark.parametrize("change", ["ClientInstanceType", "ClientSubnetId"])
def test_client_replacement(emu, network, stack_factory, change):
    """A new client instance replaces the old one; the cluster and its HSMs stay, and the new
    client is configured for the cluster (its refresh/activation commands ran on it)."""
    stack = stack_factory()
    subnets = network.hsm_subnets(2)
    first = stack.deploy_ok(**base_params(network, 2, 1, ClientInstanceType="t3.micro"))
    c1 = assert_converged(emu, first, network, subnets, 1)
    extra = {"ClientInstanceType": "t3.small"} if change == "ClientInstanceType" else \
        {"ClientInstanceType": "t3.micro", "ClientSubnetId": network.spare_subnets[AZS[1]]}
    params = base_params(network, 2, 1, **extra)
    result = stack.deploy_ok(**params)
    assert result.status == "UPDATE_COMPLETE"
    old_id, new_id = first.outputs["ClientInstanceId"], result.outputs["ClientInstanceId"]
    assert new_id != old_id, "changing the client must replace the instance"
    c2 = assert_converged(emu, result, network, subnets, 1)
    assert c2["ClusterId"] == c1["ClusterId"]
    assert sorted(h["HsmId"] for h in c2["Hsms"]) == sorted(h["HsmId"] for h in c1["Hsms"]), \
        "replacing the client must not touch the HSMs"
    ec2 = emu.client("ec2")
    new = ec2.describe_instances(InstanceIds=[new_id])["Reservations"][0]["Instances"][0]
    if change == "ClientInstanceType":
        assert new["InstanceType"] == "t3.small"
    else:
        assert new["SubnetId"] == network.spare_subnets[AZS[1]]
    old = ec2.describe_instances(InstanceIds=[old_id])["Reservations"][0]["Instances"][0]
    assert old["State"]["Name"] in ("terminated", "shutting-down"), old["State"]
    # The new client ran a client command against the cluster (its config points at the cluster).
    ssm = emu.client("ssm")
    invocations = ssm.list_command_invocations(InstanceId=new_id)["CommandInvocations"]
    assert any(i["Status"] == "Success" for i in invocations), \
        f"no successful command on the new client: {invocations}"
    # ...and an administrator can use it at once: the trust anchor is installed and the CLI
    # reaches the HSMs.
    out = run_on_client(emu, new_id, ["cat /opt/cloudhsm/etc/customerCA.crt",
                                      "/opt/cloudhsm/bin/cloudhsm-cli user list"])
    anchor = secret_value(emu, result.outputs["TrustAnchorSecretArn"])
    assert anchor.strip() in out, f"the new client lacks the trust anchor:\n{out}"
    assert '"username": "admin"' in out.replace('":"', '": "'), out
    assert_deleted(emu, stack, network, first.outputs)


def run_on_client(emu, instance_id: str, commands: list[str]) -> str:
    """Run shell commands on the client through SSM Run Command; their output, or fail."""
    ssm = emu.client("ssm")
    cid = ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                           Parameters={"commands": commands})["Command"]["CommandId"]
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            inv = ssm.get_command_invocation(CommandId=cid, InstanceId=instance_id)
        except ssm.exceptions.InvocationDoesNotExist:
            inv = {"Status": "Pending"}
        if inv["Status"] not in ("Pending", "InProgress", "Delayed"):
            assert inv["Status"] == "Success", inv
            return inv["StandardOutputContent"]
        time.sleep(0.3)
    raise AssertionError(f"command {cid} on {instance_id} did not finish")
