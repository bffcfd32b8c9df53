//! HSM fleet planning: how many HSMs each AZ should have, and what to create or delete.
//!
//! HSMs are grouped into *slots* by ENI: AWS may replace an HSM on its own, giving it a new HSM id
//! but keeping the ENI (aws-behaviour.md 1.3; Terraform provider issue #8648). Counting slots
//! instead of HSM ids means a replacement in progress (the old one DEGRADED, the new one
//! CREATE_IN_PROGRESS on the same ENI) is neither replaced a second time nor counted twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clients::{ClusterView, HsmView};
use crate::error::{StepError, StepResult};

/// Desired HSM count per AZ.
pub type Desired = BTreeMap<String, u32>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateItem {
    pub availability_zone: String,
    pub subnet_id: String,
    /// Create HSMs in this AZ until it has this many live ones (idempotent under retries).
    pub ensure_at_least: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteItem {
    pub hsm_id: String,
    #[serde(default)]
    pub eni_id: Option<String>,
    pub availability_zone: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Plan {
    pub desired: Desired,
    pub total: u32,
    pub creates: Vec<CreateItem>,
    pub deletes: Vec<DeleteItem>,
    /// Why creation is postponed (cluster not ACTIVE yet), if it is.
    #[serde(default)]
    pub deferred: Option<String>,
}

/// HSMs sharing one ENI (or a lone HSM without an ENI yet).
#[derive(Debug, Clone)]
pub struct Slot<'a> {
    pub az: &'a str,
    pub members: Vec<&'a HsmView>,
}

impl Slot<'_> {
    fn has(&self, state: &str) -> bool {
        self.members.iter().any(|h| h.state == state)
    }
    /// ACTIVE or being created: it counts toward the desired number.
    pub fn is_live(&self) -> bool {
        self.has("ACTIVE") || self.has("CREATE_IN_PROGRESS")
    }
    /// Every member is DEGRADED: the slot needs a replacement.
    pub fn is_degraded(&self) -> bool {
        !self.is_live() && self.has("DEGRADED")
    }
    pub fn is_deleting(&self) -> bool {
        !self.is_live() && !self.is_degraded()
    }
    pub fn best_id(&self) -> &str {
        let rank = |s: &str| match s {
            "ACTIVE" => 0,
            "CREATE_IN_PROGRESS" => 1,
            "DEGRADED" => 2,
            _ => 3,
        };
        self.members
            .iter()
            .min_by_key(|h| (rank(&h.state), h.id.clone()))
            .map(|h| h.id.as_str())
            .unwrap_or("")
    }
}

pub fn slots(cluster: &ClusterView) -> Vec<Slot<'_>> {
    let mut by_key: BTreeMap<(String, String), Slot<'_>> = BTreeMap::new();
    for h in cluster.hsms.iter().filter(|h| h.state != "DELETED") {
        let key = match &h.eni_id {
            Some(eni) if !eni.is_empty() => (h.az.clone(), format!("eni:{eni}")),
            _ => (h.az.clone(), format!("hsm:{}", h.id)),
        };
        by_key
            .entry(key)
            .or_insert_with(|| Slot {
                az: &h.az,
                members: Vec::new(),
            })
            .members
            .push(h);
    }
    by_key.into_values().collect()
}

