//! `synth destroy`: delete the stack, wait with progress, and say what was retained on purpose
//! (the trust anchor secret has `DeletionPolicy: Retain`; a later restore needs it).

use super::aws::{describe, message, Aws, TargetArgs};
use super::rootcause;
use super::watch::{human, Watch};
use super::OutputFormat;
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct DestroyArgs {
    /// The stack to delete.
    #[arg(long = "stack-name", value_name = "NAME")]
    pub stack_name: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// text or json (one JSON object on stdout at the end).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Give up waiting after this many minutes (the deletion keeps going).
    #[arg(long = "timeout-minutes", value_name = "MIN", default_value_t = 120)]
    pub timeout_minutes: u64,
}

/// A resource kept when the stack goes.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Retained {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub stack_name: String,
    /// None when there was no such stack.
    pub status: Option<String>,
    pub elapsed_seconds: f64,
    pub retained: Vec<Retained>,
    pub root_cause: Option<rootcause::RootCause>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(self.status.as_deref(), Some("DELETE_COMPLETE") | None)
    }
}

pub fn run(args: DestroyArgs) -> ExitCode {
    let json_out = args.output == OutputFormat::Json;
    let result = super::runtime().and_then(|rt| {
        rt.block_on(async {
            let aws = Aws::connect(&args.target).await?;
            destroy(
                &aws,
                &args.stack_name,
                Duration::from_secs(args.timeout_minutes * 60),
                false,
            )
            .await
        })
    });
    match result {
        Ok(o) => {
            if json_out {
                println!(
                    "{}",
                    json!({"stack_name": o.stack_name, "status": o.status, "elapsed_seconds": (o.elapsed_seconds * 10.0).round() / 10.0,
                           "retained": o.retained, "root_cause": o.root_cause})
                );
            } else {
                match &o.status {
                    None => println!("{}: no such stack; nothing to delete", o.stack_name),
                    Some(s) => println!("{}: {s} after {}", o.stack_name, human(o.elapsed_seconds)),
                }
                for r in &o.retained {
                    println!(
                        "  retained: {} ({}) {}",
                        r.logical_id,
                        r.resource_type,
                        r.physical_id.as_deref().unwrap_or("")
                    );
                }
                if !o.retained.is_empty() {
                    println!("  (kept on purpose: delete them yourself once nothing needs them)");
                }
                if let Some(rc) = &o.root_cause {
                    println!("root cause: {rc}");
                }
            }
            if o.succeeded() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            if json_out {
                println!(
                    "{}",
                    json!({"stack_name": args.stack_name, "status": null, "error": e})
                );
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resources the template keeps on delete (`DeletionPolicy: Retain`/`RetainExceptOnCreate`),
/// with their physical ids where the stack knows them.
pub fn retained_by_template(
    template: &Value,
    physical: &[(String, String, String)],
) -> Vec<Retained> {
    let mut out = Vec::new();
    let resources = template.get("Resources").and_then(Value::as_object);
    for (id, r) in resources.into_iter().flatten() {
        let policy = r
            .get("DeletionPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Delete");
        if policy == "Retain" || policy == "RetainExceptOnCreate" {
            let known = physical.iter().find(|(l, _, _)| l == id);
            out.push(Retained {
                logical_id: id.clone(),
                resource_type: r
                    .get("Type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                physical_id: known.map(|(_, _, p)| p.clone()).filter(|p| !p.is_empty()),
            });
        }
    }
    out
}

pub async fn destroy(
    aws: &Aws,
    stack_name: &str,
    timeout: Duration,
    quiet: bool,
) -> Result<Outcome, String> {
    let resp = match aws
        .cfn
        .describe_stacks()
        .stack_name(stack_name)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) if message(&e).contains("does not exist") => {
            return Ok(Outcome {
                stack_name: stack_name.to_string(),
                status: None,
                elapsed_seconds: 0.0,
                retained: Vec::new(),
                root_cause: None,
            })
        }
        Err(e) => return Err(format!("DescribeStacks {stack_name}: {}", describe(&e))),
    };
    let stack_id = resp
        .stacks()
        .first()
        .and_then(|s| s.stack_id())
        .unwrap_or(stack_name)
        .to_string();

    // What will be retained: read before the stack (and its template) is gone.
    let template: Value = aws
        .cfn
        .get_template()
        .stack_name(&stack_id)
        .send()
        .await
        .ok()
        .and_then(|t| t.template_body().map(str::to_string))
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or(Value::Null);
    let physical = stack_resources(aws, &stack_id).await;
    let mut retained = retained_by_template(&template, &physical);

    let mut watch = Watch::new(aws, stack_name).await;
    watch.quiet = quiet;
    watch.refresh_state_machines().await;
    if !quiet {
        eprintln!("deleting stack {stack_name} in {}", aws.where_());
    }
    aws.cfn
        .delete_stack()
        .stack_name(&stack_id)
        .send()
        .await
        .map_err(|e| format!("DeleteStack: {}", describe(&e)))?;
    // Poll by id: a deleted stack is only visible by id.
    watch.stack = stack_id.clone();
    let status = watch.until_done(&stack_id, timeout).await?;
    // Resources CloudFormation reports as skipped on delete are retained too.
    for e in &watch.events {
        if e.status == "DELETE_SKIPPED" && !retained.iter().any(|r| r.logical_id == e.logical_id) {
            retained.push(Retained {
                logical_id: e.logical_id.clone(),
                resource_type: e.resource_type.clone(),
                physical_id: e.physical_id.clone(),
            });
        }
    }
    let root_cause = if status == "DELETE_COMPLETE" {
        None
    } else {
        let reason = aws
            .cfn
            .describe_stacks()
            .stack_name(&stack_id)
            .send()
            .await
            .ok()
            .and_then(|r| {
                r.stacks()
                    .first()
                    .and_then(|s| s.stack_status_reason())
                    .map(str::to_string)
            });
        watch.stack = stack_name.to_string();
        rootcause::find(aws, &mut watch, reason).await
    };
    Ok(Outcome {
        stack_name: stack_name.to_string(),
        status: Some(status),
        elapsed_seconds: watch.elapsed(),
        retained,
        root_cause,
    })
}

/// (logical id, type, physical id) of the stack's resources.
pub async fn stack_resources(aws: &Aws, stack: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let Ok(resp) = aws
            .cfn
            .list_stack_resources()
            .stack_name(stack)
            .set_next_token(token)
            .send()
            .await
        else {
            return out;
        };
        for r in resp.stack_resource_summaries() {
            out.push((
                r.logical_resource_id().unwrap_or_default().to_string(),
                r.resource_type().unwrap_or_default().to_string(),
                r.physical_resource_id().unwrap_or_default().to_string(),
            ));
        }
        token = resp.next_token().map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retained_resources_come_from_the_deletion_policy() {
        let template = json!({"Resources": {
            "TrustAnchorSecret": {"Type": "AWS::SecretsManager::Secret", "DeletionPolicy": "Retain"},
            "AdminPassword": {"Type": "AWS::SecretsManager::Secret"},
            "Logs": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Delete"}
        }});
        let physical = vec![(
            "TrustAnchorSecret".to_string(),
            "AWS::SecretsManager::Secret".to_string(),
            "arn:aws:secretsmanager:us-east-1:1:secret:demo/trust-anchor".to_string(),
        )];
        let r = retained_by_template(&template, &physical);
        assert_eq!(
            r,
            vec![Retained {
                logical_id: "TrustAnchorSecret".into(),
                resource_type: "AWS::SecretsManager::Secret".into(),
                physical_id: Some(
                    "arn:aws:secretsmanager:us-east-1:1:secret:demo/trust-anchor".into()
                ),
            }]
        );
    }
}
