//! The CloudFormation custom-resource event and typed access to its (string) properties.
//!
//! CloudFormation passes every scalar property as a string ("true", "2"); lists stay lists
//! (aws-behaviour.md 4.1). The helpers accept both forms so a template or a test may use either.

use serde_json::{Map, Value};

use crate::error::{StepError, StepResult};

/// A view over a CloudFormation custom-resource request.
#[derive(Debug, Clone)]
pub struct CfnEvent<'a> {
    pub raw: &'a Value,
}

impl<'a> CfnEvent<'a> {
    pub fn new(raw: &'a Value) -> StepResult<Self> {
        if !raw.is_object() {
            return Err(StepError::invalid(
                "the CloudFormation event is not a JSON object",
            ));
        }
        let ev = CfnEvent { raw };
        for field in [
            "RequestType",
            "RequestId",
            "ResponseURL",
            "StackId",
            "LogicalResourceId",
        ] {
            ev.field(field)?;
        }
        Ok(ev)
    }

    pub fn field(&self, name: &str) -> StepResult<&'a str> {
        self.raw
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| StepError::invalid(format!("the CloudFormation event has no {name}")))
    }

    pub fn request_type(&self) -> RequestType {
        match self.raw.get("RequestType").and_then(Value::as_str) {
            Some("Create") => RequestType::Create,
            Some("Update") => RequestType::Update,
            _ => RequestType::Delete,
        }
    }

    pub fn resource_type(&self) -> &'a str {
        self.raw
            .get("ResourceType")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn physical_id(&self) -> Option<&'a str> {
        self.raw
            .get("PhysicalResourceId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The stack name, from `arn:aws:cloudformation:<region>:<acct>:stack/<name>/<guid>`.
    pub fn stack_name(&self) -> String {
        let id = self
            .raw
            .get("StackId")
            .and_then(Value::as_str)
            .unwrap_or("");
        id.split('/').nth(1).unwrap_or(id).to_string()
    }

    pub fn props(&self) -> Props<'a> {
        Props::new(self.raw.get("ResourceProperties"))
    }

    pub fn old_props(&self) -> Props<'a> {
        Props::new(self.raw.get("OldResourceProperties"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();

/// Typed access to `ResourceProperties` (or any flat map of string-ish values).
#[derive(Debug, Clone, Copy)]
pub struct Props<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Props<'a> {
    pub fn new(v: Option<&'a Value>) -> Self {
        let map = v
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        Props { map }
    }

    pub fn opt_str(&self, name: &str) -> Option<String> {
        match self.map.get(name)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn str(&self, name: &str) -> StepResult<String> {
        self.opt_str(name)
            .ok_or_else(|| StepError::invalid(format!("property {name} is missing or empty")))
    }

    /// A list property: a JSON list of strings, or one comma-separated string.
    pub fn list(&self, name: &str) -> StepResult<Vec<String>> {
        let items: Vec<String> = match self.map.get(name) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            Some(Value::String(s)) => s
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            _ => Vec::new(),
        };
        if items.is_empty() {
            return Err(StepError::invalid(format!(
                "property {name} must list at least one value"
            )));
        }
        Ok(items)
    }

    pub fn u32_or(&self, name: &str, default: u32) -> StepResult<u32> {
        match self.opt_str(name) {
            None => Ok(default),
            Some(s) => s.parse::<u32>().map_err(|_| {
                StepError::invalid(format!(
                    "property {name} must be a whole number >= 0, got {s:?}"
                ))
            }),
        }
    }

    pub fn bool_or(&self, name: &str, default: bool) -> StepResult<bool> {
        match self.opt_str(name).map(|s| s.to_ascii_lowercase()) {
            None => Ok(default),
            Some(s) if s == "true" => Ok(true),
            Some(s) if s == "false" => Ok(false),
            Some(s) => Err(StepError::invalid(format!(
                "property {name} must be \"true\" or \"false\", got {s:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn props_accept_strings_and_lists() {
        let v = json!({"SubnetIds": ["subnet-1", " subnet-2 "], "Csv": "a, b,,c", "N": "3",
                       "B": "True", "Num": 2, "Empty": ""});
        let p = Props::new(Some(&v));
        assert_eq!(p.list("SubnetIds").unwrap(), vec!["subnet-1", "subnet-2"]);
        assert_eq!(p.list("Csv").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(p.u32_or("N", 0).unwrap(), 3);
        assert_eq!(p.u32_or("Num", 0).unwrap(), 2);
        assert_eq!(p.u32_or("Missing", 7).unwrap(), 7);
        assert!(p.bool_or("B", false).unwrap());
        assert!(p.str("Empty").is_err());
        assert!(p.list("Missing").is_err());
        assert!(matches!(p.u32_or("B", 0), Err(StepError::InvalidInput(_))));
    }

    #[test]
    fn stack_name_from_stack_id() {
        let v = json!({"StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/my-hsm/abc-def"});
        let ev = CfnEvent { raw: &v };
        assert_eq!(ev.stack_name(), "my-hsm");
    }
}
