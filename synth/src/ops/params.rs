//! `--parameter-overrides K=V ...`, parsed the way the AWS CLI takes them (`aws cloudformation
//! deploy`): one `Key=Value` per argument, split at the first `=`, list values comma-separated
//! (`SubnetIds=subnet-1,subnet-2`). Checked against the template's `Parameters` before anything
//! is created, so a typo fails in a second with the list of valid names instead of after a
//! CloudFormation round trip.

use serde_json::Value;

/// Parameter overrides in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides(pub Vec<(String, String)>);

impl Overrides {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// Adds or replaces a value (used by `bench`, which fills in the VPC it created).
    pub fn set(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.0.push((key.to_string(), value.to_string())),
        }
    }
}

const HINT: &str =
    "expected Key=Value, list values comma-separated (e.g. SubnetIds=subnet-1,subnet-2)";

/// Parses `K=V` arguments. Keys are CloudFormation parameter names (alphanumeric, ≤ 255).
pub fn parse_overrides(args: &[String]) -> Result<Overrides, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(format!("bad parameter override {arg:?}: {HINT}"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!(
                "bad parameter override {arg:?}: the name before '=' is empty; {HINT}"
            ));
        }
        if key.len() > 255 || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "bad parameter override {arg:?}: parameter names are alphanumeric (A-Z, a-z, 0-9), got {key:?}"
            ));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(format!(
                "parameter {key} is given twice in --parameter-overrides"
            ));
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(Overrides(out))
}

/// How a deploy treats parameters that are not overridden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Parameters without a default must be given.
    Create,
    /// Parameters not given keep their previous value.
    Update,
}

