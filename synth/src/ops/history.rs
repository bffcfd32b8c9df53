//! Step Functions execution histories: the current state of a running workflow, the root cause of
//! a failed one, and how many state transitions it spent.
//!
//! Events come either from the SDK (`aws::history_event`) or from the JSON that GetExecutionHistory
//! returns (`{"events": [...]}`, the shape the AWS CLI and boto3 print) — the second form keeps
//! recorded histories usable as test fixtures.

use serde_json::Value;

/// One history event, reduced to what this module needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    pub previous_id: i64,
    /// The API's event type, e.g. `TaskStateEntered`, `LambdaFunctionFailed`.
    pub kind: String,
    /// Set on `*StateEntered` events.
    pub state_entered: Option<StateEntered>,
    /// Set on failure events (`TaskFailed`, `ExecutionFailed`, `LambdaFunctionTimedOut`, …).
    pub failure: Option<Failure>,
    /// `resourceType` of `TaskScheduled` (e.g. `lambda`).
    pub task_resource_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateEntered {
    pub name: String,
    pub input: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Failure {
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// Why a workflow failed, as precisely as the history tells.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkflowFailure {
    /// The state whose task failed (e.g. `CreateFirstHsm`), when known.
    pub state: Option<String>,
    /// The error name (our Lambda `errorType`, e.g. `InvalidInput`, or `States.Timeout`).
    pub error: Option<String>,
    /// The human part: a Lambda error's `errorMessage`, else the raw cause.
    pub message: Option<String>,
}

impl std::fmt::Display for WorkflowFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let error = self.error.as_deref().unwrap_or("error");
        match &self.state {
            Some(state) => write!(f, "{error} in state {state}")?,
            None => write!(f, "{error}")?,
        }
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

/// Parses a GetExecutionHistory response in the API's JSON shape.
pub fn from_api_json(doc: &Value) -> Result<Vec<Event>, String> {
    let events = doc
        .get("events")
        .and_then(Value::as_array)
        .ok_or("execution history JSON has no \"events\" array")?;
    events.iter().map(event_from_json).collect()
}

fn event_from_json(v: &Value) -> Result<Event, String> {
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("history event without \"type\": {v}"))?
        .to_string();
    let id = v.get("id").and_then(Value::as_i64).unwrap_or(0);
    let previous_id = v
        .get("previousEventId")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut event = Event {
        id,
        previous_id,
        kind,
        state_entered: None,
        failure: None,
        task_resource_type: None,
    };
    let Some(obj) = v.as_object() else {
        return Ok(event);
    };
    for (key, details) in obj {
        if !key.ends_with("EventDetails") {
            continue;
        }
        let text = |k: &str| details.get(k).and_then(Value::as_str).map(str::to_string);
        if key == "stateEnteredEventDetails" {
            event.state_entered = Some(StateEntered {
                name: text("name").unwrap_or_default(),
                input: text("input"),
            });
        } else if key == "taskScheduledEventDetails" {
            event.task_resource_type = text("resourceType");
        } else if details.get("error").is_some() || details.get("cause").is_some() {
            event.failure = Some(Failure {
                error: text("error"),
                cause: text("cause"),
            });
        }
    }
    Ok(event)
}

/// Whether an event type reports a failure (whether or not details came with it).
pub fn is_failure_kind(kind: &str) -> bool {
    kind.ends_with("Failed") || kind.ends_with("TimedOut") || kind.ends_with("Aborted")
}

/// The state a running execution is in: the newest `*StateEntered` event.
pub fn current_state(events: &[Event]) -> Option<&str> {
    events
        .iter()
        .max_by_key(|e| {
            if e.state_entered.is_some() {
                e.id
            } else {
                i64::MIN
            }
        })
        .and_then(|e| e.state_entered.as_ref())
        .map(|s| s.name.as_str())
}

/// The state in which event `id` happened: follow `previousEventId` back to a `*StateEntered`
/// event (TaskFailed → TaskStarted → TaskScheduled → TaskStateEntered; a retry's TaskScheduled
/// points at the previous TaskFailed, so the walk crosses retries too).
fn state_of(events: &[Event], mut id: i64) -> Option<&Event> {
    for _ in 0..events.len() {
        let e = events.iter().find(|e| e.id == id)?;
        if e.state_entered.is_some() {
            return Some(e);
        }
        if e.previous_id == 0 || e.previous_id == id {
            return None;
        }
        id = e.previous_id;
    }
    None
}

