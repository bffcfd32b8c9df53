//! Invalid props fail at synth with exact, actionable messages (all reported together).

use constructs::cloudhsm::*;
use constructs::tree::{App, Stack};

fn synth_errors(
    defaults: ParameterDefaults,
    tune: impl FnOnce(&mut CloudHsmDeploymentProps),
) -> Vec<String> {
    let mut stack = Stack::new("Test");
    let params = StackParameters::declare(&mut stack, &defaults);
    let mut props = CloudHsmDeploymentProps::new(params.inputs(), placeholder_code("test"));
    tune(&mut props);
    let mut root = stack.root();
    let d = CloudHsmDeployment::new(&mut root, "Hsm", props);
    add_standard_outputs(&mut root, &d);
    let mut app = App::new();
    app.add_stack(stack);
    match app.synth() {
        Ok(_) => vec![],
        Err(e) => e.lines(),
    }
}

fn with(f: impl FnOnce(&mut ParameterDefaults)) -> ParameterDefaults {
    let mut d = ParameterDefaults::default();
    f(&mut d);
    d
}

#[test]
fn valid_defaults_synthesize() {
    assert_eq!(
        synth_errors(ParameterDefaults::default(), |_| {}),
        Vec::<String>::new()
    );
    let d = with(|d| {
        d.vpc_id = Some("vpc-0123456789abcdef0".into());
        d.subnet_ids = Some(vec![
            "subnet-0123456789abcdef0".into(),
            "subnet-0123456789abcdef1".into(),
        ]);
        d.client_subnet_id = Some("subnet-0123456789abcdef0".into());
        d.enable_key_store = true;
        d.hsms_per_subnet = 0;
    });
    // HsmsPerSubnet 0 with the key store is the only problem here.
    assert_eq!(
        synth_errors(d, |_| {}),
        ["[Test/Hsm] the key store needs at least one HSM in each of 2 subnets but HsmsPerSubnet is 0: set HsmsPerSubnet ≥ 1 or disable the key store"]
    );
}

#[test]
fn empty_subnets() {
    assert_eq!(
        synth_errors(with(|d| d.subnet_ids = Some(vec![])), |_| {}),
        ["[Test/Hsm] SubnetIds is empty: give at least one subnet (one per Availability Zone), e.g. --subnet-ids subnet-0123456789abcdef0,subnet-…"]
    );
}

#[test]
fn key_store_with_one_subnet() {
    let d = with(|d| {
        d.subnet_ids = Some(vec!["subnet-0123456789abcdef0".into()]);
        d.enable_key_store = true;
    });
    assert_eq!(
        synth_errors(d, |_| {}),
        ["[Test/Hsm] the key store needs HSMs in at least 2 Availability Zones but SubnetIds has 1: give 2 or more subnets, or disable the key store (EnableKeyStore=false)"]
    );
}

#[test]
fn negative_and_excessive_counts() {
    assert_eq!(
        synth_errors(with(|d| d.hsms_per_subnet = -1), |_| {}),
        ["[Test/Hsm] HsmsPerSubnet is -1: it cannot be negative (0 keeps the cluster without HSMs)"]
    );
    assert_eq!(
        synth_errors(with(|d| d.hsms_per_subnet = 29), |_| {}),
        ["[Test/Hsm] HsmsPerSubnet is 29: the CloudHSM quota is 28 HSMs per cluster; use 28 or fewer"]
    );
}

#[test]
fn invalid_retention() {
    assert_eq!(
        synth_errors(with(|d| d.backup_retention_days = 5), |_| {}),
        ["[Test/Hsm] BackupRetentionDays is 5: CloudHSM keeps backups 7 to 379 days; pick a value in that range"]
    );
    assert_eq!(
        synth_errors(ParameterDefaults::default(), |p| p.log_retention_days = 42),
        ["[Test/Hsm] log_retention_days 42 is not a CloudWatch Logs retention; use one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"]
    );
}

#[test]
fn malformed_ids_type_and_mode() {
    let d = with(|d| {
        d.vpc_id = Some("vpc-xyz".into());
        d.subnet_ids = Some(vec![
            "subnet-0123456789abcdef0".into(),
            "subnet-0123456789abcdef0".into(),
            "sub-1".into(),
        ]);
        d.client_subnet_id = Some("subnet-".into());
        d.hsm_type = "hsm9.huge".into();
        d.cluster_mode = "fips".into();
    });
    assert_eq!(
        synth_errors(d, |_| {}),
        [
            "[Test/Hsm] SubnetIds lists `subnet-0123456789abcdef0` twice; give each subnet once",
            "[Test/Hsm] SubnetIds: `sub-1` is not a subnet id (expected `subnet-` and 8 to 17 hex digits)",
            "[Test/Hsm] VpcId `vpc-xyz` is not a VPC id (expected `vpc-` and 8 to 17 hex digits)",
            "[Test/Hsm] ClientSubnetId `subnet-` is not a subnet id (expected `subnet-` and 8 to 17 hex digits)",
            "[Test/Hsm] HsmType `hsm9.huge` is not a CloudHSM type; use hsm2m.medium",
            "[Test/Hsm] ClusterMode `fips` is invalid; use FIPS or NON_FIPS",
        ]
    );
}