/// Checks overrides against the template's `Parameters`: unknown names, values outside
/// `AllowedValues`, numbers that are not numbers or outside `MinValue`/`MaxValue`, empty list
/// elements, and (on create) parameters without a default that are missing. `AllowedPattern` is
/// left to CloudFormation (no regex engine here).
pub fn validate(overrides: &Overrides, template: &Value, op: Operation) -> Result<(), String> {
    let empty = serde_json::Map::new();
    let params = template
        .get("Parameters")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut errors = Vec::new();
    for (key, value) in &overrides.0 {
        let Some(spec) = params.get(key) else {
            let mut known: Vec<&str> = params.keys().map(String::as_str).collect();
            known.sort_unstable();
            errors.push(format!(
                "parameter {key} does not exist in the template (parameters: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
            continue;
        };
        if let Err(e) = check_value(key, value, spec) {
            errors.push(e);
        }
    }
    if op == Operation::Create {
        let mut names: Vec<&String> = params.keys().collect();
        names.sort_unstable();
        for name in names {
            let spec = &params[name];
            if spec.get("Default").is_none() && overrides.get(name).is_none() {
                errors.push(format!("parameter {name} has no default: give it with --parameter-overrides {name}=..."));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn check_value(key: &str, value: &str, spec: &Value) -> Result<(), String> {
    let ty = spec.get("Type").and_then(Value::as_str).unwrap_or("String");
    let is_list = ty == "CommaDelimitedList" || ty.starts_with("List<");
    if is_list && !value.is_empty() && value.split(',').any(|v| v.trim().is_empty()) {
        return Err(format!(
            "parameter {key} ({ty}): empty element in {value:?}; separate list values with single commas"
        ));
    }
    if ty == "Number" || ty == "List<Number>" {
        for v in value.split(',') {
            let n: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("parameter {key} ({ty}): {v:?} is not a number"))?;
            if let Some(min) = spec.get("MinValue").and_then(number) {
                if n < min {
                    return Err(format!("parameter {key}: {v} is below the minimum {min}"));
                }
            }
            if let Some(max) = spec.get("MaxValue").and_then(number) {
                if n > max {
                    return Err(format!("parameter {key}: {v} is above the maximum {max}"));
                }
            }
        }
    }
    if let Some(allowed) = spec.get("AllowedValues").and_then(Value::as_array) {
        let allowed: Vec<String> = allowed.iter().map(scalar_string).collect();
        let values: Vec<&str> = if is_list {
            value.split(',').map(str::trim).collect()
        } else {
            vec![value]
        };
        for v in values {
            if !allowed.iter().any(|a| a == v) {
                return Err(format!(
                    "parameter {key}: {v:?} is not allowed (allowed: {})",
                    allowed.join(", ")
                ));
            }
        }
    }
    if let Some(len) = spec.get("MaxLength").and_then(number) {
        if (value.chars().count() as f64) > len {
            return Err(format!(
                "parameter {key}: value longer than {len} characters"
            ));
        }
    }
    if let Some(len) = spec.get("MinLength").and_then(number) {
        if (value.chars().count() as f64) < len {
            return Err(format!(
                "parameter {key}: value shorter than {len} characters"
            ));
        }
    }
    Ok(())
}

/// CloudFormation accepts numbers and numeric strings for `MinValue` etc.
fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_pairs_lists_and_values_with_equals() {
        let o = parse_overrides(&args(&[
            "HsmsPerSubnet=2",
            "SubnetIds=subnet-1,subnet-2,subnet-3",
            "Note=a=b",
            "Empty=",
        ]))
        .unwrap();
        assert_eq!(o.get("HsmsPerSubnet"), Some("2"));
        assert_eq!(o.get("SubnetIds"), Some("subnet-1,subnet-2,subnet-3"));
        assert_eq!(o.get("Note"), Some("a=b"));
        assert_eq!(o.get("Empty"), Some(""));
        assert_eq!(
            o.keys().collect::<Vec<_>>(),
            ["HsmsPerSubnet", "SubnetIds", "Note", "Empty"]
        );
    }

    #[test]
    fn rejects_bad_input_with_a_clear_message() {
        let e = parse_overrides(&args(&["HsmsPerSubnet"])).unwrap_err();
        assert!(
            e.contains("\"HsmsPerSubnet\"") && e.contains("Key=Value"),
            "{e}"
        );
        let e = parse_overrides(&args(&["=2"])).unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let e = parse_overrides(&args(&["Hsms-Per=2"])).unwrap_err();
        assert!(e.contains("alphanumeric"), "{e}");
        let e = parse_overrides(&args(&["A=1", "A=2"])).unwrap_err();
        assert!(e.contains("given twice"), "{e}");
    }

    fn template() -> Value {
        json!({"Parameters": {
            "VpcId": {"Type": "AWS::EC2::VPC::Id"},
            "SubnetIds": {"Type": "List<AWS::EC2::Subnet::Id>"},
            "HsmsPerSubnet": {"Type": "Number", "Default": 1, "MinValue": 0, "MaxValue": 28},
            "HsmType": {"Type": "String", "Default": "hsm2m.medium", "AllowedValues": ["hsm1.medium", "hsm2m.medium"]}
        }})
    }

    #[test]
    fn validates_against_the_template() {
        let ok = parse_overrides(&args(&["VpcId=vpc-1", "SubnetIds=subnet-1,subnet-2"])).unwrap();
        validate(&ok, &template(), Operation::Create).unwrap();

        let unknown =
            parse_overrides(&args(&["VpcId=vpc-1", "SubnetIds=s", "HsmPerSubnet=2"])).unwrap();
        let e = validate(&unknown, &template(), Operation::Create).unwrap_err();
        assert!(
            e.contains("HsmPerSubnet does not exist") && e.contains("HsmsPerSubnet"),
            "{e}"
        );

        let missing = parse_overrides(&args(&["VpcId=vpc-1"])).unwrap();
        let e = validate(&missing, &template(), Operation::Create).unwrap_err();
        assert!(e.contains("SubnetIds has no default"), "{e}");
        // On update, a missing parameter keeps its previous value.
        validate(&missing, &template(), Operation::Update).unwrap();

        let bad = |a: &str| {
            let o = parse_overrides(&args(&["VpcId=v", "SubnetIds=s", a])).unwrap();
            validate(&o, &template(), Operation::Create).unwrap_err()
        };
        assert!(bad("HsmsPerSubnet=two").contains("not a number"));
        assert!(bad("HsmsPerSubnet=29").contains("above the maximum 28"));
        assert!(bad("HsmType=hsm3").contains("not allowed (allowed: hsm1.medium, hsm2m.medium)"));
        let o = parse_overrides(&args(&["VpcId=v", "SubnetIds=subnet-1,,subnet-2"])).unwrap();
        let e = validate(&o, &template(), Operation::Create).unwrap_err();
        assert!(e.contains("empty element"), "{e}");
    }
}
