//! `Custom::RestoredCluster` steps (in the `cluster` group): a cluster created from a CloudHSM
//! backup with `CreateCluster(SourceBackupId)` (aws-behaviour.md 1.3: CREATE_IN_PROGRESS → ACTIVE
//! with no HSMs; no initialize, no activate; the first CreateHsm restores the backup's users and
//! keys). The native `AWS::CloudHSM::Cluster` has no SourceBackupId.
//!
//! Results go to `$.Restore` (`{ClusterId, SecurityGroupId, Found, Created}`); `Respond` answers
//! with PhysicalResourceId = the cluster id and Data `{ClusterId, SecurityGroupId}`.

use aws_sdk_cloudhsmv2 as hsm;
use serde_json::{json, Value};
use tracing::info;

use crate::call::Call;
use crate::clients::{describe_cluster, Clients};
use crate::error::{aws_err, AwsFailure, StepError, StepResult};
use crate::event::CfnEvent;
use crate::poll::{Poll, Schedule};

/// Tags that name the custom resource that created a cluster (find-before-create: a retried
/// step finds the cluster its lost response created instead of making a second one).
pub const TAG_STACK_ID: &str = "CloudHsmStackId";
pub const TAG_LOGICAL_ID: &str = "CloudHsmLogicalId";

/// A restore reaches ACTIVE in minutes (the cluster is created, no HSM yet).
pub const RESTORED: Schedule = Schedule {
    first: 120,
    then: 30,
    max_attempts: 40,
};
/// DeleteCluster: DELETE_IN_PROGRESS → DELETED (or gone).
pub const CLUSTER_GONE: Schedule = Schedule {
    first: 60,
    then: 30,
    max_attempts: 40,
};

/// Properties that fix a restored cluster's source and placement.
const FIXED: [&str; 4] = ["BackupId", "SubnetIds", "HsmType", "ClusterMode"];

struct Found {
    id: String,
    security_group: String,
    state: String,
}

fn found_from(c: &hsm::types::Cluster) -> Found {
    Found {
        id: c.cluster_id().unwrap_or_default().to_string(),
        security_group: c.security_group().unwrap_or_default().to_string(),
        state: c
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
    }
}

fn restore_result(f: &Found, created: bool) -> Value {
    json!({"ClusterId": f.id, "SecurityGroupId": f.security_group, "Found": true,
           "Created": created, "ClusterState": f.state})
}

/// The live cluster this custom resource created, found by its tags among the VPC's clusters
/// (clusters being deleted or deleted do not count).
async fn find_by_tags(c: &Clients, ev: &CfnEvent<'_>) -> StepResult<Option<Found>> {
    let stack_id = ev.field("StackId")?;
    let logical = ev.field("LogicalResourceId")?;
    let vpc = ev.props().opt_str("VpcId");
    let mut token: Option<String> = None;
    loop {
        let mut req = c.hsm.describe_clusters().set_next_token(token.clone());
        if let Some(v) = &vpc {
            req = req.filters("vpcIds", vec![v.clone()]);
        }
        let out = req
            .send()
            .await
            .map_err(|e| aws_err("cloudhsmv2:DescribeClusters", e))?;
        for cl in out.clusters() {
            let state = cl.state().map(|s| s.as_str()).unwrap_or_default();
            if matches!(state, "DELETE_IN_PROGRESS" | "DELETED") {
                continue;
            }
            let id = cl.cluster_id().unwrap_or_default();
            if has_tags(c, id, stack_id, logical).await? {
                return Ok(Some(found_from(cl)));
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(None);
        }
    }
}

async fn has_tags(c: &Clients, cluster: &str, stack_id: &str, logical: &str) -> StepResult<bool> {
    let mut token: Option<String> = None;
    let (mut stack_ok, mut logical_ok) = (false, false);
    loop {
        let out = c
            .hsm
            .list_tags()
            .resource_id(cluster)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| aws_err("cloudhsmv2:ListTags", e))?;
        for t in out.tag_list() {
            stack_ok |= t.key() == TAG_STACK_ID && t.value() == stack_id;
            logical_ok |= t.key() == TAG_LOGICAL_ID && t.value() == logical;
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(stack_ok && logical_ok);
        }
    }
}

