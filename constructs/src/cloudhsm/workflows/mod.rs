//! The workflows started by the custom resources (docs/architecture.md, "Custom resources
//! and workflows"). Plain ASL, JSONPath only, with the substitution variables
//! `${ClusterFunctionArn}`, `${KeyStoreFunctionArn}` and `${RespondFunctionArn}`.
//!
//! Conventions (shared with the `handlers` crate):
//! - A Lambda task calls the function ARN directly (`Resource: <function ARN>`), so the step's
//!   JSON output lands as-is under its `ResultPath`; its `Parameters` are the payload
//!   `{"Step": <step>, "Input.$": "$", ...arguments}` — the step sees the whole execution state.
//! - Every Lambda task retries `Transient` and the Lambda service errors with backoff and jitter,
//!   and catches `States.ALL` into `$.Error`, then `Respond` (which answers FAILED). Tasks inside a
//!   `Map` are caught by the `Map`.
//! - A wait is `status step → Choice($.Poll.Done) → Wait($.Poll.Wait) → status step`; the status
//!   step bounds the loop (it raises `WaitTimeout` past its attempt limit).
//! - Every path ends in `Respond`, which PUTs the CloudFormation response.

use serde_json::{json, Value};

use crate::sfn::{
    Catch, Choice, Condition, Fail, Graph, Map, Retry, State, StateMachineDefinition, Task, Wait,
};

pub const CLUSTER_FN: &str = "${ClusterFunctionArn}";
pub const KEYSTORE_FN: &str = "${KeyStoreFunctionArn}";
pub const RESPOND_FN: &str = "${RespondFunctionArn}";

/// Steps that bound the wait loops they sit in (they raise `WaitTimeout`).
pub const STATUS_STEPS: &[&str] = &[
    "ClientStatus",
    "ClusterGone",
    "ClusterStatus",
    "CommandStatus",
    "HsmsGone",
    "KeyStoreStatus",
];

