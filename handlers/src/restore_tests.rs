//! `Custom::RestoredCluster` steps against mocked CloudHSM (aws-smithy-mocks).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_cloudhsmv2 as hsm;
use aws_smithy_mocks::mock;
use serde_json::{json, Value};

use crate::call::Call;
use crate::error::StepError;
use crate::testing::clients;

const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/restored/guid-1";
const RESTORED: &str = "cluster-restoredabcd";
const BACKUP: &str = "backup-ro5c4er4aac";

fn props(extra: Value) -> Value {
    let mut p = json!({"BackupId": BACKUP, "SubnetIds": ["subnet-aaaa1111", "subnet-bbbb2222"],
                       "HsmType": "hsm2m.medium", "ClusterMode": "FIPS", "BackupRetentionDays": "90",
                       "VpcId": "vpc-0123456789abcdef0"});
    for (k, v) in extra.as_object().unwrap() {
        p[k.as_str()] = v.clone();
    }
    p
}

fn event(request: &str, new: Value, old: Option<Value>, physical: Option<&str>) -> Value {
    let mut e = json!({
        "RequestType": request, "RequestId": "r-1", "ResponseURL": "http://127.0.0.1:1/x",
        "StackId": STACK_ID, "LogicalResourceId": "HsmRestoredCluster",
        "ResourceType": "Custom::RestoredCluster", "ResourceProperties": new
    });
    if let Some(o) = old {
        e["OldResourceProperties"] = o;
    }
    if let Some(p) = physical {
        e["PhysicalResourceId"] = json!(p);
    }
    e
}

fn payload(step: &str, state: Value) -> Value {
    json!({"Step": step, "Input": state})
}

fn cluster(state: hsm::types::ClusterState, hsms: usize) -> hsm::types::Cluster {
    let hsms = (0..hsms)
        .map(|i| {
            hsm::types::Hsm::builder()
                .hsm_id(format!("hsm-restored{i}abcd"))
                .availability_zone("us-east-1a")
                .cluster_id(RESTORED)
                .state(hsm::types::HsmState::Active)
                .build()
                .unwrap()
        })
        .collect();
    hsm::types::Cluster::builder()
        .cluster_id(RESTORED)
        .state(state)
        .vpc_id("vpc-0123456789abcdef0")
        .security_group("sg-0123456789abcdef0")
        .source_backup_id(BACKUP)
        .hsm_type("hsm2m.medium")
        .mode(hsm::types::ClusterMode::Fips)
        .subnet_mapping("us-east-1a", "subnet-aaaa1111")
        .subnet_mapping("us-east-1b", "subnet-bbbb2222")
        .backup_retention_policy(
            hsm::types::BackupRetentionPolicy::builder()
                .r#type(hsm::types::BackupRetentionType::Days)
                .value("90")
                .build(),
        )
        .set_hsms(Some(hsms))
        .build()
}

fn tags() -> hsm::operation::list_tags::ListTagsOutput {
    let t = |k: &str, v: &str| hsm::types::Tag::builder().key(k).value(v).build().unwrap();
    hsm::operation::list_tags::ListTagsOutput::builder()
        .tag_list(t("CloudHsmStackId", STACK_ID))
        .tag_list(t("CloudHsmLogicalId", "HsmRestoredCluster"))
        .build()
        .unwrap()
}

fn backup(
    state: hsm::types::BackupState,
) -> hsm::operation::describe_backups::DescribeBackupsOutput {
    hsm::operation::describe_backups::DescribeBackupsOutput::builder()
        .backups(
            hsm::types::Backup::builder()
                .backup_id(BACKUP)
                .backup_state(state)
                .mode(hsm::types::ClusterMode::Fips)
                .build()
                .unwrap(),
        )
        .build()
}

