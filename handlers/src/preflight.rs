//! `preflight`: a synchronous custom resource that checks the inputs before anything billable is
//! created, and answers CloudFormation itself with every problem found and how to fix it.
//!
//! Quotas: the CloudHSM API does not expose account quotas, so the check compares what exists
//! (DescribeClusters) with the documented defaults — 4 clusters and 6 HSMs per Region
//! (aws-behaviour.md 1.4) — or with `ClusterQuota`/`HsmQuota` when the account has raised ones.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tracing::info;

use crate::clients::Clients;
use crate::error::{aws_err, AwsFailure, StepError, StepResult};
use crate::event::{CfnEvent, RequestType};
use crate::respond::{self, Response};

pub const DEFAULT_CLUSTER_QUOTA: u32 = 4;
pub const DEFAULT_HSM_QUOTA: u32 = 6;
pub const HSMS_PER_CLUSTER: u32 = 28;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetFact {
    pub id: String,
    pub vpc: String,
    pub az: String,
    pub free_ips: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub create: bool,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub per_subnet: u32,
    /// HSMs the previous configuration had (Update), used for the quota and IP deltas.
    pub old_per_subnet: Option<u32>,
    pub old_total: Option<u32>,
    pub client_subnet: Option<String>,
    pub key_store: bool,
    pub hsm_type: String,
    pub cluster_quota: u32,
    pub hsm_quota: u32,
}

/// Existing CloudHSM usage in the Region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub clusters: u32,
    pub hsms: u32,
}

pub fn inputs(ev: &CfnEvent<'_>) -> StepResult<Inputs> {
    let p = ev.props();
    let subnet_ids = p.list("SubnetIds")?;
    let per_subnet = p.u32_or("HsmsPerSubnet", 1)?;
    let (old_per_subnet, old_total) = if ev.request_type() == RequestType::Update {
        let o = ev.old_props();
        let per = o.u32_or("HsmsPerSubnet", 1).ok();
        let n = o.list("SubnetIds").map(|l| l.len() as u32).unwrap_or(0);
        (per, per.map(|per| (per * n).max(1)))
    } else {
        (None, None)
    };
    Ok(Inputs {
        create: ev.request_type() == RequestType::Create,
        vpc_id: p.str("VpcId")?,
        subnet_ids,
        per_subnet,
        old_per_subnet,
        old_total,
        client_subnet: p.opt_str("ClientSubnetId"),
        key_store: p.bool_or("KeyStoreEnabled", false)?,
        hsm_type: p
            .opt_str("HsmType")
            .unwrap_or_else(|| "hsm2m.medium".into()),
        cluster_quota: p.u32_or("ClusterQuota", DEFAULT_CLUSTER_QUOTA)?,
        hsm_quota: p.u32_or("HsmQuota", DEFAULT_HSM_QUOTA)?,
    })
}

