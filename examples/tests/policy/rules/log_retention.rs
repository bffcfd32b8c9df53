//! Log groups expire their events.

use serde_json::{json, Value};

pub fn check(t: &Value) -> Vec<String> {
    crate::resources(t)
        .into_iter()
        .filter(|(_, r)| {
            r["Type"] == "AWS::Logs::LogGroup" && !r["Properties"]["RetentionInDays"].is_number()
        })
        .map(|(id, _)| format!("{id}: set RetentionInDays"))
        .collect()
}

#[test]
fn flags_forever_logs() {
    let t = json!({"Resources": {"L": {"Type": "AWS::Logs::LogGroup", "Properties": {}}}});
    assert_eq!(check(&t), ["L: set RetentionInDays"]);
}
