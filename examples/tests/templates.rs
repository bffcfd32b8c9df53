//! Assertions over the synthesized example templates.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};

fn counts(t: &Value) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in t["Resources"].as_object().unwrap().values() {
        *m.entry(r["Type"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

fn expected(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

const COMMON: [(&str, usize); 13] = [
    ("AWS::CloudHSM::Cluster", 1),
    ("AWS::EC2::Instance", 1),
    ("AWS::IAM::InstanceProfile", 1),
    ("AWS::Lambda::Function", 5),
    ("AWS::Logs::LogGroup", 8),
    ("AWS::IAM::Role", 9),
    ("AWS::SSM::Document", 3),
    ("AWS::SecretsManager::Secret", 2),
    ("AWS::StepFunctions::StateMachine", 3),
    ("Custom::ClusterInitialization", 1),
    ("Custom::HsmFleet", 1),
    ("Custom::KeyStore", 1),
    ("Custom::Preflight", 1),
];

#[test]
fn resource_counts_by_type() {
    let mut dev = expected(&COMMON);
    dev.insert("AWS::EC2::SecurityGroup".into(), 1);
    dev.insert("AWS::EC2::SecurityGroupIngress".into(), 1);
    assert_eq!(counts(&synth("dev")), dev);
    let mut prod = dev.clone();
    prod.insert("AWS::KMS::Key".into(), 1);
    prod.insert("AWS::KMS::Alias".into(), 1);
    assert_eq!(counts(&synth("production")), prod);
    // Embedded: key store disabled (no keystore function, log group, role, workflow, custom
    // resource), plus the platform's own security group, ingress and IAM policy.
    let emb = expected(&[
        ("AWS::CloudHSM::Cluster", 1),
        ("AWS::EC2::Instance", 1),
        ("AWS::EC2::SecurityGroup", 2),
        ("AWS::EC2::SecurityGroupIngress", 2),
        ("AWS::IAM::InstanceProfile", 1),
        ("AWS::IAM::Policy", 1),
        ("AWS::IAM::Role", 8),
        ("AWS::Lambda::Function", 4),
        ("AWS::Logs::LogGroup", 6),
        ("AWS::SSM::Document", 3),
        ("AWS::SecretsManager::Secret", 2),
        ("AWS::StepFunctions::StateMachine", 2),
        ("Custom::ClusterInitialization", 1),
        ("Custom::HsmFleet", 1),
        ("Custom::Preflight", 1),
    ]);
    assert_eq!(counts(&synth("embedded")), emb);
}

#[test]
fn parameters_and_outputs_have_exact_names() {
    for app in ["dev", "production"] {
        let t = synth(app);
        let params: Vec<&str> = t["Parameters"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            params,
            [
                "VpcId",
                "SubnetIds",
                "HsmsPerSubnet",
                "ClientSubnetId",
                "EnableKeyStore",
                "HsmType",
                "ClusterMode",
                "BackupRetentionDays",
                "ClientInstanceType",
                "PkiMode",
                "AcmPcaArn",
                "ExternalSignedCertificate",
                "ExternalTrustAnchor"
            ]
        );
        assert_eq!(
            t["Parameters"]["SubnetIds"]["Type"],
            "List<AWS::EC2::Subnet::Id>"
        );
        assert_eq!(t["Parameters"]["VpcId"]["Type"], "AWS::EC2::VPC::Id");
        assert_eq!(
            t["Parameters"]["ClientSubnetId"]["Type"],
            "AWS::EC2::Subnet::Id"
        );
        assert_eq!(t["Parameters"]["HsmsPerSubnet"]["MinValue"], 0);
        assert_eq!(t["Parameters"]["HsmType"]["Default"], "hsm2m.medium");
        assert_eq!(t["Parameters"]["BackupRetentionDays"]["MinValue"], 7);
        assert_eq!(t["Parameters"]["BackupRetentionDays"]["MaxValue"], 379);
        assert_eq!(
            t["Parameters"]["EnableKeyStore"]["AllowedValues"],
            json!(["true", "false"])
        );
        let outputs: Vec<&str> = t["Outputs"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            outputs,
            [
                "ClusterId",
                "ClusterSecurityGroupId",
                "AdminPasswordSecretArn",
                "TrustAnchorSecretArn",
                "ClientInstanceId",
                "ClusterCsr",
                "KeyStoreId"
            ]
        );
        let (init_id, _) = one_of_type(&t, "Custom::ClusterInitialization");
        assert_eq!(
            t["Outputs"]["ClusterCsr"]["Value"],
            json!({"Fn::GetAtt": [init_id, "ClusterCsr"]})
        );
        assert_eq!(t["Outputs"]["KeyStoreId"]["Condition"], "KeyStoreEnabled");
        assert_eq!(
            t["Conditions"]["KeyStoreEnabled"],
            json!({"Fn::Equals": [{"Ref": "EnableKeyStore"}, "true"]})
        );
        let (cluster_id, _) = one_of_type(&t, "AWS::CloudHSM::Cluster");
        assert_eq!(
            t["Outputs"]["ClusterId"]["Value"],
            json!({"Fn::GetAtt": [cluster_id, "ClusterId"]})
        );
        assert_eq!(
            t["Outputs"]["ClusterSecurityGroupId"]["Value"],
            json!({"Fn::GetAtt": [cluster_id, "SecurityGroup"]})
        );
    }
    assert_eq!(synth("dev")["Parameters"]["HsmsPerSubnet"]["Default"], "1");
    assert_eq!(
        synth("dev")["Parameters"]["EnableKeyStore"]["Default"],
        "false"
    );
    assert_eq!(
        synth("production")["Parameters"]["HsmsPerSubnet"]["Default"],
        "2"
    );
    assert_eq!(
        synth("production")["Parameters"]["EnableKeyStore"]["Default"],
        "true"
    );
}

#[test]
fn cluster_properties_and_order() {
    let t = synth("dev");
    let (cluster_id, c) = one_of_type(&t, "AWS::CloudHSM::Cluster");
    let p = &c["Properties"];
    assert_eq!(p["HsmType"], json!({"Ref": "HsmType"}));
    assert_eq!(p["Mode"], json!({"Ref": "ClusterMode"}));
    assert_eq!(p["SubnetIds"], json!({"Ref": "SubnetIds"}));
    assert_eq!(
        p["BackupRetentionPolicy"],
        json!({"Type": "DAYS", "Value": {"Ref": "BackupRetentionDays"}})
    );
    let (pre_id, pre) = one_of_type(&t, "Custom::Preflight");
    assert_eq!(c["DependsOn"], json!([pre_id]));
    assert_eq!(pre["Properties"]["ServiceTimeout"], "300");
    let props: Vec<&str> = pre["Properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        props,
        [
            "ServiceToken",
            "ServiceTimeout",
            "VpcId",
            "SubnetIds",
            "HsmsPerSubnet",
            "ClientSubnetId",
            "KeyStoreEnabled",
            "HsmType"
        ]
    );
    let (init_id, init) = one_of_type(&t, "Custom::ClusterInitialization");
    let (fleet_id, fleet) = one_of_type(&t, "Custom::HsmFleet");
    let (_, ks) = one_of_type(&t, "Custom::KeyStore");
    let (ingress_id, _) = one_of_type(&t, "AWS::EC2::SecurityGroupIngress");
    assert_eq!(init["DependsOn"], json!([ingress_id]));
    // The fleet follows the initialization through the GetAtt of its state (the order, and a
    // re-run when an External-PKI initialization finishes), not a DependsOn.
    assert_eq!(fleet.get("DependsOn"), None);
    assert_eq!(
        fleet["Properties"]["ClusterState"],
        json!({"Fn::GetAtt": [init_id, "ClusterState"]})
    );
    assert_eq!(ks["DependsOn"], json!([fleet_id]));
    assert_eq!(ks["Condition"], "KeyStoreEnabled");
    for cr in [init, fleet, ks] {
        assert_eq!(cr["Properties"]["ServiceTimeout"], "3600");
        assert_eq!(
            cr["Properties"]["ClusterId"],
            json!({"Fn::GetAtt": [cluster_id, "ClusterId"]})
        );
        assert!(cr["Properties"]["WorkflowArn"]["Ref"]
            .as_str()
            .unwrap()
            .contains("StateMachine"));
        assert!(cr["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap()
            .contains("Bridge"));
    }
    let init_props: Vec<&str> = init["Properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        init_props,
        [
            "ServiceToken",
            "ServiceTimeout",
            "WorkflowArn",
            "ClusterId",
            "SubnetIds",
            "ClientInstanceId",
            "AdminPasswordSecretArn",
            "TrustAnchorSecretArn",
            "ActivateDocument",
            "PkiMode",
            "AcmPcaArn",
            "ExternalSignedCertificate",
            "ExternalTrustAnchor"
        ]
    );
    assert_eq!(init["Properties"]["PkiMode"], json!({"Ref": "PkiMode"}));
    let fleet_props: Vec<&str> = fleet["Properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fleet_props,
        [
            "ServiceToken",
            "ServiceTimeout",
            "WorkflowArn",
            "ClusterId",
            "SubnetIds",
            "HsmsPerSubnet",
            "ClientInstanceId",
            "RefreshDocument",
            "TrustAnchorSecretArn",
            "KeyStoreEnabled",
            "ClusterState"
        ]
    );
    assert_eq!(
        fleet["Properties"]["KeyStoreEnabled"],
        json!({"Fn::If": ["KeyStoreEnabled", "true", "false"]})
    );
    let ks_props: Vec<&str> = ks["Properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        ks_props,
        [
            "ServiceToken",
            "ServiceTimeout",
            "WorkflowArn",
            "ClusterId",
            "KeyStoreName",
            "TrustAnchorSecretArn",
            "AdminPasswordSecretArn",
            "ClientInstanceId",
            "CreateKmsUserDocument",
            "KmsUserSecretName",
            "RetainOnDelete"
        ]
    );
    assert_eq!(
        ks["Properties"]["KmsUserSecretName"],
        json!({"Fn::Sub": "${AWS::StackName}/kmsuser-initial"})
    );
}

#[test]
fn client_instance_is_hardened() {
    for app in examples::APPS {
        let t = synth(app);
        let (_, i) = one_of_type(&t, "AWS::EC2::Instance");
        let p = &i["Properties"];
        assert_eq!(
            p["MetadataOptions"]["HttpTokens"], "required",
            "{app}: IMDSv2 only"
        );
        assert_eq!(p["MetadataOptions"]["HttpPutResponseHopLimit"], 1);
        assert_eq!(
            p["NetworkInterfaces"][0]["AssociatePublicIpAddress"], false,
            "{app}: no public IP"
        );
        assert_eq!(
            p["BlockDeviceMappings"][0]["Ebs"]["Encrypted"], true,
            "{app}: encrypted volume"
        );
        assert_eq!(
            p["ImageId"],
            "{{resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64}}"
        );
        let user_data = p["UserData"]["Fn::Base64"]
            .as_str()
            .expect("literal user data");
        assert!(
            user_data.contains("cloudhsm-cli-latest.amzn2023"),
            "installs the CloudHSM CLI"
        );
        for forbidden in ["password", "Password", "secretsmanager", "PIN"] {
            assert!(
                !user_data.contains(forbidden),
                "{app}: user data mentions {forbidden}"
            );
        }
        let (_, role) = t["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.contains("ClientRole"))
            .unwrap();
        assert_eq!(
            role["Properties"]["ManagedPolicyArns"],
            json!([{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"}])
        );
    }
    // Production encrypts the volume with its customer-managed key.
    let t = synth("production");
    let (key_id, key) = one_of_type(&t, "AWS::KMS::Key");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    assert_eq!(key["DeletionPolicy"], "Retain");
    let (_, i) = one_of_type(&t, "AWS::EC2::Instance");
    assert_eq!(
        i["Properties"]["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"],
        json!({"Fn::GetAtt": [key_id, "Arn"]})
    );
    for (_, s) in resources_of_type(&t, "AWS::SecretsManager::Secret") {
        assert_eq!(
            s["Properties"]["KmsKeyId"],
            json!({"Fn::GetAtt": [key_id, "Arn"]})
        );
    }
    // The initial kmsuser password secret (created by the key-store workflow) uses it too.
    let (_, ks) = one_of_type(&t, "Custom::KeyStore");
    assert_eq!(
        ks["Properties"]["SecretsKmsKeyArn"],
        json!({"Fn::GetAtt": [key_id, "Arn"]})
    );
    for (_, l) in resources_of_type(&t, "AWS::Logs::LogGroup") {
        assert_eq!(
            l["Properties"]["KmsKeyId"],
            json!({"Fn::GetAtt": [key_id, "Arn"]})
        );
        assert_eq!(l["Properties"]["RetentionInDays"], 365);
    }
}

#[test]
fn client_reaches_hsms_through_native_ingress() {
    let t = synth("dev");
    let (cluster_id, _) = one_of_type(&t, "AWS::CloudHSM::Cluster");
    let (sg_id, _) = one_of_type(&t, "AWS::EC2::SecurityGroup");
    let (_, ing) = one_of_type(&t, "AWS::EC2::SecurityGroupIngress");
    assert_eq!(
        ing["Properties"],
        json!({
            "GroupId": {"Fn::GetAtt": [cluster_id, "SecurityGroup"]},
            "IpProtocol": "tcp", "FromPort": 2223, "ToPort": 2225,
            "SourceSecurityGroupId": {"Fn::GetAtt": [sg_id, "GroupId"]},
            "Description": "CloudHSM administration client"
        })
    );
}

#[test]
fn secrets_generated_and_trust_anchor_retained() {
    let t = synth("dev");
    let secrets = resources_of_type(&t, "AWS::SecretsManager::Secret");
    let (_, admin) = secrets
        .iter()
        .find(|(k, _)| k.contains("AdminPassword"))
        .unwrap();
    assert_eq!(
        admin["Properties"]["GenerateSecretString"],
        json!({"PasswordLength": 32, "ExcludePunctuation": true, "IncludeSpace": false, "RequireEachIncludedType": true})
    );
    assert!(admin["Properties"].get("SecretString").is_none());
    assert_eq!(admin["DeletionPolicy"], "Delete");
    let (_, anchor) = secrets
        .iter()
        .find(|(k, _)| k.contains("TrustAnchor"))
        .unwrap();
    assert_eq!(anchor["DeletionPolicy"], "Retain");
    assert_eq!(anchor["UpdateReplacePolicy"], "Retain");
}

#[test]
fn functions_share_one_asset_and_name_their_group() {
    let t = synth("dev");
    let mut handlers = Vec::new();
    for (_, f) in resources_of_type(&t, "AWS::Lambda::Function") {
        let p = &f["Properties"];
        assert_eq!(p["Runtime"], "provided.al2023");
        assert_eq!(p["Architectures"], json!(["arm64"]));
        assert_eq!(
            p["Code"]["S3Bucket"],
            json!({"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"})
        );
        let key = p["Code"]["S3Key"].as_str().unwrap();
        assert_eq!(
            key,
            format!("{}.zip", examples::AppOptions::for_tests().code.sha256)
        );
        assert!(
            p.get("Environment").is_none(),
            "no environment: nothing secret can leak through it"
        );
        assert!(p["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap()
            .contains("LogGroup"));
        handlers.push(p["Handler"].as_str().unwrap().to_string());
    }
    assert_eq!(
        handlers,
        ["bridge", "preflight", "cluster", "keystore", "respond"]
    );
}

#[test]
fn state_machines_get_definitions_and_scoped_roles() {
    let t = synth("dev");
    for (id, sm) in resources_of_type(&t, "AWS::StepFunctions::StateMachine") {
        let p = &sm["Properties"];
        assert!(
            p["Definition"]["StartAt"].is_string(),
            "{id}: Definition is an ASL object"
        );
        assert_eq!(p["StateMachineType"], "STANDARD");
        assert_eq!(p["LoggingConfiguration"]["IncludeExecutionData"], false);
        // Every ${Var} in the definition has a substitution.
        let text = p["Definition"].to_string();
        for var in [
            "ClusterFunctionArn",
            "KeyStoreFunctionArn",
            "RespondFunctionArn",
        ] {
            if text.contains(&format!("${{{var}}}")) {
                assert!(
                    p["DefinitionSubstitutions"].get(var).is_some(),
                    "{id}: missing substitution {var}"
                );
            }
        }
    }
}

#[test]
fn embedded_app_uses_cluster_handles() {
    let t = synth("embedded");
    let (cluster_id, _) = one_of_type(&t, "AWS::CloudHSM::Cluster");
    let ingresses = resources_of_type(&t, "AWS::EC2::SecurityGroupIngress");
    let (_, app_ingress) = ingresses
        .iter()
        .find(|(k, _)| k.starts_with("PaymentsApi"))
        .unwrap();
    assert_eq!(
        app_ingress["Properties"]["GroupId"],
        json!({"Fn::GetAtt": [cluster_id, "SecurityGroup"]})
    );
    assert!(
        app_ingress["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap()
            .starts_with("PaymentsApiSecurityGroup")
    );
    let (_, policy) = one_of_type(&t, "AWS::IAM::Policy");
    let admin_id = t["Resources"]
        .as_object()
        .unwrap()
        .keys()
        .find(|k| k.contains("AdminPassword"))
        .unwrap();
    assert_eq!(
        policy["Properties"]["PolicyDocument"]["Statement"][0],
        json!({"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": {"Ref": admin_id}})
    );
    assert!(policy["Properties"]["Roles"][0]["Ref"]
        .as_str()
        .unwrap()
        .starts_with("PaymentsApiRole"));
    assert_eq!(
        t["Outputs"]["HsmClusterId"]["Value"],
        json!({"Fn::GetAtt": [cluster_id, "ClusterId"]})
    );
    assert_eq!(
        t["Outputs"]["HsmClusterArn"]["Value"],
        json!({"Ref": cluster_id})
    );
    assert!(
        t.get("Conditions").is_none(),
        "key store disabled: no condition"
    );
}

#[test]
fn function_roles_are_least_privilege() {
    let t = synth("dev");
    let role = |group: &str| {
        let (_, r) = t["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with(&format!("HsmFunctions{group}Role")))
            .unwrap();
        r["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .clone()
    };
    let actions = |stmts: &[Value]| -> Vec<String> {
        stmts
            .iter()
            .flat_map(|s| match &s["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
                _ => vec![],
            })
            .collect()
    };
    assert_eq!(
        actions(&role("Respond")),
        ["logs:CreateLogStream", "logs:PutLogEvents"]
    );
    assert_eq!(
        actions(&role("Bridge")),
        [
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "states:StartExecution"
        ]
    );
    let bridge = role("Bridge");
    assert_eq!(
        bridge[1]["Resource"].as_array().unwrap().len(),
        3,
        "the three state machines"
    );
    assert!(bridge[1]["Resource"][2]["Fn::If"][0] == "KeyStoreEnabled");
    let cluster = role("Cluster");
    let (cluster_id, _) = one_of_type(&t, "AWS::CloudHSM::Cluster");
    assert_eq!(
        cluster[1],
        json!({"Effect": "Allow", "Action": ["cloudhsm:CreateHsm", "cloudhsm:DeleteHsm", "cloudhsm:InitializeCluster"], "Resource": {"Ref": cluster_id}})
    );
    assert!(!actions(&role("Preflight"))
        .iter()
        .filter(|a| !a.starts_with("logs:"))
        .any(|a| a.contains("Create") || a.contains("Delete")));
}

/// The acm-pca statement of the cluster function's role, if any (plain or under Fn::If).
fn acm_pca_statement(t: &Value) -> Option<Value> {
    let (_, role) = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("HsmFunctionsClusterRole"))
        .unwrap();
    role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s.to_string().contains("acm-pca:"))
        .cloned()
}

#[test]
fn pki_is_chosen_by_parameters_with_rules() {
    for app in ["dev", "production"] {
        let t = synth(app);
        let p = &t["Parameters"];
        assert_eq!(
            p["PkiMode"],
            json!({"Type": "String", "Description": p["PkiMode"]["Description"], "Default": "BuiltIn",
                   "AllowedValues": ["BuiltIn", "AcmPrivateCa", "External"]})
        );
        assert_eq!(p["AcmPcaArn"]["Default"], "");
        for name in ["ExternalSignedCertificate", "ExternalTrustAnchor"] {
            assert_eq!(p[name]["Type"], "String");
            assert_eq!(p[name]["Default"], "");
            assert!(p[name]["Description"].as_str().unwrap().contains("PEM"));
            // Certificates are public: not masked.
            assert_eq!(p[name].get("NoEcho"), None);
        }
        assert_eq!(
            t["Conditions"]["AcmPcaArnGiven"],
            json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "AcmPcaArn"}, ""]}]})
        );
        let given = |n: &str| json!({"Fn::Not": [{"Fn::Equals": [{"Ref": n}, ""]}]});
        let mode = |m: &str| json!({"Fn::Equals": [{"Ref": "PkiMode"}, m]});
        let r = &t["Rules"];
        assert_eq!(
            r["AcmPrivateCaNeedsArn"]["RuleCondition"],
            mode("AcmPrivateCa")
        );
        assert_eq!(
            r["AcmPrivateCaNeedsArn"]["Assertions"][0]["Assert"],
            given("AcmPcaArn")
        );
        assert_eq!(
            r["AcmPcaArnNeedsAcmPrivateCa"]["RuleCondition"],
            given("AcmPcaArn")
        );
        assert_eq!(
            r["AcmPcaArnNeedsAcmPrivateCa"]["Assertions"][0]["Assert"],
            mode("AcmPrivateCa")
        );
        let ext = &r["ExternalCertificatesNeedExternalMode"];
        assert_eq!(
            ext["RuleCondition"],
            json!({"Fn::Or": [given("ExternalSignedCertificate"), given("ExternalTrustAnchor")]})
        );
        assert_eq!(ext["Assertions"][0]["Assert"], mode("External"));
        assert_eq!(
            ext["Assertions"][1]["Assert"],
            json!({"Fn::And": [given("ExternalSignedCertificate"), given("ExternalTrustAnchor")]})
        );
        for rule in [
            "AcmPrivateCaNeedsArn",
            "AcmPcaArnNeedsAcmPrivateCa",
            "ExternalCertificatesNeedExternalMode",
        ] {
            for a in r[rule]["Assertions"].as_array().unwrap() {
                let d = a["AssertDescription"].as_str().unwrap();
                assert!(
                    d.contains("PkiMode") || d.contains("give both"),
                    "{rule}: {d}"
                );
            }
        }

        // Wired into the initialization, and the acm-pca grant exists only with an ARN, on it.
        let (_, init) = one_of_type(&t, "Custom::ClusterInitialization");
        for name in [
            "PkiMode",
            "AcmPcaArn",
            "ExternalSignedCertificate",
            "ExternalTrustAnchor",
        ] {
            assert_eq!(
                init["Properties"][name],
                json!({"Ref": name}),
                "{app}: {name}"
            );
        }
        assert_eq!(
            acm_pca_statement(&t).unwrap(),
            json!({"Fn::If": ["AcmPcaArnGiven", {
                "Effect": "Allow",
                "Action": ["acm-pca:DescribeCertificateAuthority", "acm-pca:IssueCertificate", "acm-pca:GetCertificate", "acm-pca:GetCertificateAuthorityCertificate"],
                "Resource": {"Ref": "AcmPcaArn"}
            }, {"Ref": "AWS::NoValue"}]})
        );
    }
}

#[test]
fn acm_pca_arn_pattern_accepts_empty_and_ca_arns_only() {
    let t = synth("dev");
    let pattern = t["Parameters"]["AcmPcaArn"]["AllowedPattern"]
        .as_str()
        .unwrap();
    assert_eq!(pattern, constructs::cloudhsm::ACM_PCA_ARN_PATTERN);
    // Checked with Python's re.fullmatch (what the local emulator applies; CloudFormation's
    // Java regex agrees on this pattern's constructs).
    let check = |value: &str| -> bool {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import re,sys; print(bool(re.fullmatch(sys.argv[1], sys.argv[2])))",
                pattern,
                value,
            ])
            .output()
            .expect("python3 is needed to check the AllowedPattern");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim() == "True"
    };
    let id = "11111111-2222-3333-4444-555555555555";
    for ok in [
        String::new(),
        format!("arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/{id}"),
        format!("arn:aws-us-gov:acm-pca:us-gov-west-1:123456789012:certificate-authority/{id}"),
        format!("arn:aws-cn:acm-pca:cn-north-1:123456789012:certificate-authority/{id}"),
    ] {
        assert!(check(&ok), "{ok:?} should be accepted");
    }
    for bad in [
        " ".to_string(),
        "arn:aws:s3:::bucket".to_string(),
        format!("arn:aws:acm:us-east-1:123456789012:certificate/{id}"),
        format!("arn:aws:acm-pca:us-east-1:1234:certificate-authority/{id}"),
        format!(
            "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/{id}/certificate/abc"
        ),
        format!("xarn:aws:acm-pca:us-east-1:123456789012:certificate-authority/{id}"),
    ] {
        assert!(!check(&bad), "{bad:?} should be rejected");
    }
}

#[test]
fn embedded_keeps_the_static_built_in_pki() {
    let t = synth("embedded");
    let params = t["Parameters"].as_object().unwrap();
    for name in [
        "PkiMode",
        "AcmPcaArn",
        "ExternalSignedCertificate",
        "ExternalTrustAnchor",
    ] {
        assert!(!params.contains_key(name), "{name}");
    }
    let (_, init) = one_of_type(&t, "Custom::ClusterInitialization");
    assert_eq!(init["Properties"]["PkiMode"], "BuiltIn");
    assert_eq!(init["Properties"].get("AcmPcaArn"), None);
    assert_eq!(acm_pca_statement(&t), None);
}

fn logical_of(t: &Value, ty: &str) -> String {
    one_of_type(t, ty).0.clone()
}

fn policy_actions(role: &Value) -> Vec<String> {
    role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
            Value::String(x) => vec![x.clone()],
            _ => vec![],
        })
        .collect()
}

#[test]
fn restore_app_creates_its_cluster_from_the_backup() {
    let t = synth("restore");
    // No native cluster, no initialization, no secrets, no activation document; a restored
    // cluster custom resource and its workflow instead; the client's rule to the HSMs apart.
    let want = expected(&[
        ("AWS::EC2::Instance", 1),
        ("AWS::EC2::SecurityGroup", 1),
        ("AWS::EC2::SecurityGroupEgress", 1),
        ("AWS::EC2::SecurityGroupIngress", 1),
        ("AWS::IAM::InstanceProfile", 1),
        ("AWS::IAM::Role", 9),
        ("AWS::Lambda::Function", 5),
        ("AWS::Logs::LogGroup", 8),
        ("AWS::SSM::Document", 2),
        ("AWS::StepFunctions::StateMachine", 3),
        ("Custom::HsmFleet", 1),
        ("Custom::KeyStore", 1),
        ("Custom::Preflight", 1),
        ("Custom::RestoredCluster", 1),
    ]);
    assert_eq!(counts(&t), want);

    let params: Vec<&str> = t["Parameters"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for p in [
        "SourceBackupId",
        "SourceAdminPasswordSecretArn",
        "SourceTrustAnchorSecretArn",
        "VpcId",
        "SubnetIds",
        "HsmsPerSubnet",
        "ClientSubnetId",
        "EnableKeyStore",
    ] {
        assert!(params.contains(&p), "{p} missing: {params:?}");
    }
    assert!(
        !params.contains(&"PkiMode"),
        "no PKI choice for a restored cluster"
    );
    let backup_pattern = t["Parameters"]["SourceBackupId"]["AllowedPattern"]
        .as_str()
        .unwrap();
    assert_eq!(backup_pattern, "^backup-[2-7a-zA-Z]{11,16}$");
    for p in ["SourceAdminPasswordSecretArn", "SourceTrustAnchorSecretArn"] {
        let pat = t["Parameters"][p]["AllowedPattern"].as_str().unwrap();
        assert!(
            pat.starts_with("^arn:aws") && pat.contains(":secretsmanager:"),
            "{p}: {pat}"
        );
    }

    let (rc_id, rc) = one_of_type(&t, "Custom::RestoredCluster");
    let props = &rc["Properties"];
    assert_eq!(props["BackupId"], json!({"Ref": "SourceBackupId"}));
    assert_eq!(props["SubnetIds"], json!({"Ref": "SubnetIds"}));
    assert_eq!(props["VpcId"], json!({"Ref": "VpcId"}));
    assert_eq!(props["HsmType"], json!({"Ref": "HsmType"}));
    assert_eq!(props["ClusterMode"], json!({"Ref": "ClusterMode"}));
    assert_eq!(
        props["BackupRetentionDays"],
        json!({"Ref": "BackupRetentionDays"})
    );
    assert_eq!(props["ServiceTimeout"], "3600");
    let sm = props["WorkflowArn"]["Ref"].as_str().unwrap();
    assert!(sm.contains("RestoredCluster"), "{sm}");
    assert_eq!(
        t["Resources"][sm]["Type"],
        "AWS::StepFunctions::StateMachine"
    );
    assert_eq!(
        rc["DependsOn"],
        json!([logical_of(&t, "Custom::Preflight")])
    );

    // Everything that used the native cluster uses the restored one.
    let cluster_id = json!({"Fn::GetAtt": [rc_id, "ClusterId"]});
    let cluster_sg = json!({"Fn::GetAtt": [rc_id, "SecurityGroupId"]});
    let (_, ingress) = one_of_type(&t, "AWS::EC2::SecurityGroupIngress");
    assert_eq!(ingress["Properties"]["GroupId"], cluster_sg);
    let (egress_id, egress) = one_of_type(&t, "AWS::EC2::SecurityGroupEgress");
    assert_eq!(
        egress["Properties"]["DestinationSecurityGroupId"],
        cluster_sg
    );
    let (ingress_id, _) = one_of_type(&t, "AWS::EC2::SecurityGroupIngress");
    let (_, fleet) = one_of_type(&t, "Custom::HsmFleet");
    assert_eq!(fleet["Properties"]["ClusterId"], cluster_id);
    assert_eq!(fleet["Properties"]["ClusterState"], "ACTIVE");
    assert_eq!(
        fleet["Properties"]["TrustAnchorSecretArn"],
        json!({"Ref": "SourceTrustAnchorSecretArn"})
    );
    let deps = fleet["DependsOn"].as_array().unwrap();
    assert!(deps.contains(&json!(ingress_id)) && deps.contains(&json!(egress_id)));
    let (_, ks) = one_of_type(&t, "Custom::KeyStore");
    assert_eq!(ks["Properties"]["ClusterId"], cluster_id);
    assert_eq!(
        ks["Properties"]["AdminPasswordSecretArn"],
        json!({"Ref": "SourceAdminPasswordSecretArn"})
    );
    assert_eq!(t["Outputs"]["ClusterId"]["Value"], cluster_id);
    assert_eq!(t["Outputs"]["ClusterSecurityGroupId"]["Value"], cluster_sg);
    assert_eq!(
        t["Outputs"]["AdminPasswordSecretArn"]["Value"],
        json!({"Ref": "SourceAdminPasswordSecretArn"})
    );
    assert_eq!(
        t["Outputs"]["TrustAnchorSecretArn"]["Value"],
        json!({"Ref": "SourceTrustAnchorSecretArn"})
    );
    assert!(t["Outputs"].get("ClusterCsr").is_none());

    // The cluster function may create, tag and delete clusters; nothing else may.
    let roles = resources_of_type(&t, "AWS::IAM::Role");
    for (id, role) in &roles {
        let actions = policy_actions(role);
        let creates = actions.iter().any(|a| a == "cloudhsm:CreateCluster");
        assert_eq!(
            creates,
            id.contains("FunctionsCluster"),
            "{id}: {actions:?}"
        );
        if creates {
            for a in [
                "cloudhsm:DeleteCluster",
                "cloudhsm:ListTags",
                "cloudhsm:TagResource",
                "cloudhsm:ModifyCluster",
                "ec2:CreateSecurityGroup",
                "ec2:DeleteSecurityGroup",
                "iam:CreateServiceLinkedRole",
            ] {
                assert!(actions.iter().any(|x| x == a), "{id} lacks {a}");
            }
            // The given trust anchor is read, never rewritten.
            assert!(!actions.iter().any(|x| x == "secretsmanager:PutSecretValue"));
        }
    }
}

#[test]
fn restore_props_are_checked_at_synth() {
    use constructs::cloudhsm::{
        placeholder_code, CloudHsmDeployment, CloudHsmDeploymentProps, ClusterSource, HsmInputs,
    };
    use constructs::tree::{App, Stack};
    let mut stack = Stack::new("Bad");
    let mut props = CloudHsmDeploymentProps::new(
        HsmInputs::new(
            "vpc-0123456789abcdef0",
            &["subnet-0123456789abcdef0"],
            "subnet-0123456789abcdef0",
        ),
        placeholder_code("x"),
    );
    props.source = ClusterSource::Backup {
        backup_id: "backup-1".into(),
        admin_password_secret_arn:
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:admin-AbCdEf".into(),
        trust_anchor_secret_arn: "not-an-arn".into(),
    };
    CloudHsmDeployment::new(&mut stack.root(), "Hsm", props);
    let mut app = App::new();
    app.add_stack(stack);
    let err = app.synth().unwrap_err().to_string();
    assert!(
        err.contains("`backup-1` is not a CloudHSM backup id"),
        "{err}"
    );
    assert!(err.contains("TrustAnchorSecretArn `not-an-arn`"), "{err}");
    assert!(!err.contains("AdminPasswordSecretArn `"), "{err}");
}