/// Root cause of a failed workflow. Our workflows catch errors into `$.Error` (`{Error, Cause}`)
/// and go on to `Respond`, so the execution itself often *succeeds* while the custom resource
/// fails; the caught error is the answer then. In order of preference:
/// 1. the execution's own failure (`ExecutionFailed`/`TimedOut`/`Aborted`), attributed to the
///    last failed task with the same error;
/// 2. the error caught into `$.Error` (the last state input carrying `{"Error": {"Error": …}}`),
///    attributed to the last failure event with that error;
/// 3. the last failure event in the history.
///
/// Returns `None` when the history shows no failure at all.
pub fn root_cause(events: &[Event]) -> Option<WorkflowFailure> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.id);

    let failures: Vec<&Event> = sorted
        .iter()
        .copied()
        .filter(|e| is_failure_kind(&e.kind))
        .collect();
    let task_failures: Vec<&Event> = failures
        .iter()
        .copied()
        .filter(|e| !e.kind.starts_with("Execution"))
        .collect();
    let attribute = |error: Option<&str>, cause: Option<&str>| -> WorkflowFailure {
        // The failed task with the same error (and cause, when both exist) names the state.
        let task = task_failures
            .iter()
            .rev()
            .find(|t| {
                let f = t.failure.clone().unwrap_or_default();
                f.error.as_deref() == error && (cause.is_none() || f.cause.as_deref() == cause)
            })
            .or_else(|| {
                task_failures
                    .iter()
                    .rev()
                    .find(|t| t.failure.as_ref().and_then(|f| f.error.as_deref()) == error)
            });
        let cause = cause.or_else(|| task.and_then(|t| t.failure.as_ref()?.cause.as_deref()));
        WorkflowFailure {
            state: task
                .and_then(|t| state_of(events, t.id))
                .and_then(|e| e.state_entered.as_ref())
                .map(|s| s.name.clone()),
            error: error.map(str::to_string),
            message: cause.map(readable_cause),
        }
    };

    if let Some(exec) = failures
        .iter()
        .rev()
        .find(|e| e.kind.starts_with("Execution"))
    {
        let f = exec.failure.clone().unwrap_or_default();
        let mut out = attribute(f.error.as_deref(), f.cause.as_deref());
        if out.error.is_none() {
            out.error = Some(exec.kind.clone());
        }
        return Some(out);
    }

    let caught = sorted.iter().rev().find_map(|e| {
        let input = e.state_entered.as_ref()?.input.as_deref()?;
        let v: Value = serde_json::from_str(input).ok()?;
        let err = v.get("Error")?;
        let name = err.get("Error")?.as_str()?.to_string();
        Some((
            name,
            err.get("Cause").and_then(Value::as_str).map(str::to_string),
        ))
    });
    if let Some((error, cause)) = caught {
        return Some(attribute(Some(&error), cause.as_deref()));
    }

    let last = task_failures.last()?;
    let f = last.failure.clone().unwrap_or_default();
    Some(attribute(
        Some(f.error.as_deref().unwrap_or(&last.kind)),
        f.cause.as_deref(),
    ))
}

/// A Lambda error's cause is `{"errorMessage": …, "errorType": …}`; show the message only.
pub fn readable_cause(cause: &str) -> String {
    serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| cause.to_string())
}

/// State transitions as Step Functions bills them: one per state entered, plus one per retry
/// (a task scheduled again after a failure in the same state entry).
pub fn transitions(events: &[Event]) -> u64 {
    let entered = events.iter().filter(|e| e.state_entered.is_some()).count() as u64;
    let mut scheduled_per_entry: std::collections::BTreeMap<i64, u64> = Default::default();
    for e in events.iter().filter(|e| is_scheduled(&e.kind)) {
        if let Some(entry) = state_of(events, e.id) {
            *scheduled_per_entry.entry(entry.id).or_default() += 1;
        }
    }
    let retries: u64 = scheduled_per_entry
        .values()
        .map(|n| n.saturating_sub(1))
        .sum();
    entered + retries
}

