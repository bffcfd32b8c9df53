//! The trust anchor secret survives stack deletion and replacement.

use serde_json::{json, Value};

pub fn check(t: &Value) -> Vec<String> {
    let anchors: Vec<_> = crate::resources(t)
        .into_iter()
        .filter(|(id, r)| r["Type"] == "AWS::SecretsManager::Secret" && id.contains("TrustAnchor"))
        .collect();
    if anchors.is_empty() {
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
}
