//! `keystore` group: kmsuser secret, CreateCustomKeyStore, connect with ConnectionErrorCode
//! handling, and a delete that never loses KMS keys.
//!
//! The kmsuser password goes from GetRandomPassword straight into its secret; CreateKeyStore reads
//! it back to hand it to KMS. It is held only in memory, in a type that never prints its value,
//! and is never returned, logged or put in a payload.

use std::fmt;

use serde_json::{json, Value};
use tracing::{info, warn};

use crate::call::Call;
use crate::clients::{describe_cluster, Clients};
use crate::error::{aws_err, AwsFailure, StepError, StepResult};
use crate::poll::{Poll, Schedule};

pub const STEPS: &[&str] = &[
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

pub const CONNECT: Schedule = Schedule {
    first: 240,
    then: 30,
    max_attempts: 70,
};
pub const DISCONNECT: Schedule = Schedule {
    first: 15,
    then: 15,
    max_attempts: 40,
};
/// Disconnect + connect cycles after a transient FAILED before giving up.
pub const MAX_RECONNECTS: u32 = 3;

pub async fn run(c: &Clients, step: &str, call: Call<'_>) -> StepResult<Value> {
    match step {
        "EnsureKmsUserSecret" => ensure_kmsuser_secret(c, call).await,
        "CreateKeyStore" => create_key_store(c, call).await,
        "ConnectKeyStore" => connect_key_store(c, call).await,
        "KeyStoreStatus" => key_store_status(c, call).await,
        "DisconnectKeyStore" => disconnect_key_store(c, call).await,
        "KeyStoreKeys" => key_store_keys(c, call).await,
        "DeleteKeyStore" => delete_key_store(c, call).await,
        "DeleteKmsUserSecret" => delete_kmsuser_secret(c, call).await,
        "UpdateKeyStore" => update_key_store(c, call).await,
        other => Err(StepError::invalid(format!("unknown keystore step {other}"))),
    }
}

/// A secret value: usable, never printable.
struct Sensitive(String);

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(***)")
    }
}

/// What the workflow does with a FAILED key store's ConnectionErrorCode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    /// Worth a disconnect + connect (bounded by MAX_RECONNECTS).
    pub retry: bool,
    /// What the code means and how to fix it.
    pub meaning: &'static str,
}

