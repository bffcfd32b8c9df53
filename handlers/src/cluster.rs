//! `cluster` group: first HSM, CSR signing, InitializeCluster, trust anchor, client commands over
//! SSM Run Command, and the HSM fleet (plan, create, delete, wait).

use serde_json::{json, Value};
use tracing::{info, warn};

use crate::call::Call;
use crate::clients::{describe_cluster, Clients, ClusterView};
use crate::error::{aws_err, AwsFailure, StepError, StepResult};
use crate::fleet;
use crate::pki;
use crate::poll::{Poll, Schedule};
use crate::restore;

pub const STEPS: &[&str] = &[
    "CreateFirstHsm",
    "ClusterStatus",
    "GetCsr",
    "SignCsr",
    "InitializeCluster",
    "StoreTrustAnchor",
    "ClientStatus",
    "RunClientCommand",
    "CommandStatus",
    "DeleteAllHsms",
    "HsmsGone",
    "PlanFleet",
    "CreateHsm",
    "DeleteHsm",
    "RestoreCluster",
    "UpdateRestoredCluster",
    "FindRestoredCluster",
    "DeleteCluster",
    "ClusterGone",
];

pub async fn run(c: &Clients, step: &str, call: Call<'_>) -> StepResult<Value> {
    match step {
        "CreateFirstHsm" => create_first_hsm(c, call).await,
        "ClusterStatus" => cluster_status(c, call).await,
        "GetCsr" => get_csr(c, call).await,
        "SignCsr" => sign_csr(c, call).await,
        "InitializeCluster" => initialize_cluster(c, call).await,
        "StoreTrustAnchor" => store_trust_anchor(c, call).await,
        "ClientStatus" => client_status(c, call).await,
        "RunClientCommand" => run_client_command(c, call).await,
        "CommandStatus" => command_status(c, call).await,
        "DeleteAllHsms" => delete_all_hsms(c, call).await,
        "HsmsGone" => hsms_gone(c, call).await,
        "PlanFleet" => plan_fleet(c, call).await,
        "CreateHsm" => create_hsm(c, call).await,
        "DeleteHsm" => delete_hsm(c, call).await,
        "RestoreCluster" => restore::restore_cluster(c, call).await,
        "UpdateRestoredCluster" => restore::update_restored_cluster(c, call).await,
        "FindRestoredCluster" => restore::find_restored_cluster(c, call).await,
        "DeleteCluster" => restore::delete_cluster(c, call).await,
        "ClusterGone" => restore::cluster_gone(c, call).await,
        other => Err(StepError::invalid(format!("unknown cluster step {other}"))),
    }
}

/// The cluster a step works on: the `ClusterId` step argument when the workflow passes one (a
/// restored cluster's id comes from `$.Restore`), else the resource property `ClusterId`.
async fn cluster_of(c: &Clients, call: Call<'_>) -> StepResult<(String, Option<ClusterView>)> {
    let id = match call.arg("ClusterId") {
        Ok(id) => id.to_string(),
        Err(_) => call.props()?.str("ClusterId")?,
    };
    let view = describe_cluster(&c.hsm, &id).await?;
    Ok((id, view))
}

async fn existing_cluster(c: &Clients, call: Call<'_>) -> StepResult<ClusterView> {
    let (id, view) = cluster_of(c, call).await?;
    view.ok_or_else(|| {
        StepError::invalid(format!(
            "cluster {id} does not exist (or is DELETED) in this account and Region; check the ClusterId property"
        ))
    })
}

fn cluster_failed(v: &ClusterView) -> StepError {
    StepError::ResourceFailed(format!(
        "cluster {} is DEGRADED ({}): the cluster cannot serve or change HSMs until AWS repairs it; \
         check the CloudHSM console/DescribeClusters and retry the stack operation later",
        v.id,
        if v.state_message.is_empty() { "no state message" } else { &v.state_message }
    ))
}

