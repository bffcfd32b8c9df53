//! `bridge`: the custom resources' ServiceToken. Starts the workflow named by `WorkflowArn` with
//! `{"Event": <the CloudFormation event>}`; answers FAILED at once when it cannot.

use serde_json::{json, Value};
use tracing::{error, info};

use crate::clients::Clients;
use crate::error::{AwsFailure, StepResult};
use crate::event::CfnEvent;
use crate::respond::{self, Response};

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `<LogicalResourceId>-<RequestType>-<first 40 chars of RequestId>`, only `[A-Za-z0-9-_]`,
/// at most 80 characters (the logical id is shortened when needed). A redelivered request maps
/// to the same name, so it cannot start a second execution.
pub fn execution_name(logical_id: &str, request_type: &str, request_id: &str) -> String {
    let rid: String = clean(request_id).chars().take(40).collect();
    let rt = clean(request_type);
    let room = 80usize.saturating_sub(rid.len() + rt.len() + 2);
    let lid: String = clean(logical_id).chars().take(room).collect();
    format!("{lid}-{rt}-{rid}")
}

pub async fn handle(c: &Clients, raw: &Value) -> StepResult<Value> {
    let ev = CfnEvent::new(raw)?;
    let name = execution_name(
        ev.field("LogicalResourceId")?,
        ev.field("RequestType")?,
        ev.field("RequestId")?,
    );
    let workflow = ev.props().opt_str("WorkflowArn");
    let started = match &workflow {
        None => Err("the custom resource has no WorkflowArn property".to_string()),
        Some(arn) => match c
            .sfn
            .start_execution()
            .state_machine_arn(arn)
            .name(&name)
            .input(json!({"Event": raw}).to_string())
            .send()
            .await
        {
            Ok(o) => {
                info!(execution = %o.execution_arn(), "workflow started");
                Ok(o.execution_arn().to_string())
            }
            Err(e) => {
                let f = AwsFailure::from_sdk("states:StartExecution", &e);
                if f.is("ExecutionAlreadyExists") {
                    info!(execution = %name, "workflow already started for this request");
                    Ok(name.clone())
                } else {
                    Err(f.describe())
                }
            }
        },
    };
    match started {
        Ok(exec) => Ok(json!({"Started": exec})),
        Err(why) => {
            error!(reason = %why, "cannot start the workflow: answering FAILED");
            let resp = Response {
                success: false,
                reason: format!("could not start the workflow: {why}"),
                physical_id: respond::physical_id(&ev, &Value::Null),
                data: Default::default(),
            };
            respond::send(&ev, &resp).await?;
            Ok(json!({"Started": Value::Null, "Responded": "FAILED"}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_name_is_derived_and_bounded() {
        let n = execution_name("HsmFleet", "Create", "9f4c1a2e-1234-4bcd-9abc-1234567890ab");
        assert_eq!(n, "HsmFleet-Create-9f4c1a2e-1234-4bcd-9abc-1234567890ab");
        let rid = "abcdefghij".repeat(6);
        let n = execution_name(&"L".repeat(200), "Update", &rid);
        assert_eq!(n.len(), 80);
        assert!(n.ends_with(&format!("-Update-{}", &rid[..40])));
        let n = execution_name("Key Store!", "Delete", "id/with:odd*chars");
        assert_eq!(n, "Key-Store--Delete-id-with-odd-chars");
        assert!(n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        // Same request, same name.
        assert_eq!(
            execution_name("A", "Create", "r-1"),
            execution_name("A", "Create", "r-1")
        );
    }
}
