//! EC2 instances accept only IMDSv2 (session tokens).

use serde_json::{json, Value};

pub fn check(t: &Value) -> Vec<String> {
    crate::resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"] == "AWS::EC2::Instance")
        .filter(|(_, r)| r["Properties"]["MetadataOptions"]["HttpTokens"] != "required")
        .map(|(id, _)| format!("{id}: MetadataOptions.HttpTokens must be `required` (IMDSv2 only)"))
        .collect()
}

#[test]
fn flags_optional_tokens() {
    let t = json!({"Resources": {"I": {"Type": "AWS::EC2::Instance", "Properties": {"MetadataOptions": {"HttpTokens": "optional"}}}}});
    assert_eq!(
        check(&t),
        ["I: MetadataOptions.HttpTokens must be `required` (IMDSv2 only)"]
    );
}