#[tokio::test]
async fn restore_creates_once_and_finds_its_cluster_on_retry() {
    let created = Arc::new(AtomicBool::new(false));
    let seen = created.clone();
    // DescribeClusters shows the cluster only once CreateCluster ran.
    let describe = mock!(hsm::Client::describe_clusters).then_compute_output(move |_| {
        let mut b = hsm::operation::describe_clusters::DescribeClustersOutput::builder();
        if seen.load(Ordering::SeqCst) {
            b = b.clusters(cluster(hsm::types::ClusterState::CreateInProgress, 0));
        }
        b.build()
    });
    let list_tags = mock!(hsm::Client::list_tags).then_output(tags);
    let backups =
        mock!(hsm::Client::describe_backups).then_output(|| backup(hsm::types::BackupState::Ready));
    let flag = created.clone();
    let create = mock!(hsm::Client::create_cluster)
        .match_requests(|r| {
            r.source_backup_id() == Some(BACKUP)
                && r.mode() == Some(&hsm::types::ClusterMode::Fips)
                && r.tag_list()
                    .iter()
                    .any(|t| t.key() == "CloudHsmStackId" && t.value() == STACK_ID)
                && r.tag_list()
                    .iter()
                    .any(|t| t.key() == "CloudHsmLogicalId" && t.value() == "HsmRestoredCluster")
        })
        .then_compute_output(move |_| {
            flag.store(true, Ordering::SeqCst);
            hsm::operation::create_cluster::CreateClusterOutput::builder()
                .cluster(cluster(hsm::types::ClusterState::CreateInProgress, 0))
                .build()
        });
    let c = clients(&[&describe, &list_tags, &backups, &create]);
    let state = json!({"Event": event("Create", props(json!({})), None, None)});
    let p = payload("RestoreCluster", state.clone());
    let out = crate::cluster::run(&c, "RestoreCluster", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["ClusterId"], RESTORED);
    assert_eq!(out["SecurityGroupId"], "sg-0123456789abcdef0");
    assert_eq!(out["Created"], true);
    assert_eq!(create.num_calls(), 1);
    // The step runs again (a retry after a lost response): it finds the cluster by its tags.
    let out = crate::cluster::run(&c, "RestoreCluster", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["ClusterId"], RESTORED);
    assert_eq!(out["Created"], false);
    assert_eq!(
        create.num_calls(),
        1,
        "a retried step must not create a second cluster"
    );
}

#[tokio::test]
async fn restore_refuses_a_backup_that_is_not_ready_or_of_another_mode() {
    let describe = mock!(hsm::Client::describe_clusters).then_output(|| {
        hsm::operation::describe_clusters::DescribeClustersOutput::builder().build()
    });
    let pending = mock!(hsm::Client::describe_backups)
        .then_output(|| backup(hsm::types::BackupState::PendingDeletion));
    let create = mock!(hsm::Client::create_cluster)
        .then_output(|| hsm::operation::create_cluster::CreateClusterOutput::builder().build());
    let c = clients(&[&describe, &pending, &create]);
    let p = payload(
        "RestoreCluster",
        json!({"Event": event("Create", props(json!({})), None, None)}),
    );
    let err = crate::cluster::run(&c, "RestoreCluster", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StepError::InvalidInput(m) if m.contains("PENDING_DELETION") && m.contains("restore-backup")),
        "{err:?}"
    );

    let none = mock!(hsm::Client::describe_backups)
        .then_output(|| hsm::operation::describe_backups::DescribeBackupsOutput::builder().build());
    let c = clients(&[&describe, &none, &create]);
    let err = crate::cluster::run(&c, "RestoreCluster", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StepError::InvalidInput(m) if m.contains("does not exist")),
        "{err:?}"
    );

    let ready =
        mock!(hsm::Client::describe_backups).then_output(|| backup(hsm::types::BackupState::Ready));
    let c = clients(&[&describe, &ready, &create]);
    let p = payload(
        "RestoreCluster",
        json!({"Event": event("Create", props(json!({"ClusterMode": "NON_FIPS"})), None, None)}),
    );
    let err = crate::cluster::run(&c, "RestoreCluster", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StepError::InvalidInput(m) if m.contains("ClusterMode=FIPS")),
        "{err:?}"
    );
    assert_eq!(create.num_calls(), 0);
}

