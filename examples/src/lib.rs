//! Apps that embed the CloudHSM constructs.
//!
//! - [`dev`]: a minimal development cluster (defaults: 1 subnet, 1 HSM, no key store).
//! - [`production`]: 3 subnets × 2 HSMs, KMS custom key store on, customer-managed KMS key.
//! - [`embedded`]: the constructs inside a larger application stack that uses the cluster's
//!   handles (an app security group allowed into the cluster, a role that reads the admin secret).
//! - [`restore`]: a cluster restored from an existing CloudHSM backup (`SourceBackupId`), using
//!   the admin password and trust anchor secrets of the stack that made the backup.
//!
//! `dev` and `production` expose the standard parameters (`VpcId`, `SubnetIds`, `HsmsPerSubnet`,
//! `ClientSubnetId`, `EnableKeyStore`, `HsmType`, `ClusterMode`, `BackupRetentionDays`,
//! `ClientInstanceType`, and the PKI choice `PkiMode`, `AcmPcaArn`, `ExternalSignedCertificate`,
//! `ExternalTrustAnchor`) and outputs; only their defaults and props differ. `embedded` keeps the
//! construct's synth-time PKI choice (built in).

use constructs::cfn::resources::{Policy, Role, SecurityGroup, SecurityGroupRule, Tag};
use constructs::cfn::{Expr, Parameter, ParameterType, Value};
use constructs::cloudhsm::{
    add_standard_outputs, placeholder_code, Architecture, CloudHsmDeployment,
    CloudHsmDeploymentProps, Encryption, HsmInputs, KeyStore, ParameterDefaults, RestoreParameters,
    StackParameters,
};
use constructs::iam::{self, PolicyDocument};
use constructs::tree::{App, FileAsset, Stack};

/// The example apps, by the name `synth --app` takes.
pub const APPS: [&str; 4] = ["dev", "production", "embedded", "restore"];

/// What every example app takes from the `synth` command line.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Parameter defaults; `None` = the app's own defaults.
    pub defaults: Option<ParameterDefaults>,
    /// The handlers' Lambda zip.
    pub code: FileAsset,
    pub architecture: Architecture,
    /// Default: the app's stack name.
    pub stack_name: Option<String>,
}

impl AppOptions {
    /// Options with a placeholder Lambda asset (tests, `--skip-assets`).
    pub fn for_tests() -> Self {
        AppOptions {
            defaults: None,
            code: placeholder_code("handlers"),
            architecture: Architecture::Arm64,
            stack_name: None,
        }
    }
}

/// Builds the named app.
pub fn build(app: &str, opts: &AppOptions) -> Result<App, String> {
    match app {
        "dev" => Ok(dev(opts)),
        "production" => Ok(production(opts)),
        "embedded" => Ok(embedded(opts)),
        "restore" => Ok(restore(opts)),
        other => Err(format!(
            "unknown app `{other}`; choose one of {}",
            APPS.join(", ")
        )),
    }
}

/// The defaults of the development app.
pub fn dev_defaults() -> ParameterDefaults {
    ParameterDefaults {
        hsms_per_subnet: 1,
        enable_key_store: false,
        ..ParameterDefaults::default()
    }
}

/// The defaults of the production app.
pub fn production_defaults() -> ParameterDefaults {
    ParameterDefaults {
        hsms_per_subnet: 2,
        enable_key_store: true,
        backup_retention_days: 379,
        ..ParameterDefaults::default()
    }
}

fn standard_stack(
    name: &str,
    description: &str,
    defaults: &ParameterDefaults,
    opts: &AppOptions,
    tune: impl FnOnce(&mut CloudHsmDeploymentProps),
) -> App {
    let mut stack = Stack::new(opts.stack_name.clone().unwrap_or_else(|| name.to_string()));
    stack.set_description(description);
    let params = StackParameters::declare(&mut stack, defaults);
    let mut props = CloudHsmDeploymentProps::new(params.inputs(), opts.code.clone());
    props.architecture = opts.architecture;
    // The PKI is chosen at deploy with the PKI parameters.
    props.pki = params.pki();
    tune(&mut props);
    let mut root = stack.root();
    let hsm = CloudHsmDeployment::new(&mut root, "Hsm", props);
    add_standard_outputs(&mut root, &hsm);
    let mut app = App::new();
    app.add_stack(stack);
    app
}

/// A minimal development cluster: 1 subnet × 1 HSM by default, no key store, AWS managed keys.
pub fn dev(opts: &AppOptions) -> App {
    let defaults = opts.defaults.clone().unwrap_or_else(dev_defaults);
    standard_stack(
        "CloudHsmDev",
        "CloudHSM development cluster (1 HSM by default)",
        &defaults,
        opts,
        |_| {},
    )
}

/// Production: 3 subnets × 2 HSMs (give the subnets at deploy), key store on, a customer-managed
/// key for secrets, logs and the client's volume, longest backup retention.
pub fn production(opts: &AppOptions) -> App {
    let defaults = opts.defaults.clone().unwrap_or_else(production_defaults);
    standard_stack(
        "CloudHsmProduction",
        "CloudHSM production cluster with a KMS custom key store",
        &defaults,
        opts,
        |p| {
            p.encryption = Encryption::CustomerManagedKey;
            p.log_retention_days = 365;
        },
    )
}

