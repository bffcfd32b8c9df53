//! `synth deploy`: synthesize, publish the assets, create or update the stack, wait with live
//! progress, and report the root cause when the stack does not end complete.

use super::assembly::{self, StackArtifact};
use super::aws::{describe, message, Aws, TargetArgs};
use super::params::{self, Operation, Overrides};
use super::rootcause::{self, RootCause};
use super::synthesis::{self, AppChoice, ArchChoice};
use super::watch::{human, Watch};
use super::OutputFormat;
use aws_sdk_cloudformation::types::{Capability, Parameter, Tag};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct DeployArgs {
    /// The CloudFormation stack to create or update.
    #[arg(long = "stack-name", value_name = "NAME")]
    pub stack_name: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Template parameters, Key=Value each; list values comma-separated (SubnetIds=subnet-1,subnet-2).
    #[arg(long = "parameter-overrides", value_name = "KEY=VALUE", num_args = 1..)]
    pub parameter_overrides: Vec<String>,
    /// text (progress and a summary) or json (one JSON object on stdout at the end).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Which example app to synthesize.
    #[arg(long, value_enum, default_value_t = AppChoice::Dev)]
    pub app: AppChoice,
    /// Lambda architecture (default: the host's with --endpoint-url, else the app's default).
    #[arg(long, value_enum)]
    pub arch: Option<ArchChoice>,
    /// Deploy this already synthesized cloud assembly instead of synthesizing.
    #[arg(long, value_name = "DIR")]
    pub assembly: Option<PathBuf>,
    /// Where to synthesize.
    #[arg(long = "synth-dir", value_name = "DIR", default_value = "cdk.out")]
    pub synth_dir: PathBuf,
    /// Give up waiting after this many minutes (the stack keeps going).
    #[arg(long = "timeout-minutes", value_name = "MIN", default_value_t = 180)]
    pub timeout_minutes: u64,
}

/// How a deployment ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub stack_name: String,
    pub stack_id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub no_changes: bool,
    pub outputs: Vec<(String, String)>,
    pub elapsed_seconds: f64,
    pub root_cause: Option<RootCause>,
    /// Start (epoch seconds) of the operation, for finding its executions afterwards.
    pub started_epoch: f64,
    pub state_machines: Vec<String>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.no_changes || self.status == "CREATE_COMPLETE" || self.status == "UPDATE_COMPLETE"
    }

    pub fn to_json(&self) -> Value {
        json!({
            "stack_name": self.stack_name,
            "stack_id": self.stack_id,
            "status": self.status,
            "status_reason": self.status_reason,
            "no_changes": self.no_changes,
            "outputs": self.outputs.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
            "elapsed_seconds": (self.elapsed_seconds * 10.0).round() / 10.0,
            "root_cause": self.root_cause,
        })
    }
}

/// What `deploy_assembly` needs besides the connection.
pub struct Request {
    pub stack_name: String,
    pub overrides: Overrides,
    pub assembly_dir: PathBuf,
    pub timeout: Duration,
    pub quiet: bool,
}