/// ConnectionErrorCode values for AWS_CLOUDHSM key stores (aws-behaviour.md 3.3).
pub fn connection_error(code: &str) -> CodeInfo {
    let (retry, meaning) = match code {
        "NETWORK_ERRORS" => (true, "network errors prevent KMS from reaching the cluster; check that the cluster security group keeps its self-referencing inbound and outbound TCP 2223-2225 rules and that network ACLs allow them"),
        "INTERNAL_ERROR" => (true, "KMS could not complete the request because of an internal error; retry later (disconnect, then connect)"),
        "USER_LOGGED_IN" => (true, "kmsuser is logged in to the cluster, so KMS cannot rotate its password and log in; log kmsuser out of every client (cloudhsm-cli logout) and connect again"),
        "USER_NOT_FOUND" => (false, "the cluster has no kmsuser crypto user on every HSM; run the CreateKmsUser client document again (it creates kmsuser on every HSM and checks cluster-coverage full), then connect"),
        "INVALID_CREDENTIALS" => (false, "the key store password is not kmsuser's current password; set a new password with cloudhsm-cli user change-password, call UpdateCustomKeyStore with KeyStorePassword, then connect"),
        "USER_LOCKED_OUT" => (false, "kmsuser is locked out after too many failed logins; an admin must reset its password (cloudhsm-cli user change-password), then UpdateCustomKeyStore with KeyStorePassword and connect"),
        "CLUSTER_NOT_FOUND" => (false, "KMS cannot find the cluster associated with the key store (deleted?); restore a related cluster from backup and UpdateCustomKeyStore with its CloudHsmClusterId"),
        "INSUFFICIENT_CLOUDHSM_HSMS" => (false, "the cluster has no active HSMs; set HsmsPerSubnet >= 1 (the key store needs 2 HSMs in 2 AZs) and update the stack"),
        "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET" => (false, "a cluster subnet has no free IP address; KMS needs one free address in each cluster subnet (two preferred): free addresses and connect again"),
        "SUBNET_NOT_FOUND" => (false, "a subnet in the cluster configuration was deleted; KMS cannot create its network interfaces there: restore the subnet or use a cluster in existing subnets"),
        _ => (false, "unrecognized connection error code; see DescribeCustomKeyStores and the AWS KMS troubleshooting guide"),
    };
    CodeInfo { retry, meaning }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreView {
    pub id: String,
    pub name: String,
    pub cluster_id: String,
    pub state: String,
    pub error_code: Option<String>,
}

fn store_view(e: &aws_sdk_kms::types::CustomKeyStoresListEntry) -> StoreView {
    StoreView {
        id: e.custom_key_store_id().unwrap_or_default().to_string(),
        name: e.custom_key_store_name().unwrap_or_default().to_string(),
        cluster_id: e.cloud_hsm_cluster_id().unwrap_or_default().to_string(),
        state: e
            .connection_state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        error_code: e.connection_error_code().map(|s| s.as_str().to_string()),
    }
}

async fn store_by_id(c: &Clients, id: &str) -> StepResult<Option<StoreView>> {
    match c
        .kms
        .describe_custom_key_stores()
        .custom_key_store_id(id)
        .send()
        .await
    {
        Ok(o) => Ok(o.custom_key_stores().first().map(store_view)),
        Err(e) => {
            let f = AwsFailure::from_sdk("kms:DescribeCustomKeyStores", &e);
            if f.is("CustomKeyStoreNotFoundException") {
                Ok(None)
            } else {
                Err(f.or_else(StepError::InvalidInput))
            }
        }
    }
}

async fn store_by_name(c: &Clients, name: &str) -> StepResult<Option<StoreView>> {
    match c
        .kms
        .describe_custom_key_stores()
        .custom_key_store_name(name)
        .send()
        .await
    {
        Ok(o) => Ok(o.custom_key_stores().first().map(store_view)),
        Err(e) => {
            let f = AwsFailure::from_sdk("kms:DescribeCustomKeyStores", &e);
            if f.is("CustomKeyStoreNotFoundException") {
                Ok(None)
            } else {
                Err(f.or_else(StepError::InvalidInput))
            }
        }
    }
}

/// The store this resource manages: by the id in the state (`$.KeyStore`), the physical id
/// (`cks-…`), or by name when it belongs to our cluster (a create that failed after creating it).
async fn find_store(c: &Clients, call: Call<'_>) -> StepResult<Option<StoreView>> {
    let ev = call.event()?;
    let ids = [
        call.state_str("KeyStore.CustomKeyStoreId"),
        ev.physical_id(),
    ];
    for id in ids
        .into_iter()
        .flatten()
        .filter(|id| id.starts_with("cks-"))
    {
        if let Some(s) = store_by_id(c, id).await? {
            return Ok(Some(s));
        }
    }
    let p = ev.props();
    let (Some(name), Some(cluster)) = (p.opt_str("KeyStoreName"), p.opt_str("ClusterId")) else {
        return Ok(None);
    };
    Ok(store_by_name(c, &name)
        .await?
        .filter(|s| s.cluster_id == cluster))
}

async fn ensure_kmsuser_secret(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let name = call.props()?.str("KmsUserSecretName")?;
    match c.secrets.describe_secret().secret_id(&name).send().await {
        Ok(d) => {
            let arn = d.arn().unwrap_or_default().to_string();
            if d.deleted_date().is_some() {
                c.secrets
                    .restore_secret()
                    .secret_id(&arn)
                    .send()
                    .await
                    .map_err(|e| aws_err("secretsmanager:RestoreSecret", e))?;
            }
            return Ok(json!({"SecretArn": arn, "Created": false}));
        }
        Err(e) => {
            let f = AwsFailure::from_sdk("secretsmanager:DescribeSecret", &e);
            if !f.is("ResourceNotFoundException") {
                return Err(f.or_else(StepError::InvalidInput));
            }
        }
    }
    // kmsuser passwords: 7-32 alphanumeric characters (aws-behaviour.md 2.6).
    let pw = c
        .secrets
        .get_random_password()
        .password_length(32)
        .exclude_punctuation(true)
        .include_space(false)
        .require_each_included_type(true)
        .send()
        .await
        .map_err(|e| aws_err("secretsmanager:GetRandomPassword", e))?;
    let pw = Sensitive(pw.random_password().unwrap_or_default().to_string());
    if pw.0.len() < 8 {
        return Err(StepError::Transient(
            "GetRandomPassword returned no usable password".into(),
        ));
    }
    let created = c
        .secrets
        .create_secret()
        .name(&name)
        .description("Initial kmsuser password for the KMS custom key store; deleted after the first connect (KMS rotates it)")
        .set_kms_key_id(call.props()?.opt_str("SecretsKmsKeyArn"))
        .secret_string(&pw.0)
        .send()
        .await;
    drop(pw);
    match created {
        Ok(o) => {
            info!(secret = %name, "kmsuser secret created");
            Ok(json!({"SecretArn": o.arn().unwrap_or_default(), "Created": true}))
        }
        Err(e) => {
            let f = AwsFailure::from_sdk("secretsmanager:CreateSecret", &e);
            if f.is("ResourceExistsException") {
                // A concurrent or retried attempt created it: use that one.
                let d = c
                    .secrets
                    .describe_secret()
                    .secret_id(&name)
                    .send()
                    .await
                    .map_err(|e| aws_err("secretsmanager:DescribeSecret", e))?;
                Ok(json!({"SecretArn": d.arn().unwrap_or_default(), "Created": false}))
            } else {
                Err(f.or_else(StepError::InvalidInput))
            }
        }
    }
}

async fn secret_string(c: &Clients, id: &str, what: &str) -> StepResult<Sensitive> {
    let out = c
        .secrets
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| aws_err("secretsmanager:GetSecretValue", e))?;
    match out.secret_string() {
        Some(s) if !s.trim().is_empty() => Ok(Sensitive(s.trim().to_string())),
        _ => Err(StepError::invalid(format!(
            "the {what} secret {id} is empty"
        ))),
    }
}