fn is_scheduled(kind: &str) -> bool {
    kind == "TaskScheduled" || kind == "LambdaFunctionScheduled" || kind == "ActivityScheduled"
}

/// Lambda invocations made by the workflow (each attempt counts).
pub fn lambda_invocations(events: &[Event]) -> u64 {
    events
        .iter()
        .filter(|e| {
            e.kind == "LambdaFunctionScheduled"
                || (e.kind == "TaskScheduled" && e.task_resource_type.as_deref() == Some("lambda"))
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<Event> {
        let path = format!("{}/tests/ops_fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        from_api_json(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    #[test]
    fn caught_error_names_the_failing_state_and_lambda_message() {
        // Initialization workflow: CreateFirstHsm retried once (Transient), then failed with
        // InvalidInput, caught into $.Error, answered FAILED by Respond; the execution succeeded.
        let events = fixture("execution-history-caught.json");
        let rc = root_cause(&events).expect("a failure");
        assert_eq!(rc.state.as_deref(), Some("CreateFirstHsm"));
        assert_eq!(rc.error.as_deref(), Some("InvalidInput"));
        assert_eq!(
            rc.message.as_deref(),
            Some("subnet subnet-0b2 is in us-east-1a like subnet-0a1: give one subnet per Availability Zone")
        );
        assert_eq!(
            rc.to_string(),
            "InvalidInput in state CreateFirstHsm: subnet subnet-0b2 is in us-east-1a like subnet-0a1: give one subnet per Availability Zone"
        );
    }

    #[test]
    fn recorded_emulator_history_with_a_caught_sdk_error() {
        // Recorded from the emulator (GetExecutionHistory): an aws-sdk task fails, Catch writes
        // $.Error, a Pass state stands in for Respond, the execution succeeds.
        let events = fixture("execution-history-recorded.json");
        let rc = root_cause(&events).expect("a failure");
        assert_eq!(rc.state.as_deref(), Some("GetObject"));
        assert_eq!(rc.error.as_deref(), Some("s3.NoSuchBucketException"));
        assert!(rc
            .message
            .unwrap()
            .starts_with("The specified bucket does not exist"));
        assert_eq!(transitions(&events), 2);
        assert_eq!(lambda_invocations(&events), 0);
    }

    #[test]
    fn execution_failure_wins_and_is_attributed() {
        let events = fixture("execution-history-failed.json");
        let rc = root_cause(&events).expect("a failure");
        assert_eq!(rc.error.as_deref(), Some("WaitTimeout"));
        assert_eq!(rc.state.as_deref(), Some("ClusterStatus"));
        assert!(rc.message.unwrap().contains("still CREATE_IN_PROGRESS"));
    }

    #[test]
    fn no_failure_no_root_cause() {
        let mut events = fixture("execution-history-caught.json");
        events.retain(|e| !is_failure_kind(&e.kind));
        for e in &mut events {
            if let Some(s) = &mut e.state_entered {
                s.input = Some("{}".into());
            }
        }
        assert_eq!(root_cause(&events), None);
    }

    #[test]
    fn current_state_is_the_newest_entered() {
        let events = fixture("execution-history-caught.json");
        assert_eq!(current_state(&events), Some("Respond"));
        let first_three: Vec<Event> = events.iter().take(3).cloned().collect();
        assert_eq!(current_state(&first_three), Some("FindFirstHsm"));
    }

    #[test]
    fn transitions_count_entries_and_retries() {
        let events = fixture("execution-history-caught.json");
        // FindFirstHsm, CreateFirstHsm, Respond entered (3) + one retry of CreateFirstHsm.
        assert_eq!(transitions(&events), 4);
        // FindFirstHsm once, CreateFirstHsm twice, Respond once.
        assert_eq!(lambda_invocations(&events), 4);
    }

    #[test]
    fn readable_cause_unwraps_lambda_errors_only() {
        assert_eq!(
            readable_cause(r#"{"errorType":"X","errorMessage":"boom"}"#),
            "boom"
        );
        assert_eq!(readable_cause("plain text"), "plain text");
    }
}