/// A cluster restored from a backup: parameters `SourceBackupId`, `SourceAdminPasswordSecretArn`
/// and `SourceTrustAnchorSecretArn` (the `AdminPasswordSecretArn` and `TrustAnchorSecretArn` outputs of the stack that made the backup; keep that stack's admin
/// password secret until the restored cluster serves) plus the cluster parameters of `dev`; the
/// standard outputs. The first HSM restores the backup's users and keys.
pub fn restore(opts: &AppOptions) -> App {
    let defaults = opts.defaults.clone().unwrap_or_else(dev_defaults);
    let mut stack = Stack::new(
        opts.stack_name
            .clone()
            .unwrap_or_else(|| "CloudHsmRestore".to_string()),
    );
    stack.set_description("CloudHSM cluster restored from a backup");
    let params = RestoreParameters::declare(&mut stack, &defaults);
    let mut props = CloudHsmDeploymentProps::new(params.inputs(), opts.code.clone());
    props.architecture = opts.architecture;
    props.source = params.source();
    let mut root = stack.root();
    let hsm = CloudHsmDeployment::new(&mut root, "Hsm", props);
    add_standard_outputs(&mut root, &hsm);
    let mut app = App::new();
    app.add_stack(stack);
    app
}

/// A payments platform stack that embeds the cluster and wires its own resources to it.
pub fn embedded(opts: &AppOptions) -> App {
    let mut stack = Stack::new(
        opts.stack_name
            .clone()
            .unwrap_or_else(|| "PaymentsPlatform".to_string()),
    );
    stack.set_description("Payments platform: application network access and IAM wired to an embedded CloudHSM cluster");
    let mut root = stack.root();
    // The platform's own parameters (names of its choosing).
    let vpc = root.parameter::<String>(
        "PlatformVpcId",
        Parameter::new(ParameterType::vpc_id()).description("VPC of the platform"),
    );
    let private = root.parameter::<Vec<String>>(
        "PrivateSubnetIds",
        Parameter::new(ParameterType::subnet_ids())
            .description("Private subnets, one per Availability Zone (at least 2)"),
    );
    let admin = root.parameter::<String>(
        "AdminSubnetId",
        Parameter::new(ParameterType::subnet_id()).description("Subnet of the HSM client"),
    );
    let mut inputs = HsmInputs::new("vpc-00000000", &[], "subnet-00000000");
    inputs.vpc_id = vpc.value();
    inputs.subnet_ids = private.value();
    inputs.client_subnet_id = admin.value();
    inputs.hsms_per_subnet = 1.into();
    inputs.key_store = KeyStore::Disabled;
    let mut props = CloudHsmDeploymentProps::new(inputs, opts.code.clone());
    props.architecture = opts.architecture;
    let hsm = CloudHsmDeployment::new(&mut root, "Hsm", props);

    // The application tier: its security group may reach the HSMs, its role reads the admin secret.
    let mut app_scope = root.construct("PaymentsApi", "examples.PaymentsApi");
    let app_sg = app_scope.resource(
        "SecurityGroup",
        SecurityGroup {
            group_description: Some("Payments API tasks".into()),
            vpc_id: Some(vpc.value()),
            security_group_egress: Some(vec![SecurityGroupRule {
                ip_protocol: Some("tcp".into()),
                from_port: Some(2223.into()),
                to_port: Some(2225.into()),
                destination_security_group_id: Some(hsm.cluster_security_group_id()),
                description: Some("to the HSMs".into()),
                ..Default::default()
            }]),
            tags: Some(vec![Tag::new(
                "Name",
                Value::sub("${AWS::StackName}-payments-api"),
            )]),
            ..Default::default()
        },
    );
    hsm.allow_hsm_access_from(
        &mut app_scope,
        "HsmAccess",
        app_sg.get_att("GroupId"),
        "Payments API to the HSMs",
    );
    let role = app_scope.resource(
        "Role",
        Role {
            assume_role_policy_document: Some(
                PolicyDocument::assume_role("ecs-tasks.amazonaws.com").to_expr(),
            ),
            description: Some("Payments API task role".into()),
            ..Default::default()
        },
    );
    let mut statements = hsm.grant_admin_password_read();
    statements.push(
        iam::Statement::allow(&["cloudhsm:DescribeClusters"])
            .on_any_resource("cloudhsm:DescribeClusters has no resource-level permissions"),
    );
    app_scope.resource(
        "HsmSecretsPolicy",
        Policy {
            policy_name: Some("HsmSecrets".into()),
            policy_document: Some(PolicyDocument::new(statements).to_expr()),
            roles: Some(vec![role.reference()]),
        },
    );
    root.output(
        "PaymentsApiSecurityGroupId",
        app_sg.get_att("GroupId"),
        "Security group of the payments API (allowed into the cluster)",
        None,
    );
    root.output(
        "PaymentsApiRoleArn",
        role.get_att("Arn"),
        "Role of the payments API (reads the admin password secret)",
        None,
    );
    root.output(
        "HsmClusterId",
        hsm.cluster_id(),
        "CloudHSM cluster id",
        None,
    );
    root.output(
        "HsmClusterArn",
        Expr::from(hsm.cluster_arn()),
        "CloudHSM cluster ARN",
        None,
    );
    let mut app = App::new();
    app.add_stack(stack);
    app
}
