//! `synth status`: the stack and what it runs — cluster, HSMs by AZ/IP/state, the client
//! instance, the last backup, and the key store when the stack has one.

use super::aws::{describe, message, Aws, TargetArgs};
use super::destroy::stack_resources;
use super::OutputFormat;
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    /// The stack to show.
    #[arg(long = "stack-name", value_name = "NAME")]
    pub stack_name: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// text or json (one JSON object on stdout).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(args: StatusArgs) -> ExitCode {
    let result = super::runtime().and_then(|rt| {
        rt.block_on(async {
            let aws = Aws::connect(&args.target).await?;
            collect(&aws, &args.stack_name).await
        })
    });
    match result {
        Ok(report) => {
            if args.output == OutputFormat::Json {
                println!("{report}");
            } else {
                print_text(&report);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if args.output == OutputFormat::Json {
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

fn ts(t: Option<&aws_sdk_cloudhsmv2::primitives::DateTime>) -> Value {
    t.and_then(|t| {
        t.fmt(aws_sdk_cloudhsmv2::primitives::DateTimeFormat::DateTime)
            .ok()
    })
    .map(Value::from)
    .unwrap_or(Value::Null)
}

/// Everything `status` shows, as JSON (the text form is printed from it).
pub async fn collect(aws: &Aws, stack_name: &str) -> Result<Value, String> {
    let resp = match aws
        .cfn
        .describe_stacks()
        .stack_name(stack_name)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) if message(&e).contains("does not exist") => {
            return Err(format!(
                "stack {stack_name} does not exist in {}",
                aws.where_()
            ));
        }
        Err(e) => return Err(format!("DescribeStacks {stack_name}: {}", describe(&e))),
    };
    let stack = resp
        .stacks()
        .first()
        .ok_or_else(|| format!("stack {stack_name} not found"))?;
    let outputs: serde_json::Map<String, Value> = stack
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap_or_default().to_string(),
                Value::from(o.output_value().unwrap_or_default()),
            )
        })
        .collect();
    let resources = stack_resources(aws, stack_name).await;
    let by_type = |ty: &str| {
        resources
            .iter()
            .find(|(_, t, p)| t == ty && !p.is_empty())
            .map(|(_, _, p)| p.clone())
    };
    let output = |key: &str| outputs.get(key).and_then(Value::as_str).map(str::to_string);
    // The resource's physical id (its `Ref`) is the cluster ARN; the APIs filter by cluster id.
    let cluster_id = output("ClusterId")
        .or_else(|| by_type("AWS::CloudHSM::Cluster"))
        .map(|id| cluster_id_of(&id));
    let instance_id = output("ClientInstanceId").or_else(|| by_type("AWS::EC2::Instance"));
    let key_store_id = output("KeyStoreId").filter(|k| k.starts_with("cks-"));

    let mut report = json!({
        "stack_name": stack_name,
        "stack_id": stack.stack_id(),
        "status": stack.stack_status().map(|s| s.as_str()),
        "status_reason": stack.stack_status_reason(),
        "outputs": outputs,
        "cluster": null,
        "hsms": [],
        "client_instance": null,
        "last_backup": null,
        "key_store": null,
    });
    if let Some(id) = &cluster_id {
        match cluster(aws, id).await {
            Ok((c, hsms)) => {
                report["cluster"] = c;
                report["hsms"] = hsms;
            }
            Err(e) => report["cluster"] = json!({"cluster_id": id, "error": e}),
        }
        report["last_backup"] = last_backup(aws, id)
            .await
            .unwrap_or_else(|e| json!({"error": e}));
    }
    if let Some(id) = &instance_id {
        report["client_instance"] = instance(aws, id)
            .await
            .unwrap_or_else(|e| json!({"instance_id": id, "error": e}));
    }
    if let Some(id) = &key_store_id {
        report["key_store"] = key_store(aws, id)
            .await
            .unwrap_or_else(|e| json!({"key_store_id": id, "error": e}));
    }
    Ok(report)
}

/// `cluster-…` from a cluster id or ARN (`arn:aws:cloudhsm:<region>:<account>:cluster/cluster-…`).
pub fn cluster_id_of(id_or_arn: &str) -> String {
    id_or_arn
        .rsplit('/')
        .next()
        .unwrap_or(id_or_arn)
        .to_string()
}

async fn cluster(aws: &Aws, id: &str) -> Result<(Value, Value), String> {
    let resp = aws
        .hsm
        .describe_clusters()
        .filters("clusterIds", vec![id.to_string()])
        .send()
        .await
        .map_err(|e| format!("DescribeClusters: {}", describe(&e)))?;
    let c = resp
        .clusters()
        .first()
        .ok_or_else(|| format!("cluster {id} not found"))?;
    let mut hsms: Vec<Value> = c
        .hsms()
        .iter()
        .map(|h| {
            json!({
                "hsm_id": h.hsm_id(),
                "availability_zone": h.availability_zone(),
                "subnet_id": h.subnet_id(),
                "ip": h.eni_ip(),
                "state": h.state().map(|s| s.as_str()),
                "state_message": h.state_message(),
            })
        })
        .collect();
    hsms.sort_by_key(|h| (h["availability_zone"].to_string(), h["ip"].to_string()));
    Ok((
        json!({
            "cluster_id": c.cluster_id(),
            "state": c.state().map(|s| s.as_str()),
            "state_message": c.state_message(),
            "hsm_type": c.hsm_type(),
            "mode": c.mode().map(|m| m.as_str()),
            "vpc_id": c.vpc_id(),
            "security_group": c.security_group(),
        }),
        Value::from(hsms),
    ))
}