/// Every problem with the inputs, each with its fix. Empty means go.
pub fn check(inp: &Inputs, subnets: &BTreeMap<String, SubnetFact>, usage: Usage) -> Vec<String> {
    let mut problems = Vec::new();
    if inp.subnet_ids.len() > 10 {
        problems.push(format!(
            "{} subnets given; a cluster takes 1 to 10 (one per Availability Zone)",
            inp.subnet_ids.len()
        ));
    }
    let missing: Vec<&str> = inp
        .subnet_ids
        .iter()
        .filter(|s| !subnets.contains_key(*s))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "subnet(s) {} do not exist in this account and Region; pass existing private subnet ids",
            missing.join(", ")
        ));
    }
    let known: Vec<&SubnetFact> = inp
        .subnet_ids
        .iter()
        .filter_map(|s| subnets.get(s))
        .collect();
    let other_vpc: Vec<String> = known
        .iter()
        .filter(|s| s.vpc != inp.vpc_id)
        .map(|s| format!("{} is in {}", s.id, s.vpc))
        .collect();
    if !other_vpc.is_empty() {
        problems.push(format!(
            "all subnets must be in VPC {} ({}); pick subnets of that VPC",
            inp.vpc_id,
            other_vpc.join(", ")
        ));
    }
    let mut by_az: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &known {
        by_az.entry(s.az.as_str()).or_default().push(s.id.as_str());
    }
    for (az, ids) in &by_az {
        if ids.len() > 1 {
            problems.push(format!(
                "subnets {} are all in {az}; CloudHSM takes one subnet per Availability Zone: keep one of them",
                ids.join(", ")
            ));
        }
    }
    if inp.key_store && (by_az.len() < 2 || inp.per_subnet < 1) {
        problems.push(format!(
            "the KMS custom key store needs at least 2 HSMs in at least 2 Availability Zones; this configuration has \
             {} AZ(s) and HsmsPerSubnet={}: give subnets in 2+ AZs and HsmsPerSubnet >= 1, or disable the key store",
            by_az.len(),
            inp.per_subnet
        ));
    }
    // Free addresses: one per new HSM in each subnet, plus one per subnet for the KMS ENIs.
    let grow = inp
        .per_subnet
        .saturating_sub(inp.old_per_subnet.unwrap_or(0)) as i64;
    for (i, s) in known.iter().enumerate() {
        // The first subnet always holds the first HSM (initialization) on Create.
        let mut need = if inp.create && i == 0 {
            grow.max(1)
        } else {
            grow
        };
        if inp.key_store {
            need += 1;
        }
        if s.free_ips < need {
            problems.push(format!(
                "subnet {} has {} free IP address(es) but needs {need} ({} HSM(s){}); free addresses or use a larger subnet",
                s.id,
                s.free_ips,
                grow.max(if inp.create && i == 0 { 1 } else { 0 }),
                if inp.key_store { " + 1 for the KMS key store" } else { "" }
            ));
        }
    }
    if let Some(cs) = &inp.client_subnet {
        match subnets.get(cs) {
            None => problems.push(format!("client subnet {cs} does not exist; pass an existing subnet id")),
            Some(s) if s.vpc != inp.vpc_id => problems.push(format!(
                "client subnet {cs} is in {}, not {}; the client must reach the HSMs inside the cluster's VPC",
                s.vpc, inp.vpc_id
            )),
            Some(_) => {}
        }
    }
    match inp.hsm_type.as_str() {
        "hsm2m.medium" => {}
        "hsm1.medium" if inp.create => problems.push(
            "HsmType hsm1.medium is at end of support and new clusters cannot use it; use hsm2m.medium".into(),
        ),
        "hsm1.medium" => {}
        other => problems.push(format!("HsmType {other:?} is not a CloudHSM type; use hsm2m.medium")),
    }
    let total = inp.per_subnet * inp.subnet_ids.len() as u32;
    if total > HSMS_PER_CLUSTER {
        problems.push(format!(
            "{total} HSMs requested; a cluster holds at most {HSMS_PER_CLUSTER}: lower HsmsPerSubnet"
        ));
    }
    let quota_note =
        "CloudHSM does not expose quotas through its API, so the documented default is assumed; \
                      if your account has a higher quota, set the stack's quota parameter to it";
    if inp.create && usage.clusters + 1 > inp.cluster_quota {
        problems.push(format!(
            "the Region already has {} CloudHSM cluster(s) and the quota is {}: delete an unused cluster or request \
             a quota increase ({quota_note})",
            usage.clusters, inp.cluster_quota
        ));
    }
    let new_hsms = if inp.create {
        total.max(1)
    } else {
        total.saturating_sub(inp.old_total.unwrap_or(0))
    };
    if new_hsms > 0 && usage.hsms + new_hsms > inp.hsm_quota {
        problems.push(format!(
            "{new_hsms} more HSM(s) would exceed the HSM quota: {} exist in the Region, quota {}; lower HsmsPerSubnet, \
             delete unused HSMs or request a quota increase ({quota_note})",
            usage.hsms, inp.hsm_quota
        ));
    }
    problems
}

async fn subnet_facts(c: &Clients, ids: &[String]) -> StepResult<BTreeMap<String, SubnetFact>> {
    let mut facts = BTreeMap::new();
    // One call per subnet: a batch call fails as a whole when one id does not exist.
    for id in ids {
        match c.ec2.describe_subnets().subnet_ids(id).send().await {
            Ok(o) => {
                for s in o.subnets() {
                    let f = SubnetFact {
                        id: s.subnet_id().unwrap_or_default().to_string(),
                        vpc: s.vpc_id().unwrap_or_default().to_string(),
                        az: s.availability_zone().unwrap_or_default().to_string(),
                        free_ips: s.available_ip_address_count().unwrap_or(0) as i64,
                    };
                    facts.insert(f.id.clone(), f);
                }
            }
            Err(e) => {
                let f = AwsFailure::from_sdk("ec2:DescribeSubnets", &e);
                if f.transient {
                    return Err(StepError::Transient(f.describe()));
                }
                if !f
                    .code
                    .as_deref()
                    .is_some_and(|c| c.starts_with("InvalidSubnetID"))
                {
                    return Err(StepError::InvalidInput(f.describe()));
                }
            }
        }
    }
    Ok(facts)
}