/// Find or create the one HSM an uninitialized cluster may have (only one HSM is allowed before
/// activation: aws-behaviour.md 1.3; prior-art #1).
async fn create_first_hsm(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let cl = existing_cluster(c, call).await?;
    match cl.state.as_str() {
        "UNINITIALIZED" => {}
        s if cl.is_initialized() => return Ok(json!({"Skipped": true, "ClusterState": s})),
        "CREATE_IN_PROGRESS" => {
            return Err(StepError::Transient(format!(
                "cluster {} is still being created",
                cl.id
            )))
        }
        "DEGRADED" => return Err(cluster_failed(&cl)),
        s => {
            return Err(StepError::ResourceFailed(format!(
                "cluster {} is {s}; the first HSM can only be added while it is UNINITIALIZED",
                cl.id
            )))
        }
    }
    if let Some(h) = cl.live_hsms().next() {
        info!(hsm = %h.id, az = %h.az, "first HSM already exists");
        return Ok(
            json!({"HsmId": h.id, "AvailabilityZone": h.az, "Created": false, "ClusterState": cl.state}),
        );
    }
    let subnets = call.props()?.list("SubnetIds")?;
    let az = cl.az_of_subnet(&subnets[0]).ok_or_else(|| {
        StepError::invalid(format!(
            "subnet {} is not one of cluster {}'s subnets",
            subnets[0], cl.id
        ))
    })?;
    let id = create_one_hsm(c, &cl.id, az).await?;
    info!(hsm = %id, az, "created the first HSM");
    Ok(json!({"HsmId": id, "AvailabilityZone": az, "Created": true, "ClusterState": cl.state}))
}

// Bounds keep every workflow's worst case under the 1-hour custom-resource limit.
pub const FIRST_HSM: Schedule = Schedule {
    first: 360,
    then: 30,
    max_attempts: 36,
};
pub const INITIALIZED: Schedule = Schedule {
    first: 60,
    then: 20,
    max_attempts: 30,
};
pub const ACTIVE: Schedule = Schedule {
    first: 15,
    then: 15,
    max_attempts: 20,
};
pub const FLEET: Schedule = Schedule {
    first: 360,
    then: 30,
    max_attempts: 60,
};
pub const GONE: Schedule = Schedule {
    first: 180,
    then: 30,
    max_attempts: 45,
};
/// A new or replaced client boots and registers its SSM agent in a minute or two.
pub const CLIENT_ONLINE: Schedule = Schedule {
    first: 30,
    then: 15,
    max_attempts: 30,
};
pub const COMMAND: Schedule = Schedule {
    first: 20,
    then: 10,
    max_attempts: 50,
};

/// Fleet re-plans (a DEGRADED HSM replaced, a failed creation retried) before giving up.
const MAX_REPLANS: u32 = 2;

/// `For`: `FirstHsmActive` | `Initialized` | `Active` | `Restored` | `Fleet`.
async fn cluster_status(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let what = call.arg("For")?;
    let poll = Poll::next(call.state, what);
    let cl = existing_cluster(c, call).await?;
    if cl.state == "DEGRADED" {
        return Err(cluster_failed(&cl));
    }
    let details = json!({"ClusterState": cl.state, "Hsms": cl.live_hsms().count()});
    let (done, schedule, status) = match what {
        "FirstHsmActive" => {
            if cl.is_initialized() {
                (true, FIRST_HSM, cl.state.clone())
            } else {
                let live: Vec<_> = cl.live_hsms().collect();
                if !live.is_empty() && live.iter().all(|h| h.state == "DEGRADED") {
                    return Err(StepError::ResourceFailed(format!(
                        "the first HSM {} went DEGRADED before initialization; delete the stack (or the HSM) and deploy again",
                        live[0].id
                    )));
                }
                let active = live.iter().any(|h| h.state == "ACTIVE") && cl.csr.is_some();
                let st = live
                    .iter()
                    .map(|h| format!("{} {}", h.id, h.state))
                    .collect::<Vec<_>>()
                    .join(", ");
                (
                    active,
                    FIRST_HSM,
                    if st.is_empty() { "no HSM".into() } else { st },
                )
            }
        }
        "Initialized" => (
            matches!(cl.state.as_str(), "INITIALIZED" | "ACTIVE"),
            INITIALIZED,
            cl.state.clone(),
        ),
        "Active" => (cl.state == "ACTIVE", ACTIVE, cl.state.clone()),
        // A cluster created from a backup goes CREATE_IN_PROGRESS → ACTIVE (aws-behaviour.md 1.3).
        "Restored" => (cl.state == "ACTIVE", restore::RESTORED, cl.state.clone()),
        "Fleet" => {
            let p = call.props()?;
            let d = fleet::desired(
                &cl,
                &p.list("SubnetIds")?,
                p.u32_or("HsmsPerSubnet", 1)?,
                false,
            )?;
            let st = cl
                .hsms
                .iter()
                .map(|h| format!("{} {} {}", h.id, h.az, h.state))
                .collect::<Vec<_>>()
                .join(", ");
            match fleet::convergence(&cl, &d) {
                fleet::Convergence::Done => (true, FLEET, st),
                fleet::Convergence::Waiting => (false, FLEET, st),
                // The first check after a plan follows CreateHsm at once; only a state seen after
                // a wait is trusted (DescribeClusters may lag behind CreateHsm).
                fleet::Convergence::Replan(_) if poll.attempt < poll.replanned_at + 2 => {
                    (false, FLEET, st)
                }
                fleet::Convergence::Replan(why) => {
                    if poll.replans >= MAX_REPLANS {
                        return Err(StepError::ResourceFailed(format!(
                            "{why}; the HSM fleet was re-planned {MAX_REPLANS} times without \
                             converging (last state: {st}); check the cluster's HSM events, \
                             then update the stack again or delete the stack"
                        )));
                    }
                    warn!(cluster = %cl.id, reason = %why, "fleet re-planned");
                    return Ok(poll.replan().with(json!({"ClusterState": cl.state, "Hsms": cl.live_hsms().count(), "Reason": why})));
                }
            }
        }
        other => {
            return Err(StepError::invalid(format!(
                "ClusterStatus cannot wait for {other}"
            )))
        }
    };
    let poll = if done {
        poll.finish()
    } else {
        poll.again(&schedule, &status)?
    };
    Ok(poll.with(details))
}