/// The cluster must be ACTIVE with ≥ 2 ACTIVE HSMs in ≥ 2 AZs (CreateCustomKeyStore's rule).
async fn check_cluster_ready(c: &Clients, cluster_id: &str) -> StepResult<()> {
    let cl = describe_cluster(&c.hsm, cluster_id)
        .await?
        .ok_or_else(|| StepError::invalid(format!("cluster {cluster_id} does not exist")))?;
    let active: Vec<_> = cl.hsms.iter().filter(|h| h.state == "ACTIVE").collect();
    let mut azs: Vec<&str> = active.iter().map(|h| h.az.as_str()).collect();
    azs.sort();
    azs.dedup();
    if cl.state != "ACTIVE" || active.len() < 2 || azs.len() < 2 {
        return Err(StepError::ResourceFailed(format!(
            "cluster {cluster_id} is {} with {} ACTIVE HSM(s) in {} AZ(s); a KMS custom key store needs an ACTIVE \
             cluster with at least 2 ACTIVE HSMs in 2 different AZs (HsmsPerSubnet >= 1 and 2+ subnets)",
            cl.state,
            active.len(),
            azs.len()
        )));
    }
    Ok(())
}

fn create_error(f: AwsFailure, cluster: &str) -> StepError {
    let code = f.code.clone().unwrap_or_default();
    let d = f.describe();
    match code.as_str() {
        _ if f.transient => StepError::Transient(d),
        "CloudHsmClusterInUseException" => StepError::Conflict(format!(
            "{d}; cluster {cluster} is already associated with another key store or shares backup history with one"
        )),
        "LimitExceededException" => StepError::Conflict(format!(
            "{d}; an account and Region can have at most 10 custom key stores: delete an unused one"
        )),
        "IncorrectTrustAnchorException" => StepError::InvalidInput(format!(
            "{d}; the trust anchor secret does not hold the certificate that initialized cluster {cluster}"
        )),
        "CloudHsmClusterNotActiveException" | "CloudHsmClusterInvalidConfigurationException" => {
            StepError::ResourceFailed(format!(
                "{d}; the cluster must be ACTIVE with 2+ ACTIVE HSMs in different AZs and keep its security group's TCP 2223-2225 rules"
            ))
        }
        _ => StepError::InvalidInput(d),
    }
}