/// The steps each function serves; must match `handlers` (`cluster::STEPS`, `keystore::STEPS`).
pub const CLUSTER_STEPS: &[&str] = &[
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
pub const KEYSTORE_STEPS: &[&str] = &[
    "EnsureKmsUserSecret",
    "CreateKeyStore",
    "ConnectKeyStore",
    "KeyStoreStatus",
    "DisconnectKeyStore",
    "KeyStoreKeys",
    "DeleteKeyStore",
    "DeleteKmsUserSecret",
    "UpdateKeyStore",
];

/// An execution stays under CloudFormation's 1-hour custom-resource limit; the status steps'
/// bounds keep every path well below this.
const MACHINE_TIMEOUT: u32 = 3540;
const RESPOND: &str = "Respond";
const PROPS: &str = "$.Event.ResourceProperties";

fn prop(name: &str) -> String {
    format!("{PROPS}.{name}")
}

/// A step of one of our functions. `args` are extra payload fields.
fn step(name: &str, function: &str, step: &str, args: Value, result_path: &str) -> Task {
    let mut payload = json!({"Step": step, "Input.$": "$"});
    if let (Some(p), Value::Object(extra)) = (payload.as_object_mut(), args) {
        for (k, v) in extra {
            p.insert(k, v);
        }
    }
    Task::new(name, function)
        .parameters(payload)
        .result_path(result_path)
        .retry(Retry::transient())
        .retry(Retry::lambda_service())
}

/// A step whose failure ends the workflow with a FAILED response.
fn guarded(name: &str, function: &str, step_name: &str, args: Value, result_path: &str) -> Task {
    step(name, function, step_name, args, result_path).catch(Catch::all(RESPOND))
}

/// `status → Choice(done?) → Wait → status`, leaving to `then` when done.
fn wait_loop(
    status_name: &str,
    function: &str,
    status_step: &str,
    args: Value,
    then: &str,
) -> Vec<State> {
    let choice = format!("{status_name}Done");
    let wait = format!("{status_name}Wait");
    vec![
        guarded(status_name, function, status_step, args, "$.Poll")
            .next(choice.as_str())
            .into(),
        Choice::new(choice.as_str())
            .when(Condition::boolean_equals("$.Poll.Done", true), then)
            .default(wait.as_str())
            .into(),
        Wait::seconds_path(wait.as_str(), "$.Poll.Wait")
            .next(status_name)
            .into(),
    ]
}

/// The final state of every path: PUT the response (SUCCESS, or FAILED when `$.Error` is set).
fn respond_states() -> Vec<State> {
    vec![
        step(
            RESPOND,
            RESPOND_FN,
            "Respond",
            json!({"Execution.$": "$$.Execution.Id"}),
            "$.Response",
        )
        .catch(Catch::all("ResponseNotDelivered"))
        .into(),
        Fail::new("ResponseNotDelivered")
            .error("ResponseNotDelivered")
            .cause("the CloudFormation response could not be uploaded; CloudFormation times the resource out")
            .into(),
    ]
}

fn by_request_type(name: &str, create: &str, update: &str, delete: &str) -> State {
    Choice::new(name)
        .when(
            Condition::string_equals("$.Event.RequestType", "Create"),
            create,
        )
        .when(
            Condition::string_equals("$.Event.RequestType", "Update"),
            update,
        )
        .default(delete)
        .into()
}

/// The entry state of `client_command(name, ..)`: the wait for the client to be online.
fn client_ready(name: &str) -> String {
    format!("{name}ClientReady")
}

/// Wait for the client to be online in SSM, run a client document on it and wait for the command.
/// `optional`: resource properties passed as document parameters when the resource has them.
fn client_command(
    name: &str,
    document_prop: &str,
    parameters: Value,
    optional: &[&str],
    then: &str,
) -> Vec<State> {
    let status = format!("{name}Status");
    let ready = client_ready(name);
    // A new or replaced client must be online in SSM before SendCommand accepts it.
    let mut v = wait_loop(
        &ready,
        CLUSTER_FN,
        "ClientStatus",
        json!({"For": ready.as_str(), "InstanceId.$": prop("ClientInstanceId")}),
        name,
    );
    v.push(
        guarded(
            name,
            CLUSTER_FN,
            "RunClientCommand",
            json!({
                "Document.$": prop(document_prop),
                "InstanceId.$": prop("ClientInstanceId"),
                "Parameters": parameters,
                "OptionalParameters": optional,
            }),
            "$.Command",
        )
        .next(status.as_str())
        .into(),
    );
    v.extend(wait_loop(
        &status,
        CLUSTER_FN,
        "CommandStatus",
        json!({"For": name}),
        then,
    ));
    v
}

/// Delete every HSM of the cluster and wait until they are gone.
fn delete_all_hsms(then: &str) -> Vec<State> {
    delete_all_hsms_of(json!({}), then)
}

/// [`delete_all_hsms`] with step arguments (e.g. the `ClusterId` of a restored cluster).
fn delete_all_hsms_of(args: Value, then: &str) -> Vec<State> {
    let mut v: Vec<State> = vec![guarded(
        "DeleteAllHsms",
        CLUSTER_FN,
        "DeleteAllHsms",
        args.clone(),
        "$.Deleted",
    )
    .next("HsmsGone")
    .into()];
    v.extend(wait_loop("HsmsGone", CLUSTER_FN, "HsmsGone", args, then));
    v
}

fn build(comment: &str, start: &str, states: Vec<State>) -> StateMachineDefinition {
    StateMachineDefinition::builder(start)
        .comment(comment)
        .timeout_seconds(MACHINE_TIMEOUT)
        .states(states)
        .build()
        .unwrap_or_else(|e| panic!("workflow `{comment}` is invalid: {e}"))
}

/// Cluster initialization (Custom::ClusterInitialization). Create and Update run the same
/// idempotent path (every step skips what is already done): first HSM → ACTIVE → sign the fresh
/// CSR (BuiltIn / External) → InitializeCluster → INITIALIZED → store the trust anchor → activate
/// through the client → ACTIVE. External PKI without a certificate yet answers SUCCESS with the
/// CSR in `Data.ClusterCsr`; the update that supplies the certificate finishes. Delete removes
/// every HSM (the native cluster resource is deleted after it).
pub fn initialization() -> StateMachineDefinition {
    let mut s: Vec<State> = vec![by_request_type(
        "RequestType",
        "CreateFirstHsm",
        "CreateFirstHsm",
        "DeleteAllHsms",
    )];
    s.push(
        guarded(
            "CreateFirstHsm",
            CLUSTER_FN,
            "CreateFirstHsm",
            json!({}),
            "$.FirstHsm",
        )
        .next("FirstHsmActive")
        .into(),
    );
    s.extend(wait_loop(
        "FirstHsmActive",
        CLUSTER_FN,
        "ClusterStatus",
        json!({"For": "FirstHsmActive"}),
        "SignCsr",
    ));
    s.push(
        guarded("SignCsr", CLUSTER_FN, "SignCsr", json!({}), "$.Signed")
            .next("CertificatePending")
            .into(),
    );
    s.push(
        Choice::new("CertificatePending")
            .comment("External PKI without a signed certificate yet: publish the CSR and finish")
            .when(Condition::boolean_equals("$.Signed.Pending", true), RESPOND)
            .default("InitializeCluster")
            .into(),
    );
    s.push(
        guarded(
            "InitializeCluster",
            CLUSTER_FN,
            "InitializeCluster",
            json!({}),
            "$.Initialize",
        )
        .next("Initialized")
        .into(),
    );
    s.extend(wait_loop(
        "Initialized",
        CLUSTER_FN,
        "ClusterStatus",
        json!({"For": "Initialized"}),
        "StoreTrustAnchor",
    ));
    s.push(
        guarded(
            "StoreTrustAnchor",
            CLUSTER_FN,
            "StoreTrustAnchor",
            json!({}),
            "$.TrustAnchor",
        )
        .next("AlreadyActive")
        .into(),
    );
    s.push(
        Choice::new("AlreadyActive")
            .when(
                Condition::string_equals("$.Poll.ClusterState", "ACTIVE"),
                RESPOND,
            )
            .default(client_ready("Activate").as_str())
            .into(),
    );
    s.extend(client_command(
        "Activate",
        "ActivateDocument",
        json!({
            "ClusterId.$": prop("ClusterId"),
            "AdminPasswordSecretArn.$": prop("AdminPasswordSecretArn"),
            "TrustAnchorSecretArn.$": prop("TrustAnchorSecretArn"),
        }),
        &[],
        "ClusterActive",
    ));
    s.extend(wait_loop(
        "ClusterActive",
        CLUSTER_FN,
        "ClusterStatus",
        json!({"For": "Active"}),
        RESPOND,
    ));
    s.extend(delete_all_hsms(RESPOND));
    s.extend(respond_states());
    build("CloudHSM cluster initialization", "RequestType", s)
}

/// A cluster restored from a backup (Custom::RestoredCluster). Create: find the cluster this
/// resource already created (tags) or CreateCluster(SourceBackupId) → wait ACTIVE (a restored
/// cluster needs no initialization or activation) → respond with the cluster id and security
/// group. Update: refuse changes of the backup, subnets, HSM type or mode; apply the backup
/// retention. Delete: every HSM → DeleteCluster → wait until the cluster is gone.
pub fn restored_cluster() -> StateMachineDefinition {
    let restored = json!({"ClusterId.$": "$.Restore.ClusterId"});
    let mut s: Vec<State> = vec![by_request_type(
        "RequestType",
        "RestoreCluster",
        "UpdateRestoredCluster",
        "FindRestoredCluster",
    )];
    s.push(
        guarded(
            "RestoreCluster",
            CLUSTER_FN,
            "RestoreCluster",
            json!({}),
            "$.Restore",
        )
        .next("ClusterRestored")
        .into(),
    );
    let mut wait_args = restored.clone();
    wait_args["For"] = json!("Restored");
    s.extend(wait_loop(
        "ClusterRestored",
        CLUSTER_FN,
        "ClusterStatus",
        wait_args,
        RESPOND,
    ));
    s.push(
        guarded(
            "UpdateRestoredCluster",
            CLUSTER_FN,
            "UpdateRestoredCluster",
            json!({}),
            "$.Restore",
        )
        .next(RESPOND)
        .into(),
    );
    s.push(
        guarded(
            "FindRestoredCluster",
            CLUSTER_FN,
            "FindRestoredCluster",
            json!({}),
            "$.Restore",
        )
        .next("ClusterToDelete")
        .into(),
    );
    s.push(
        Choice::new("ClusterToDelete")
            .comment("Nothing was created (e.g. the backup id was refused): nothing to delete")
            .when(Condition::boolean_equals("$.Restore.Found", false), RESPOND)
            .default("DeleteAllHsms")
            .into(),
    );
    s.extend(delete_all_hsms_of(restored.clone(), "DeleteCluster"));
    s.push(
        guarded(
            "DeleteCluster",
            CLUSTER_FN,
            "DeleteCluster",
            json!({}),
            "$.DeleteCluster",
        )
        .next("ClusterGone")
        .into(),
    );
    s.extend(wait_loop(
        "ClusterGone",
        CLUSTER_FN,
        "ClusterGone",
        json!({"For": "ClusterGone"}),
        RESPOND,
    ));
    s.extend(respond_states());
    build("CloudHSM cluster restored from a backup", "RequestType", s)
}

fn map_over(name: &str, items: &str, task_step: &str, next: &str) -> State {
    Map::new(name)
        .items_path(items)
        .item_selector(json!({"Event.$": "$.Event", "Item.$": "$$.Map.Item.Value"}))
        .item_processor(Graph::new(task_step).state(step(
            task_step,
            CLUSTER_FN,
            task_step,
            json!({}),
            "$.Result",
        )))
        .max_concurrency(0)
        .discard_result()
        .catch(Catch::all(RESPOND))
        .next(next)
        .into()
}

/// HSM fleet (Custom::HsmFleet). Create/Update: plan per AZ → delete extras and DEGRADED HSMs
/// (parallel Map) → create the missing ones (parallel Map, one iteration per AZ) → wait until
/// every AZ has its count ACTIVE (back to planning when an HSM went DEGRADED or vanished) →
/// refresh the client configuration. Delete: delete every HSM, wait until gone.
pub fn hsm_fleet() -> StateMachineDefinition {
    let mut s: Vec<State> = vec![by_request_type(
        "RequestType",
        "PlanFleet",
        "PlanFleet",
        "DeleteAllHsms",
    )];
    s.push(
        guarded("PlanFleet", CLUSTER_FN, "PlanFleet", json!({}), "$.Plan")
            .next("DeleteHsms")
            .into(),
    );
    s.push(map_over(
        "DeleteHsms",
        "$.Plan.Deletes",
        "DeleteHsm",
        "CreateHsms",
    ));
    s.push(map_over(
        "CreateHsms",
        "$.Plan.Creates",
        "CreateHsm",
        "FleetReady",
    ));
    // The fleet wait, with one more exit: a DEGRADED HSM or a failed creation (the HSM is gone)
    // sends the workflow back to planning, which replaces or adds what is missing; the status
    // step bounds the re-plans.
    s.extend([
        guarded(
            "FleetReady",
            CLUSTER_FN,
            "ClusterStatus",
            json!({"For": "Fleet"}),
            "$.Poll",
        )
        .next("FleetReadyDone")
        .into(),
        Choice::new("FleetReadyDone")
            .when(Condition::boolean_equals("$.Poll.Done", true), "AnyHsm")
            .when(
                Condition::boolean_equals("$.Poll.Replan", true),
                "PlanFleet",
            )
            .default("FleetReadyWait")
            .into(),
        State::from(Wait::seconds_path("FleetReadyWait", "$.Poll.Wait").next("FleetReady")),
    ]);
    s.push(
        Choice::new("AnyHsm")
            .comment("With no HSM there is nothing for the client to connect to")
            .when(Condition::numeric_equals("$.Plan.Total", 0.0), RESPOND)
            .default(client_ready("RefreshClient").as_str())
            .into(),
    );
    s.extend(client_command(
        "RefreshClient",
        "RefreshDocument",
        json!({"ClusterId.$": prop("ClusterId")}),
        // A replaced client also gets the trust anchor when the resource names its secret.
        &["TrustAnchorSecretArn"],
        RESPOND,
    ));
    s.extend(delete_all_hsms(RESPOND));
    s.extend(respond_states());
    build("CloudHSM HSM fleet", "RequestType", s)
}

/// KMS custom key store (Custom::KeyStore). Create: kmsuser password secret → kmsuser on every
/// HSM through the client (verified) → CreateCustomKeyStore → connect → wait (ConnectionErrorCode
/// handling) → delete the initial password secret. Update: rename. Delete: refuse when KMS keys
/// remain (unless RetainOnDelete), else disconnect → wait → DeleteCustomKeyStore.
pub fn key_store() -> StateMachineDefinition {
    let mut s: Vec<State> = vec![by_request_type(
        "RequestType",
        "EnsureKmsUserSecret",
        "UpdateKeyStore",
        "KeyStoreKeys",
    )];
    s.push(
        guarded(
            "EnsureKmsUserSecret",
            KEYSTORE_FN,
            "EnsureKmsUserSecret",
            json!({}),
            "$.KmsUser",
        )
        .next(client_ready("CreateKmsUser").as_str())
        .into(),
    );
    s.extend(client_command(
        "CreateKmsUser",
        "CreateKmsUserDocument",
        json!({
            "ClusterId.$": prop("ClusterId"),
            "AdminPasswordSecretArn.$": prop("AdminPasswordSecretArn"),
            "KmsUserSecretArn.$": "$.KmsUser.SecretArn",
            "TrustAnchorSecretArn.$": prop("TrustAnchorSecretArn"),
        }),
        &[],
        "CreateKeyStore",
    ));
    s.push(
        guarded(
            "CreateKeyStore",
            KEYSTORE_FN,
            "CreateKeyStore",
            json!({}),
            "$.KeyStore",
        )
        .next("ConnectKeyStore")
        .into(),
    );
    s.push(
        guarded(
            "ConnectKeyStore",
            KEYSTORE_FN,
            "ConnectKeyStore",
            json!({}),
            "$.Connect",
        )
        .next("Connected")
        .into(),
    );
    s.extend(wait_loop(
        "Connected",
        KEYSTORE_FN,
        "KeyStoreStatus",
        json!({"For": "Connected"}),
        "DeleteKmsUserSecret",
    ));
    s.push(
        guarded(
            "UpdateKeyStore",
            KEYSTORE_FN,
            "UpdateKeyStore",
            json!({}),
            "$.KeyStore",
        )
        .next(RESPOND)
        .into(),
    );
    s.push(
        guarded(
            "KeyStoreKeys",
            KEYSTORE_FN,
            "KeyStoreKeys",
            json!({}),
            "$.KeyStore",
        )
        .next("StoreToDelete")
        .into(),
    );
    s.push(
        Choice::new("StoreToDelete")
            .when(
                Condition::boolean_equals("$.KeyStore.Found", false),
                "DeleteKmsUserSecret",
            )
            .when(
                Condition::boolean_equals("$.KeyStore.Retain", true),
                "DeleteKmsUserSecret",
            )
            .default("DisconnectKeyStore")
            .into(),
    );
    s.push(
        guarded(
            "DisconnectKeyStore",
            KEYSTORE_FN,
            "DisconnectKeyStore",
            json!({}),
            "$.Disconnect",
        )
        .next("Disconnected")
        .into(),
    );
    s.extend(wait_loop(
        "Disconnected",
        KEYSTORE_FN,
        "KeyStoreStatus",
        json!({"For": "Disconnected"}),
        "DeleteKeyStore",
    ));
    s.push(
        guarded(
            "DeleteKeyStore",
            KEYSTORE_FN,
            "DeleteKeyStore",
            json!({}),
            "$.Deleted",
        )
        .next("DeleteKmsUserSecret")
        .into(),
    );
    s.push(
        guarded(
            "DeleteKmsUserSecret",
            KEYSTORE_FN,
            "DeleteKmsUserSecret",
            json!({}),
            "$.KmsUserSecret",
        )
        .next(RESPOND)
        .into(),
    );
    s.extend(respond_states());
    build("KMS custom key store", "RequestType", s)
}

#[cfg(test)]
mod tests;