async fn usage(c: &Clients) -> StepResult<Usage> {
    let mut u = Usage::default();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .hsm
            .describe_clusters()
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| aws_err("cloudhsmv2:DescribeClusters", e))?;
        for cl in out.clusters() {
            if cl.state().map(|s| s.as_str()) == Some("DELETED") {
                continue;
            }
            u.clusters += 1;
            u.hsms += cl
                .hsms()
                .iter()
                .filter(|h| h.state().map(|s| s.as_str()) != Some("DELETED"))
                .count() as u32;
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(u)
}

async fn evaluate(c: &Clients, ev: &CfnEvent<'_>) -> StepResult<(Vec<String>, Vec<String>)> {
    let inp = inputs(ev)?;
    let mut ids = inp.subnet_ids.clone();
    if let Some(cs) = &inp.client_subnet {
        if !ids.contains(cs) {
            ids.push(cs.clone());
        }
    }
    let facts = subnet_facts(c, &ids).await?;
    let u = usage(c).await?;
    let mut azs: Vec<String> = inp
        .subnet_ids
        .iter()
        .filter_map(|s| facts.get(s))
        .map(|f| f.az.clone())
        .collect();
    azs.sort();
    azs.dedup();
    Ok((check(&inp, &facts, u), azs))
}

pub async fn handle(c: &Clients, raw: &Value) -> StepResult<Value> {
    let ev = CfnEvent::new(raw)?;
    let physical_id = respond::physical_id(&ev, &Value::Null);
    let resp = if ev.request_type() == RequestType::Delete {
        // Nothing to undo: a check creates nothing.
        Response {
            success: true,
            reason: String::new(),
            physical_id,
            data: Default::default(),
        }
    } else {
        match evaluate(c, &ev).await {
            Ok((problems, _)) if !problems.is_empty() => {
                let numbered: Vec<String> = problems
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("{}) {p}", i + 1))
                    .collect();
                Response {
                    success: false,
                    reason: format!(
                        "Preflight found {} problem(s): {}",
                        problems.len(),
                        numbered.join("; ")
                    ),
                    physical_id,
                    data: Default::default(),
                }
            }
            Ok((_, azs)) => {
                let mut data = serde_json::Map::new();
                data.insert("AvailabilityZones".into(), json!(azs.join(",")));
                Response {
                    success: true,
                    reason: String::new(),
                    physical_id,
                    data,
                }
            }
            Err(e) => Response {
                success: false,
                reason: format!("Preflight could not check the inputs: {}", e.message()),
                physical_id,
                data: Default::default(),
            },
        }
    };
    info!(success = resp.success, "preflight result");
    respond::send(&ev, &resp).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(list: &[(&str, &str, &str, i64)]) -> BTreeMap<String, SubnetFact> {
        list.iter()
            .map(|(id, vpc, az, free)| {
                (
                    id.to_string(),
                    SubnetFact {
                        id: id.to_string(),
                        vpc: vpc.to_string(),
                        az: az.to_string(),
                        free_ips: *free,
                    },
                )
            })
            .collect()
    }

    fn inputs(subnets: &[&str], per: u32, key_store: bool) -> Inputs {
        Inputs {
            create: true,
            vpc_id: "vpc-1".into(),
            subnet_ids: subnets.iter().map(|s| s.to_string()).collect(),
            per_subnet: per,
            old_per_subnet: None,
            old_total: None,
            client_subnet: Some("subnet-c".into()),
            key_store,
            hsm_type: "hsm2m.medium".into(),
            cluster_quota: DEFAULT_CLUSTER_QUOTA,
            hsm_quota: DEFAULT_HSM_QUOTA,
        }
    }

    fn good() -> BTreeMap<String, SubnetFact> {
        facts(&[
            ("subnet-a", "vpc-1", "us-east-1a", 250),
            ("subnet-b", "vpc-1", "us-east-1b", 250),
            ("subnet-c", "vpc-1", "us-east-1a", 250),
        ])
    }

    #[test]
    fn a_good_configuration_passes() {
        assert!(check(
            &inputs(&["subnet-a", "subnet-b"], 1, true),
            &good(),
            Usage::default()
        )
        .is_empty());
    }

    #[test]
    fn subnets_in_one_az_two_vpcs_or_missing_are_reported() {
        let f = facts(&[
            ("subnet-a", "vpc-1", "us-east-1a", 250),
            ("subnet-a2", "vpc-1", "us-east-1a", 250),
            ("subnet-x", "vpc-2", "us-east-1b", 250),
            ("subnet-c", "vpc-1", "us-east-1a", 250),
        ]);
        let p = check(
            &inputs(
                &["subnet-a", "subnet-a2", "subnet-x", "subnet-gone"],
                1,
                false,
            ),
            &f,
            Usage::default(),
        );
        let all = p.join("\n");
        assert!(
            all.contains("subnet-gone") && all.contains("do not exist"),
            "{all}"
        );
        assert!(all.contains("subnet-x is in vpc-2"), "{all}");
        assert!(
            all.contains("subnets subnet-a, subnet-a2 are all in us-east-1a"),
            "{all}"
        );
    }

    #[test]
    fn key_store_needs_two_azs_and_hsms() {
        let p = check(&inputs(&["subnet-a"], 2, true), &good(), Usage::default());
        assert!(p
            .iter()
            .any(|m| m.contains("at least 2 HSMs in at least 2")));
        let p = check(
            &inputs(&["subnet-a", "subnet-b"], 0, true),
            &good(),
            Usage::default(),
        );
        assert!(p.iter().any(|m| m.contains("HsmsPerSubnet=0")));
    }

    #[test]
    fn free_ips_count_hsms_and_the_kms_eni() {
        let f = facts(&[
            ("subnet-a", "vpc-1", "us-east-1a", 2),
            ("subnet-b", "vpc-1", "us-east-1b", 3),
            ("subnet-c", "vpc-1", "us-east-1a", 9),
        ]);
        let p = check(
            &inputs(&["subnet-a", "subnet-b"], 2, true),
            &f,
            Usage::default(),
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("subnet-a has 2 free IP address(es) but needs 3"));
    }

    #[test]
    fn quotas_use_documented_defaults_or_overrides() {
        let i = inputs(&["subnet-a", "subnet-b"], 2, false);
        let p = check(
            &i,
            &good(),
            Usage {
                clusters: 4,
                hsms: 3,
            },
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("quota is 4") && p[0].contains("does not expose quotas"));
        assert!(p[1].contains("4 more HSM(s)") && p[1].contains("3 exist"));
        let raised = Inputs {
            cluster_quota: 10,
            hsm_quota: 20,
            ..i
        };
        assert!(check(
            &raised,
            &good(),
            Usage {
                clusters: 4,
                hsms: 3
            }
        )
        .is_empty());
    }

    #[test]
    fn update_counts_only_added_hsms() {
        let i = Inputs {
            create: false,
            old_per_subnet: Some(1),
            old_total: Some(2),
            ..inputs(&["subnet-a", "subnet-b"], 2, false)
        };
        // 2 more HSMs; 4 exist (ours included): 6 ≤ 6.
        assert!(check(
            &i,
            &good(),
            Usage {
                clusters: 4,
                hsms: 4
            }
        )
        .is_empty());
        assert_eq!(
            check(
                &i,
                &good(),
                Usage {
                    clusters: 4,
                    hsms: 5
                }
            )
            .len(),
            1
        );
    }

    #[test]
    fn hsm_type_is_validated() {
        let i = Inputs {
            hsm_type: "hsm9.huge".into(),
            ..inputs(&["subnet-a"], 1, false)
        };
        assert!(check(&i, &good(), Usage::default())[0].contains("hsm9.huge"));
        let i = Inputs {
            hsm_type: "hsm1.medium".into(),
            ..inputs(&["subnet-a"], 1, false)
        };
        assert!(check(&i, &good(), Usage::default())[0].contains("end of support"));
    }
}