async fn create_key_store(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let p = call.props()?;
    let name = p.str("KeyStoreName")?;
    let cluster = p.str("ClusterId")?;
    if let Some(s) = store_by_name(c, &name).await? {
        if s.cluster_id != cluster {
            return Err(StepError::Conflict(format!(
                "a custom key store named {name} ({}) already exists for cluster {}; choose another KeyStoreName",
                s.id, s.cluster_id
            )));
        }
        return Ok(json!({"CustomKeyStoreId": s.id, "Created": false}));
    }
    check_cluster_ready(c, &cluster).await?;
    let anchor = secret_string(c, &p.str("TrustAnchorSecretArn")?, "trust anchor").await?;
    let kmsuser_secret = call
        .state_str("KmsUser.SecretArn")
        .map(str::to_string)
        .map_or_else(|| p.str("KmsUserSecretName"), Ok)?;
    let password = secret_string(c, &kmsuser_secret, "kmsuser").await?;
    let res = c
        .kms
        .create_custom_key_store()
        .custom_key_store_name(&name)
        .cloud_hsm_cluster_id(&cluster)
        .trust_anchor_certificate(&anchor.0)
        .key_store_password(&password.0)
        .send()
        .await;
    drop(password);
    match res {
        Ok(o) => {
            let id = o.custom_key_store_id().unwrap_or_default().to_string();
            info!(key_store = %id, cluster = %cluster, "custom key store created");
            Ok(json!({"CustomKeyStoreId": id, "Created": true}))
        }
        Err(e) => {
            let f = AwsFailure::from_sdk("kms:CreateCustomKeyStore", &e);
            if f.is("CustomKeyStoreNameInUseException") {
                if let Some(s) = store_by_name(c, &name)
                    .await?
                    .filter(|s| s.cluster_id == cluster)
                {
                    return Ok(json!({"CustomKeyStoreId": s.id, "Created": false}));
                }
            }
            Err(create_error(f, &cluster))
        }
    }
}

fn store_id<'a>(call: &Call<'a>) -> StepResult<&'a str> {
    call.state_str("KeyStore.CustomKeyStoreId")
        .ok_or_else(|| StepError::invalid("the step needs $.KeyStore.CustomKeyStoreId"))
}

/// Connect; Err for "quick failures" that KMS reports synchronously.
async fn connect(c: &Clients, id: &str) -> StepResult<()> {
    match c
        .kms
        .connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let f = AwsFailure::from_sdk("kms:ConnectCustomKeyStore", &e);
            if f.is("CustomKeyStoreInvalidStateException") {
                // Raced with a state change (e.g. still DISCONNECTING); the next poll decides.
                return Ok(());
            }
            Err(match f.code.as_deref() {
                _ if f.transient => StepError::Transient(f.describe()),
                Some("CloudHsmClusterNotActiveException" | "CloudHsmClusterInvalidConfigurationException") => {
                    StepError::ResourceFailed(format!(
                        "{}; the cluster must be ACTIVE with at least one ACTIVE HSM and keep its security group rules",
                        f.describe()
                    ))
                }
                _ => StepError::InvalidInput(f.describe()),
            })
        }
    }
}

async fn disconnect(c: &Clients, id: &str) -> StepResult<()> {
    match c
        .kms
        .disconnect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let f = AwsFailure::from_sdk("kms:DisconnectCustomKeyStore", &e);
            // Already DISCONNECTING/DISCONNECTED, or gone.
            if f.is("CustomKeyStoreInvalidStateException")
                || f.is("CustomKeyStoreNotFoundException")
            {
                Ok(())
            } else {
                Err(f.or_else(StepError::InvalidInput))
            }
        }
    }
}

