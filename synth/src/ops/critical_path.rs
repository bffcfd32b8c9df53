//! The shortest time a deployment can take given the emulator's nominal service durations
//! (`GET /_emu/clock`), so the benchmark can say how close the orchestration gets to it.

use serde_json::Value;
use std::collections::BTreeMap;

/// A benchmark configuration: HSM subnets (one per AZ) × HSMs per subnet, key store on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub subnets: u32,
    pub hsms_per_subnet: u32,
    pub key_store: bool,
}

impl Shape {
    pub fn hsms(&self) -> u32 {
        self.subnets * self.hsms_per_subnet
    }

    /// `"2x1"`: subnets × HSMs per subnet.
    pub fn label(&self) -> String {
        format!("{}x{}", self.subnets, self.hsms_per_subnet)
    }
}

/// The emulator clock: the time scale (real seconds per nominal second) and nominal durations.
#[derive(Debug, Clone, PartialEq)]
pub struct Clock {
    pub scale: f64,
    pub durations: BTreeMap<String, f64>,
}

impl Clock {
    /// Parses `GET /_emu/clock`: `{"scale": s, "durations": {"cloudhsm.cluster_create": 240, …}}`.
    pub fn from_json(v: &Value) -> Result<Clock, String> {
        let scale = v
            .get("scale")
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("clock without a numeric \"scale\": {v}"))?;
        let durations = v
            .get("durations")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("clock without \"durations\": {v}"))?
            .iter()
            .filter_map(|(k, d)| d.as_f64().map(|d| (k.clone(), d)))
            .collect();
        Ok(Clock { scale, durations })
    }

    fn get(&self, name: &str) -> Result<f64, String> {
        self.durations
            .get(name)
            .copied()
            .ok_or_else(|| format!("the emulator clock has no duration {name:?}"))
    }
}

/// Critical path in nominal seconds:
///
/// ```text
///   cluster_create                                   CreateCluster → UNINITIALIZED
/// + max(hsm_create + initialize, instance_boot)      first HSM, then InitializeCluster; the client
///                                                    instance boots meanwhile (it needs the
///                                                    cluster's security group, so it starts after
///                                                    cluster_create at the latest)
/// + ssm_command                                      ActivateCluster on the client
/// + [N > 1]  hsm_create + ssm_command                the other N-1 HSMs in parallel, then
///                                                    RefreshClientConfig
/// + [key store]  ssm_command + kms_connect           CreateKmsUser, then ConnectCustomKeyStore
/// ```
///
/// where N = subnets × HSMs per subnet. Lambda, Step Functions and CloudFormation overheads are
/// not in it: they are what the ratio measures, together with polling slack.
pub fn critical_path_seconds(shape: Shape, clock: &Clock) -> Result<f64, String> {
    if shape.hsms() == 0 {
        return Err("a benchmark configuration needs at least one HSM".into());
    }
    let cluster_create = clock.get("cloudhsm.cluster_create")?;
    let hsm_create = clock.get("cloudhsm.hsm_create")?;
    let initialize = clock.get("cloudhsm.initialize")?;
    let instance_boot = clock.get("ec2.instance_boot")?;
    let ssm_command = clock.get("ssm.command")?;
    let mut total = cluster_create + (hsm_create + initialize).max(instance_boot) + ssm_command;
    if shape.hsms() > 1 {
        total += hsm_create + ssm_command;
    }
    if shape.key_store {
        total += ssm_command + clock.get("kms.connect")?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn clock() -> Clock {
        Clock::from_json(&json!({"scale": 0.01, "durations": {
            "cloudhsm.cluster_create": 240.0, "cloudhsm.hsm_create": 480.0,
            "cloudhsm.initialize": 180.0, "ec2.instance_boot": 60.0, "ssm.command": 5.0,
            "kms.connect": 600.0, "cloudhsm.hsm_delete": 180.0
        }}))
        .unwrap()
    }

    fn shape(subnets: u32, hsms_per_subnet: u32) -> Shape {
        Shape {
            subnets,
            hsms_per_subnet,
            key_store: false,
        }
    }

    #[test]
    fn one_hsm_has_no_fleet_phase() {
        // 240 + (480 + 180) + 5
        assert_eq!(critical_path_seconds(shape(1, 1), &clock()).unwrap(), 905.0);
    }

    #[test]
    fn remaining_hsms_are_created_in_parallel() {
        // 905 + 480 + 5, the same for 2 and for 6 HSMs.
        assert_eq!(
            critical_path_seconds(shape(2, 1), &clock()).unwrap(),
            1390.0
        );
        assert_eq!(
            critical_path_seconds(shape(3, 2), &clock()).unwrap(),
            1390.0
        );
    }

    #[test]
    fn key_store_adds_kmsuser_and_connect() {
        let s = Shape {
            subnets: 2,
            hsms_per_subnet: 1,
            key_store: true,
        };
        assert_eq!(
            critical_path_seconds(s, &clock()).unwrap(),
            1390.0 + 5.0 + 600.0
        );
    }

    #[test]
    fn slow_boot_dominates_a_fast_cluster() {
        let mut c = clock();
        c.durations.insert("ec2.instance_boot".into(), 2000.0);
        assert_eq!(
            critical_path_seconds(shape(1, 1), &c).unwrap(),
            240.0 + 2000.0 + 5.0
        );
    }

    #[test]
    fn missing_durations_and_empty_configs_are_errors() {
        let mut c = clock();
        c.durations.remove("cloudhsm.initialize");
        assert!(critical_path_seconds(shape(1, 1), &c)
            .unwrap_err()
            .contains("cloudhsm.initialize"));
        assert!(critical_path_seconds(shape(1, 0), &clock()).is_err());
        assert_eq!(clock().scale, 0.01);
        assert!(Clock::from_json(&json!({"durations": {}})).is_err());
    }
}
