//! `synth bench`: deploy the stack into the emulator under time scaling, per configuration, and
//! compare the simulated duration with the critical path of the AWS operations it waits for.
//! Prints one JSON line per configuration on stdout. No timing assertions: it measures.

use super::aws::{describe, Aws, TargetArgs};
use super::critical_path::{critical_path_seconds, Clock, Shape};
use super::deploy::{self, Request};
use super::params::Overrides;
use super::synthesis::{self, AppChoice, ArchChoice};
use super::{destroy, history, http, watch};
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// A running emulator; without it, bench starts emulator/serve on a free port and stops it.
    #[arg(long = "endpoint-url", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Time scale for the emulator bench starts (real seconds per nominal second). Ignored with
    /// --endpoint-url: the running emulator's scale is read from /_emu/clock.
    #[arg(long = "time-scale", value_name = "S", default_value_t = 0.02)]
    pub time_scale: f64,
    /// Configurations as SUBNETSxHSMS_PER_SUBNET, comma-separated.
    #[arg(long, value_name = "CONFIGS", value_delimiter = ',', default_values_t = ["1x1".to_string(), "2x1".to_string(), "3x2".to_string()])]
    pub configs: Vec<String>,
    /// Which example app to deploy.
    #[arg(long, value_enum, default_value_t = AppChoice::Dev)]
    pub app: AppChoice,
    /// Deploy this already synthesized cloud assembly instead of synthesizing.
    #[arg(long, value_name = "DIR")]
    pub assembly: Option<PathBuf>,
    /// Where to synthesize.
    #[arg(long = "synth-dir", value_name = "DIR", default_value = "cdk.out")]
    pub synth_dir: PathBuf,
    /// Show each deployment's live progress on stderr.
    #[arg(long)]
    pub verbose: bool,
}

/// Parses `"3x2"`.
pub fn parse_config(text: &str, key_store: bool) -> Result<Shape, String> {
    let (s, h) = text.trim().split_once(['x', 'X']).ok_or_else(|| {
        format!("bad configuration {text:?}: expected SUBNETSxHSMS_PER_SUBNET, e.g. 2x1")
    })?;
    let subnets: u32 = s
        .parse()
        .map_err(|_| format!("bad configuration {text:?}: {s:?} is not a number"))?;
    let hsms_per_subnet: u32 = h
        .parse()
        .map_err(|_| format!("bad configuration {text:?}: {h:?} is not a number"))?;
    if subnets == 0 || hsms_per_subnet == 0 {
        return Err(format!(
            "bad configuration {text:?}: needs at least one subnet and one HSM"
        ));
    }
    Ok(Shape {
        subnets,
        hsms_per_subnet,
        key_store,
    })
}

pub fn run(args: BenchArgs) -> ExitCode {
    match super::runtime().and_then(|rt| rt.block_on(bench(&args))) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An emulator this process started; stopped (by its own pid) when dropped.
struct Emulator {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Emulator {
    /// SIGTERM first, so the emulator can stop its Lambda sandboxes; SIGKILL after 10 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_script() -> PathBuf {
    std::env::var_os("SYNTH_EMULATOR_SERVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../emulator/serve")))
}