async fn connect_key_store(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let id = store_id(&call)?;
    let s = store_by_id(c, id)
        .await?
        .ok_or_else(|| StepError::ResourceFailed(format!("key store {id} disappeared")))?;
    match s.state.as_str() {
        "CONNECTED" | "CONNECTING" => {}
        // FAILED must be disconnected before connecting again; the status wait reconnects.
        "FAILED" => disconnect(c, id).await?,
        "DISCONNECTED" => connect(c, id).await?,
        _ => {}
    }
    Ok(json!({"ConnectionState": s.state}))
}

/// What one status check decided (pure, for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Done,
    Wait,
    Connect,
    DisconnectAndRetry,
    Fail(String),
}

/// Decide the next action while waiting for CONNECTED.
pub fn next_for_connect(s: &StoreView, reconnects: u32) -> Next {
    match s.state.as_str() {
        "CONNECTED" => Next::Done,
        "CONNECTING" | "DISCONNECTING" => Next::Wait,
        "DISCONNECTED" => Next::Connect,
        "FAILED" => {
            let code = s.error_code.clone().unwrap_or_else(|| "UNKNOWN".into());
            let info = connection_error(&code);
            if info.retry && reconnects < MAX_RECONNECTS {
                Next::DisconnectAndRetry
            } else if info.retry {
                Next::Fail(format!(
                    "key store {} is FAILED with {code} after {reconnects} disconnect/connect retries: {}",
                    s.id, info.meaning
                ))
            } else {
                Next::Fail(format!(
                    "key store {} is FAILED with {code}: {}",
                    s.id, info.meaning
                ))
            }
        }
        other => Next::Fail(format!(
            "key store {} is in unexpected state {other:?}",
            s.id
        )),
    }
}

/// `For`: `Connected` | `Disconnected`.
async fn key_store_status(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let what = call.arg("For")?;
    let mut poll = Poll::next(call.state, what);
    let id = store_id(&call)?;
    let s = store_by_id(c, id).await?.ok_or_else(|| {
        StepError::ResourceFailed(format!("key store {id} disappeared while waiting"))
    })?;
    let details = json!({"ConnectionState": s.state, "ConnectionErrorCode": s.error_code});
    let status = format!("{} {}", s.state, s.error_code.as_deref().unwrap_or(""));
    match what {
        "Connected" => match next_for_connect(&s, poll.reconnects) {
            Next::Done => Ok(poll.finish().with(details)),
            Next::Wait => Ok(poll.again(&CONNECT, &status)?.with(details)),
            Next::Connect => {
                connect(c, id).await?;
                Ok(poll.again(&CONNECT, &status)?.with(details))
            }
            Next::DisconnectAndRetry => {
                warn!(key_store = %id, code = ?s.error_code, attempt = poll.reconnects + 1, "key store FAILED with a transient code: reconnecting");
                disconnect(c, id).await?;
                poll.reconnects += 1;
                Ok(poll.again(&CONNECT, &status)?.with(details))
            }
            Next::Fail(m) => Err(StepError::ResourceFailed(m)),
        },
        "Disconnected" => {
            if s.state == "DISCONNECTED" {
                return Ok(poll.finish().with(details));
            }
            if s.state != "DISCONNECTING" {
                disconnect(c, id).await?;
            }
            Ok(poll.again(&DISCONNECT, &status)?.with(details))
        }
        other => Err(StepError::invalid(format!(
            "KeyStoreStatus cannot wait for {other}"
        ))),
    }
}

async fn disconnect_key_store(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let id = store_id(&call)?;
    disconnect(c, id).await?;
    Ok(json!({"CustomKeyStoreId": id}))
}

