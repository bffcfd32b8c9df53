//! `Resource: "*"` only for actions that have no resource-level permissions (documented list).

use serde_json::{json, Value};

/// Actions that support no resource-level permissions (IAM service authorization reference).
pub const UNSCOPABLE: [&str; 23] = [
    "cloudhsm:DescribeClusters",
    "cloudhsm:DescribeBackups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeNetworkInterfaces",
    "ssm:GetCommandInvocation",
    "ssm:ListCommandInvocations",
    "ssm:DescribeInstanceInformation",
    "kms:CreateCustomKeyStore",
    "kms:ConnectCustomKeyStore",
    "kms:DisconnectCustomKeyStore",
    "kms:DeleteCustomKeyStore",
    "kms:UpdateCustomKeyStore",
    "kms:DescribeCustomKeyStores",
    "kms:ListKeys",
    "secretsmanager:GetRandomPassword",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
];
const ALSO_UNSCOPABLE: [&str; 4] = [
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    // Like every ec2:Describe* action.
    "ec2:DescribeSecurityGroups",
    // Creates the cluster: no cluster ARN exists before the call. Whether AWS also authorizes it
    // on the source backup is undocumented in our references (aws-behaviour.md has no IAM table),
    // so the restore statement uses `*` with that reason.
    "cloudhsm:CreateCluster",
];

pub fn check(t: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (id, s) in crate::identity_statements(t) {
        let star = crate::as_list(&s["Resource"])
            .iter()
            .any(|r| r.as_str() == Some("*"));
        if !star {
            continue;
        }
        for a in crate::as_list(&s["Action"]) {
            let a = a.as_str().unwrap_or_default();
            if !UNSCOPABLE.contains(&a) && !ALSO_UNSCOPABLE.contains(&a) {
                out.push(format!(
                    "{id}: `{a}` on Resource \"*\"; scope it to the resources it needs"
                ));
            }
        }
    }
    out
}

#[test]
fn flags_scopable_action_on_star() {
    let t = json!({"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "ec2:DescribeVpcs"], "Resource": "*"}]}}]}}}});
    assert_eq!(check(&t), ["R: `secretsmanager:GetSecretValue` on Resource \"*\"; scope it to the resources it needs"]);
}

#[test]
fn flags_scopable_action_on_star_in_a_conditional_statement() {
    let t = json!({"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {"Statement": [
        {"Fn::If": ["C", {"Effect": "Allow", "Action": "acm-pca:IssueCertificate", "Resource": "*"}, {"Ref": "AWS::NoValue"}]}]}}]}}}});
    assert_eq!(
        check(&t),
        ["R: `acm-pca:IssueCertificate` on Resource \"*\"; scope it to the resources it needs"]
    );
}