async fn get_csr(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let cl = existing_cluster(c, call).await?;
    if cl.is_initialized() {
        return Ok(json!({"Skipped": true, "ClusterState": cl.state}));
    }
    let csr = cl.csr.ok_or_else(|| {
        StepError::Transient(format!(
            "cluster {} has no CSR yet (first HSM not ACTIVE)",
            cl.id
        ))
    })?;
    Ok(json!({"ClusterCsr": csr, "ClusterState": cl.state}))
}

/// Sign the CSR fetched right now (it changes if the first HSM is replaced: prior-art #3).
/// Output (`$.Signed`): `{SignedCert, TrustAnchor}`, or `{Skipped}` once initialized, or
/// `{Pending, ClusterCsr}` for an External PKI that has not supplied the certificate yet.
async fn sign_csr(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let cl = existing_cluster(c, call).await?;
    if cl.is_initialized() {
        return Ok(json!({"Skipped": true, "Pending": false, "ClusterState": cl.state}));
    }
    if cl.state != "UNINITIALIZED" {
        return Err(StepError::Transient(format!(
            "cluster {} is {}",
            cl.id, cl.state
        )));
    }
    let csr = cl.csr.clone().ok_or_else(|| {
        StepError::Transient(format!(
            "cluster {} has no CSR yet (first HSM not ACTIVE)",
            cl.id
        ))
    })?;
    let p = call.props()?;
    let mode = p.opt_str("PkiMode").unwrap_or_else(|| "BuiltIn".into());
    let pair = match mode.as_str() {
        "BuiltIn" => pki::sign_with_throwaway_ca(&csr, &cl.id)?,
        "External" => {
            let cert = p.opt_str("ExternalSignedCertificate");
            let anchor = p.opt_str("ExternalTrustAnchor");
            match (cert, anchor) {
                (None, None) => {
                    return Ok(json!({"Skipped": false, "Pending": true, "ClusterCsr": csr, "ClusterState": cl.state}))
                }
                (Some(signed_cert), Some(trust_anchor)) => {
                    let pair = pki::SignedPair { signed_cert, trust_anchor };
                    pki::verify_pair(&csr, &pair)?;
                    pair
                }
                _ => {
                    return Err(StepError::invalid(
                        "External PKI: set both ExternalSignedCertificate and ExternalTrustAnchor (PEM), or neither to get the CSR",
                    ))
                }
            }
        }
        "AcmPrivateCa" => {
            let arn = p.str("AcmPcaArn")?;
            crate::acm_pca::sign(&c.pca, &arn, &csr, &cl.id).await?
        }
        other => {
            return Err(StepError::invalid(format!(
                "PkiMode must be BuiltIn, AcmPrivateCa or External, got {other:?}"
            )))
        }
    };
    info!(cluster = %cl.id, mode = %mode, "cluster CSR signed");
    Ok(
        json!({"Skipped": false, "Pending": false, "SignedCert": pair.signed_cert, "TrustAnchor": pair.trust_anchor}),
    )
}

