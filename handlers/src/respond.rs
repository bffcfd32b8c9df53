//! The CloudFormation custom-resource response: a PUT of a ≤ 4096-byte JSON document to the
//! presigned `ResponseURL` (aws-behaviour.md 4.1).

use std::time::Duration;

use serde_json::{json, Map, Value};
use tracing::{info, warn};

use crate::call::Call;
use crate::error::{StepError, StepResult};
use crate::event::{CfnEvent, RequestType};

/// CloudFormation rejects larger response bodies.
pub const MAX_BODY: usize = 4096;
/// Reason is cut to this many bytes even when the body has room (readable stack events).
pub const MAX_REASON: usize = 2000;

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub success: bool,
    pub reason: String,
    pub physical_id: String,
    pub data: Map<String, Value>,
}

/// The stable physical id (docs/architecture.md): a Delete echoes what CloudFormation holds;
/// otherwise it depends on the resource type, so that a failed Create carries the id its
/// rollback Delete needs.
pub fn physical_id(ev: &CfnEvent<'_>, state: &Value) -> String {
    if ev.request_type() == RequestType::Delete {
        if let Some(id) = ev.physical_id() {
            return id.to_string();
        }
    }
    let p = ev.props();
    let cluster = p.opt_str("ClusterId");
    let logical = ev
        .raw
        .get("LogicalResourceId")
        .and_then(Value::as_str)
        .unwrap_or("resource");
    let by_cluster = |suffix: &str| match &cluster {
        Some(c) => format!("{c}-{suffix}"),
        None => format!("{}-{logical}", ev.stack_name()),
    };
    match ev.resource_type() {
        "Custom::Preflight" => format!("preflight-{}", ev.stack_name()),
        "Custom::ClusterInitialization" => by_cluster("init"),
        "Custom::HsmFleet" => by_cluster("fleet"),
        // The restored cluster's id once CreateCluster answered (a failed Create after that
        // reports it too, so the rollback's Delete removes the cluster), else the stack-scoped
        // name (the Delete then looks for the cluster by its tags).
        "Custom::RestoredCluster" => state
            .pointer("/Restore/ClusterId")
            .and_then(Value::as_str)
            .filter(|s| s.starts_with("cluster-"))
            .or(ev.physical_id())
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}-{logical}", ev.stack_name())),
        "Custom::KeyStore" => {
            let from_state = state
                .pointer("/KeyStore/CustomKeyStoreId")
                .and_then(Value::as_str)
                .filter(|s| s.starts_with("cks-"));
            let from_event = ev.physical_id().filter(|s| s.starts_with("cks-"));
            match from_state.or(from_event) {
                Some(id) => id.to_string(),
                None => by_cluster("keystore"),
            }
        }
        _ => ev
            .physical_id()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}-{logical}", ev.stack_name())),
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Serialize the response; Reason is shortened to fit, Data never: if Data alone does not fit,
/// the response becomes FAILED and says so.
pub fn body(ev: &CfnEvent<'_>, resp: &Response) -> String {
    let doc = |status: &str, reason: &str, data: Option<&Map<String, Value>>| {
        let mut d = json!({
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": resp.physical_id,
            "StackId": ev.raw.get("StackId").cloned().unwrap_or(Value::Null),
            "RequestId": ev.raw.get("RequestId").cloned().unwrap_or(Value::Null),
            "LogicalResourceId": ev.raw.get("LogicalResourceId").cloned().unwrap_or(Value::Null),
        });
        // Data is not supported on Delete responses.
        if let Some(data) =
            data.filter(|d| !d.is_empty() && ev.request_type() != RequestType::Delete)
        {
            d["Data"] = Value::Object(data.clone());
        }
        d.to_string()
    };
    let status = if resp.success { "SUCCESS" } else { "FAILED" };
    let empty = doc(status, "", Some(&resp.data));
    if empty.len() > MAX_BODY {
        let reason = format!(
            "the response Data is {} bytes, over CloudFormation's 4096-byte response limit; nothing was truncated \
             silently: the resource is reported FAILED",
            empty.len()
        );
        return doc("FAILED", &reason, None);
    }
    let mut reason = cut(&resp.reason, MAX_REASON);
    loop {
        let b = doc(status, &reason, Some(&resp.data));
        if b.len() <= MAX_BODY || reason.is_empty() {
            return b;
        }
        let over = b.len() - MAX_BODY;
        reason = cut(&reason, reason.len().saturating_sub(over + 3));
    }
}