/// Desired count per AZ from the subnets and HsmsPerSubnet, checked against the key store's
/// requirement (≥ 2 HSMs in ≥ 2 AZs; aws-behaviour.md 3.4).
pub fn desired(
    cluster: &ClusterView,
    subnet_ids: &[String],
    per_subnet: u32,
    key_store: bool,
) -> StepResult<Desired> {
    let mut d = Desired::new();
    for s in subnet_ids {
        let az = cluster.az_of_subnet(s).ok_or_else(|| {
            StepError::invalid(format!(
                "subnet {s} is not one of cluster {}'s subnets ({}); HSMs can only be placed in the \
                 cluster's subnets, which are fixed when the cluster is created",
                cluster.id,
                cluster.subnet_mapping.values().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        if d.insert(az.to_string(), per_subnet).is_some() {
            return Err(StepError::invalid(format!(
                "two of the given subnets are in {az}; list one subnet per Availability Zone"
            )));
        }
    }
    if key_store {
        let total: u32 = d.values().sum();
        let azs = d.values().filter(|n| **n > 0).count();
        if total < 2 || azs < 2 {
            return Err(StepError::invalid(format!(
                "the KMS custom key store needs at least 2 HSMs in at least 2 Availability Zones, \
                 but this configuration has {total} HSM(s) in {azs} AZ(s); keep HsmsPerSubnet >= 1 \
                 with subnets in 2 or more AZs, or turn the key store off (delete it) first"
            )));
        }
    }
    Ok(d)
}

/// The AZs to look at: the desired ones, then any other AZ that holds HSMs (to be emptied).
fn azs_in_play<'a>(desired: &'a Desired, all: &[Slot<'a>]) -> Vec<&'a str> {
    let mut azs: Vec<&str> = desired.keys().map(String::as_str).collect();
    for s in all {
        if !azs.contains(&s.az) {
            azs.push(s.az);
        }
    }
    azs
}

pub fn plan(cluster: &ClusterView, desired: Desired) -> Plan {
    let all = slots(cluster);
    let mut creates = Vec::new();
    let mut deletes = Vec::new();

    for az in azs_in_play(&desired, &all) {
        let want = desired.get(az).copied().unwrap_or(0);
        let here: Vec<&Slot<'_>> = all.iter().filter(|s| s.az == az).collect();
        for s in here.iter().filter(|s| s.is_degraded()) {
            for h in &s.members {
                deletes.push(DeleteItem {
                    hsm_id: h.id.clone(),
                    eni_id: h.eni_id.clone(),
                    availability_zone: az.to_string(),
                    reason: "DEGRADED: replaced by a new HSM".into(),
                });
            }
        }
        let mut live: Vec<&Slot<'_>> = here.iter().copied().filter(|s| s.is_live()).collect();
        let n = live.len() as u32;
        if n > want {
            // Remove HSMs still being created first, then the newest ids; keep ACTIVE ones.
            live.sort_by_key(|s| (!s.has("ACTIVE"), s.best_id().to_string()));
            for s in live.iter().rev().take((n - want) as usize) {
                let h = s
                    .members
                    .iter()
                    .find(|h| h.id == s.best_id())
                    .expect("slot member");
                deletes.push(DeleteItem {
                    hsm_id: h.id.clone(),
                    eni_id: h.eni_id.clone(),
                    availability_zone: az.to_string(),
                    reason: format!("{az} has {n} HSM(s), {want} wanted"),
                });
            }
        } else if n < want {
            // One item per AZ: parallel iterations that each "ensure at least k" in the same AZ
            // race (the one for k=2 may create first, and the one for k=1 then sees it and skips).
            creates.push(CreateItem {
                availability_zone: az.to_string(),
                subnet_id: cluster.subnet_mapping.get(az).cloned().unwrap_or_default(),
                ensure_at_least: want,
            });
        }
    }

    let deferred = if !creates.is_empty() && cluster.state != "ACTIVE" {
        let why = format!(
            "cluster {} is {}: HSMs beyond the first can only be added once the cluster is ACTIVE \
             (initialized and activated); the fleet is aligned by the next stack update after activation",
            cluster.id, cluster.state
        );
        creates.clear();
        Some(why)
    } else {
        None
    };
    Plan {
        total: desired.values().sum(),
        desired,
        creates,
        deletes,
        deferred,
    }
}

/// What the fleet wait sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Convergence {
    /// Every AZ has exactly its desired ACTIVE HSMs and nothing is in transition.
    Done,
    /// HSMs are still being created or deleted.
    Waiting,
    /// The plan no longer holds and nothing in flight will fix it: a slot went DEGRADED with no
    /// replacement under way, or an AZ has the wrong count with nothing in transition (an HSM
    /// whose creation failed disappears). Planning again replaces or adds what is missing.
    Replan(String),
}

pub fn convergence(cluster: &ClusterView, desired: &Desired) -> Convergence {
    // Creation deferred (cluster not ACTIVE yet): done once nothing is in transition.
    if plan(cluster, desired.clone()).deferred.is_some() {
        let moving = cluster
            .hsms
            .iter()
            .any(|h| h.state == "CREATE_IN_PROGRESS" || h.state == "DELETE_IN_PROGRESS");
        return if moving {
            Convergence::Waiting
        } else {
            Convergence::Done
        };
    }
    let all = slots(cluster);
    if let Some(bad) = all.iter().find(|s| s.is_degraded()) {
        let h = bad.members[0];
        return Convergence::Replan(format!(
            "HSM {} in {} is DEGRADED (the HSM is unhealthy and cannot serve requests)",
            h.id, h.az
        ));
    }
    let mut waiting = false;
    for az in azs_in_play(desired, &all) {
        let want = desired.get(az).copied().unwrap_or(0);
        let here: Vec<&Slot<'_>> = all.iter().filter(|s| s.az == az).collect();
        let moving = here
            .iter()
            .any(|s| s.is_deleting() || s.has("CREATE_IN_PROGRESS"));
        let active = here.iter().filter(|s| s.has("ACTIVE")).count() as u32;
        if moving {
            waiting = true;
        } else if active != want {
            return Convergence::Replan(format!(
                "{az} has {active} ACTIVE HSM(s), {want} wanted, and none is being created or deleted"
            ));
        }
    }
    if waiting {
        Convergence::Waiting
    } else {
        Convergence::Done
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hsm(id: &str, az: &str, eni: &str, state: &str) -> HsmView {
        HsmView {
            id: id.into(),
            az: az.into(),
            eni_id: if eni.is_empty() {
                None
            } else {
                Some(eni.into())
            },
            eni_ip: None,
            state: state.into(),
        }
    }

    pub(crate) fn cluster(state: &str, hsms: Vec<HsmView>) -> ClusterView {
        ClusterView {
            id: "cluster-abcdefghijk".into(),
            state: state.into(),
            vpc_id: "vpc-1".into(),
            subnet_mapping: [
                ("us-east-1a", "subnet-aaaa1111"),
                ("us-east-1b", "subnet-bbbb2222"),
                ("us-east-1c", "subnet-cccc3333"),
            ]
            .into_iter()
            .map(|(a, s)| (a.to_string(), s.to_string()))
            .collect(),
            hsms,
            ..ClusterView::default()
        }
    }

    fn subnets(n: usize) -> Vec<String> {
        ["subnet-aaaa1111", "subnet-bbbb2222", "subnet-cccc3333"][..n]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn creates_missing_hsms_per_az_with_ensure_counts() {
        let c = cluster(
            "ACTIVE",
            vec![hsm("hsm-a1", "us-east-1a", "eni-1", "ACTIVE")],
        );
        let d = desired(&c, &subnets(3), 2, false).unwrap();
        let p = plan(&c, d);
        assert!(p.deletes.is_empty());
        assert_eq!(p.total, 6);
        let summary: Vec<(String, u32)> = p
            .creates
            .iter()
            .map(|c| (c.availability_zone.clone(), c.ensure_at_least))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("us-east-1a".into(), 2),
                ("us-east-1b".into(), 2),
                ("us-east-1c".into(), 2)
            ]
        );
        assert_eq!(p.creates[1].subnet_id, "subnet-bbbb2222");
    }

    #[test]
    fn aws_side_replacement_on_the_same_eni_creates_nothing() {
        // AWS replaces hsm-old (DEGRADED) with hsm-new on the same ENI.
        let c = cluster(
            "ACTIVE",
            vec![
                hsm("hsm-old", "us-east-1a", "eni-1", "DEGRADED"),
                hsm("hsm-new", "us-east-1a", "eni-1", "CREATE_IN_PROGRESS"),
                hsm("hsm-b", "us-east-1b", "eni-2", "ACTIVE"),
            ],
        );
        let d = desired(&c, &subnets(2), 1, true).unwrap();
        let p = plan(&c, d.clone());
        assert!(p.creates.is_empty(), "{p:?}");
        assert!(p.deletes.is_empty(), "{p:?}");
        // Still converging while the replacement is being created, never failing.
        assert_eq!(convergence(&c, &d), Convergence::Waiting);
        // Replacement finished: new id, same ENI, converged.
        let c = cluster(
            "ACTIVE",
            vec![
                hsm("hsm-new", "us-east-1a", "eni-1", "ACTIVE"),
                hsm("hsm-b", "us-east-1b", "eni-2", "ACTIVE"),
            ],
        );
        assert!(plan(&c, d.clone()).creates.is_empty());
        assert_eq!(convergence(&c, &d), Convergence::Done);
    }

    #[test]
    fn degraded_hsm_is_deleted_and_replaced() {
        let c = cluster(
            "ACTIVE",
            vec![
                hsm("hsm-a", "us-east-1a", "eni-1", "DEGRADED"),
                hsm("hsm-b", "us-east-1b", "eni-2", "ACTIVE"),
            ],
        );
        let d = desired(&c, &subnets(2), 1, false).unwrap();
        let p = plan(&c, d.clone());
        assert_eq!(p.deletes.len(), 1);
        assert_eq!(p.deletes[0].hsm_id, "hsm-a");
        assert_eq!(p.creates.len(), 1);
        assert_eq!(p.creates[0].availability_zone, "us-east-1a");
        assert!(matches!(convergence(&c, &d), Convergence::Replan(m) if m.contains("hsm-a")));
    }

    #[test]
    fn extras_are_deleted_keeping_active_ones_and_zero_deletes_all() {
        let c = cluster(
            "ACTIVE",
            vec![
                hsm("hsm-a1", "us-east-1a", "eni-1", "ACTIVE"),
                hsm("hsm-a2", "us-east-1a", "eni-2", "CREATE_IN_PROGRESS"),
                hsm("hsm-a3", "us-east-1a", "eni-3", "ACTIVE"),
                hsm("hsm-c1", "us-east-1c", "eni-4", "ACTIVE"),
            ],
        );
        let p = plan(&c, desired(&c, &subnets(1), 1, false).unwrap());
        let ids: Vec<&str> = p.deletes.iter().map(|d| d.hsm_id.as_str()).collect();
        // keeps hsm-a1 (ACTIVE, lowest id); removes the one being created first; the AZ that is
        // no longer listed loses its HSM.
        assert_eq!(ids, vec!["hsm-a2", "hsm-a3", "hsm-c1"]);
        assert!(p.creates.is_empty());

        let p0 = plan(&c, desired(&c, &subnets(3), 0, false).unwrap());
        assert_eq!(p0.deletes.len(), 4);
        assert_eq!(p0.total, 0);
    }

    #[test]
    fn key_store_needs_two_hsms_in_two_azs() {
        let c = cluster("ACTIVE", vec![]);
        assert!(desired(&c, &subnets(2), 1, true).is_ok());
        for (n, per) in [(1, 2), (2, 0), (1, 1)] {
            let e = desired(&c, &subnets(n), per, true).unwrap_err();
            assert!(
                matches!(e, StepError::InvalidInput(m) if m.contains("at least 2 HSMs in at least 2"))
            );
        }
        assert!(desired(&c, &subnets(2), 0, false).is_ok());
    }

    #[test]
    fn unknown_subnet_is_invalid_input() {
        let c = cluster("ACTIVE", vec![]);
        let e = desired(&c, &["subnet-ffff9999".to_string()], 1, false).unwrap_err();
        assert!(matches!(e, StepError::InvalidInput(m) if m.contains("subnet-ffff9999")));
    }

    #[test]
    fn creation_is_deferred_until_the_cluster_is_active() {
        let c = cluster(
            "UNINITIALIZED",
            vec![hsm("hsm-a1", "us-east-1a", "eni-1", "ACTIVE")],
        );
        let d = desired(&c, &subnets(2), 1, false).unwrap();
        let p = plan(&c, d.clone());
        assert!(p.creates.is_empty());
        assert!(p.deferred.unwrap().contains("UNINITIALIZED"));
        // The wait is done once nothing is in transition (the shortfall is not re-planned).
        assert_eq!(convergence(&c, &d), Convergence::Done);
        let c = cluster(
            "UNINITIALIZED",
            vec![hsm("hsm-a1", "us-east-1a", "eni-1", "CREATE_IN_PROGRESS")],
        );
        assert_eq!(convergence(&c, &d), Convergence::Waiting);
    }

    #[test]
    fn convergence_requires_exact_active_counts_and_replans_a_stalled_shortfall() {
        let d = desired(&cluster("ACTIVE", vec![]), &subnets(2), 1, false).unwrap();
        // An HSM whose creation failed is gone: nothing will fill us-east-1b without a new plan.
        let c = cluster(
            "ACTIVE",
            vec![hsm("hsm-a", "us-east-1a", "eni-1", "ACTIVE")],
        );
        assert!(
            matches!(convergence(&c, &d), Convergence::Replan(m) if m.contains("us-east-1b has 0"))
        );
        let c = cluster(
            "ACTIVE",
            vec![
                hsm("hsm-a", "us-east-1a", "eni-1", "ACTIVE"),
                hsm("hsm-b", "us-east-1b", "", "CREATE_IN_PROGRESS"),
            ],
        );
        assert_eq!(convergence(&c, &d), Convergence::Waiting);
        let c = cluster(
            "ACTIVE",
            vec![
                hsm("hsm-a", "us-east-1a", "eni-1", "ACTIVE"),
                hsm("hsm-b", "us-east-1b", "eni-2", "ACTIVE"),
                hsm("hsm-x", "us-east-1c", "eni-3", "DELETE_IN_PROGRESS"),
            ],
        );
        assert_eq!(convergence(&c, &d), Convergence::Waiting);
        let c = cluster(
            "ACTIVE",
            vec![
                hsm("hsm-a", "us-east-1a", "eni-1", "ACTIVE"),
                hsm("hsm-b", "us-east-1b", "eni-2", "ACTIVE"),
            ],
        );
        assert_eq!(convergence(&c, &d), Convergence::Done);
        // An extra ACTIVE HSM (added outside the stack) is also re-planned (deleted).
        let c = cluster(
            "ACTIVE",
            vec![
                hsm("hsm-a", "us-east-1a", "eni-1", "ACTIVE"),
                hsm("hsm-b", "us-east-1b", "eni-2", "ACTIVE"),
                hsm("hsm-c", "us-east-1b", "eni-3", "ACTIVE"),
            ],
        );
        assert!(
            matches!(convergence(&c, &d), Convergence::Replan(m) if m.contains("us-east-1b has 2"))
        );
    }
}