/// The backup must exist here and be READY, and its mode must be the cluster's
/// (FIPS backups restore only to FIPS clusters: aws-behaviour.md "Backups").
async fn check_backup(c: &Clients, backup_id: &str, mode: &str) -> StepResult<()> {
    // An ARN names a backup possibly shared from another account: CreateCluster checks it.
    if backup_id.starts_with("arn:") {
        return Ok(());
    }
    let out = c
        .hsm
        .describe_backups()
        .filters("backupIds", vec![backup_id.to_string()])
        .send()
        .await
        .map_err(|e| {
            let f = AwsFailure::from_sdk("cloudhsmv2:DescribeBackups", &e);
            if f.is("CloudHsmResourceNotFoundException") {
                StepError::invalid(format!(
                    "backup {backup_id} does not exist in this account and Region; list your backups with \
                     `aws cloudhsmv2 describe-backups` and give a READY one as SourceBackupId"
                ))
            } else {
                f.or_else(StepError::InvalidInput)
            }
        })?;
    let Some(b) = out.backups().iter().find(|b| b.backup_id() == backup_id) else {
        return Err(StepError::invalid(format!(
            "backup {backup_id} does not exist in this account and Region; list your backups with \
             `aws cloudhsmv2 describe-backups` and give a READY one as SourceBackupId"
        )));
    };
    let state = b.backup_state().map(|s| s.as_str()).unwrap_or("");
    if state != "READY" {
        return Err(StepError::invalid(format!(
            "backup {backup_id} is {state}, not READY: only a READY backup can be restored{}",
            if state == "PENDING_DELETION" {
                " (restore it first with `aws cloudhsmv2 restore-backup`)"
            } else {
                ""
            }
        )));
    }
    if let Some(m) = b.mode().map(|m| m.as_str()) {
        if !m.is_empty() && m != mode {
            return Err(StepError::invalid(format!(
                "backup {backup_id} is a {m} backup but ClusterMode is {mode}: a backup restores only to a \
                 cluster of its own mode; set ClusterMode={m}"
            )));
        }
    }
    Ok(())
}

/// Create: find the cluster this resource already created, else CreateCluster from the backup.
pub async fn restore_cluster(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let ev = call.event()?;
    if let Some(f) = find_by_tags(c, &ev).await? {
        info!(cluster = %f.id, "restored cluster already exists");
        return Ok(restore_result(&f, false));
    }
    let p = ev.props();
    let backup = p.str("BackupId")?;
    let mode = p.opt_str("ClusterMode").unwrap_or_else(|| "FIPS".into());
    check_backup(c, &backup, &mode).await?;
    let days = p
        .opt_str("BackupRetentionDays")
        .unwrap_or_else(|| "90".into());
    let tag = |k: &str, v: &str| {
        hsm::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .map_err(|e| StepError::invalid(e.to_string()))
    };
    let stack = ev.stack_name();
    let out = c
        .hsm
        .create_cluster()
        .source_backup_id(&backup)
        .hsm_type(p.str("HsmType")?)
        .mode(hsm::types::ClusterMode::from(mode.as_str()))
        .set_subnet_ids(Some(p.list("SubnetIds")?))
        .backup_retention_policy(
            hsm::types::BackupRetentionPolicy::builder()
                .r#type(hsm::types::BackupRetentionType::Days)
                .value(days)
                .build(),
        )
        .tag_list(tag(TAG_STACK_ID, ev.field("StackId")?)?)
        .tag_list(tag(TAG_LOGICAL_ID, ev.field("LogicalResourceId")?)?)
        .tag_list(tag("CloudHsmStack", &stack)?)
        .tag_list(tag("Name", &format!("{stack}-cluster"))?)
        .send()
        .await
        .map_err(|e| {
            let f = AwsFailure::from_sdk("cloudhsmv2:CreateCluster", &e);
            if f.transient {
                StepError::Transient(f.describe())
            } else {
                StepError::invalid(format!(
                    "{}; nothing was created. Check SourceBackupId (a READY backup of this Region), \
                     SubnetIds (one per Availability Zone, one VPC) and the CloudHSM cluster quota",
                    f.describe()
                ))
            }
        })?;
    let cl = out.cluster().ok_or_else(|| {
        StepError::Transient("cloudhsmv2:CreateCluster returned no cluster".into())
    })?;
    let f = found_from(cl);
    info!(cluster = %f.id, backup = %backup, "cluster restore started");
    Ok(restore_result(&f, true))
}