/// The message of a `Catch`-captured error (`{Error, Cause}`): a Lambda error's Cause is the
/// JSON `{errorType, errorMessage, ...}`; a States.* error's Cause is plain text.
pub fn reason_from_error(err: &Value) -> String {
    let name = err.get("Error").and_then(Value::as_str).unwrap_or("Error");
    let cause = err.get("Cause").and_then(Value::as_str).unwrap_or("");
    let msg = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| cause.to_string());
    if msg.is_empty() {
        name.to_string()
    } else {
        format!("{name}: {msg}")
    }
}

/// Attribute values the templates read with Fn::GetAtt, per resource type.
fn data_for(ev: &CfnEvent<'_>, state: &Value, physical_id: &str) -> Map<String, Value> {
    let mut data = Map::new();
    match ev.resource_type() {
        "Custom::ClusterInitialization" => {
            let pending = state
                .pointer("/Signed/Pending")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let csr = if pending {
                state
                    .pointer("/Signed/ClusterCsr")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            } else {
                ""
            };
            data.insert("ClusterCsr".into(), json!(csr));
            data.insert(
                "ClusterState".into(),
                json!(if pending { "UNINITIALIZED" } else { "ACTIVE" }),
            );
        }
        "Custom::RestoredCluster" => {
            for key in ["ClusterId", "SecurityGroupId"] {
                let v = state
                    .pointer(&format!("/Restore/{key}"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                data.insert(key.into(), json!(v));
            }
        }
        "Custom::KeyStore" if physical_id.starts_with("cks-") => {
            data.insert("KeyStoreId".into(), json!(physical_id));
        }
        _ => {}
    }
    if let Some(extra) = state.pointer("/Result/Data").and_then(Value::as_object) {
        for (k, v) in extra {
            data.insert(k.clone(), v.clone());
        }
    }
    data
}

/// Build the response for a workflow's final `Respond` step.
pub fn from_state(ev: &CfnEvent<'_>, state: &Value, execution: Option<&str>) -> Response {
    let physical_id = physical_id(ev, state);
    match state.get("Error").filter(|e| !e.is_null()) {
        Some(err) => {
            let mut reason = reason_from_error(err);
            if let Some(x) = execution {
                // Keep the execution reference even when the message is long.
                let suffix = format!(" [execution {x}]");
                reason = format!(
                    "{}{suffix}",
                    cut(&reason, MAX_REASON.saturating_sub(suffix.len()))
                );
            }
            Response {
                success: false,
                reason,
                physical_id,
                data: Map::new(),
            }
        }
        None => {
            let data = data_for(ev, state, &physical_id);
            Response {
                success: true,
                reason: String::new(),
                physical_id,
                data,
            }
        }
    }
}

/// PUT the body to the presigned URL, retrying network errors and 5xx a few times.
pub async fn put(url: &str, body: String) -> StepResult<()> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || put_blocking(&url, &body))
        .await
        .map_err(|e| StepError::Transient(format!("response upload task failed: {e}")))?
}

fn put_blocking(url: &str, body: &str) -> StepResult<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut last = String::new();
    for attempt in 0..4u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500 * 2u64.pow(attempt)));
        }
        // The presigned URL was signed without a content type: send an empty one.
        match agent.put(url).header("content-type", "").send(body) {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_server_error() => last = format!("HTTP {}", r.status()),
            Ok(r) => {
                return Err(StepError::InvalidInput(format!(
                    "the CloudFormation response URL refused the response: HTTP {}",
                    r.status()
                )))
            }
            // Never include the URL: it is a presigned credential.
            Err(e) => last = describe_ureq(&e),
        }
        warn!(attempt, error = %last, "response upload failed");
    }
    Err(StepError::Transient(format!(
        "could not upload the CloudFormation response: {last}"
    )))
}

/// A short description that never includes the (presigned) URL.
fn describe_ureq(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("network error ({:?})", io.kind()),
        ureq::Error::Timeout(t) => format!("timeout ({t:?})"),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::StatusCode(c) => format!("HTTP {c}"),
        _ => "HTTP client error".into(),
    }
}

/// Build and send; the one place every response goes through.
pub async fn send(ev: &CfnEvent<'_>, resp: &Response) -> StepResult<Value> {
    let b = body(ev, resp);
    put(ev.field("ResponseURL")?, b.clone()).await?;
    let sent: Value = serde_json::from_str(&b).unwrap_or(Value::Null);
    let logical = ev
        .raw
        .get("LogicalResourceId")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    info!(
        status = %sent["Status"].as_str().unwrap_or(""),
        physical_id = %resp.physical_id,
        logical_id = %logical,
        request = ?ev.request_type(),
        "CloudFormation response sent"
    );
    Ok(json!({"Status": sent["Status"], "PhysicalResourceId": resp.physical_id, "Bytes": b.len()}))
}