async fn initialize_cluster(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let cl = existing_cluster(c, call).await?;
    if cl.is_initialized() {
        return Ok(json!({"Skipped": true, "ClusterState": cl.state}));
    }
    let cert = call
        .state_str("Signed.SignedCert")
        .ok_or_else(|| StepError::invalid("InitializeCluster needs $.Signed.SignedCert"))?;
    let anchor = call
        .state_str("Signed.TrustAnchor")
        .ok_or_else(|| StepError::invalid("InitializeCluster needs $.Signed.TrustAnchor"))?;
    let out = c
        .hsm
        .initialize_cluster()
        .cluster_id(&cl.id)
        .signed_cert(cert)
        .trust_anchor(anchor)
        .send()
        .await
        .map_err(|e| {
            let f = AwsFailure::from_sdk("cloudhsmv2:InitializeCluster", &e);
            if f.transient {
                StepError::Transient(f.describe())
            } else {
                StepError::ResourceFailed(format!(
                    "{}; the cluster stays UNINITIALIZED. With External PKI check that the certificate signs the current CSR \
                     with the root CA given as the trust anchor",
                    f.describe()
                ))
            }
        })?;
    Ok(
        json!({"Skipped": false, "ClusterState": out.state().map(|s| s.as_str()).unwrap_or("INITIALIZE_IN_PROGRESS")}),
    )
}

async fn store_trust_anchor(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let Some(anchor) = call.state_str("Signed.TrustAnchor") else {
        return Ok(json!({"Stored": false}));
    };
    let arn = call.props()?.str("TrustAnchorSecretArn")?;
    c.secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(anchor)
        .send()
        .await
        .map_err(|e| aws_err("secretsmanager:PutSecretValue", e))?;
    Ok(json!({"Stored": true}))
}

/// A document parameter must be an id, ARN or name: never a secret value.
pub fn check_command_parameter(name: &str, value: &str) -> StepResult<()> {
    let name_ok = ["Id", "Arn", "Name"].iter().any(|s| name.ends_with(s));
    let value_ok = !value.is_empty()
        && value.len() <= 2048
        && value
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ":/_+=.,@-".contains(ch));
    if name_ok && value_ok {
        Ok(())
    } else {
        Err(StepError::invalid(format!(
            "command parameter {name} is not an id/ARN/name parameter; client commands take ids and ARNs only"
        )))
    }
}

/// Wait until the client is an SSM managed node that is `Online`: `SendCommand` refuses an
/// instance whose agent has not registered (a new or replaced client still booting), and Retry
/// budgets are too short for a boot. A client that is already online passes at the first check.
async fn client_status(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let what = call.arg("For")?;
    let instance = call.arg("InstanceId")?;
    let poll = Poll::next(call.state, what);
    let filter = aws_sdk_ssm::types::InstanceInformationStringFilter::builder()
        .key("InstanceIds")
        .values(instance)
        .build()
        .map_err(|e| StepError::invalid(e.to_string()))?;
    let out = c
        .ssm
        .describe_instance_information()
        .filters(filter)
        .send()
        .await
        .map_err(|e| aws_err("ssm:DescribeInstanceInformation", e))?;
    let ping = out
        .instance_information_list()
        .iter()
        .find(|i| i.instance_id() == Some(instance))
        .and_then(|i| i.ping_status())
        .map(|p| p.as_str().to_string());
    let poll = if ping.as_deref() == Some("Online") {
        poll.finish()
    } else {
        let now = match &ping {
            Some(p) => format!("instance {instance} has SSM PingStatus {p}"),
            None => format!("instance {instance} is not registered with Systems Manager"),
        };
        poll.again(
            &CLIENT_ONLINE,
            &format!(
                "{now}; the client must be running with outbound HTTPS to the ssm, ssmmessages \
                 and ec2messages endpoints (a NAT gateway or VPC interface endpoints in its \
                 subnet) and an instance profile allowing AmazonSSMManagedInstanceCore"
            ),
        )?
    };
    Ok(poll.with(json!({"InstanceId": instance, "PingStatus": ping})))
}

