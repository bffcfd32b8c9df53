"""Backups (aws-behaviour.md 1.1, 1.4 "Backups"): taken on activation and on HSM add/remove in an
active cluster; retention; delete/restore; copy to another region; NeverExpires; sharing policy;
restoring users into a cluster that has no HSM left or into a new cluster."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from test_cloudhsm_support import PASSWORD, Toolbox, hsm_env  # noqa: F401


def wait_backup(toolbox: Toolbox, client, backup_id: str, state: str, timeout: float = 20) -> dict:
    deadline = time.time() + timeout
    while True:
        backups = client.describe_backups(Filters={"backupIds": [backup_id]})["Backups"]
        if backups and backups[0]["BackupState"] == state:
            return backups[0]
        assert time.time() < deadline, backups
        time.sleep(0.05)


@pytest.fixture
def active(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc()
    cluster, anchor = hsm_env.active(subnets)
    return hsm_env, cluster


def test_activation_takes_a_backup(active):
    toolbox, cluster = active
    backups = toolbox.backups(cluster["ClusterId"])
    assert len(backups) == 1
    backup = backups[0]
    assert backup["BackupId"].startswith("backup-")
    assert backup["BackupArn"].endswith(f":backup/{backup['BackupId']}")
    assert (backup["HsmType"], backup["Mode"], backup["NeverExpires"]) == ("hsm2m.medium", "FIPS", False)
    assert wait_backup(toolbox, toolbox.hsm, backup["BackupId"], "READY")["BackupState"] == "READY"


def test_uninitialized_cluster_has_no_backup(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cid = hsm_env.cluster(subnets)["ClusterId"]
    hsm = hsm_env.first_hsm(cid)
    hsm_env.hsm.delete_hsm(ClusterId=cid, HsmId=hsm["HsmId"])
    assert hsm_env.backups(cid) == []


def test_adding_and_removing_hsms_take_backups(active):
    toolbox, cluster = active
    cid = cluster["ClusterId"]
    second = toolbox.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1b")["Hsm"]
    assert len(toolbox.backups(cid)) == 2
    toolbox.wait_hsm(cid, second["HsmId"], "ACTIVE")
    toolbox.hsm.delete_hsm(ClusterId=cid, HsmId=second["HsmId"])
    assert len(toolbox.backups(cid)) == 3


def test_new_hsm_in_active_cluster_is_cloned_with_users(active):
    toolbox, cluster = active
    cid, sg = cluster["ClusterId"], [cluster["SecurityGroup"]]
    toolbox.side("user_create", cid, sg, login=toolbox.as_admin(), username="kmsuser", role="crypto-user",
                 password="kmsPassw0rd")
    second = toolbox.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1b")["Hsm"]
    toolbox.wait_hsm(cid, second["HsmId"], "ACTIVE")
    listed = {u["username"]: u for u in toolbox.side("user_list", cid, sg)["data"]}
    assert listed["kmsuser"]["cluster-coverage"] == "full"
    assert toolbox.side("login", cid, sg, hsms=[second["EniIp"]],
                        login={"username": "kmsuser", "role": "crypto-user", "password": "kmsPassw0rd"})["ok"]


def test_hsm_in_a_cluster_without_hsms_restores_the_latest_backup(active):
    toolbox, cluster = active
    cid, sg = cluster["ClusterId"], [cluster["SecurityGroup"]]
    toolbox.side("user_create", cid, sg, login=toolbox.as_admin(), username="kmsuser", role="crypto-user",
                 password="kmsPassw0rd")
    only = cluster["Hsms"][0]
    toolbox.hsm.delete_hsm(ClusterId=cid, HsmId=only["HsmId"])  # backup taken with kmsuser in it
    toolbox.wait_hsm(cid, only["HsmId"], None)
    assert toolbox.describe(cid)["State"] == "ACTIVE"
    fresh = toolbox.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1a")["Hsm"]
    toolbox.wait_hsm(cid, fresh["HsmId"], "ACTIVE")
    names = [u["username"] for u in toolbox.side("user_list", cid, sg)["data"]]
    assert names == ["admin", "app_user", "kmsuser"]
    assert toolbox.side("login", cid, sg, login=toolbox.as_admin())["ok"]


def test_cluster_from_backup_is_active_and_restores_users(active):
    toolbox, cluster = active
    cid, sg = cluster["ClusterId"], [cluster["SecurityGroup"]]
    toolbox.side("user_create", cid, sg, login=toolbox.as_admin(), username="kmsuser", role="crypto-user",
                 password="kmsPassw0rd")
    toolbox.hsm.delete_hsm(ClusterId=cid, HsmId=cluster["Hsms"][0]["HsmId"])
    latest = toolbox.backups(cid)[-1]
    wait_backup(toolbox, toolbox.hsm, latest["BackupId"], "READY")
    subnets = list(cluster["SubnetMapping"].values())
    restored = toolbox.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=subnets,
                                          SourceBackupId=latest["BackupId"])["Cluster"]
    assert restored["State"] == "CREATE_IN_PROGRESS" and restored["SourceBackupId"] == latest["BackupId"]
    active_cluster = toolbox.wait_cluster(restored["ClusterId"], "ACTIVE")
    assert list(active_cluster["Certificates"]) == ["ClusterCertificate"]
    assert active_cluster["Certificates"]["ClusterCertificate"] == cluster["Certificates"]["ClusterCertificate"]
    hsm = toolbox.hsm.create_hsm(ClusterId=restored["ClusterId"], AvailabilityZone="us-east-1a")["Hsm"]
    toolbox.wait_hsm(restored["ClusterId"], hsm["HsmId"], "ACTIVE")
    names = [u["username"] for u in toolbox.side("user_list", restored["ClusterId"],
                                                  [restored["SecurityGroup"]])["data"]]
    assert "kmsuser" in names


def test_backup_modes_do_not_mix(active):
    toolbox, cluster = active
    backup = wait_backup(toolbox, toolbox.hsm, toolbox.backups(cluster["ClusterId"])[0]["BackupId"], "READY")
    with pytest.raises(ClientError) as info:
        toolbox.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=list(cluster["SubnetMapping"].values()),
                                   SourceBackupId=backup["BackupId"], Mode="NON_FIPS")
    assert info.value.response["Error"]["Code"] == "CloudHsmInvalidRequestException"
    with pytest.raises(ClientError) as info:
        toolbox.hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=list(cluster["SubnetMapping"].values()),
                                   SourceBackupId="backup-abcdefghijk")
    assert info.value.response["Error"]["Code"] == "CloudHsmResourceNotFoundException"


def test_delete_and_restore_backup(active):
    toolbox, cluster = active
    backup_id = toolbox.backups(cluster["ClusterId"])[0]["BackupId"]
    wait_backup(toolbox, toolbox.hsm, backup_id, "READY")
    deleted = toolbox.hsm.delete_backup(BackupId=backup_id)["Backup"]
    assert deleted["BackupState"] == "PENDING_DELETION" and "DeleteTimestamp" in deleted
    with pytest.raises(ClientError) as info:
        toolbox.hsm.delete_backup(BackupId=backup_id)
    assert info.value.response["Error"]["Code"] == "CloudHsmInvalidRequestException"
    restored = toolbox.hsm.restore_backup(BackupId=backup_id)["Backup"]
    assert restored["BackupState"] == "READY" and "DeleteTimestamp" not in restored
    with pytest.raises(ClientError) as info:
        toolbox.hsm.restore_backup(BackupId=backup_id)  # only PENDING_DELETION can be restored
    assert info.value.response["Error"]["Code"] == "CloudHsmInvalidRequestException"
    with pytest.raises(ClientError) as info:
        toolbox.hsm.delete_backup(BackupId="backup-abcdefghijk")
    assert info.value.response["Error"]["Code"] == "CloudHsmResourceNotFoundException"


def test_never_expires_and_filters(active):
    toolbox, cluster = active
    cid = cluster["ClusterId"]
    second = toolbox.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1b")["Hsm"]
    first_id, second_id = [b["BackupId"] for b in toolbox.backups(cid)]
    out = toolbox.hsm.modify_backup_attributes(BackupId=first_id, NeverExpires=True)["Backup"]
    assert out["NeverExpires"] is True
    kept = toolbox.hsm.describe_backups(Filters={"neverExpires": ["true"]})["Backups"]
    assert [b["BackupId"] for b in kept] == [first_id]
    wait_backup(toolbox, toolbox.hsm, second_id, "READY")
    ready = toolbox.hsm.describe_backups(Filters={"states": ["READY"], "clusterIds": [cid]})["Backups"]
    assert {b["BackupId"] for b in ready} >= {second_id}
    newest_first = toolbox.hsm.describe_backups(Filters={"clusterIds": [cid]})["Backups"]
    assert [b["BackupId"] for b in newest_first] == [second_id, first_id]
    page = toolbox.hsm.describe_backups(MaxResults=1, SortAscending=True)
    assert [b["BackupId"] for b in page["Backups"]] == [first_id] and page["NextToken"]
    assert second["HsmId"]


def test_retention_expires_old_backups_but_never_the_last(active):
    toolbox, cluster = active
    cid = cluster["ClusterId"]
    toolbox.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1b")
    first_id, second_id = [b["BackupId"] for b in toolbox.backups(cid)]
    wait_backup(toolbox, toolbox.hsm, second_id, "READY")
    toolbox.hsm.modify_cluster(ClusterId=cid, BackupRetentionPolicy={"Type": "DAYS", "Value": "7"})
    # Shrink time so that 7 nominal days pass in well under a second, then put it back.
    scale = toolbox.emu.time_scale
    assert toolbox.emu.emu("POST", "clock", {"scale": 1e-7})[0] == 200
    try:
        time.sleep(0.2)
        backups = toolbox.backups(cid)
    finally:
        toolbox.emu.emu("POST", "clock", {"scale": scale})
    states = {b["BackupId"]: b["BackupState"] for b in backups}
    assert states[first_id] == "DELETED"
    # Days passed, so daily backups were taken too; the newest one never expires.
    newest = max(backups, key=lambda b: b["CreateTimestamp"])
    assert newest["BackupState"] != "DELETED"
    assert len(backups) > 2


def test_copy_backup_to_region(active):
    toolbox, cluster = active
    backup = toolbox.backups(cluster["ClusterId"])[0]
    with pytest.raises(ClientError):
        toolbox.hsm.copy_backup_to_region(DestinationRegion="us-west-2", BackupId=backup["BackupId"])  # not READY
    wait_backup(toolbox, toolbox.hsm, backup["BackupId"], "READY")
    out = toolbox.hsm.copy_backup_to_region(DestinationRegion="us-west-2", BackupId=backup["BackupId"],
                                            TagList=[{"Key": "dr", "Value": "yes"}])["DestinationBackup"]
    assert out["SourceRegion"] == "us-east-1" and out["SourceBackup"] == backup["BackupId"]
    assert out["SourceCluster"] == cluster["ClusterId"]
    west = _client(toolbox, "us-west-2")
    copies = west.describe_backups(Filters={"sourceBackupIds": [backup["BackupId"]]})["Backups"]
    assert len(copies) == 1 and "ClusterId" not in copies[0]
    assert copies[0]["TagList"] == [{"Key": "dr", "Value": "yes"}]
    wait_backup(toolbox, west, copies[0]["BackupId"], "READY")
    with pytest.raises(ClientError) as info:
        toolbox.hsm.copy_backup_to_region(DestinationRegion="us-east-1", BackupId=backup["BackupId"])
    assert info.value.response["Error"]["Code"] == "CloudHsmInvalidRequestException"


def _client(toolbox: Toolbox, region: str):
    import boto3

    return boto3.client("cloudhsmv2", endpoint_url=toolbox.emu.endpoint, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_resource_policy_on_backups(active):
    toolbox, cluster = active
    backup = toolbox.backups(cluster["ClusterId"])[0]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
        "Action": ["cloudhsm:CreateCluster", "cloudhsm:DescribeBackups"], "Resource": backup["BackupArn"]}]})
    with pytest.raises(ClientError) as info:  # the backup must be READY
        toolbox.hsm.put_resource_policy(ResourceArn=backup["BackupArn"], Policy=policy)
    assert info.value.response["Error"]["Code"] == "CloudHsmInvalidRequestException"
    wait_backup(toolbox, toolbox.hsm, backup["BackupId"], "READY")
    put = toolbox.hsm.put_resource_policy(ResourceArn=backup["BackupArn"], Policy=policy)
    assert put == {**put, "ResourceArn": backup["BackupArn"], "Policy": policy}
    assert toolbox.hsm.get_resource_policy(ResourceArn=backup["BackupArn"])["Policy"] == policy
    deleted = toolbox.hsm.delete_resource_policy(ResourceArn=backup["BackupArn"])
    assert deleted["Policy"] == policy
    assert "Policy" not in toolbox.hsm.get_resource_policy(ResourceArn=backup["BackupArn"])
    with pytest.raises(ClientError) as info:
        toolbox.hsm.put_resource_policy(ResourceArn=backup["BackupArn"], Policy="{not json")
    assert info.value.response["Error"]["Code"] == "CloudHsmInvalidRequestException"


def test_shared_backups_are_listed_for_the_named_account(active):
    import boto3

    toolbox, cluster = active
    backup = wait_backup(toolbox, toolbox.hsm, toolbox.backups(cluster["ClusterId"])[0]["BackupId"], "READY")
    other_account = "210987654321"
    creds = toolbox.emu.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{other_account}:role/restore", RoleSessionName="restore")["Credentials"]
    other = boto3.client("cloudhsmv2", endpoint_url=toolbox.emu.endpoint, region_name="us-east-1",
                         aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"])
    assert other.describe_backups()["Backups"] == []
    assert other.describe_backups(Shared=True)["Backups"] == []
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other_account}:root"},
        "Action": "cloudhsm:DescribeBackups", "Resource": backup["BackupArn"]}]})
    toolbox.hsm.put_resource_policy(ResourceArn=backup["BackupArn"], Policy=policy)
    shared = other.describe_backups(Shared=True)["Backups"]
    assert [b["BackupId"] for b in shared] == [backup["BackupId"]]
