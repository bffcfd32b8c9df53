//! Customer-managed KMS keys rotate and are retained.

use serde_json::{json, Value};

pub fn check(t: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (id, r) in crate::resources(t) {
        if r["Type"] != "AWS::KMS::Key" {
            continue;
        }
        if r["Properties"]["EnableKeyRotation"] != true {
            out.push(format!("{id}: EnableKeyRotation must be true"));
        }
        if r["DeletionPolicy"] != "Retain" {
            out.push(format!(
                "{id}: a key that encrypted data must be retained (DeletionPolicy Retain)"
            ));
        }
    }
    out
}

#[test]
fn flags_unrotated_deleted_key() {
    let t = json!({"Resources": {"K": {"Type": "AWS::KMS::Key", "Properties": {}}}});
    assert_eq!(
        check(&t),
        [
            "K: EnableKeyRotation must be true",
            "K: a key that encrypted data must be retained (DeletionPolicy Retain)"
        ]
    );
}
