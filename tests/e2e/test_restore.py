"""Restore a cluster from a backup with the `restore` app (Custom::RestoredCluster).

A dev stack makes the cluster (and, on activation, its first backup); a second stack restores that
backup in the same VPC with the first stack's admin password and trust anchor secrets. The first
stack stays up while the second one runs: its admin password secret is deleted with it.
"""

from __future__ import annotations

import re
import time

from e2e_support import (assert_converged, assert_no_cluster_created, assert_no_leaks,
                         assert_nothing_billing, cluster, clusters, enis, live_clusters,
                         secret_value)
from test_lifecycle import assert_deleted, base_params, run_on_client


def ready_backup(emu, cluster_id: str) -> dict:
    """The cluster's newest READY backup (activation takes one; it becomes READY shortly)."""
    hsm = emu.client("cloudhsmv2")
    deadline = time.time() + 60
    while time.time() < deadline:
        backups = hsm.describe_backups(Filters={"clusterIds": [cluster_id], "states": ["READY"]})["Backups"]
        if backups:
            return max(backups, key=lambda b: b["CreateTimestamp"])
        time.sleep(0.5)
    raise AssertionError(f"cluster {cluster_id} has no READY backup: "
                         f"{hsm.describe_backups(Filters={'clusterIds': [cluster_id]})['Backups']}")


def restore_params(network, n_subnets: int, per_subnet: int, backup_id: str, source_outputs: dict):
    return {**base_params(network, n_subnets, per_subnet),
            "SourceBackupId": backup_id,
            "SourceAdminPasswordSecretArn": source_outputs["AdminPasswordSecretArn"],
            "SourceTrustAnchorSecretArn": source_outputs["TrustAnchorSecretArn"]}


def test_restore_from_backup(emu, network, stack_factory):
    source = stack_factory("restore-source")
    first = source.deploy_ok(**base_params(network, 1, 1))
    c1 = assert_converged(emu, first, network, network.hsm_subnets(1), 1)
    backup = ready_backup(emu, c1["ClusterId"])
    source_users = emu.hsm_users(c1["ClusterId"])
    backup_usernames = {name for view in source_users.values() for name in view["users"]}
    assert "admin" in backup_usernames, source_users

    restored = stack_factory("restore-target", app="restore")
    subnets = network.hsm_subnets(2)
    result = restored.deploy_ok(**restore_params(network, 2, 1, backup["BackupId"], first.outputs))
    assert result.status == "CREATE_COMPLETE"
    # ACTIVE, 1 HSM in each of the 2 subnets, admin (with its password) on every HSM, the outputs
    # point at the live resources, the trust anchor is the CA of the (restored) cluster certificate.
    c2 = assert_converged(emu, result, network, subnets, 1)
    assert c2["ClusterId"] != c1["ClusterId"]
    assert c2.get("SourceBackupId") == backup["BackupId"], c2
    # Tagged with the custom resource that made it (how a retried step finds it again).
    stack_id = emu.client("cloudformation").describe_stacks(StackName=restored.name)["Stacks"][0]["StackId"]
    tags = {t["Key"]: t["Value"] for t in
            emu.client("cloudhsmv2").list_tags(ResourceId=c2["ClusterId"])["TagList"]}
    assert tags.get("CloudHsmStackId") == stack_id and tags.get("CloudHsmLogicalId"), tags
    # The HSMs carry the backup's users (restored, not a fresh cluster's).
    for hsm_id, view in emu.hsm_users(c2["ClusterId"]).items():
        assert set(view["users"]) == backup_usernames, (hsm_id, view["users"], backup_usernames)
    # The stack uses the given secrets and creates none of its own; no initialization ran.
    assert result.outputs["AdminPasswordSecretArn"] == first.outputs["AdminPasswordSecretArn"]
    assert result.outputs["TrustAnchorSecretArn"] == first.outputs["TrustAnchorSecretArn"]
    assert "ClusterCsr" not in result.outputs
    types = {r["ResourceType"] for r in emu.client("cloudformation")
             .describe_stack_resources(StackName=restored.name)["StackResources"]}
    assert "Custom::RestoredCluster" in types
    assert not types & {"AWS::CloudHSM::Cluster", "Custom::ClusterInitialization",
                        "AWS::SecretsManager::Secret"}, types
    # The outputs agree with what CloudFormation itself reports.
    cfn_outputs = {o["OutputKey"]: o["OutputValue"] for o in emu.client("cloudformation")
                   .describe_stacks(StackName=restored.name)["Stacks"][0].get("Outputs", [])}
    assert {k: cfn_outputs.get(k) for k in result.outputs} == result.outputs
    # The new client has the trust anchor installed and its CLI reaches the restored HSMs.
    out = run_on_client(emu, result.outputs["ClientInstanceId"],
                        ["cat /opt/cloudhsm/etc/customerCA.crt",
                         "/opt/cloudhsm/bin/cloudhsm-cli user list"])
    anchor = secret_value(emu, first.outputs["TrustAnchorSecretArn"])
    assert anchor.strip() in out, f"the restored stack's client lacks the trust anchor:\n{out}"
    assert '"username": "admin"' in out.replace('":"', '": "'), out
    assert_no_leaks(emu)

    # Update: the placement is fixed (refused, rolled back, the cluster untouched); the backup
    # retention is applied.
    moved = restored.deploy(SubnetIds=network.hsm_subnets(3))
    assert moved.returncode != 0, moved.describe()
    assert re.search(r"SubnetIds \(.*\) cannot change.*new stack", moved.root_cause_text()), moved.describe()
    assert restored.cfn_status() == "UPDATE_ROLLBACK_COMPLETE", restored.cfn_status()
    same = cluster(emu, c2["ClusterId"])
    assert sorted(h["HsmId"] for h in same["Hsms"]) == sorted(h["HsmId"] for h in c2["Hsms"])
    restored.deploy_ok(SubnetIds=subnets, BackupRetentionDays=30)
    assert cluster(emu, c2["ClusterId"])["BackupRetentionPolicy"]["Value"] == "30"

    # Destroy the restored stack: its cluster and HSMs go; the source stack and its secrets stay.
    gone = restored.destroy()
    assert gone.returncode == 0 and gone.status == "DELETE_COMPLETE", gone.describe()
    assert c2["ClusterId"] not in {c["ClusterId"] for c in live_clusters(emu)}, \
        f"the restored cluster is left: {[(c['ClusterId'], c['State']) for c in clusters(emu)]}"
    hsm_enis = {h["EniId"] for h in c2["Hsms"]}
    assert not [e for e in enis(emu, network.vpc_id) if e["NetworkInterfaceId"] in hsm_enis], \
        "the restored cluster's HSM ENIs are left"
    still = cluster(emu, c1["ClusterId"])
    assert still["State"] == "ACTIVE" and len(still["Hsms"]) == 1, still
    sm = emu.client("secretsmanager")
    for name in ("AdminPasswordSecretArn", "TrustAnchorSecretArn"):
        assert "DeletedDate" not in sm.describe_secret(SecretId=first.outputs[name]), \
            f"destroying the restored stack deleted the source stack's {name}"
    assert_deleted(emu, source, network, first.outputs)


