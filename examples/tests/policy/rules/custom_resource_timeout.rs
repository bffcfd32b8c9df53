//! Custom resources set ServiceTimeout within CloudFormation's 1 hour.

use serde_json::{json, Value};

pub fn check(t: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (id, r) in crate::resources(t) {
        if !r["Type"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Custom::")
        {
            continue;
        }
        let timeout = r["Properties"]["ServiceTimeout"]
            .as_str()
            .and_then(|s| s.parse::<u32>().ok());
        match timeout {
            Some(s) if (1..=3600).contains(&s) => {}
            _ => out.push(format!(
                "{id}: ServiceTimeout must be set, 1 to 3600 seconds"
            )),
        }
    }
    out
}

#[test]
fn flags_missing_timeout() {
    let t = json!({"Resources": {"C": {"Type": "Custom::X", "Properties": {"ServiceToken": "arn"}}, "D": {"Type": "Custom::Y", "Properties": {"ServiceTimeout": "7200"}}}});
    assert_eq!(
        check(&t),
        [
            "C: ServiceTimeout must be set, 1 to 3600 seconds",
            "D: ServiceTimeout must be set, 1 to 3600 seconds"
        ]
    );
}