#[test]
fn too_many_subnets_and_bad_pca() {
    let subnets: Vec<String> = (0..11).map(|i| format!("subnet-{i:017x}")).collect();
    let errs = synth_errors(with(|d| d.subnet_ids = Some(subnets)), |p| {
        p.pki = Pki::AcmPrivateCa {
            arn: "arn:aws:s3:::bucket".into(),
        };
    });
    assert_eq!(
        errs,
        [
            "[Test/Hsm] SubnetIds has 11 subnets; CloudHSM accepts at most 10 (one per Availability Zone)",
            "[Test/Hsm] AcmPrivateCa arn `arn:aws:s3:::bucket` is not an ACM Private CA ARN (arn:<partition>:acm-pca:<region>:<account>:certificate-authority/<id>)",
        ]
    );
}

#[test]
fn literal_inputs_are_checked_too() {
    let mut stack = Stack::new("Lit");
    let mut root = stack.root();
    let mut inputs = HsmInputs::new("vpc-0123456789abcdef0", &[], "subnet-0123456789abcdef0");
    inputs.key_store = KeyStore::Enabled;
    inputs.hsms_per_subnet = (-2).into();
    CloudHsmDeployment::new(
        &mut root,
        "Hsm",
        CloudHsmDeploymentProps::new(inputs, placeholder_code("x")),
    );
    let lines = stack.validate().unwrap_err().lines();
    assert_eq!(
        lines,
        [
            "[Lit/Hsm] SubnetIds is empty: give at least one subnet (one per Availability Zone), e.g. --subnet-ids subnet-0123456789abcdef0,subnet-…",
            "[Lit/Hsm] the key store needs HSMs in at least 2 Availability Zones but SubnetIds has 0: give 2 or more subnets, or disable the key store (EnableKeyStore=false)",
            "[Lit/Hsm] HsmsPerSubnet is -2: it cannot be negative (0 keeps the cluster without HSMs)",
        ]
    );
}

#[test]
fn external_pki_needs_both_pems_or_neither() {
    let external = |cert: &str, anchor: &str| {
        let (cert, anchor) = (cert.to_string(), anchor.to_string());
        synth_errors(ParameterDefaults::default(), move |p| {
            p.pki = Pki::External {
                signed_certificate: cert.as_str().into(),
                trust_anchor: anchor.as_str().into(),
            };
        })
    };
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    assert_eq!(
        external(pem, ""),
        ["[Test/Hsm] External PKI: give both the signed certificate and the trust anchor (PEM) to finish initialization, or neither for the first deploy (which publishes the CSR in the ClusterCsr attribute)"]
    );
    assert_eq!(external("", pem).len(), 1);
    // Phase 1 (neither) and phase 2 (both) are valid.
    assert_eq!(external("", ""), Vec::<String>::new());
    assert_eq!(external(pem, pem), Vec::<String>::new());
}

#[test]
fn parameter_driven_pki_synthesizes() {
    let mut stack = Stack::new("Params");
    let params = StackParameters::declare(&mut stack, &ParameterDefaults::default());
    let mut props = CloudHsmDeploymentProps::new(params.inputs(), placeholder_code("p"));
    props.pki = params.pki();
    let Pki::FromParameters(pp) = &props.pki else {
        panic!("StackParameters::pki is the parameter-driven choice");
    };
    assert_eq!(pp.acm_pca_arn_given.name(), "AcmPcaArnGiven");
    let mut root = stack.root();
    let d = CloudHsmDeployment::new(&mut root, "Hsm", props);
    add_standard_outputs(&mut root, &d);
    let mut app = App::new();
    app.add_stack(stack);
    let out = app.synth().unwrap_or_else(|e| panic!("{e}"));
    let t = &out.stacks[0].template;
    for name in [
        "PkiMode",
        "AcmPcaArn",
        "ExternalSignedCertificate",
        "ExternalTrustAnchor",
    ] {
        assert!(PARAMETER_NAMES.contains(&name), "{name}");
        assert!(t["Parameters"].get(name).is_some(), "{name}");
    }
}