fn start_emulator(time_scale: f64) -> Result<Emulator, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let log = std::env::temp_dir().join(format!("synth-bench-emulator-{port}.log"));
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
    let script = serve_script();
    // `serve` runs `python -m emu`, which needs the emulator directory as working directory.
    let child = Command::new(&script)
        .current_dir(script.parent().unwrap_or(std::path::Path::new(".")))
        .args([
            "--port",
            &port.to_string(),
            "--time-scale",
            &time_scale.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", script.display()))?;
    let mut emu = Emulator {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    };
    eprintln!(
        "started the emulator at {} (log: {})",
        emu.url,
        emu.log.display()
    );
    // First start may create its Python environment: allow minutes.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if http::get_json(&emu.url, "/_emu/clock").is_ok() {
            return Ok(emu);
        }
        if let Ok(Some(status)) = emu.child.try_wait() {
            let tail = std::fs::read_to_string(&emu.log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(20).collect();
            return Err(format!(
                "the emulator exited ({status}) before answering:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the emulator did not answer within 10 minutes (log: {})",
                emu.log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// VPC, one HSM subnet per AZ, and a client subnet, made through the emulator's EC2 API.
struct Network {
    vpc_id: String,
    subnet_ids: Vec<String>,
    client_subnet_id: String,
}

async fn create_network(aws: &Aws, label: &str, subnets: u32) -> Result<Network, String> {
    let azs = aws
        .ec2
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| format!("DescribeAvailabilityZones: {}", describe(&e)))?;
    let mut zones: Vec<String> = azs
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    zones.sort();
    if zones.len() < subnets as usize {
        return Err(format!(
            "{} has only {} AZs; {label} needs {subnets}",
            aws.region,
            zones.len()
        ));
    }
    let tags = |ty: ResourceType, name: String| {
        TagSpecification::builder()
            .resource_type(ty)
            .tags(Tag::builder().key("Name").value(name).build())
            .build()
    };
    let vpc = aws
        .ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .tag_specifications(tags(ResourceType::Vpc, format!("bench-{label}")))
        .send()
        .await
        .map_err(|e| format!("CreateVpc: {}", describe(&e)))?;
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .ok_or("CreateVpc returned no id")?
        .to_string();
    let mut subnet_ids = Vec::new();
    for (i, zone) in zones.iter().take(subnets as usize).enumerate() {
        subnet_ids.push(
            create_subnet(
                aws,
                &vpc_id,
                zone,
                &format!("10.0.{i}.0/24"),
                format!("bench-{label}-hsm-{zone}"),
            )
            .await?,
        );
    }
    let client_subnet_id = create_subnet(
        aws,
        &vpc_id,
        &zones[0],
        "10.0.100.0/24",
        format!("bench-{label}-client"),
    )
    .await?;
    Ok(Network {
        vpc_id,
        subnet_ids,
        client_subnet_id,
    })
}

async fn create_subnet(
    aws: &Aws,
    vpc: &str,
    zone: &str,
    cidr: &str,
    name: String,
) -> Result<String, String> {
    let resp = aws
        .ec2
        .create_subnet()
        .vpc_id(vpc)
        .availability_zone(zone)
        .cidr_block(cidr)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Subnet)
                .tags(Tag::builder().key("Name").value(name).build())
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("CreateSubnet {cidr} in {zone}: {}", describe(&e)))?;
    Ok(resp
        .subnet()
        .and_then(|s| s.subnet_id())
        .ok_or("CreateSubnet returned no id")?
        .to_string())
}

/// Best effort: the stack is gone, so nothing should hold the subnets any more.
async fn delete_network(aws: &Aws, net: &Network) {
    for s in net
        .subnet_ids
        .iter()
        .chain(std::iter::once(&net.client_subnet_id))
    {
        let _ = aws.ec2.delete_subnet().subnet_id(s).send().await;
    }
    let _ = aws.ec2.delete_vpc().vpc_id(&net.vpc_id).send().await;
}

/// The template's names for the network parameters (architecture.md: VpcId, SubnetIds,
/// HsmsPerSubnet, ClientSubnetId).
fn network_overrides(template: &Value, net: &Network, shape: Shape) -> Result<Overrides, String> {
    let declared: Vec<&str> = template
        .get("Parameters")
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut o = Overrides::default();
    let wanted = [
        ("VpcId", net.vpc_id.clone()),
        ("SubnetIds", net.subnet_ids.join(",")),
        ("HsmsPerSubnet", shape.hsms_per_subnet.to_string()),
        ("ClientSubnetId", net.client_subnet_id.clone()),
    ];
    for (name, value) in wanted {
        if !declared.contains(&name) {
            return Err(format!(
                "the template has no parameter {name} (it has: {}); bench cannot place the cluster",
                declared.join(", ")
            ));
        }
        o.set(name, &value);
    }
    Ok(o)
}

/// (transitions, Lambda invocations in tasks) of every execution of the stack's state machines.
/// Prefers the emulator's own transition counts; falls back to the histories.
async fn workflow_counts(aws: &Aws, url: &str, machines: &[String]) -> Result<(u64, u64), String> {
    let mut transitions = 0;
    let mut lambdas = 0;
    let introspected = http::get_json(url, "/_emu/introspect?sections=state_machines").ok();
    for machine in machines {
        let listed = watch::list_executions(aws, machine, None).await?;
        for exec in listed {
            let events = watch::full_history(aws, &exec.arn).await?;
            lambdas += history::lambda_invocations(&events);
            let from_emulator = introspected.as_ref().and_then(|doc| {
                doc.get("state_machines")?
                    .as_array()?
                    .iter()
                    .flat_map(|m| {
                        m.get("executions")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                    })
                    .find(|e| {
                        e.get("executionArn").and_then(Value::as_str) == Some(exec.arn.as_str())
                    })?
                    .get("transitions")?
                    .as_u64()
            });
            transitions += from_emulator.unwrap_or_else(|| history::transitions(&events));
        }
    }
    Ok((transitions, lambdas))
}

async fn bench(args: &BenchArgs) -> Result<bool, String> {
    let key_store = args.app == AppChoice::Production;
    let shapes: Vec<Shape> = args
        .configs
        .iter()
        .map(|c| parse_config(c, key_store))
        .collect::<Result<_, _>>()?;
    let assembly_dir = match &args.assembly {
        Some(d) => d.clone(),
        None => {
            eprintln!(
                "synthesizing the {:?} app ({:?}) into {} ...",
                args.app,
                ArchChoice::host(),
                args.synth_dir.display()
            );
            synthesis::synthesize(args.app, Some(ArchChoice::host()), &args.synth_dir)?;
            args.synth_dir.clone()
        }
    };
    // Kept alive until the end of the benchmark; dropping it stops the emulator.
    let own_emulator;
    let url = match &args.endpoint_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            own_emulator = start_emulator(args.time_scale)?;
            own_emulator.url.clone()
        }
    };
    let clock = Clock::from_json(&http::get_json(&url, "/_emu/clock")?)?;
    eprintln!(
        "emulator time scale {} (1 nominal second = {} real seconds)",
        clock.scale, clock.scale
    );
    let aws = Aws::connect(&TargetArgs {
        endpoint_url: Some(url.clone()),
        region: None,
        profile: None,
    })
    .await?;
    let template = super::assembly::StackArtifact::load(&assembly_dir, "")
        .map(|s| s.template)
        .unwrap_or(Value::Null);

    let mut all_ok = true;
    for shape in shapes {
        let label = shape.label();
        let stack_name = format!("bench-{label}");
        let net = create_network(&aws, &label, shape.subnets).await?;
        let overrides = network_overrides(&template, &net, shape)?;
        eprintln!(
            "{label}: deploying {stack_name} ({} HSMs) ...",
            shape.hsms()
        );
        // Generous bound: four nominal hours, at least ten real minutes.
        let timeout = Duration::from_secs_f64((4.0 * 3600.0 * clock.scale).max(600.0));
        let outcome = deploy::deploy_assembly(
            &aws,
            Request {
                stack_name: stack_name.clone(),
                overrides,
                assembly_dir: assembly_dir.clone(),
                timeout,
                quiet: !args.verbose,
            },
        )
        .await;
        let line = match &outcome {
            Ok(o) => {
                let simulated = o.elapsed_seconds / clock.scale;
                let critical = critical_path_seconds(shape, &clock)?;
                let (transitions, task_lambdas) =
                    workflow_counts(&aws, &url, &o.state_machines).await?;
                // Custom-resource requests invoke the bridge/preflight function once each.
                let requests = custom_resource_requests(&aws, &o.stack_id).await;
                if !o.succeeded() {
                    all_ok = false;
                }
                json!({
                    "config": label,
                    "simulated_seconds": (simulated * 10.0).round() / 10.0,
                    "critical_path_seconds": critical,
                    // Only a completed deployment compares with the critical path.
                    "ratio": o.succeeded().then(|| (simulated / critical * 1000.0).round() / 1000.0),
                    "transitions": transitions,
                    "lambda_invocations": task_lambdas + requests,
                    "status": o.status,
                    "real_seconds": (o.elapsed_seconds * 100.0).round() / 100.0,
                    "time_scale": clock.scale,
                    "root_cause": o.root_cause,
                })
            }
            Err(e) => {
                all_ok = false;
                json!({"config": label, "status": null, "error": e})
            }
        };
        println!("{line}");
        eprintln!("{label}: destroying {stack_name} ...");
        match destroy::destroy(&aws, &stack_name, timeout, !args.verbose).await {
            Ok(d) if d.succeeded() => {}
            Ok(d) => {
                all_ok = false;
                eprintln!("{label}: destroy ended {:?}", d.status);
            }
            Err(e) => {
                all_ok = false;
                eprintln!("{label}: destroy failed: {e}");
            }
        }
        delete_network(&aws, &net).await;
    }
    Ok(all_ok)
}