/// KMS keys in the store, including keys pending deletion (they block DeleteCustomKeyStore).
async fn keys_in_store(c: &Clients, store: &str) -> StepResult<Vec<(String, String)>> {
    let mut found = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = c
            .kms
            .list_keys()
            .limit(1000)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| aws_err("kms:ListKeys", e))?;
        for k in out.keys() {
            let Some(key_id) = k.key_id() else { continue };
            let d = match c.kms.describe_key().key_id(key_id).send().await {
                Ok(d) => d,
                Err(e) => {
                    let f = AwsFailure::from_sdk("kms:DescribeKey", &e);
                    if f.is("NotFoundException") {
                        continue;
                    }
                    return Err(f.or_else(StepError::InvalidInput));
                }
            };
            if let Some(m) = d.key_metadata() {
                if m.custom_key_store_id() == Some(store) {
                    found.push((
                        m.key_id().to_string(),
                        m.key_state()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default(),
                    ));
                }
            }
        }
        match (out.truncated(), out.next_marker()) {
            (true, Some(m)) => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(found)
}

pub fn keys_conflict(store: &str, keys: &[(String, String)]) -> String {
    let listed: Vec<String> = keys
        .iter()
        .take(8)
        .map(|(id, st)| format!("{id} ({st})"))
        .collect();
    let more = if keys.len() > 8 {
        format!(" and {} more", keys.len() - 8)
    } else {
        String::new()
    };
    format!(
        "key store {store} still holds {} KMS key(s): {}{more}. Deleting the store would make them unusable. \
         To proceed: schedule deletion of these keys (ScheduleKeyDeletion) and wait until the waiting period ends, \
         or set RetainOnDelete=true to keep the key store (and its keys) when this resource is deleted",
        keys.len(),
        listed.join(", ")
    )
}

/// Delete path, first step: find the store and refuse (or retain) when it holds keys.
async fn key_store_keys(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let retain = call.props()?.bool_or("RetainOnDelete", false)?;
    let Some(s) = find_store(c, call).await? else {
        return Ok(json!({"Found": false, "Retain": false}));
    };
    if retain {
        info!(key_store = %s.id, "RetainOnDelete: the key store is left in place");
        return Ok(json!({"Found": true, "Retain": true, "CustomKeyStoreId": s.id}));
    }
    let keys = keys_in_store(c, &s.id).await?;
    if !keys.is_empty() {
        return Err(StepError::Conflict(keys_conflict(&s.id, &keys)));
    }
    Ok(
        json!({"Found": true, "Retain": false, "CustomKeyStoreId": s.id, "ConnectionState": s.state}),
    )
}

async fn delete_key_store(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let id = store_id(&call)?;
    match c
        .kms
        .delete_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
    {
        Ok(_) => {
            info!(key_store = %id, "custom key store deleted");
            Ok(json!({"Deleted": true}))
        }
        Err(e) => {
            let f = AwsFailure::from_sdk("kms:DeleteCustomKeyStore", &e);
            match f.code.as_deref() {
                Some("CustomKeyStoreNotFoundException") => Ok(json!({"Deleted": false})),
                Some("CustomKeyStoreHasCMKsException") => Err(StepError::Conflict(format!(
                    "{}; a KMS key was created in the store meanwhile: schedule its deletion or set RetainOnDelete=true",
                    f.describe()
                ))),
                // Still disconnecting.
                Some("CustomKeyStoreInvalidStateException") => Err(StepError::Transient(f.describe())),
                _ => Err(f.or_else(StepError::InvalidInput)),
            }
        }
    }
}

async fn delete_kmsuser_secret(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let Some(name) = call.props()?.opt_str("KmsUserSecretName") else {
        return Ok(json!({"Deleted": false}));
    };
    match c
        .secrets
        .delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
    {
        Ok(_) => Ok(json!({"Deleted": true})),
        Err(e) => {
            let f = AwsFailure::from_sdk("secretsmanager:DeleteSecret", &e);
            if f.is("ResourceNotFoundException") {
                Ok(json!({"Deleted": false}))
            } else {
                Err(f.or_else(StepError::InvalidInput))
            }
        }
    }
}

