//! Instances get no public IP (explicitly, whatever the subnet's default).

use serde_json::{json, Value};

pub fn check(t: &Value) -> Vec<String> {
    crate::resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"] == "AWS::EC2::Instance")
        .filter(|(_, r)| {
            let nics = r["Properties"]["NetworkInterfaces"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            nics.is_empty() || nics.iter().any(|n| n["AssociatePublicIpAddress"] != false)
        })
        .map(|(id, _)| {
            format!("{id}: declare NetworkInterfaces with AssociatePublicIpAddress false")
        })
        .collect()
}

#[test]
fn flags_subnet_default() {
    let t = json!({"Resources": {"I": {"Type": "AWS::EC2::Instance", "Properties": {"SubnetId": "subnet-1"}}}});
    assert_eq!(
        check(&t),
        ["I: declare NetworkInterfaces with AssociatePublicIpAddress false"]
    );
}