#[tokio::test]
async fn update_refuses_source_and_placement_changes_and_applies_retention() {
    let describe = mock!(hsm::Client::describe_clusters).then_output(|| {
        hsm::operation::describe_clusters::DescribeClustersOutput::builder()
            .clusters(cluster(hsm::types::ClusterState::Active, 2))
            .build()
    });
    let modify = mock!(hsm::Client::modify_cluster)
        .match_requests(|r| {
            r.cluster_id() == Some(RESTORED)
                && r.backup_retention_policy().and_then(|b| b.value()) == Some("30")
        })
        .then_output(|| hsm::operation::modify_cluster::ModifyClusterOutput::builder().build());
    let c = clients(&[&describe, &modify]);
    for (k, v) in [
        ("BackupId", json!("backup-otherbackup2")),
        ("SubnetIds", json!(["subnet-aaaa1111", "subnet-cccc3333"])),
        ("HsmType", json!("hsm1.medium")),
        ("ClusterMode", json!("NON_FIPS")),
    ] {
        let ev = event(
            "Update",
            props(json!({k: v})),
            Some(props(json!({}))),
            Some(RESTORED),
        );
        let p = payload("UpdateRestoredCluster", json!({"Event": ev}));
        let err = crate::cluster::run(&c, "UpdateRestoredCluster", Call::new(&p))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StepError::InvalidInput(m) if m.starts_with(k) && m.contains("new stack")),
            "{k}: {err:?}"
        );
    }
    assert_eq!(modify.num_calls(), 0);
    // Same subnets in another order: no change.
    let ev = event(
        "Update",
        props(json!({"SubnetIds": ["subnet-bbbb2222", "subnet-aaaa1111"]})),
        Some(props(json!({}))),
        Some(RESTORED),
    );
    let p = payload("UpdateRestoredCluster", json!({"Event": ev}));
    let out = crate::cluster::run(&c, "UpdateRestoredCluster", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["ClusterId"], RESTORED);
    assert_eq!(out["SecurityGroupId"], "sg-0123456789abcdef0");
    assert_eq!(modify.num_calls(), 0);
    // The rollback of a refused update asks for what the cluster has (its old properties are
    // the refused ones): no refusal, nothing changed.
    let ev = event(
        "Update",
        props(json!({})),
        Some(props(
            json!({"SubnetIds": ["subnet-aaaa1111", "subnet-cccc3333"], "BackupId": "backup-otherbackup2"}),
        )),
        Some(RESTORED),
    );
    let p = payload("UpdateRestoredCluster", json!({"Event": ev}));
    let out = crate::cluster::run(&c, "UpdateRestoredCluster", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["ClusterId"], RESTORED);
    assert_eq!(modify.num_calls(), 0);
    // Retention: ModifyCluster.
    let ev = event(
        "Update",
        props(json!({"BackupRetentionDays": "30"})),
        Some(props(json!({}))),
        Some(RESTORED),
    );
    let p = payload("UpdateRestoredCluster", json!({"Event": ev}));
    crate::cluster::run(&c, "UpdateRestoredCluster", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(modify.num_calls(), 1);
}