/// Update: rename (allowed while connected); anything else about the store is fixed.
async fn update_key_store(c: &Clients, call: Call<'_>) -> StepResult<Value> {
    let p = call.props()?;
    let name = p.str("KeyStoreName")?;
    let cluster = p.str("ClusterId")?;
    let s = find_store(c, call).await?.ok_or_else(|| {
        StepError::ResourceFailed(format!(
            "the key store of this resource ({}) no longer exists; delete and recreate the key store resource",
            call.event().ok().and_then(|e| e.physical_id()).unwrap_or("unknown")
        ))
    })?;
    if s.cluster_id != cluster {
        return Err(StepError::Conflict(format!(
            "key store {} belongs to cluster {}, not {cluster}; moving a key store to another cluster is not supported \
             (only clusters restored from the same backup lineage are accepted by KMS): delete the key store resource first",
            s.id, s.cluster_id
        )));
    }
    if s.name != name {
        c.kms
            .update_custom_key_store()
            .custom_key_store_id(&s.id)
            .new_custom_key_store_name(&name)
            .send()
            .await
            .map_err(|e| {
                let f = AwsFailure::from_sdk("kms:UpdateCustomKeyStore", &e);
                if f.is("CustomKeyStoreNameInUseException") {
                    StepError::Conflict(format!("{}; choose another KeyStoreName", f.describe()))
                } else {
                    f.or_else(StepError::InvalidInput)
                }
            })?;
        info!(key_store = %s.id, "key store renamed");
    }
    Ok(json!({"CustomKeyStoreId": s.id, "Renamed": s.name != name}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(state: &str, code: Option<&str>) -> StoreView {
        StoreView {
            id: "cks-1234567890abcdef0".into(),
            name: "ks".into(),
            cluster_id: "cluster-abcdefghijk".into(),
            state: state.into(),
            error_code: code.map(str::to_string),
        }
    }

    #[test]
    fn transient_codes_reconnect_up_to_the_bound() {
        for code in ["NETWORK_ERRORS", "INTERNAL_ERROR", "USER_LOGGED_IN"] {
            let s = store("FAILED", Some(code));
            assert_eq!(next_for_connect(&s, 0), Next::DisconnectAndRetry, "{code}");
            assert_eq!(
                next_for_connect(&s, MAX_RECONNECTS - 1),
                Next::DisconnectAndRetry
            );
            match next_for_connect(&s, MAX_RECONNECTS) {
                Next::Fail(m) => assert!(m.contains(code) && m.contains("retries"), "{m}"),
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn permanent_codes_fail_at_once_with_meaning_and_fix() {
        let cases = [
            ("USER_NOT_FOUND", "CreateKmsUser"),
            ("INVALID_CREDENTIALS", "change-password"),
            ("USER_LOCKED_OUT", "locked"),
            ("CLUSTER_NOT_FOUND", "restore"),
            ("INSUFFICIENT_CLOUDHSM_HSMS", "HsmsPerSubnet"),
            ("INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET", "free address"),
            ("SUBNET_NOT_FOUND", "subnet"),
            ("XKS_PROXY_TIMED_OUT", "unrecognized"),
        ];
        for (code, hint) in cases {
            assert!(!connection_error(code).retry, "{code}");
            match next_for_connect(&store("FAILED", Some(code)), 0) {
                Next::Fail(m) => assert!(m.contains(code) && m.contains(hint), "{m}"),
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn connection_states() {
        assert_eq!(next_for_connect(&store("CONNECTED", None), 0), Next::Done);
        assert_eq!(next_for_connect(&store("CONNECTING", None), 0), Next::Wait);
        assert_eq!(
            next_for_connect(&store("DISCONNECTING", None), 2),
            Next::Wait
        );
        assert_eq!(
            next_for_connect(&store("DISCONNECTED", None), 1),
            Next::Connect
        );
    }

    #[test]
    fn keys_conflict_lists_ids_and_how_to_proceed() {
        let keys: Vec<(String, String)> = (0..10)
            .map(|i| (format!("key-{i}"), "PendingDeletion".to_string()))
            .collect();
        let m = keys_conflict("cks-1", &keys);
        assert!(
            m.contains("10 KMS key(s)")
                && m.contains("key-0 (PendingDeletion)")
                && m.contains("and 2 more")
        );
        assert!(m.contains("RetainOnDelete=true") && m.contains("ScheduleKeyDeletion"));
    }

    #[test]
    fn sensitive_never_prints() {
        let s = Sensitive("hunter2hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