pub fn run(args: DeployArgs) -> ExitCode {
    let json_out = args.output == OutputFormat::Json;
    let started = std::time::Instant::now();
    let result = super::runtime().and_then(|rt| rt.block_on(run_async(&args)));
    match result {
        Ok(outcome) => {
            if json_out {
                println!("{}", outcome.to_json());
            } else {
                print_summary(&outcome);
            }
            if outcome.succeeded() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            if json_out {
                println!(
                    "{}",
                    json!({"stack_name": args.stack_name, "status": null, "error": e,
                           "elapsed_seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                           "outputs": {}, "root_cause": null})
                );
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(args: &DeployArgs) -> Result<Outcome, String> {
    // Bad overrides fail before anything else happens.
    let overrides = params::parse_overrides(&args.parameter_overrides)?;
    let assembly_dir = match &args.assembly {
        Some(dir) => dir.clone(),
        None => {
            let arch = args.arch.or_else(|| {
                args.target
                    .endpoint_url
                    .as_ref()
                    .map(|_| ArchChoice::host())
            });
            eprintln!(
                "synthesizing the {:?} app into {} ...",
                args.app,
                args.synth_dir.display()
            );
            synthesis::synthesize(args.app, arch, &args.synth_dir)?;
            args.synth_dir.clone()
        }
    };
    let aws = Aws::connect(&args.target).await?;
    deploy_assembly(
        &aws,
        Request {
            stack_name: args.stack_name.clone(),
            overrides,
            assembly_dir,
            timeout: Duration::from_secs(args.timeout_minutes * 60),
            quiet: false,
        },
    )
    .await
}

fn print_summary(o: &Outcome) {
    if o.no_changes {
        println!(
            "{}: no changes (No updates are to be performed); the stack is {}",
            o.stack_name, o.status
        );
    } else {
        println!(
            "{}: {} after {}",
            o.stack_name,
            o.status,
            human(o.elapsed_seconds)
        );
    }
    if let Some(reason) = &o.status_reason {
        if !o.succeeded() {
            println!("  stack reason: {reason}");
        }
    }
    for (k, v) in &o.outputs {
        println!("  {k} = {v}");
    }
    if let Some(rc) = &o.root_cause {
        println!("root cause: {rc}");
    }
}

struct Existing {
    status: String,
    parameter_keys: Vec<String>,
}

async fn existing_stack(aws: &Aws, name: &str) -> Result<Option<Existing>, String> {
    match aws.cfn.describe_stacks().stack_name(name).send().await {
        Ok(resp) => Ok(resp.stacks().first().map(|s| Existing {
            status: s
                .stack_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            parameter_keys: s
                .parameters()
                .iter()
                .filter_map(|p| p.parameter_key().map(str::to_string))
                .collect(),
        })),
        Err(e) if message(&e).contains("does not exist") => Ok(None),
        Err(e) => Err(format!("DescribeStacks {name}: {}", describe(&e))),
    }
}

/// Deploys an assembly and waits. `Err` means nothing was started (bad input, missing bootstrap,
/// an API refusal); a stack that ends badly is an `Ok(Outcome)` with its root cause.
pub async fn deploy_assembly(aws: &Aws, req: Request) -> Result<Outcome, String> {
    let say = |line: String| {
        if !req.quiet {
            eprintln!("{line}");
        }
    };
    let stack = StackArtifact::load(&req.assembly_dir, &req.stack_name)?;
    let mut existing = existing_stack(aws, &req.stack_name).await?;
    if let Some(ex) = &existing {
        if ex.status.ends_with("_IN_PROGRESS") {
            return Err(format!(
                "stack {} is busy ({}); wait until it finishes, then deploy again",
                req.stack_name, ex.status
            ));
        }
        if ex.status == "ROLLBACK_COMPLETE" {
            // A first create that rolled back can only be deleted, never updated (CDK does the same).
            say(format!(
                "stack {} is {} (its first create failed and rolled back): deleting it before creating it again",
                req.stack_name, ex.status
            ));
            let mut w = Watch::new(aws, &req.stack_name).await;
            w.quiet = req.quiet;
            let id = stack_id(aws, &req.stack_name).await?;
            aws.cfn
                .delete_stack()
                .stack_name(&id)
                .send()
                .await
                .map_err(|e| format!("DeleteStack: {}", describe(&e)))?;
            let status = w.until_done(&id, req.timeout).await?;
            if status != "DELETE_COMPLETE" {
                return Err(format!("could not delete the rolled-back stack: {status}"));
            }
            existing = None;
        }
    }
    let op = if existing.is_some() {
        Operation::Update
    } else {
        Operation::Create
    };
    params::validate(&req.overrides, &stack.template, op)?;

    let account = aws.account_id().await?;
    let mut checked_buckets = std::collections::BTreeSet::new();
    if let Some(manifest) = &stack.asset_manifest {
        for asset in assembly::file_assets(manifest, &account, &aws.region)? {
            let bytes = assembly::asset_bytes(&asset)?;
            for d in &asset.destinations {
                if checked_buckets.insert(d.bucket.clone()) {
                    assembly::ensure_bucket(aws, &d.bucket, &account).await?;
                }
                let uploaded =
                    assembly::put_if_missing(aws, &d.bucket, &d.key, bytes.clone()).await?;
                say(format!(
                    "asset {} → s3://{}/{} ({})",
                    short(&asset.id),
                    d.bucket,
                    d.key,
                    if uploaded {
                        format!("uploaded {} bytes", bytes.len())
                    } else {
                        "already there".into()
                    }
                ));
            }
        }
    }

    // Template: the published template asset, inline, or uploaded when too large to inline.
    let body = serde_json::to_string(&stack.template).map_err(|e| e.to_string())?;
    let template_url = if let Some(url) = stack.template_asset_url() {
        let url = assembly::substitute(url, &account, &aws.region);
        let (bucket, key) = assembly::split_s3_url(&url)
            .ok_or_else(|| format!("bad stackTemplateAssetObjectUrl {url}"))?;
        Some(assembly::template_url(&aws.region, bucket, key))
    } else if body.len() > assembly::TEMPLATE_BODY_LIMIT {
        let bucket = assembly::bootstrap_bucket(&account, &aws.region);
        if checked_buckets.insert(bucket.clone()) {
            assembly::ensure_bucket(aws, &bucket, &account).await?;
        }
        let hash: String = Sha256::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = format!("cdk/{}/{hash}.json", req.stack_name);
        assembly::put_if_missing(aws, &bucket, &key, body.clone().into_bytes()).await?;
        say(format!(
            "template ({} bytes) → s3://{bucket}/{key}",
            body.len()
        ));
        Some(assembly::template_url(&aws.region, &bucket, &key))
    } else {
        None
    };

    let parameters = cfn_parameters(&stack, &req.overrides, existing.as_ref());
    let tags: Vec<Tag> = stack
        .tags()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let capabilities = vec![
        Capability::CapabilityIam,
        Capability::CapabilityNamedIam,
        Capability::CapabilityAutoExpand,
    ];

    let mut watch = Watch::new(aws, &req.stack_name).await;
    watch.quiet = req.quiet;
    let stack_id = match op {
        Operation::Create => {
            say(format!(
                "creating stack {} in {}",
                req.stack_name,
                aws.where_()
            ));
            let mut call = aws
                .cfn
                .create_stack()
                .stack_name(&req.stack_name)
                .set_parameters(Some(parameters))
                .set_capabilities(Some(capabilities))
                .set_tags(Some(tags));
            call = match &template_url {
                Some(url) => call.template_url(url),
                None => call.template_body(&body),
            };
            let resp = call
                .send()
                .await
                .map_err(|e| format!("CreateStack: {}", describe(&e)))?;
            resp.stack_id()
                .map(str::to_string)
                .unwrap_or_else(|| req.stack_name.clone())
        }
        Operation::Update => {
            say(format!(
                "updating stack {} in {}",
                req.stack_name,
                aws.where_()
            ));
            let mut call = aws
                .cfn
                .update_stack()
                .stack_name(&req.stack_name)
                .set_parameters(Some(parameters))
                .set_capabilities(Some(capabilities))
                .set_tags(Some(tags));
            call = match &template_url {
                Some(url) => call.template_url(url),
                None => call.template_body(&body),
            };
            match call.send().await {
                Ok(resp) => resp
                    .stack_id()
                    .map(str::to_string)
                    .unwrap_or_else(|| req.stack_name.clone()),
                Err(e) if message(&e).contains("No updates are to be performed") => {
                    let (status, reason, outputs) = stack_summary(aws, &req.stack_name).await?;
                    return Ok(Outcome {
                        stack_name: req.stack_name.clone(),
                        stack_id: stack_id(aws, &req.stack_name).await?,
                        status,
                        status_reason: reason,
                        no_changes: true,
                        outputs,
                        elapsed_seconds: watch.elapsed(),
                        root_cause: None,
                        started_epoch: watch.start_epoch,
                        state_machines: Vec::new(),
                    });
                }
                Err(e) => return Err(format!("UpdateStack: {}", describe(&e))),
            }
        }
    };

    let status = watch.until_done(&stack_id, req.timeout).await?;
    let elapsed = watch.elapsed();
    let (_, reason, outputs) = stack_summary(aws, &stack_id).await?;
    let ok = status == "CREATE_COMPLETE" || status == "UPDATE_COMPLETE";
    let root_cause = if ok {
        None
    } else {
        rootcause::find(aws, &mut watch, reason.clone()).await
    };
    watch.refresh_state_machines().await;
    Ok(Outcome {
        stack_name: req.stack_name,
        stack_id,
        status,
        status_reason: reason,
        no_changes: false,
        outputs,
        elapsed_seconds: elapsed,
        root_cause,
        started_epoch: watch.start_epoch,
        state_machines: watch.state_machines.clone(),
    })
}

/// Assembly parameters, then overrides; on update every other template parameter the stack
/// already has keeps its previous value (what `aws cloudformation deploy` does).
fn cfn_parameters(
    stack: &StackArtifact,
    overrides: &Overrides,
    existing: Option<&Existing>,
) -> Vec<Parameter> {
    let mut values: Vec<(String, String)> = stack.parameters();
    for (k, v) in &overrides.0 {
        values.retain(|(key, _)| key != k);
        values.push((k.clone(), v.clone()));
    }
    let mut out: Vec<Parameter> = values
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect();
    if let Some(ex) = existing {
        let declared = stack.template.get("Parameters").and_then(Value::as_object);
        for key in declared.into_iter().flat_map(|m| m.keys()) {
            if !values.iter().any(|(k, _)| k == key) && ex.parameter_keys.contains(key) {
                out.push(
                    Parameter::builder()
                        .parameter_key(key)
                        .use_previous_value(true)
                        .build(),
                );
            }
        }
    }
    out
}

async fn stack_id(aws: &Aws, name: &str) -> Result<String, String> {
    let resp = aws
        .cfn
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| format!("DescribeStacks {name}: {}", describe(&e)))?;
    Ok(resp
        .stacks()
        .first()
        .and_then(|s| s.stack_id())
        .unwrap_or(name)
        .to_string())
}

/// (status, reason, outputs) of a stack by name or id.
pub async fn stack_summary(
    aws: &Aws,
    stack: &str,
) -> Result<(String, Option<String>, Vec<(String, String)>), String> {
    let resp = aws
        .cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| format!("DescribeStacks {stack}: {}", describe(&e)))?;
    let s = resp
        .stacks()
        .first()
        .ok_or_else(|| format!("stack {stack} not found"))?;
    let outputs = s
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap_or_default().to_string(),
                o.output_value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    Ok((
        s.stack_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        s.stack_status_reason().map(str::to_string),
        outputs,
    ))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
