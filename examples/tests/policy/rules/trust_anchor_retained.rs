//! The trust anchor secret survives stack deletion and replacement.

use serde_json::{json, Value};

pub fn check(t: &Value) -> Vec<String> {
    let anchors: Vec<_> = crate::resources(t)
        .into_iter()
        .filter(|(id, r)| r["Type"] == "AWS::SecretsManager::Secret" && id.contains("TrustAnchor"))
        .collect();
    if anchors.is_empty() {
        // A restored cluster uses the trust anchor secret of the stack that made the backup
        // (retained there), passed in by ARN.
        let given = t["Parameters"]["SourceTrustAnchorSecretArn"]["AllowedPattern"]
            .as_str()
            .is_some_and(|p| p.starts_with("^arn:"));
        if given {
            return vec![];
        }
        return vec!["no trust anchor secret in the template".into()];
    }
    anchors
        .into_iter()
        .filter(|(_, r)| r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain")
        .map(|(id, _)| format!("{id}: DeletionPolicy and UpdateReplacePolicy must be Retain"))
        .collect()
}

#[test]
fn flags_deletable_anchor() {
    let t = json!({"Resources": {"HsmSecretsTrustAnchorX": {"Type": "AWS::SecretsManager::Secret", "DeletionPolicy": "Retain"}}});
    assert_eq!(
        check(&t),
        ["HsmSecretsTrustAnchorX: DeletionPolicy and UpdateReplacePolicy must be Retain"]
    );
    assert_eq!(
        check(&json!({"Resources": {}})),
        ["no trust anchor secret in the template"]
    );
    // Restored: the given anchor secret (an ARN parameter) stands in; any other text does not.
    let given = |pattern: &str| json!({"Parameters": {"SourceTrustAnchorSecretArn": {"Type": "String", "AllowedPattern": pattern}}, "Resources": {}});
    assert!(check(&given("^arn:aws[a-z-]*:secretsmanager:.*$")).is_empty());
    assert_eq!(
        check(&given(".*")),
        ["no trust anchor secret in the template"]
    );
}
