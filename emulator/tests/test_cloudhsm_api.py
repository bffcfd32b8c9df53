"""CloudHSM v2 control plane through boto3 (aws-behaviour.md 1.1-1.4): validation, state
machines, ENIs and the cluster security group, quotas, tags, faults."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509

from test_cloudhsm_support import FAST, PASSWORD, Toolbox, hsm_env  # noqa: F401


def error_of(call, *args, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


# ------------------------------------------------------------------------------ CreateCluster
def test_create_cluster_answers_in_progress_with_network_facts_then_uninitialized(hsm_env: Toolbox):
    vpc, subnets = hsm_env.vpc()
    created = hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets)["Cluster"]
    assert created["State"] == "CREATE_IN_PROGRESS"
    assert created["ClusterId"].startswith("cluster-") and len(created["ClusterId"]) == 19
    assert created["SecurityGroup"].startswith("sg-")
    assert created["VpcId"] == vpc
    assert created["SubnetMapping"] == {"us-east-1a": subnets[0], "us-east-1b": subnets[1]}
    assert created["Certificates"] == {} and created["Hsms"] == []
    assert created["BackupPolicy"] == "DEFAULT"
    assert created["BackupRetentionPolicy"] == {"Type": "DAYS", "Value": "90"}
    assert created["Mode"] == "FIPS" and created["NetworkType"] == "IPV4"
    cluster = hsm_env.wait_cluster(created["ClusterId"], "UNINITIALIZED")
    assert cluster["Certificates"] == {}


def test_cluster_security_group_has_only_self_referencing_hsm_ports(hsm_env: Toolbox):
    vpc, subnets = hsm_env.vpc()
    cluster = hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets)["Cluster"]
    sg = hsm_env.ec2.describe_security_groups(GroupIds=[cluster["SecurityGroup"]])["SecurityGroups"][0]
    assert sg["GroupName"] == f"cloudhsm-cluster-{cluster['ClusterId']}-sg"
    assert sg["VpcId"] == vpc
    for rules in (sg["IpPermissions"], sg["IpPermissionsEgress"]):
        assert len(rules) == 1, rules
        rule = rules[0]
        assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 2223, 2225)
        assert [p["GroupId"] for p in rule["UserIdGroupPairs"]] == [sg["GroupId"]]
        assert rule.get("IpRanges", []) == []


def test_create_cluster_rejects_unknown_subnet(hsm_env: Toolbox):
    code, message, status = error_of(hsm_env.hsm.create_cluster, HsmType="hsm2m.medium",
                                     SubnetIds=["subnet-0123456789abcdef0"])
    assert (code, status) == ("CloudHsmInvalidRequestException", 400)
    assert "subnet-0123456789abcdef0" in message


def test_create_cluster_rejects_subnets_of_two_vpcs(hsm_env: Toolbox):
    _, a = hsm_env.vpc(azs=("us-east-1a",))
    _, b = hsm_env.vpc(azs=("us-east-1b",), cidr="10.1.0.0/16")
    code, message, _ = error_of(hsm_env.hsm.create_cluster, HsmType="hsm2m.medium", SubnetIds=a + b)
    assert code == "CloudHsmInvalidRequestException" and "same virtual private cloud" in message


def test_create_cluster_rejects_two_subnets_in_one_az(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a", "us-east-1a"))
    code, message, _ = error_of(hsm_env.hsm.create_cluster, HsmType="hsm2m.medium", SubnetIds=subnets)
    assert code == "CloudHsmInvalidRequestException" and "one subnet per Availability Zone" in message


def test_create_cluster_rejects_more_than_ten_subnets(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    code, message, _ = error_of(hsm_env.hsm.create_cluster, HsmType="hsm2m.medium",
                                SubnetIds=subnets + [subnets[0]] * 9)
    assert code == "CloudHsmInvalidRequestException" and "between 1 and 10" in message


@pytest.mark.parametrize("hsm_type", ["m5.large", "hsm9.large"])
def test_create_cluster_rejects_unknown_hsm_types(hsm_env: Toolbox, hsm_type: str):
    _, subnets = hsm_env.vpc()
    code, _, _ = error_of(hsm_env.hsm.create_cluster, HsmType=hsm_type, SubnetIds=subnets)
    assert code == "CloudHsmInvalidRequestException"


def test_hsm1_medium_is_end_of_life_unless_allowed(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    code, message, _ = error_of(hsm_env.hsm.create_cluster, HsmType="hsm1.medium", SubnetIds=subnets)
    assert code == "CloudHsmInvalidRequestException" and "hsm2m.medium" in message
    assert hsm_env.emu.emu("POST", "cloudhsm/settings", {"allow_hsm1_medium": True})[0] == 200
    cluster = hsm_env.hsm.create_cluster(HsmType="hsm1.medium", SubnetIds=subnets)["Cluster"]
    assert cluster["HsmType"] == "hsm1.medium" and cluster["Mode"] == "FIPS"
    # NON_FIPS exists only on hsm2m.medium.
    code, message, _ = error_of(hsm_env.hsm.create_cluster, HsmType="hsm1.medium", SubnetIds=subnets,
                                Mode="NON_FIPS")
    assert code == "CloudHsmInvalidRequestException" and "NON_FIPS" in message


def test_non_fips_mode_on_hsm2m(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cluster = hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets, Mode="NON_FIPS")["Cluster"]
    assert cluster["Mode"] == "NON_FIPS"


@pytest.mark.parametrize("days,ok", [("6", False), ("7", True), ("379", True), ("380", False)])
def test_backup_retention_between_7_and_379_days(hsm_env: Toolbox, days: str, ok: bool):
    _, subnets = hsm_env.vpc()
    policy = {"Type": "DAYS", "Value": days}
    if ok:
        cluster = hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets,
                                             BackupRetentionPolicy=policy)["Cluster"]
        assert cluster["BackupRetentionPolicy"] == policy
    else:
        code, message, _ = error_of(hsm_env.hsm.create_cluster, HsmType="hsm2m.medium",
                                    SubnetIds=subnets, BackupRetentionPolicy=policy)
        assert code == "CloudHsmInvalidRequestException" and "7 - 379" in message


def test_dualstack_needs_ipv6_subnets(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    code, message, _ = error_of(hsm_env.hsm.create_cluster, HsmType="hsm2m.medium", SubnetIds=subnets,
                                NetworkType="DUALSTACK")
    assert code == "CloudHsmInvalidRequestException" and "IPv6" in message


def test_dualstack_hsm_gets_an_ipv6_address(hsm_env: Toolbox):
    ec2 = hsm_env.ec2
    vpc = ec2.create_vpc(CidrBlock="10.5.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    block = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.5.1.0/24", AvailabilityZone="us-east-1a",
                               Ipv6CidrBlock=block.replace("/56", "/64"))["Subnet"]["SubnetId"]
    cluster = hsm_env.cluster([subnet], NetworkType="DUALSTACK")
    hsm = hsm_env.first_hsm(cluster["ClusterId"])
    assert cluster["NetworkType"] == "DUALSTACK"
    assert ":" in hsm["EniIpV6"]


def test_cluster_quota_per_region(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    assert hsm_env.emu.emu("GET", "cloudhsm/quotas") == (
        200, {"clusters_per_region": 4, "hsms_per_region": 6, "hsms_per_cluster": 28})
    for _ in range(4):
        hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets)
    code, message, _ = error_of(hsm_env.hsm.create_cluster, HsmType="hsm2m.medium", SubnetIds=subnets)
    assert code == "CloudHsmResourceLimitExceededException" and "4 clusters" in message
    assert hsm_env.emu.emu("POST", "cloudhsm/quotas", {"clusters_per_region": 5})[0] == 200
    hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets)


def test_create_cluster_with_tags(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cluster = hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets,
                                         TagList=[{"Key": "stack", "Value": "dev"}])["Cluster"]
    assert cluster["TagList"] == [{"Key": "stack", "Value": "dev"}]
    assert hsm_env.hsm.list_tags(ResourceId=cluster["ClusterId"])["TagList"] == [{"Key": "stack", "Value": "dev"}]


# ------------------------------------------------------------------------------ CreateHsm
def test_first_hsm_lifecycle_eni_and_certificates(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cluster = hsm_env.cluster(subnets)
    cid = cluster["ClusterId"]
    hsm = hsm_env.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1b")["Hsm"]
    assert hsm["State"] == "CREATE_IN_PROGRESS" and hsm["HsmId"].startswith("hsm-")
    assert hsm["SubnetId"] == subnets[1] and hsm["AvailabilityZone"] == "us-east-1b"
    assert hsm_env.describe(cid)["Certificates"] == {}  # the CSR appears once the HSM is up
    eni = hsm_env.ec2.describe_network_interfaces(NetworkInterfaceIds=[hsm["EniId"]])["NetworkInterfaces"][0]
    assert eni["SubnetId"] == subnets[1] and eni["PrivateIpAddress"] == hsm["EniIp"]
    assert hsm["EniIp"].startswith("10.0.2.")
    assert [g["GroupId"] for g in eni["Groups"]] == [cluster["SecurityGroup"]]

    hsm_env.wait_hsm(cid, hsm["HsmId"], "ACTIVE")
    certs = hsm_env.describe(cid)["Certificates"]
    assert set(certs) == {"ClusterCsr", "HsmCertificate", "AwsHardwareCertificate", "ManufacturerHardwareCertificate"}
    csr = x509.load_pem_x509_csr(certs["ClusterCsr"].encode())
    assert csr.is_signature_valid
    hsm_cert = x509.load_pem_x509_certificate(certs["HsmCertificate"].encode())
    assert hsm_cert.public_key().public_numbers() == csr.public_key().public_numbers()


def test_only_one_hsm_until_active_with_aws_message(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cid = hsm_env.cluster(subnets)["ClusterId"]
    hsm_env.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1a")
    code, message, status = error_of(hsm_env.hsm.create_hsm, ClusterId=cid, AvailabilityZone="us-east-1b")
    assert (code, status) == ("CloudHsmInvalidRequestException", 400)
    assert message == f"Cluster '{cid}' already contains an HSM but has not yet been fully activated"


def test_no_hsm_while_cluster_is_being_created(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cid = hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets)["Cluster"]["ClusterId"]
    code, message, _ = error_of(hsm_env.hsm.create_hsm, ClusterId=cid, AvailabilityZone="us-east-1a")
    assert code == "CloudHsmInvalidRequestException" and "CREATE_IN_PROGRESS" in message


def test_create_hsm_az_must_be_in_mapping(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cid = hsm_env.cluster(subnets)["ClusterId"]
    code, message, _ = error_of(hsm_env.hsm.create_hsm, ClusterId=cid, AvailabilityZone="us-east-1c")
    assert code == "CloudHsmInvalidRequestException" and "us-east-1c" in message


def test_create_hsm_unknown_cluster(hsm_env: Toolbox):
    code, _, _ = error_of(hsm_env.hsm.create_hsm, ClusterId="cluster-abcdefghijk", AvailabilityZone="us-east-1a")
    assert code == "CloudHsmResourceNotFoundException"


def test_create_hsm_with_requested_ip_and_bad_ips(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cid = hsm_env.cluster(subnets)["ClusterId"]
    for ip in ("10.0.9.10", "10.0.1.1", "not-an-ip"):  # other subnet, AWS-reserved, garbage
        code, _, _ = error_of(hsm_env.hsm.create_hsm, ClusterId=cid, AvailabilityZone="us-east-1a", IpAddress=ip)
        assert code == "CloudHsmInvalidRequestException", ip
    hsm = hsm_env.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1a", IpAddress="10.0.1.50")["Hsm"]
    assert hsm["EniIp"] == "10.0.1.50"


def test_requested_ip_in_use_is_refused(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    hsm_env.ec2.create_network_interface(SubnetId=subnets[0], PrivateIpAddress="10.0.1.60")
    cid = hsm_env.cluster(subnets)["ClusterId"]
    code, message, _ = error_of(hsm_env.hsm.create_hsm, ClusterId=cid, AvailabilityZone="us-east-1a",
                                IpAddress="10.0.1.60")
    assert code == "CloudHsmInvalidRequestException" and "in use" in message


def test_hsm_quota_per_region(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    hsm_env.emu.emu("POST", "cloudhsm/quotas", {"hsms_per_region": 1})
    a = hsm_env.cluster(subnets)["ClusterId"]
    b = hsm_env.cluster(subnets)["ClusterId"]
    hsm_env.hsm.create_hsm(ClusterId=a, AvailabilityZone="us-east-1a")
    code, message, _ = error_of(hsm_env.hsm.create_hsm, ClusterId=b, AvailabilityZone="us-east-1a")
    assert code == "CloudHsmResourceLimitExceededException" and "1 HSMs" in message


def test_hsm_quota_per_cluster(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cluster, _ = hsm_env.active(subnets)
    hsm_env.emu.emu("POST", "cloudhsm/quotas", {"hsms_per_cluster": 2})
    hsm_env.hsm.create_hsm(ClusterId=cluster["ClusterId"], AvailabilityZone="us-east-1b")
    code, message, _ = error_of(hsm_env.hsm.create_hsm, ClusterId=cluster["ClusterId"], AvailabilityZone="us-east-1b")
    assert code == "CloudHsmResourceLimitExceededException" and "maximum of 2 HSMs" in message


def test_active_cluster_takes_hsms_in_parallel(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cluster, _ = hsm_env.active(subnets)
    cid = cluster["ClusterId"]
    ids = [hsm_env.hsm.create_hsm(ClusterId=cid, AvailabilityZone=az)["Hsm"]["HsmId"]
           for az in ("us-east-1a", "us-east-1b", "us-east-1b")]
    for hsm_id in ids:
        hsm_env.wait_hsm(cid, hsm_id, "ACTIVE")
    assert len(hsm_env.describe(cid)["Hsms"]) == 4
    assert list(hsm_env.describe(cid)["Certificates"]) == ["ClusterCertificate"]


# ------------------------------------------------------------------------------ DeleteHsm / DeleteCluster
def test_delete_hsm_by_eni_ip_removes_it_and_its_eni(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cid = hsm_env.cluster(subnets)["ClusterId"]
    hsm = hsm_env.first_hsm(cid)
    assert hsm_env.hsm.delete_hsm(ClusterId=cid, EniIp=hsm["EniIp"])["HsmId"] == hsm["HsmId"]
    assert hsm_env.describe(cid)["Hsms"][0]["State"] == "DELETE_IN_PROGRESS"
    hsm_env.wait_hsm(cid, hsm["HsmId"], None)
    enis = hsm_env.ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnets[0]]}])
    assert hsm["EniId"] not in [e["NetworkInterfaceId"] for e in enis["NetworkInterfaces"]]
    # The replacement first HSM generates a new CSR (prior-art #3).
    csr_before = None
    second = hsm_env.first_hsm(cid)
    assert second["HsmId"] != hsm["HsmId"]
    assert hsm_env.describe(cid)["Certificates"]["ClusterCsr"] != csr_before


def test_delete_hsm_by_eni_id_and_hsm_id(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cluster, _ = hsm_env.active(subnets)
    cid = cluster["ClusterId"]
    second = hsm_env.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1b")["Hsm"]
    first = cluster["Hsms"][0]
    assert hsm_env.hsm.delete_hsm(ClusterId=cid, EniId=second["EniId"])["HsmId"] == second["HsmId"]
    assert hsm_env.hsm.delete_hsm(ClusterId=cid, HsmId=first["HsmId"])["HsmId"] == first["HsmId"]
    hsm_env.wait_hsm(cid, first["HsmId"], None)
    hsm_env.wait_hsm(cid, second["HsmId"], None)


def test_delete_hsm_argument_rules(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cid = hsm_env.cluster(subnets)["ClusterId"]
    hsm = hsm_env.first_hsm(cid)
    assert error_of(hsm_env.hsm.delete_hsm, ClusterId=cid)[0] == "CloudHsmInvalidRequestException"
    assert error_of(hsm_env.hsm.delete_hsm, ClusterId=cid, HsmId=hsm["HsmId"],
                    EniIp=hsm["EniIp"])[0] == "CloudHsmInvalidRequestException"
    assert error_of(hsm_env.hsm.delete_hsm, ClusterId=cid, EniIp="10.0.1.99")[0] == "CloudHsmResourceNotFoundException"


def test_delete_cluster_refused_while_hsms_exist_then_deleted(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cluster = hsm_env.cluster(subnets)
    cid, sg = cluster["ClusterId"], cluster["SecurityGroup"]
    hsm = hsm_env.first_hsm(cid)
    code, message, status = error_of(hsm_env.hsm.delete_cluster, ClusterId=cid)
    assert (code, status) == ("CloudHsmInvalidRequestException", 400)
    assert "Delete all HSMs" in message
    hsm_env.hsm.delete_hsm(ClusterId=cid, HsmId=hsm["HsmId"])
    # Still refused while the HSM is being deleted.
    assert error_of(hsm_env.hsm.delete_cluster, ClusterId=cid)[0] == "CloudHsmInvalidRequestException"
    hsm_env.wait_hsm(cid, hsm["HsmId"], None)
    deleting = hsm_env.hsm.delete_cluster(ClusterId=cid)["Cluster"]
    assert deleting["State"] == "DELETE_IN_PROGRESS" and deleting["StateMessage"] == "The cluster is being deleted."
    assert hsm_env.wait_cluster(cid, "DELETED")["State"] == "DELETED"  # still describable
    groups = hsm_env.ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroups"]
    assert groups == []
    assert error_of(hsm_env.hsm.delete_cluster, ClusterId=cid)[0] == "CloudHsmResourceNotFoundException"


def test_deleted_cluster_no_longer_counts_against_quota(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    hsm_env.emu.emu("POST", "cloudhsm/quotas", {"clusters_per_region": 1})
    cid = hsm_env.cluster(subnets)["ClusterId"]
    hsm_env.hsm.delete_cluster(ClusterId=cid)
    hsm_env.wait_cluster(cid, "DELETED")
    hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets)


def test_delete_unknown_cluster(hsm_env: Toolbox):
    assert error_of(hsm_env.hsm.delete_cluster, ClusterId="cluster-abcdefghijk")[0] == "CloudHsmResourceNotFoundException"


# ------------------------------------------------------------------------------ DescribeClusters
def test_describe_clusters_unknown_id_is_empty(hsm_env: Toolbox):
    assert hsm_env.hsm.describe_clusters(Filters={"clusterIds": ["cluster-abcdefghijk"]})["Clusters"] == []


def test_describe_clusters_filters_and_pagination(hsm_env: Toolbox):
    vpc_a, subnets_a = hsm_env.vpc()
    _, subnets_b = hsm_env.vpc(cidr="10.1.0.0/16")
    a = hsm_env.cluster(subnets_a)["ClusterId"]
    b = hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets_b)["Cluster"]["ClusterId"]
    c = hsm_env.cluster(subnets_b)["ClusterId"]
    by_vpc = hsm_env.hsm.describe_clusters(Filters={"vpcIds": [vpc_a]})["Clusters"]
    assert [x["ClusterId"] for x in by_vpc] == [a]
    hsm_env.wait_cluster(b, "UNINITIALIZED")
    hsm_env.hsm.delete_cluster(ClusterId=c)
    by_state = hsm_env.hsm.describe_clusters(Filters={"states": ["UNINITIALIZED"]})["Clusters"]
    assert [x["ClusterId"] for x in by_state] == [a, b]
    seen, token = [], None
    while True:
        kwargs = {"MaxResults": 1, **({"NextToken": token} if token else {})}
        page = hsm_env.hsm.describe_clusters(**kwargs)
        assert len(page["Clusters"]) <= 1
        seen += [x["ClusterId"] for x in page["Clusters"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [a, b, c]
    paginated = hsm_env.hsm.get_paginator("describe_clusters").paginate(PaginationConfig={"PageSize": 2})
    assert [x["ClusterId"] for page in paginated for x in page["Clusters"]] == [a, b, c]


def test_describe_clusters_rejects_unknown_filter(hsm_env: Toolbox):
    assert error_of(hsm_env.hsm.describe_clusters, Filters={"color": ["blue"]})[0] == "CloudHsmInvalidRequestException"


# ------------------------------------------------------------------------------ ModifyCluster, tags
def test_modify_cluster_retention(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cid = hsm_env.cluster(subnets)["ClusterId"]
    out = hsm_env.hsm.modify_cluster(ClusterId=cid, BackupRetentionPolicy={"Type": "DAYS", "Value": "30"})
    assert out["Cluster"]["BackupRetentionPolicy"] == {"Type": "DAYS", "Value": "30"}
    assert error_of(hsm_env.hsm.modify_cluster, ClusterId=cid,
                    BackupRetentionPolicy={"Type": "DAYS", "Value": "400"})[0] == "CloudHsmInvalidRequestException"
    assert error_of(hsm_env.hsm.modify_cluster, ClusterId="cluster-abcdefghijk",
                    BackupRetentionPolicy={"Type": "DAYS", "Value": "30"})[0] == "CloudHsmResourceNotFoundException"


def test_tag_untag_list_tags(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cid = hsm_env.cluster(subnets)["ClusterId"]
    hsm_env.hsm.tag_resource(ResourceId=cid, TagList=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    hsm_env.hsm.tag_resource(ResourceId=cid, TagList=[{"Key": "a", "Value": "3"}])
    hsm_env.hsm.untag_resource(ResourceId=cid, TagKeyList=["b"])
    assert hsm_env.hsm.list_tags(ResourceId=cid)["TagList"] == [{"Key": "a", "Value": "3"}]
    page = hsm_env.hsm.list_tags(ResourceId=cid, MaxResults=1)
    assert len(page["TagList"]) == 1 and "NextToken" not in page
    assert error_of(hsm_env.hsm.list_tags, ResourceId="cluster-abcdefghijk")[0] == "CloudHsmResourceNotFoundException"
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    assert error_of(hsm_env.hsm.tag_resource, ResourceId=cid, TagList=too_many)[0] == \
        "CloudHsmResourceLimitExceededException"
    assert error_of(hsm_env.hsm.tag_resource, ResourceId=cid,
                    TagList=[{"Key": "aws:reserved", "Value": "x"}])[0] == "CloudHsmTagException"


# ------------------------------------------------------------------------------ faults
def test_api_fault_internal_failure_is_500(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    status, _ = hsm_env.emu.emu("POST", "faults", {"kind": "api", "service": "cloudhsmv2", "operation": "CreateCluster",
                                                   "error_code": "CloudHsmInternalFailureException", "status": 500})
    assert status == 200
    once = boto3.client("cloudhsmv2", endpoint_url=hsm_env.emu.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": 1}))
    code, _, status = error_of(once.create_cluster, HsmType="hsm2m.medium", SubnetIds=subnets)
    assert (code, status) == ("CloudHsmInternalFailureException", 500)
    hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets)  # count 1: next call works


def test_api_fault_matching_a_cluster_id(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    a = hsm_env.cluster(subnets)["ClusterId"]
    b = hsm_env.cluster(subnets)["ClusterId"]
    hsm_env.emu.emu("POST", "faults", {"kind": "api", "service": "cloudhsmv2", "operation": "CreateHsm",
                                       "error_code": "CloudHsmServiceException", "match": {"ClusterId": b}})
    hsm_env.hsm.create_hsm(ClusterId=a, AvailabilityZone="us-east-1a")
    assert error_of(hsm_env.hsm.create_hsm, ClusterId=b, AvailabilityZone="us-east-1a")[0] == "CloudHsmServiceException"


def test_hsm_create_outcome_degraded_in_an_az(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cid = hsm_env.cluster(subnets)["ClusterId"]
    hsm_env.emu.emu("POST", "faults", {"kind": "hsm_create", "match": {"az": "us-east-1b"},
                                       "outcome": {"state": "DEGRADED", "message": "Hardware fault"}})
    hsm = hsm_env.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1b")["Hsm"]
    degraded = hsm_env.wait_hsm(cid, hsm["HsmId"], "DEGRADED")
    assert degraded["StateMessage"] == "Hardware fault"
    assert "ClusterCsr" not in hsm_env.describe(cid)["Certificates"]


def test_hsm_create_outcome_failed_removes_the_hsm(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cid = hsm_env.cluster(subnets)["ClusterId"]
    hsm_env.emu.emu("POST", "faults", {"kind": "hsm_create", "match": {"cluster_id": cid},
                                       "outcome": {"state": "FAILED", "message": "Insufficient capacity"}})
    hsm = hsm_env.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1a")["Hsm"]
    hsm_env.wait_hsm(cid, hsm["HsmId"], None)
    cluster = hsm_env.describe(cid)
    assert hsm["HsmId"] in cluster["StateMessage"] and "Insufficient capacity" in cluster["StateMessage"]
    eni_ids = [e["NetworkInterfaceId"] for e in hsm_env.ec2.describe_network_interfaces()["NetworkInterfaces"]]
    assert hsm["EniId"] not in eni_ids
    hsm_env.first_hsm(cid)  # the cluster takes a new first HSM


def test_durations_are_scaled_and_lazy(hsm_env: Toolbox):
    """With the default nominal 240 s cluster create at scale 0.01 the cluster needs ~2.4 s."""
    hsm_env.emu.emu("POST", "clock", {"durations": {"cloudhsm.cluster_create": 240}})
    _, subnets = hsm_env.vpc()
    start = time.time()
    cid = hsm_env.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets)["Cluster"]["ClusterId"]
    hsm_env.wait_cluster(cid, "UNINITIALIZED", timeout=30)
    elapsed = time.time() - start
    scale = hsm_env.emu.time_scale
    assert 240 * scale * 0.9 <= elapsed <= 240 * scale + 3, elapsed


def test_deleted_cluster_drops_out_after_a_while(hsm_env: Toolbox):
    hsm_env.emu.emu("POST", "clock", {"durations": {"cloudhsm.deleted_visible": 50}})
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cid = hsm_env.cluster(subnets)["ClusterId"]
    hsm_env.hsm.delete_cluster(ClusterId=cid)
    hsm_env.wait_cluster(cid, "DELETED")
    deadline = time.time() + 20
    while hsm_env.hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"]:
        assert time.time() < deadline
        time.sleep(0.05)


def test_hsm_type_migration_is_refused_clearly(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cid = hsm_env.cluster(subnets)["ClusterId"]
    code, message, _ = error_of(hsm_env.hsm.modify_cluster, ClusterId=cid, HsmType="hsm1.medium")
    assert code == "CloudHsmInvalidRequestException" and "migration" in message


def test_aws_replacing_an_hsm_keeps_its_eni(hsm_env: Toolbox):
    """Prior-art #2: AWS may replace an HSM on its own; the HSM id changes, the ENI stays."""
    _, subnets = hsm_env.vpc()
    cluster, _ = hsm_env.active(subnets)
    cid, old = cluster["ClusterId"], cluster["Hsms"][0]
    status, out = hsm_env.emu.emu("POST", "cloudhsm/replace-hsm", {"cluster_id": cid, "hsm_id": old["HsmId"]})
    assert status == 200 and out["eni_id"] == old["EniId"] and out["new_hsm_id"] != old["HsmId"]
    hsms = hsm_env.describe(cid)["Hsms"]
    assert [(h["HsmId"], h["EniId"], h["EniIp"], h["State"]) for h in hsms] == [
        (out["new_hsm_id"], old["EniId"], old["EniIp"], "CREATE_IN_PROGRESS")]
    hsm_env.wait_hsm(cid, out["new_hsm_id"], "ACTIVE")
    assert hsm_env.side("login", cid, [cluster["SecurityGroup"]], login=hsm_env.as_admin())["ok"]
    assert hsm_env.hsm.delete_hsm(ClusterId=cid, EniId=old["EniId"])["HsmId"] == out["new_hsm_id"]