async fn run_client_command(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let document = call.arg("Document")?;
    let instance = call.arg("InstanceId")?;
    let mut req = c
        .ssm
        .send_command()
        .document_name(document)
        .instance_ids(instance)
        .timeout_seconds(600)
        .comment(format!("cloudhsm construct: {document}"));
    if let Some(params) = call.payload.get("Parameters").and_then(Value::as_object) {
        for (k, v) in params {
            let v = v.as_str().unwrap_or_default();
            check_command_parameter(k, v)?;
            req = req.parameters(k, vec![v.to_string()]);
        }
    }
    // Resource properties passed only when the resource has them (e.g. TrustAnchorSecretArn).
    let props = call.props()?;
    for name in call
        .payload
        .get("OptionalParameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some(v) = props.opt_str(name) {
            check_command_parameter(name, &v)?;
            req = req.parameters(name, vec![v]);
        }
    }
    let out = req.send().await.map_err(|e| {
        let f = AwsFailure::from_sdk("ssm:SendCommand", &e);
        if f.transient || f.is("InvalidInstanceId") {
            // InvalidInstanceId: the instance is not (yet) registered with SSM or not running.
            StepError::Transient(f.describe())
        } else {
            StepError::InvalidInput(f.describe())
        }
    })?;
    let id = out
        .command()
        .and_then(|c| c.command_id())
        .unwrap_or_default();
    info!(command = %id, document, instance, "client command sent");
    Ok(json!({"CommandId": id, "InstanceId": instance, "Document": document}))
}

fn tail(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.len() <= n {
        return s.to_string();
    }
    let mut start = s.len() - n;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

/// Wait for `$.Command` (`For` names the wait).
async fn command_status(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let what = call.arg("For")?;
    let poll = Poll::next(call.state, what);
    let id = call
        .state_str("Command.CommandId")
        .ok_or_else(|| StepError::invalid("CommandStatus needs $.Command.CommandId"))?;
    let instance = call
        .state_str("Command.InstanceId")
        .ok_or_else(|| StepError::invalid("CommandStatus needs $.Command.InstanceId"))?;
    let document = call
        .state_str("Command.Document")
        .unwrap_or("the client command");
    let res = c
        .ssm
        .get_command_invocation()
        .command_id(id)
        .instance_id(instance)
        .send()
        .await;
    let out = match res {
        Ok(o) => o,
        Err(e) => {
            let f = AwsFailure::from_sdk("ssm:GetCommandInvocation", &e);
            // Right after SendCommand the invocation may not be visible yet.
            if f.is("InvocationDoesNotExist") || f.transient {
                return Ok(poll
                    .again(&COMMAND, "invocation not visible yet")?
                    .with(json!({"Status": "Pending"})));
            }
            return Err(StepError::InvalidInput(f.describe()));
        }
    };
    let status = out
        .status()
        .map(|s| s.as_str())
        .unwrap_or("Pending")
        .to_string();
    match status.as_str() {
        "Success" => Ok(poll.finish().with(json!({"Status": status}))),
        "Pending" | "InProgress" | "Delayed" => Ok(poll
            .again(&COMMAND, &status)?
            .with(json!({"Status": status}))),
        _ => Err(StepError::ResourceFailed(format!(
            "{document} on {instance} ended {status} ({}; exit code {}): {} {}",
            out.status_details().unwrap_or(""),
            out.response_code(),
            tail(out.standard_error_content().unwrap_or(""), 700),
            tail(out.standard_output_content().unwrap_or(""), 300),
        ))),
    }
}

async fn delete_all_hsms(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let (_, view) = cluster_of(c, call).await?;
    let Some(cl) = view else {
        return Ok(json!({"Deleted": []}));
    };
    let mut deleted = Vec::new();
    for h in cl
        .hsms
        .iter()
        .filter(|h| h.state != "DELETE_IN_PROGRESS" && h.state != "DELETED")
    {
        delete_one(c, &cl.id, &h.id).await?;
        deleted.push(h.id.clone());
    }
    info!(cluster = %cl.id, count = deleted.len(), "deleting all HSMs");
    Ok(json!({"Deleted": deleted}))
}

async fn delete_one(c: &Clients, cluster: &str, hsm: &str) -> StepResult<bool> {
    match c
        .hsm
        .delete_hsm()
        .cluster_id(cluster)
        .hsm_id(hsm)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let f = AwsFailure::from_sdk("cloudhsmv2:DeleteHsm", &e);
            if f.is("CloudHsmResourceNotFoundException") {
                Ok(false)
            } else {
                Err(f.or_else(StepError::ResourceFailed))
            }
        }
    }
}