#[tokio::test]
async fn delete_removes_hsms_before_the_cluster_and_waits_until_it_is_gone() {
    // The cluster: 2 HSMs until DeleteHsm, then none; DeleteCluster → DELETE_IN_PROGRESS → gone.
    let hsms = Arc::new(AtomicUsize::new(2));
    let phase = Arc::new(AtomicUsize::new(0)); // 0 active, 1 deleting, 2 gone
    let (h, ph) = (hsms.clone(), phase.clone());
    let describe = mock!(hsm::Client::describe_clusters).then_compute_output(move |_| {
        let b = hsm::operation::describe_clusters::DescribeClustersOutput::builder();
        match ph.load(Ordering::SeqCst) {
            0 => b.clusters(cluster(
                hsm::types::ClusterState::Active,
                h.load(Ordering::SeqCst),
            )),
            1 => b.clusters(cluster(hsm::types::ClusterState::DeleteInProgress, 0)),
            _ => b,
        }
        .build()
    });
    let h = hsms.clone();
    let delete_hsm = mock!(hsm::Client::delete_hsm).then_compute_output(move |_| {
        h.fetch_sub(1, Ordering::SeqCst);
        hsm::operation::delete_hsm::DeleteHsmOutput::builder().build()
    });
    let (h, ph) = (hsms.clone(), phase.clone());
    let delete_cluster = mock!(hsm::Client::delete_cluster).then_compute_output(move |_| {
        assert_eq!(
            h.load(Ordering::SeqCst),
            0,
            "DeleteCluster before the HSMs were gone"
        );
        ph.store(1, Ordering::SeqCst);
        hsm::operation::delete_cluster::DeleteClusterOutput::builder().build()
    });
    let c = clients(&[&describe, &delete_hsm, &delete_cluster]);
    let ev = event("Delete", props(json!({})), None, Some(RESTORED));
    let run = |step: &'static str, state: Value| {
        let c = c.clone();
        async move {
            let p = json!({"Step": step, "Input": state, "ClusterId": RESTORED});
            crate::cluster::run(&c, step, Call::new(&p)).await
        }
    };
    let found = run("FindRestoredCluster", json!({"Event": ev}))
        .await
        .unwrap();
    assert_eq!(found["Found"], true);
    assert_eq!(found["ClusterId"], RESTORED);
    let mut state = json!({"Event": ev, "Restore": found});
    // While HSMs exist, DeleteCluster is not called.
    let out = run("DeleteCluster", state.clone()).await.unwrap();
    assert_eq!(out["Delete"], "waiting");
    assert_eq!(delete_cluster.num_calls(), 0);
    run("DeleteAllHsms", state.clone()).await.unwrap();
    assert_eq!(delete_hsm.num_calls(), 2);
    let out = run("DeleteCluster", state.clone()).await.unwrap();
    assert_eq!(out["Delete"], "deleting");
    assert_eq!(delete_cluster.num_calls(), 1);
    let poll = run("ClusterGone", state.clone()).await.unwrap();
    assert_eq!(poll["Done"], false);
    assert_eq!(
        delete_cluster.num_calls(),
        1,
        "a cluster being deleted is not deleted again"
    );
    state["Poll"] = poll;
    phase.store(2, Ordering::SeqCst);
    let poll = run("ClusterGone", state.clone()).await.unwrap();
    assert_eq!(poll["Done"], true);
}

#[tokio::test]
async fn delete_after_a_failed_create_finds_the_cluster_by_its_tags() {
    let describe = mock!(hsm::Client::describe_clusters).then_output(|| {
        hsm::operation::describe_clusters::DescribeClustersOutput::builder()
            .clusters(cluster(hsm::types::ClusterState::CreateInProgress, 0))
            .build()
    });
    let list_tags = mock!(hsm::Client::list_tags).then_output(tags);
    let c = clients(&[&describe, &list_tags]);
    // The failed Create answered with the stack-scoped name (no cluster id known then).
    let ev = event(
        "Delete",
        props(json!({})),
        None,
        Some("restored-HsmRestoredCluster"),
    );
    let p = payload("FindRestoredCluster", json!({"Event": ev}));
    let found = crate::cluster::run(&c, "FindRestoredCluster", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(found["Found"], true);
    assert_eq!(found["ClusterId"], RESTORED);
    // Still being created: the delete waits instead of failing.
    let p = json!({"Step": "DeleteCluster", "Input": {"Event": ev, "Restore": found}});
    let out = crate::cluster::run(&c, "DeleteCluster", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["Delete"], "waiting");
}
