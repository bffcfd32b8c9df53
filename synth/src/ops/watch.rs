//! Live progress while CloudFormation works: new stack events as they come, and for each running
//! Step Functions execution of the stack's state machines its current state and elapsed time.
//! Everything goes to stderr; stdout is kept for the command's result.

use super::aws::{describe, history_event, Aws};
use super::history;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A stack event, reduced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StackEvent {
    pub id: String,
    pub timestamp: f64,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
    pub physical_id: Option<String>,
}

/// An execution of one of the stack's state machines, as last seen.
#[derive(Debug, Clone)]
pub struct Execution {
    pub arn: String,
    pub name: String,
    pub state_machine_arn: String,
    pub start: f64,
    pub status: String,
    pub current_state: Option<String>,
    /// The failure in its history when last read (kept: a rollback may delete the state
    /// machine, and its executions with it, before the root cause is asked for).
    pub failure: Option<history::WorkflowFailure>,
}

pub struct Watch<'a> {
    aws: &'a Aws,
    pub stack: String,
    started: Instant,
    /// Epoch seconds when the operation started (events before it are not ours).
    pub start_epoch: f64,
    seen_events: HashSet<String>,
    /// This operation's events, oldest first.
    pub events: Vec<StackEvent>,
    pub state_machines: Vec<String>,
    /// Executions seen running or started during the operation, by ARN.
    pub executions: BTreeMap<String, Execution>,
    pub poll: Duration,
    pub quiet: bool,
}

pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub fn human(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

/// A stack status that CloudFormation will not change by itself any more.
pub fn is_terminal(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

impl<'a> Watch<'a> {
    /// Call before starting the operation: marks the recent events that exist already as seen
    /// (older ones are cut off by timestamp when polling).
    pub async fn new(aws: &'a Aws, stack: &str) -> Watch<'a> {
        let mut w = Watch {
            aws,
            stack: stack.to_string(),
            started: Instant::now(),
            start_epoch: now_epoch(),
            seen_events: HashSet::new(),
            events: Vec::new(),
            state_machines: Vec::new(),
            executions: BTreeMap::new(),
            poll: if aws.is_emulator() {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(5)
            },
            quiet: false,
        };
        if let Ok(existing) = w.fetch_events(Some(w.start_epoch - 120.0)).await {
            w.seen_events.extend(existing.into_iter().map(|e| e.id));
        }
        w
    }

    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            eprintln!("[{:>8}] {line}", human(self.elapsed()));
        }
    }

    /// Newest-first pages until a seen event or one older than the operation.
    async fn fetch_events(&self, stop_before: Option<f64>) -> Result<Vec<StackEvent>, String> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        'pages: for _ in 0..50 {
            let resp = self
                .aws
                .cfn
                .describe_stack_events()
                .stack_name(&self.stack)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| describe(&e))?;
            for e in resp.stack_events() {
                let id = e.event_id().unwrap_or_default().to_string();
                let timestamp = e.timestamp().map(|t| t.as_secs_f64()).unwrap_or(0.0);
                if self.seen_events.contains(&id) || stop_before.is_some_and(|t| timestamp < t) {
                    break 'pages;
                }
                out.push(StackEvent {
                    id,
                    timestamp,
                    logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: e.resource_type().unwrap_or_default().to_string(),
                    status: e
                        .resource_status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    reason: e.resource_status_reason().map(str::to_string),
                    physical_id: e.physical_resource_id().map(str::to_string),
                });
            }
            token = resp.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn poll_events(&mut self) {
        // A little slack for clock skew between this machine and the service.
        let new = match self.fetch_events(Some(self.start_epoch - 60.0)).await {
            Ok(v) => v,
            Err(e) => {
                self.say(&format!("(cannot read stack events: {e})"));
                return;
            }
        };
        let mut new: Vec<StackEvent> = new.into_iter().rev().collect();
        new.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
        for e in new {
            if !self.seen_events.insert(e.id.clone()) {
                continue;
            }
            self.say(&format!(
                "{:<28} {:<30} {:<36} {}",
                e.status,
                e.logical_id,
                e.resource_type,
                e.reason.as_deref().unwrap_or("")
            ));
            self.events.push(e);
        }
    }

    /// The stack's state machine ARNs (physical ids of its AWS::StepFunctions::StateMachine).
    pub async fn refresh_state_machines(&mut self) {
        let mut token = None;
        let mut found = Vec::new();
        loop {
            let Ok(resp) = self
                .aws
                .cfn
                .list_stack_resources()
                .stack_name(&self.stack)
                .set_next_token(token)
                .send()
                .await
            else {
                return;
            };
            for r in resp.stack_resource_summaries() {
                if r.resource_type() == Some("AWS::StepFunctions::StateMachine") {
                    if let Some(arn) = r.physical_resource_id().filter(|a| a.starts_with("arn:")) {
                        found.push(arn.to_string());
                    }
                }
            }
            token = resp.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        for arn in found {
            if !self.state_machines.contains(&arn) {
                self.state_machines.push(arn);
            }
        }
    }

    async fn poll_workflows(&mut self) {
        if self.state_machines.is_empty() || self.executions.values().all(|e| e.status != "RUNNING")
        {
            self.refresh_state_machines().await;
        }
        for machine in self.state_machines.clone() {
            // The newest executions, whatever their status: one that started and ended between
            // two polls is still seen (and its failure read while the machine exists). A machine
            // that cannot be listed (deleted by a rollback) lists nothing.
            let recent = recent_executions(self.aws, &machine)
                .await
                .unwrap_or_default();
            let listed: HashSet<String> = recent.iter().map(|e| e.arn.clone()).collect();
            for mut exec in recent {
                let previous = self.executions.get(&exec.arn).cloned();
                let is_new = previous.is_none();
                if is_new && exec.start < self.start_epoch - 60.0 {
                    continue; // an earlier operation's execution
                }
                if previous.as_ref().is_some_and(|p| p.status != "RUNNING") {
                    continue; // already finished and read
                }
                exec.failure = previous.as_ref().and_then(|p| p.failure.clone());
                if exec.status == "RUNNING" {
                    let newest = newest_events(self.aws, &exec.arn).await;
                    exec.current_state = history::current_state(&newest).map(str::to_string);
                    let changed = previous
                        .as_ref()
                        .is_none_or(|p| p.current_state != exec.current_state);
                    if changed {
                        // Read the whole history now, while it exists (see `Execution::failure`).
                        if let Ok(full) = full_history(self.aws, &exec.arn).await {
                            exec.failure = history::root_cause(&full);
                        }
                        self.say(&format!(
                            "workflow {}/{}: {} (running {})",
                            short_name(&machine),
                            exec.name,
                            exec.current_state.as_deref().unwrap_or("starting"),
                            human(now_epoch() - exec.start)
                        ));
                    }
                } else {
                    // Finished since the last poll (or between two polls).
                    if let Ok(full) = full_history(self.aws, &exec.arn).await {
                        exec.failure = history::root_cause(&full);
                        exec.current_state = history::current_state(&full).map(str::to_string);
                    }
                    self.say(&format!(
                        "workflow {}/{}: {} after {}",
                        short_name(&machine),
                        exec.name,
                        exec.status,
                        human(now_epoch() - exec.start)
                    ));
                }
                self.executions.insert(exec.arn.clone(), exec);
            }
            // Running executions that vanished from the listing: their machine is gone.
            for e in self.executions.values_mut() {
                if e.state_machine_arn == machine
                    && e.status == "RUNNING"
                    && !listed.contains(&e.arn)
                {
                    e.status = "STOPPED".into();
                }
            }
        }
    }

    /// Polls until the stack reaches a terminal status (or `timeout` passes); returns it.
    pub async fn until_done(
        &mut self,
        stack_id: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.poll_events().await;
            self.poll_workflows().await;
            let status = stack_status(self.aws, stack_id).await?;
            if is_terminal(&status) {
                self.poll_events().await;
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "gave up waiting after {}: stack {} is still {status}",
                    human(timeout.as_secs_f64()),
                    self.stack
                ));
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

/// The stack's status; a stack that is gone (looked up by name) reads as DELETE_COMPLETE.
pub async fn stack_status(aws: &Aws, stack: &str) -> Result<String, String> {
    match aws.cfn.describe_stacks().stack_name(stack).send().await {
        Ok(resp) => Ok(resp
            .stacks()
            .first()
            .and_then(|s| s.stack_status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "UNKNOWN".into())),
        Err(e) if super::aws::message(&e).contains("does not exist") => {
            Ok("DELETE_COMPLETE".into())
        }
        Err(e) => Err(format!("DescribeStacks {stack}: {}", describe(&e))),
    }
}

pub fn short_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// Executions of a state machine (all pages), optionally only one status.
pub async fn list_executions(
    aws: &Aws,
    machine: &str,
    status: Option<aws_sdk_sfn::types::ExecutionStatus>,
) -> Result<Vec<Execution>, String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let resp = aws
            .sfn
            .list_executions()
            .state_machine_arn(machine)
            .set_status_filter(status.clone())
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        for e in resp.executions() {
            out.push(Execution {
                arn: e.execution_arn().to_string(),
                name: e.name().to_string(),
                state_machine_arn: machine.to_string(),
                start: e.start_date().as_secs_f64(),
                status: e.status().as_str().to_string(),
                current_state: None,
                failure: None,
            });
        }
        token = resp.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// The newest executions of a state machine (one page), any status.
pub async fn recent_executions(aws: &Aws, machine: &str) -> Result<Vec<Execution>, String> {
    let resp = aws
        .sfn
        .list_executions()
        .state_machine_arn(machine)
        .max_results(100)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(resp
        .executions()
        .iter()
        .map(|e| Execution {
            arn: e.execution_arn().to_string(),
            name: e.name().to_string(),
            state_machine_arn: machine.to_string(),
            start: e.start_date().as_secs_f64(),
            status: e.status().as_str().to_string(),
            current_state: None,
            failure: None,
        })
        .collect())
}

/// The newest events of an execution (enough to find the state it is in).
pub async fn newest_events(aws: &Aws, arn: &str) -> Vec<history::Event> {
    match aws
        .sfn
        .get_execution_history()
        .execution_arn(arn)
        .reverse_order(true)
        .max_results(50)
        .include_execution_data(false)
        .send()
        .await
    {
        Ok(resp) => resp.events().iter().map(history_event).collect(),
        Err(_) => Vec::new(),
    }
}

/// An execution's whole history, oldest first, with data (inputs carry the caught `$.Error`).
pub async fn full_history(aws: &Aws, arn: &str) -> Result<Vec<history::Event>, String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let resp = aws
            .sfn
            .get_execution_history()
            .execution_arn(arn)
            .include_execution_data(true)
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| format!("GetExecutionHistory {arn}: {}", describe(&e)))?;
        out.extend(resp.events().iter().map(history_event));
        token = resp.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}
