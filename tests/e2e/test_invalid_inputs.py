"""Invalid inputs fail fast, say what is wrong and how to fix it, and create nothing that bills
(issue 4: subnets in one AZ, subnets in two VPCs, HSM count over quota)."""

from __future__ import annotations

import re

import pytest

from e2e_support import AZS, assert_no_cluster_created, assert_nothing_billing, make_network


def _params(network, subnets, per_subnet=1):
    return {"VpcId": network.vpc_id, "SubnetIds": subnets, "HsmsPerSubnet": per_subnet,
            "ClientSubnetId": network.client_subnet, "EnableKeyStore": "false"}


def _one_az(emu, network):
    return _params(network, [network.subnets[AZS[0]], network.spare_subnets[AZS[0]]]), \
        [r"us-east-1a", r"one subnet per Availability Zone|same Availability Zone|all in us-east-1a"]


def _two_vpcs(emu, network):
    other = make_network(emu, cidr_octet=1)
    return _params(network, [network.subnets[AZS[0]], other.subnets[AZS[1]]]), \
        [r"VpcId|VPC", r"[Ss]ubnet"]  # a template rule cannot name the subnet; the parameters it does


def _over_quota(emu, network):
    # 2 subnets x 4 = 8 HSMs > the default quota of 6 HSMs per Region (aws-behaviour.md 1.4).
    return _params(network, network.hsm_subnets(2), per_subnet=4), [r"quota", r"HsmsPerSubnet"]


@pytest.mark.parametrize("case", [_one_az, _two_vpcs, _over_quota],
                         ids=["subnets-in-one-az", "subnets-in-two-vpcs", "hsms-over-quota"])
def test_invalid_input_fails_fast(emu, network, stack_factory, case):
    params, expected = case(emu, network)
    stack = stack_factory()
    result = stack.deploy(**params)
    assert result.returncode != 0, result.describe()
    assert result.status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), result.describe()
    shown = result.root_cause_text()
    for pattern in expected:
        assert re.search(pattern, shown), f"message lacks {pattern!r}:\n{result.describe()}"
    # Nothing was created that bills: never a cluster, no HSM ENI, no client left running.
    assert_no_cluster_created(emu)
    assert_nothing_billing(emu, network)
    # Fail fast: CloudFormation never started creating the cluster (the stack may not even exist
    # when a template rule refused the parameters).
    if stack.cfn_status() is not None:
        started = [e for e in stack.events() if e.get("ResourceType") == "AWS::CloudHSM::Cluster"
                   and e.get("ResourceStatus") == "CREATE_IN_PROGRESS"]
        assert not started, f"the cluster was started before the inputs were refused: {started}"