def test_restore_from_unknown_backup_fails_cleanly(emu, network, stack_factory):
    stack = stack_factory("restore-unknown", app="restore")
    fake = {"AdminPasswordSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:none-AbCdEf",
            "TrustAnchorSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:none-GhIjKl"}
    result = stack.deploy(**restore_params(network, 1, 1, "backup-unknownbackup2", fake))
    assert result.returncode != 0, result.describe()
    assert result.status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), result.describe()
    shown = result.root_cause_text()
    for pattern in (r"backup-unknownbackup2", r"does not exist", r"describe-backups"):
        assert re.search(pattern, shown), f"message lacks {pattern!r}:\n{result.describe()}"
    # Nothing was created that bills, and the rollback left nothing behind.
    assert_no_cluster_created(emu)
    assert_nothing_billing(emu, network)
    gone = stack.destroy()
    assert gone.returncode == 0, gone.describe()
    assert_nothing_billing(emu, network)


def test_restore_step_crash_creates_one_cluster_and_leaves_nothing_billing(emu, network, stack_factory):
    """The RestoreCluster Lambda dies right after CreateCluster (its response lost). Either the
    retried step finds the cluster by its tags (one cluster, the stack completes), or the Create
    fails and the rollback's Delete finds the cluster by its tags and deletes it."""
    source = stack_factory("restore-crash-source")
    first = source.deploy_ok(**base_params(network, 1, 1))
    c1 = assert_converged(emu, first, network, network.hsm_subnets(1), 1)
    backup = ready_backup(emu, c1["ClusterId"])
    rule = emu.add_fault(kind="lambda_crash", match={"handler": "cluster", "step": "RestoreCluster"},
                         count=1, outcome={"after": "side_effect"})
    restored = stack_factory("restore-crash-target", app="restore")
    result = restored.deploy(**restore_params(network, 1, 1, backup["BackupId"], first.outputs))
    assert emu.fault_hits(rule["id"]) == 1, "the emulator never crashed the RestoreCluster step"
    made = [c for c in clusters(emu) if c.get("SourceBackupId") == backup["BackupId"]]
    assert len(made) == 1, f"a retried RestoreCluster made a second cluster: {made}"
    if result.returncode == 0:
        c2 = assert_converged(emu, result, network, network.hsm_subnets(1), 1)
        assert c2["ClusterId"] == made[0]["ClusterId"]
        gone = restored.destroy()
        assert gone.returncode == 0 and gone.status == "DELETE_COMPLETE", gone.describe()
    else:
        assert restored.cfn_status() in ("ROLLBACK_COMPLETE", None), result.describe()
        restored.destroy()
    left = [c for c in live_clusters(emu) if c.get("SourceBackupId") == backup["BackupId"]]
    assert not left, f"the restored cluster is left billing: {left}"
    assert_deleted(emu, source, network, first.outputs)
