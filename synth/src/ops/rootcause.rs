//! Why a stack operation failed: the first resource that failed (not the ones CloudFormation
//! cancelled because of it), and for a custom resource the error of the workflow that served it,
//! read from the execution history — instead of "custom resource failed".

use super::aws::Aws;
use super::history::{self, WorkflowFailure};
use super::watch::{full_history, list_executions, Execution, StackEvent, Watch};

#[derive(Debug, Clone, serde::Serialize)]
pub struct RootCause {
    pub resource: String,
    pub resource_type: String,
    pub status: String,
    /// CloudFormation's reason for the resource.
    pub reason: Option<String>,
    /// For custom resources: the workflow execution that served the request, and its error.
    pub workflow: Option<WorkflowCause>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkflowCause {
    pub execution_arn: String,
    pub execution_name: String,
    pub execution_status: String,
    #[serde(flatten)]
    pub failure: WorkflowFailure,
}

impl std::fmt::Display for RootCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) {}",
            self.resource, self.resource_type, self.status
        )?;
        match &self.workflow {
            Some(w) => write!(
                f,
                ": workflow {} ({}): {}",
                w.execution_name, w.execution_status, w.failure
            ),
            None => match &self.reason {
                Some(r) => write!(f, ": {r}"),
                None => Ok(()),
            },
        }
    }
}

fn is_custom(resource_type: &str) -> bool {
    resource_type.starts_with("Custom::") || resource_type == "AWS::CloudFormation::CustomResource"
}

/// The first failed resource of the operation. CloudFormation marks resources it stopped because
/// of another failure as "Resource creation cancelled"/"Resource update cancelled"; the stack's
/// own FAILED event only lists the failed resources. Both are skipped.
pub fn first_failure<'e>(events: &'e [StackEvent], stack_name: &str) -> Option<&'e StackEvent> {
    events.iter().find(|e| {
        e.status.ends_with("_FAILED")
            && e.logical_id != stack_name
            && e.resource_type != "AWS::CloudFormation::Stack"
            && !e
                .reason
                .as_deref()
                .unwrap_or("")
                .to_ascii_lowercase()
                .contains("cancelled")
    })
}

/// The custom-resource request type for a failed status (`CREATE_FAILED` → `Create`).
fn request_type(status: &str) -> &'static str {
    if status.starts_with("UPDATE") {
        "Update"
    } else if status.starts_with("DELETE") {
        "Delete"
    } else {
        "Create"
    }
}

pub async fn find(
    aws: &Aws,
    watch: &mut Watch<'_>,
    stack_reason: Option<String>,
) -> Option<RootCause> {
    let Some(failed) = first_failure(&watch.events, &watch.stack).cloned() else {
        return stack_reason.map(|reason| RootCause {
            resource: watch.stack.clone(),
            resource_type: "AWS::CloudFormation::Stack".into(),
            status: "FAILED".into(),
            reason: Some(reason),
            workflow: None,
        });
    };
    let mut cause = RootCause {
        resource: failed.logical_id.clone(),
        resource_type: failed.resource_type.clone(),
        status: failed.status.clone(),
        reason: failed.reason.clone(),
        workflow: None,
    };
    if is_custom(&failed.resource_type) {
        cause.workflow = workflow_cause(aws, watch, &failed).await;
    }
    Some(cause)
}

/// The bridge names executions `<LogicalResourceId>-<RequestType>-<RequestId prefix>`
/// (architecture.md): the newest such execution of the stack's machines served the request.
async fn workflow_cause(
    aws: &Aws,
    watch: &mut Watch<'_>,
    failed: &StackEvent,
) -> Option<WorkflowCause> {
    watch.refresh_state_machines().await;
    let prefix = format!("{}-{}-", failed.logical_id, request_type(&failed.status));
    // Executions seen while watching (they survive a rollback that deleted the machine), then
    // whatever the machines still list.
    let mut candidates: Vec<Execution> = watch
        .executions
        .values()
        .filter(|e| e.name.starts_with(&prefix))
        .cloned()
        .collect();
    for machine in &watch.state_machines {
        if let Ok(list) = list_executions(aws, machine, None).await {
            for e in list.into_iter().filter(|e| e.name.starts_with(&prefix)) {
                if let Some(seen) = candidates.iter_mut().find(|c| c.arn == e.arn) {
                    seen.status = e.status;
                } else {
                    candidates.push(e);
                }
            }
        }
    }
    let exec = candidates
        .into_iter()
        .max_by(|a, b| a.start.total_cmp(&b.start))?;
    let failure = match full_history(aws, &exec.arn).await {
        Ok(events) => history::root_cause(&events).or_else(|| {
            // No failure recorded: the workflow is still going (CloudFormation gave up waiting).
            (exec.status == "RUNNING").then(|| WorkflowFailure {
                state: history::current_state(&events).map(str::to_string),
                error: Some("StillRunning".into()),
                message: Some("the workflow had not answered CloudFormation yet".into()),
            })
        }),
        // Gone with its state machine: use what was read while watching.
        Err(_) => exec.failure.clone(),
    }?;
    Some(WorkflowCause {
        execution_arn: exec.arn,
        execution_name: exec.name,
        execution_status: exec.status,
        failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(logical: &str, ty: &str, status: &str, reason: &str) -> StackEvent {
        StackEvent {
            id: format!("{logical}-{status}"),
            timestamp: 0.0,
            logical_id: logical.into(),
            resource_type: ty.into(),
            status: status.into(),
            reason: (!reason.is_empty()).then(|| reason.into()),
            physical_id: None,
        }
    }

    #[test]
    fn first_failed_resource_skips_cancellations_and_the_stack() {
        let events = vec![
            ev(
                "demo",
                "AWS::CloudFormation::Stack",
                "CREATE_IN_PROGRESS",
                "User Initiated",
            ),
            ev(
                "Client",
                "AWS::EC2::Instance",
                "CREATE_FAILED",
                "Resource creation cancelled",
            ),
            ev(
                "Initialization",
                "Custom::ClusterInitialization",
                "CREATE_FAILED",
                "InvalidInput: subnets in one AZ",
            ),
            ev(
                "HsmFleet",
                "Custom::HsmFleet",
                "CREATE_FAILED",
                "boom later",
            ),
            ev(
                "demo",
                "AWS::CloudFormation::Stack",
                "ROLLBACK_IN_PROGRESS",
                "The following resource(s) failed to create: [Initialization]",
            ),
        ];
        let f = first_failure(&events, "demo").unwrap();
        assert_eq!(f.logical_id, "Initialization");
        assert_eq!(request_type(&f.status), "Create");
        assert_eq!(request_type("DELETE_FAILED"), "Delete");
        assert!(is_custom(&f.resource_type));
        assert!(first_failure(&events[..2], "demo").is_none());
    }
}
