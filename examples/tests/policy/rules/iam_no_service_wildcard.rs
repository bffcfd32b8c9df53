//! No `*` or `service:*` actions in identity policies.

use serde_json::{json, Value};

pub fn check(t: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (id, s) in crate::identity_statements(t) {
        for a in crate::as_list(&s["Action"]) {
            let a = a.as_str().unwrap_or_default();
            if a == "*" || a.ends_with(":*") {
                out.push(format!("{id}: action `{a}` grants a whole service"));
            }
        }
    }
    out
}

#[test]
fn flags_service_wildcard() {
    let t = json!({"Resources": {"P": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Resource": "arn:x"}]}}}}});
    assert_eq!(check(&t), ["P: action `kms:*` grants a whole service"]);
}
