//! Every EBS volume of an instance is encrypted.

use serde_json::{json, Value};

pub fn check(t: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (id, r) in crate::resources(t) {
        if r["Type"] != "AWS::EC2::Instance" {
            continue;
        }
        let maps = r["Properties"]["BlockDeviceMappings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if maps.is_empty() {
            out.push(format!("{id}: no BlockDeviceMappings: the root volume's encryption is left to the account default"));
        }
        for m in maps {
            if m["Ebs"]["Encrypted"] != true {
                out.push(format!("{id}: volume {} is not encrypted", m["DeviceName"]));
            }
        }
    }
    out
}

#[test]
fn flags_unencrypted_and_missing() {
    let t = json!({"Resources": {
        "A": {"Type": "AWS::EC2::Instance", "Properties": {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": false}}]}},
        "B": {"Type": "AWS::EC2::Instance", "Properties": {}}}});
    assert_eq!(check(&t), [
        "A: volume \"/dev/xvda\" is not encrypted",
        "B: no BlockDeviceMappings: the root volume's encryption is left to the account default",
    ]);
}