/// Wait until the cluster has no HSMs; re-issues DeleteHsm for any that is not being deleted.
async fn hsms_gone(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let poll = Poll::next(call.state, "HsmsGone");
    let (_, view) = cluster_of(c, call).await?;
    let Some(cl) = view else {
        return Ok(poll.finish().with(json!({"Hsms": 0})));
    };
    if cl.hsms.iter().all(|h| h.state == "DELETED") {
        return Ok(poll.finish().with(json!({"Hsms": 0})));
    }
    for h in cl
        .hsms
        .iter()
        .filter(|h| h.state != "DELETE_IN_PROGRESS" && h.state != "DELETED")
    {
        delete_one(c, &cl.id, &h.id).await?;
    }
    let status = cl
        .hsms
        .iter()
        .map(|h| format!("{} {}", h.id, h.state))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(poll
        .again(&GONE, &status)?
        .with(json!({"Hsms": cl.hsms.len()})))
}

async fn plan_fleet(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let cl = existing_cluster(c, call).await?;
    if cl.state == "DEGRADED" {
        return Err(cluster_failed(&cl));
    }
    let p = call.props()?;
    let d = fleet::desired(
        &cl,
        &p.list("SubnetIds")?,
        p.u32_or("HsmsPerSubnet", 1)?,
        p.bool_or("KeyStoreEnabled", false)?,
    )?;
    let plan = fleet::plan(&cl, d);
    info!(cluster = %cl.id, creates = plan.creates.len(), deletes = plan.deletes.len(),
          deferred = plan.deferred.is_some(), "fleet plan");
    serde_json::to_value(&plan).map_err(|e| StepError::invalid(e.to_string()))
}

/// CreateHsm; the new HSM's id.
async fn create_one_hsm(c: &Clients, cluster_id: &str, az: &str) -> StepResult<String> {
    let out = c
        .hsm
        .create_hsm()
        .cluster_id(cluster_id)
        .availability_zone(az)
        .send()
        .await
        .map_err(|e| aws_err("cloudhsmv2:CreateHsm", e))?;
    Ok(out
        .hsm()
        .map(|h| h.hsm_id().to_string())
        .unwrap_or_default())
}

/// Map iteration (one per AZ): create HSMs until the AZ has `EnsureAtLeast` live ones. Counting
/// before creating makes a retry after a lost response create only what is still missing.
async fn create_hsm(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let item: fleet::CreateItem = call.item()?;
    let cl = existing_cluster(c, call).await?;
    let live = fleet::slots(&cl)
        .iter()
        .filter(|s| s.az == item.availability_zone && s.is_live())
        .count() as u32;
    let mut created = Vec::new();
    for _ in live..item.ensure_at_least {
        let id = create_one_hsm(c, &cl.id, &item.availability_zone).await?;
        info!(hsm = %id, az = %item.availability_zone, "HSM created");
        created.push(id);
    }
    Ok(json!({
        "Created": created.len(),
        "HsmIds": created,
        "AvailabilityZone": item.availability_zone,
        "LiveBefore": live,
    }))
}

/// Map iteration: delete one HSM; when its id is gone but a live HSM holds the same ENI (AWS
/// replaced it), delete that one: the slot was planned to go.
async fn delete_hsm(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let item: fleet::DeleteItem = call.item()?;
    let cl = existing_cluster(c, call).await?;
    let target = if cl.hsms.iter().any(|h| h.id == item.hsm_id) {
        Some(item.hsm_id.clone())
    } else {
        item.eni_id.as_ref().and_then(|eni| {
            cl.live_hsms()
                .find(|h| h.eni_id.as_deref() == Some(eni.as_str()))
                .map(|h| h.id.clone())
        })
    };
    let Some(id) = target else {
        return Ok(json!({"Deleted": false, "HsmId": item.hsm_id}));
    };
    let state = cl
        .hsms
        .iter()
        .find(|h| h.id == id)
        .map(|h| h.state.as_str())
        .unwrap_or("");
    if state == "DELETE_IN_PROGRESS" {
        return Ok(json!({"Deleted": true, "HsmId": id}));
    }
    let deleted = delete_one(c, &cl.id, &id).await?;
    info!(hsm = %id, reason = %item.reason, "HSM deleted");
    Ok(json!({"Deleted": deleted, "HsmId": id}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_parameters_must_be_ids_or_arns() {
        assert!(check_command_parameter("ClusterId", "cluster-abcdefghijk").is_ok());
        assert!(check_command_parameter(
            "AdminPasswordSecretArn",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:stack/admin-AbCdEf"
        )
        .is_ok());
        assert!(check_command_parameter("Password", "abc").is_err());
        assert!(check_command_parameter("ClusterId", "a b; rm -rf /").is_err());
        assert!(check_command_parameter("ClusterId", "").is_err());
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail("abcdef", 3), "…def");
        assert_eq!(tail("  ab ", 3), "ab");
    }
}