/// Custom resources that received a request during the stack's life so far (one function
/// invocation each): distinct custom resources with an in-progress event.
async fn custom_resource_requests(aws: &Aws, stack_id: &str) -> u64 {
    let mut seen = std::collections::BTreeSet::new();
    let mut token = None;
    loop {
        let Ok(resp) = aws
            .cfn
            .describe_stack_events()
            .stack_name(stack_id)
            .set_next_token(token)
            .send()
            .await
        else {
            break;
        };
        for e in resp.stack_events() {
            let ty = e.resource_type().unwrap_or_default();
            let status = e.resource_status().map(|s| s.as_str()).unwrap_or_default();
            if (ty.starts_with("Custom::") || ty == "AWS::CloudFormation::CustomResource")
                && status.ends_with("_IN_PROGRESS")
            {
                seen.insert(format!(
                    "{}/{status}",
                    e.logical_resource_id().unwrap_or_default()
                ));
            }
        }
        token = resp.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    seen.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse() {
        assert_eq!(
            parse_config("3x2", false).unwrap(),
            Shape {
                subnets: 3,
                hsms_per_subnet: 2,
                key_store: false
            }
        );
        assert!(parse_config("3", false)
            .unwrap_err()
            .contains("SUBNETSxHSMS_PER_SUBNET"));
        assert!(parse_config("0x1", false).is_err());
        assert!(parse_config("ax1", false)
            .unwrap_err()
            .contains("not a number"));
    }

    #[test]
    fn network_parameters_must_exist_in_the_template() {
        let net = Network {
            vpc_id: "vpc-1".into(),
            subnet_ids: vec!["s1".into(), "s2".into()],
            client_subnet_id: "c".into(),
        };
        let shape = Shape {
            subnets: 2,
            hsms_per_subnet: 1,
            key_store: false,
        };
        let template = serde_json::json!({"Parameters": {"VpcId": {}, "SubnetIds": {}, "HsmsPerSubnet": {}, "ClientSubnetId": {}}});
        let o = network_overrides(&template, &net, shape).unwrap();
        assert_eq!(o.get("SubnetIds"), Some("s1,s2"));
        assert_eq!(o.get("HsmsPerSubnet"), Some("1"));
        let e = network_overrides(
            &serde_json::json!({"Parameters": {"VpcId": {}}}),
            &net,
            shape,
        )
        .unwrap_err();
        assert!(e.contains("no parameter SubnetIds"), "{e}");
    }
}
