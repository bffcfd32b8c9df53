//! No ingress from the whole internet.

use serde_json::{json, Value};

fn open(rule: &Value) -> bool {
    rule["CidrIp"] == "0.0.0.0/0" || rule["CidrIpv6"] == "::/0"
}

pub fn check(t: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (id, r) in crate::resources(t) {
        match r["Type"].as_str() {
            Some("AWS::EC2::SecurityGroup") => {
                for rule in r["Properties"]["SecurityGroupIngress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if open(rule) {
                        out.push(format!("{id}: ingress open to the internet"));
                    }
                }
            }
            Some("AWS::EC2::SecurityGroupIngress") if open(&r["Properties"]) => {
                out.push(format!("{id}: ingress open to the internet"))
            }
            _ => {}
        }
    }
    out
}

#[test]
fn flags_open_ingress() {
    let t = json!({"Resources": {
        "G": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"SecurityGroupIngress": [{"CidrIp": "0.0.0.0/0"}]}},
        "I": {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {"CidrIpv6": "::/0"}}}});
    assert_eq!(
        check(&t),
        [
            "G: ingress open to the internet",
            "I: ingress open to the internet"
        ]
    );
}