async fn last_backup(aws: &Aws, cluster_id: &str) -> Result<Value, String> {
    let resp = aws
        .hsm
        .describe_backups()
        .filters("clusterIds", vec![cluster_id.to_string()])
        .sort_ascending(false)
        .max_results(50)
        .send()
        .await
        .map_err(|e| format!("DescribeBackups: {}", describe(&e)))?;
    // Sort here too: the newest by creation time, whatever order the service used.
    let newest = resp.backups().iter().max_by(|a, b| {
        let t = |x: &aws_sdk_cloudhsmv2::types::Backup| {
            x.create_timestamp().map(|t| t.as_secs_f64()).unwrap_or(0.0)
        };
        t(a).total_cmp(&t(b))
    });
    Ok(match newest {
        None => Value::Null,
        Some(b) => json!({
            "backup_id": b.backup_id(),
            "state": b.backup_state().map(|s| s.as_str()),
            "created": ts(b.create_timestamp()),
            "never_expires": b.never_expires(),
        }),
    })
}

async fn instance(aws: &Aws, id: &str) -> Result<Value, String> {
    let resp = aws
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|e| format!("DescribeInstances: {}", describe(&e)))?;
    let i = resp
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .ok_or_else(|| format!("instance {id} not found"))?;
    Ok(json!({
        "instance_id": i.instance_id(),
        "state": i.state().and_then(|s| s.name()).map(|n| n.as_str()),
        "subnet_id": i.subnet_id(),
        "private_ip": i.private_ip_address(),
    }))
}

async fn key_store(aws: &Aws, id: &str) -> Result<Value, String> {
    let resp = aws
        .kms
        .describe_custom_key_stores()
        .custom_key_store_id(id)
        .send()
        .await
        .map_err(|e| format!("DescribeCustomKeyStores: {}", describe(&e)))?;
    let k = resp
        .custom_key_stores()
        .first()
        .ok_or_else(|| format!("key store {id} not found"))?;
    Ok(json!({
        "key_store_id": k.custom_key_store_id(),
        "name": k.custom_key_store_name(),
        "connection_state": k.connection_state().map(|s| s.as_str()),
        "connection_error_code": k.connection_error_code().map(|c| c.as_str()),
        "cluster_id": k.cloud_hsm_cluster_id(),
    }))
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_text(r: &Value) {
    println!("stack     {}  {}", s(&r["stack_name"]), s(&r["status"]));
    if !r["status_reason"].is_null() {
        println!("          {}", s(&r["status_reason"]));
    }
    if let Some(outputs) = r["outputs"].as_object() {
        for (k, v) in outputs {
            println!("  {k} = {}", s(v));
        }
    }
    let c = &r["cluster"];
    if c.is_object() {
        if c.get("error").is_some() {
            println!(
                "cluster   {}  unavailable: {}",
                s(&c["cluster_id"]),
                s(&c["error"])
            );
        } else {
            println!(
                "cluster   {}  {}  {} {}",
                s(&c["cluster_id"]),
                s(&c["state"]),
                s(&c["hsm_type"]),
                s(&c["mode"])
            );
        }
    }
    for h in r["hsms"].as_array().into_iter().flatten() {
        println!(
            "  hsm     {}  {}  {}  {}",
            s(&h["hsm_id"]),
            s(&h["availability_zone"]),
            s(&h["ip"]),
            s(&h["state"])
        );
    }
    let i = &r["client_instance"];
    if i.is_object() {
        match i.get("error") {
            Some(e) => println!("client    {}  unavailable: {}", s(&i["instance_id"]), s(e)),
            None => println!(
                "client    {}  {}  {}",
                s(&i["instance_id"]),
                s(&i["state"]),
                s(&i["private_ip"])
            ),
        }
    }
    let b = &r["last_backup"];
    if b.is_object() {
        match b.get("error") {
            Some(e) => println!("backup    unavailable: {}", s(e)),
            None => println!(
                "backup    {}  {}  {}",
                s(&b["backup_id"]),
                s(&b["state"]),
                s(&b["created"])
            ),
        }
    } else if c.is_object() {
        println!("backup    none yet");
    }
    let k = &r["key_store"];
    if k.is_object() {
        match k.get("error") {
            Some(e) => println!("key store {}  unavailable: {}", s(&k["key_store_id"]), s(e)),
            None => println!(
                "key store {}  {}  {}{}",
                s(&k["key_store_id"]),
                s(&k["name"]),
                s(&k["connection_state"]),
                if k["connection_error_code"].is_null() {
                    String::new()
                } else {
                    format!(" ({})", s(&k["connection_error_code"]))
                }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_from_arns() {
        assert_eq!(
            cluster_id_of("arn:aws:cloudhsm:us-east-1:123456789012:cluster/cluster-p72qhuupb3z"),
            "cluster-p72qhuupb3z"
        );
        assert_eq!(cluster_id_of("cluster-p72qhuupb3z"), "cluster-p72qhuupb3z");
    }
}