/// The `Respond` step.
pub async fn respond_step(call: Call<'_>) -> StepResult<Value> {
    let ev = call.event()?;
    let execution = call.payload.get("Execution").and_then(Value::as_str);
    let resp = from_state(&ev, call.state, execution);
    send(&ev, &resp).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(rt: &str, ty: &str, physical: Option<&str>) -> Value {
        let mut v = json!({
            "RequestType": rt, "RequestId": "9f4c1a2e-1234-4bcd-9abc-1234567890ab",
            "ResponseURL": "http://127.0.0.1:1/resp", "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/hsm/guid",
            "LogicalResourceId": "KeyStore", "ResourceType": ty,
            "ResourceProperties": {"ClusterId": "cluster-abcdefghijk"}
        });
        if let Some(p) = physical {
            v["PhysicalResourceId"] = json!(p);
        }
        v
    }

    #[test]
    fn restored_cluster_reports_its_cluster_even_when_failed() {
        let e = event("Create", "Custom::RestoredCluster", None);
        let ev = CfnEvent::new(&e).unwrap();
        // Before CreateCluster answered: a stack-scoped name (Delete then searches by tags).
        assert_eq!(physical_id(&ev, &json!({})), "hsm-KeyStore");
        // A failed Create after CreateCluster carries the cluster id, so the rollback deletes it.
        let failed = json!({"Restore": {"ClusterId": "cluster-restoredabcd", "SecurityGroupId": "sg-0123456789abcdef0"},
                            "Error": {"Error": "WaitTimeout", "Cause": "x"}});
        let r = from_state(&ev, &failed, None);
        assert!(!r.success);
        assert_eq!(r.physical_id, "cluster-restoredabcd");
        let ok = json!({"Restore": {"ClusterId": "cluster-restoredabcd", "SecurityGroupId": "sg-0123456789abcdef0"}});
        let r = from_state(&ev, &ok, None);
        assert!(r.success);
        assert_eq!(r.data["ClusterId"], "cluster-restoredabcd");
        assert_eq!(r.data["SecurityGroupId"], "sg-0123456789abcdef0");
    }

    #[test]
    fn physical_ids_are_stable() {
        let s = json!({});
        let e = event("Create", "Custom::HsmFleet", None);
        assert_eq!(
            physical_id(&CfnEvent::new(&e).unwrap(), &s),
            "cluster-abcdefghijk-fleet"
        );
        let e = event("Create", "Custom::ClusterInitialization", None);
        assert_eq!(
            physical_id(&CfnEvent::new(&e).unwrap(), &s),
            "cluster-abcdefghijk-init"
        );
        let e = event("Create", "Custom::KeyStore", None);
        assert_eq!(
            physical_id(&CfnEvent::new(&e).unwrap(), &s),
            "cluster-abcdefghijk-keystore"
        );
        let with_store = json!({"KeyStore": {"CustomKeyStoreId": "cks-1234567890abcdef0"}});
        assert_eq!(
            physical_id(&CfnEvent::new(&e).unwrap(), &with_store),
            "cks-1234567890abcdef0"
        );
        let e = event("Update", "Custom::KeyStore", Some("cks-1234567890abcdef0"));
        assert_eq!(
            physical_id(&CfnEvent::new(&e).unwrap(), &s),
            "cks-1234567890abcdef0"
        );
        // Delete always echoes what CloudFormation holds.
        let e = event("Delete", "Custom::HsmFleet", Some("something-cfn-invented"));
        assert_eq!(
            physical_id(&CfnEvent::new(&e).unwrap(), &s),
            "something-cfn-invented"
        );
    }

    #[test]
    fn long_reason_is_truncated_to_fit_4096_bytes() {
        let e = event("Create", "Custom::HsmFleet", None);
        let ev = CfnEvent::new(&e).unwrap();
        let resp = Response {
            success: false,
            reason: "é\"x".repeat(5000),
            physical_id: "cluster-abcdefghijk-fleet".into(),
            data: Map::new(),
        };
        let b = body(&ev, &resp);
        assert!(b.len() <= MAX_BODY, "{}", b.len());
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["Status"], "FAILED");
        assert!(v["Reason"].as_str().unwrap().ends_with("..."));
        assert_eq!(v["RequestId"], "9f4c1a2e-1234-4bcd-9abc-1234567890ab");
        assert_eq!(v["LogicalResourceId"], "KeyStore");
    }

    #[test]
    fn oversized_data_is_never_truncated_silently() {
        let e = event("Create", "Custom::ClusterInitialization", None);
        let ev = CfnEvent::new(&e).unwrap();
        let mut data = Map::new();
        data.insert("ClusterCsr".into(), json!("A".repeat(5000)));
        let resp = Response {
            success: true,
            reason: String::new(),
            physical_id: "x".into(),
            data,
        };
        let b = body(&ev, &resp);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert!(b.len() <= MAX_BODY);
        assert_eq!(v["Status"], "FAILED");
        assert!(v.get("Data").is_none());
        assert!(v["Reason"].as_str().unwrap().contains("4096"));
    }

    #[test]
    fn delete_responses_carry_no_data() {
        let e = event("Delete", "Custom::KeyStore", Some("cks-1234567890abcdef0"));
        let ev = CfnEvent::new(&e).unwrap();
        let r = from_state(&ev, &json!({"Event": e.clone()}), None);
        let v: Value = serde_json::from_str(&body(&ev, &r)).unwrap();
        assert_eq!(v["Status"], "SUCCESS");
        assert!(v.get("Data").is_none());
    }

    #[test]
    fn failure_reason_comes_from_the_lambda_error_and_names_the_execution() {
        let e = event("Create", "Custom::KeyStore", None);
        let ev = CfnEvent::new(&e).unwrap();
        let state = json!({
            "KeyStore": {"CustomKeyStoreId": "cks-1234567890abcdef0"},
            "Error": {"Error": "ResourceFailed", "Cause": "{\"errorType\":\"ResourceFailed\",\"errorMessage\":\"key store cks-1 is FAILED with USER_NOT_FOUND: ...\"}"}
        });
        let r = from_state(
            &ev,
            &state,
            Some("arn:aws:states:us-east-1:1:execution:ks:KeyStore-Create-x"),
        );
        assert!(!r.success);
        assert!(r
            .reason
            .starts_with("ResourceFailed: key store cks-1 is FAILED with USER_NOT_FOUND"));
        assert!(r
            .reason
            .ends_with("[execution arn:aws:states:us-east-1:1:execution:ks:KeyStore-Create-x]"));
        // A failed create still answers with the store id, so the rollback Delete can remove it.
        assert_eq!(r.physical_id, "cks-1234567890abcdef0");
        assert_eq!(
            reason_from_error(&json!({"Error": "States.Timeout", "Cause": "timed out"})),
            "States.Timeout: timed out"
        );
    }

    #[test]
    fn success_data_per_resource_type() {
        let e = event("Create", "Custom::ClusterInitialization", None);
        let ev = CfnEvent::new(&e).unwrap();
        let r = from_state(
            &ev,
            &json!({"Signed": {"Pending": true, "ClusterCsr": "CSR"}}),
            None,
        );
        assert_eq!(r.data["ClusterCsr"], "CSR");
        assert_eq!(r.data["ClusterState"], "UNINITIALIZED");
        let r = from_state(
            &ev,
            &json!({"Signed": {"Pending": false, "SignedCert": "x"}}),
            None,
        );
        assert_eq!(r.data["ClusterCsr"], "");
        assert_eq!(r.data["ClusterState"], "ACTIVE");
        let e = event("Create", "Custom::KeyStore", None);
        let ev = CfnEvent::new(&e).unwrap();
        let r = from_state(
            &ev,
            &json!({"KeyStore": {"CustomKeyStoreId": "cks-1234567890abcdef0"}}),
            None,
        );
        assert_eq!(r.data["KeyStoreId"], "cks-1234567890abcdef0");
    }

    #[tokio::test]
    async fn put_sends_the_body_with_an_empty_content_type() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 8192];
            let mut got = Vec::new();
            loop {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= i + 4 + len {
                        break;
                    }
                }
            }
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        put(
            &format!("http://{addr}/bucket/key?X-Amz-Signature=abc"),
            "{\"Status\":\"SUCCESS\"}".into(),
        )
        .await
        .unwrap();
        let req = server.join().unwrap();
        assert!(req.starts_with("PUT /bucket/key?X-Amz-Signature=abc"));
        assert!(
            req.to_ascii_lowercase().contains("content-type: \r\n"),
            "{req}"
        );
        assert!(req.ends_with("{\"Status\":\"SUCCESS\"}"));
    }
}