/// What the live cluster has for each fixed property (None: the cluster does not say).
fn live_fixed(cl: &hsm::types::Cluster, name: &str) -> Option<Vec<String>> {
    let one = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(|s| vec![s.to_string()]);
    match name {
        "BackupId" => one(cl.source_backup_id()),
        "SubnetIds" => cl.subnet_mapping().map(|m| {
            let mut v: Vec<String> = m.values().cloned().collect();
            v.sort();
            v
        }),
        "HsmType" => one(cl.hsm_type()),
        "ClusterMode" => one(cl.mode().map(|m| m.as_str())),
        _ => None,
    }
}

/// A requested value of a fixed property, normalized like [`live_fixed`] (a backup ARN names
/// the backup id at its end).
fn wanted_fixed(p: &crate::event::Props<'_>, name: &str) -> Option<Vec<String>> {
    match name {
        "SubnetIds" => p.list(name).ok().map(|mut v| {
            v.sort();
            v
        }),
        "BackupId" => p
            .opt_str(name)
            .map(|b| vec![b.rsplit('/').next().unwrap_or(&b).to_string()]),
        _ => p.opt_str(name).map(|v| vec![v]),
    }
}

/// Update: the source and placement are fixed; the backup retention is applied. The request is
/// compared with the live cluster, not with the old properties: the rollback of a refused update
/// asks for what the cluster already has, and must succeed.
pub async fn update_restored_cluster(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let ev = call.event()?;
    let (new, old) = (ev.props(), ev.old_props());
    let id = ev
        .physical_id()
        .filter(|s| s.starts_with("cluster-"))
        .ok_or_else(|| {
            StepError::invalid(
                "the resource has no cluster id as its physical id: nothing to update",
            )
        })?;
    let out = c
        .hsm
        .describe_clusters()
        .filters("clusterIds", vec![id.to_string()])
        .send()
        .await
        .map_err(|e| aws_err("cloudhsmv2:DescribeClusters", e))?;
    let cl = out
        .clusters()
        .iter()
        .find(|cl| {
            cl.cluster_id() == Some(id)
                && !matches!(cl.state().map(|s| s.as_str()), Some("DELETED"))
        })
        .ok_or_else(|| {
            StepError::invalid(format!(
                "restored cluster {id} no longer exists (deleted outside the stack); delete the stack and restore again"
            ))
        })?;
    let changed: Vec<String> = FIXED
        .into_iter()
        .filter_map(|k| match (wanted_fixed(&new, k), live_fixed(cl, k)) {
            (Some(w), Some(l)) if w != l => {
                Some(format!("{k} ({} → {})", l.join(","), w.join(",")))
            }
            _ => None,
        })
        .collect();
    if !changed.is_empty() {
        return Err(StepError::invalid(format!(
            "{} cannot change: a restored cluster's source backup and placement are fixed when it is \
             created. To restore another backup or move the cluster, deploy a new stack with the new \
             values (keep this one until the new cluster serves), then delete this stack",
            changed.join(", ")
        )));
    }
    let days = new.opt_str("BackupRetentionDays");
    let live_days = cl
        .backup_retention_policy()
        .and_then(|b| b.value())
        .map(str::to_string);
    // Against the live policy when the cluster reports one, else against the old property.
    let differs = match &live_days {
        Some(l) => days.as_ref().is_some_and(|d| d != l),
        None => days.is_some() && days != old.opt_str("BackupRetentionDays"),
    };
    if let (true, Some(days)) = (differs, days) {
        c.hsm
            .modify_cluster()
            .cluster_id(id)
            .backup_retention_policy(
                hsm::types::BackupRetentionPolicy::builder()
                    .r#type(hsm::types::BackupRetentionType::Days)
                    .value(&days)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_err("cloudhsmv2:ModifyCluster", e))?;
        info!(cluster = %id, days = %days, "backup retention changed");
    }
    let f = found_from(cl);
    Ok(restore_result(&f, false))
}

/// Delete: the cluster named by the physical id, else the one the tags name (a failed Create
/// whose CreateCluster response was lost). `Found: false` → nothing to delete.
pub async fn find_restored_cluster(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let ev = call.event()?;
    if let Some(id) = ev.physical_id().filter(|s| s.starts_with("cluster-")) {
        return Ok(match describe_cluster(&c.hsm, id).await? {
            Some(v) => {
                json!({"ClusterId": id, "SecurityGroupId": v.security_group.unwrap_or_default(),
                              "Found": true, "ClusterState": v.state})
            }
            None => json!({"ClusterId": id, "Found": false}),
        });
    }
    Ok(match find_by_tags(c, &ev).await? {
        Some(f) => restore_result(&f, false),
        None => json!({"Found": false}),
    })
}

/// DeleteCluster when the cluster can be deleted (no HSMs, not in a transition). Returns what
/// it did; `cluster_gone` re-issues it while waiting.
async fn delete_if_possible(c: &Clients, id: &str) -> StepResult<&'static str> {
    let Some(v) = describe_cluster(&c.hsm, id).await? else {
        return Ok("gone");
    };
    match v.state.as_str() {
        "DELETE_IN_PROGRESS" => return Ok("deleting"),
        "CREATE_IN_PROGRESS"
        | "INITIALIZE_IN_PROGRESS"
        | "UPDATE_IN_PROGRESS"
        | "MODIFY_IN_PROGRESS"
        | "ROLLBACK_IN_PROGRESS" => return Ok("waiting"),
        _ => {}
    }
    if v.hsms.iter().any(|h| h.state != "DELETED") {
        return Ok("waiting");
    }
    match c.hsm.delete_cluster().cluster_id(id).send().await {
        Ok(_) => {
            info!(cluster = %id, "cluster deletion started");
            Ok("deleting")
        }
        Err(e) => {
            let f = AwsFailure::from_sdk("cloudhsmv2:DeleteCluster", &e);
            if f.is("CloudHsmResourceNotFoundException") {
                Ok("gone")
            } else {
                Err(f.or_else(StepError::ResourceFailed))
            }
        }
    }
}

fn restored_id<'a>(call: &Call<'a>) -> StepResult<&'a str> {
    call.state_str("Restore.ClusterId")
        .ok_or_else(|| StepError::invalid("the step needs $.Restore.ClusterId"))
}

pub async fn delete_cluster(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let id = restored_id(&call)?;
    let what = delete_if_possible(c, id).await?;
    Ok(json!({"ClusterId": id, "Delete": what}))
}

/// Wait until the cluster is DELETED or gone (re-issuing DeleteCluster once it can be deleted).
pub async fn cluster_gone(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let poll = Poll::next(call.state, "ClusterGone");
    let id = restored_id(&call)?;
    match delete_if_possible(c, id).await? {
        "gone" => Ok(poll.finish().with(json!({"ClusterId": id}))),
        what => Ok(poll
            .again(&CLUSTER_GONE, &format!("cluster {id}: {what}"))?
            .with(json!({"ClusterId": id}))),
    }
}
