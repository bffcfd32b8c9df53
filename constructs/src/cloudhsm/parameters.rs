//! The standard stack parameters (exact names), the key-store condition and the rules that check
//! parameter values at deploy before anything is created.

use serde_json::json;

use super::props::*;
use crate::cfn::{Expr, Parameter, ParameterType, Rule};
use crate::tree::{ConditionHandle, ParamHandle, Scope, Stack};

/// Defaults written into the parameters (set from `synth` flags). `None` = no default: the value
/// must be given at deploy.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterDefaults {
    pub vpc_id: Option<String>,
    pub subnet_ids: Option<Vec<String>>,
    pub hsms_per_subnet: i64,
    pub client_subnet_id: Option<String>,
    pub enable_key_store: bool,
    pub hsm_type: String,
    pub cluster_mode: String,
    pub backup_retention_days: i64,
    pub client_instance_type: String,
}

impl Default for ParameterDefaults {
    fn default() -> Self {
        ParameterDefaults {
            vpc_id: None,
            subnet_ids: None,
            hsms_per_subnet: 1,
            client_subnet_id: None,
            enable_key_store: false,
            hsm_type: DEFAULT_HSM_TYPE.into(),
            cluster_mode: DEFAULT_CLUSTER_MODE.into(),
            backup_retention_days: DEFAULT_BACKUP_RETENTION_DAYS,
            client_instance_type: DEFAULT_CLIENT_INSTANCE_TYPE.into(),
        }
    }
}

/// Handles of the standard parameters.
#[derive(Debug, Clone)]
pub struct StackParameters {
    pub vpc_id: ParamHandle<String>,
    pub subnet_ids: ParamHandle<Vec<String>>,
    pub hsms_per_subnet: ParamHandle<i64>,
    pub client_subnet_id: ParamHandle<String>,
    pub enable_key_store: ParamHandle<String>,
    pub hsm_type: ParamHandle<String>,
    pub cluster_mode: ParamHandle<String>,
    pub backup_retention_days: ParamHandle<i64>,
    pub client_instance_type: ParamHandle<String>,
    pub pki_mode: ParamHandle<String>,
    pub acm_pca_arn: ParamHandle<String>,
    pub external_signed_certificate: ParamHandle<String>,
    pub external_trust_anchor: ParamHandle<String>,
    /// `KeyStoreEnabled`: `EnableKeyStore` is `true`.
    pub key_store_enabled: ConditionHandle,
    /// `AcmPcaArnGiven`: `AcmPcaArn` is not empty.
    pub acm_pca_arn_given: ConditionHandle,
}

/// Parameter names, exactly as the stack exposes them.
pub const PARAMETER_NAMES: [&str; 13] = [
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
    "ExternalTrustAnchor",
];

impl StackParameters {
    /// Declares the parameters at the stack root (so their logical ids are exactly the names),
    /// the `KeyStoreEnabled` and `AcmPcaArnGiven` conditions, console parameter groups and
    /// deploy-time rules. The PKI parameters take effect only with `props.pki = params.pki()`.
    pub fn declare(stack: &mut Stack, d: &ParameterDefaults) -> StackParameters {
        let mut root = stack.root();
        let ClusterParameters {
            vpc_id,
            subnet_ids,
            hsms_per_subnet,
            client_subnet_id,
            enable_key_store,
            hsm_type,
            cluster_mode,
            backup_retention_days,
            client_instance_type,
            key_store_enabled,
        } = declare_cluster_parameters(&mut root, d);
        let pki_mode = root.parameter(
            "PkiMode",
            Parameter::new(ParameterType::String)
                .description("Who signs the cluster certificate at initialization: BuiltIn (a throwaway CA in the workflow), AcmPrivateCa (give AcmPcaArn) or External (your own PKI: the first deploy publishes the CSR in the ClusterCsr output; an update with ExternalSignedCertificate and ExternalTrustAnchor finishes).")
                .default("BuiltIn")
                .allowed_values(["BuiltIn", "AcmPrivateCa", "External"]),
        );
        let acm_pca_arn = root.parameter(
            "AcmPcaArn",
            Parameter::new(ParameterType::String)
                .description("PkiMode=AcmPrivateCa: ARN of the ACM Private CA that issues the cluster certificate; empty otherwise.")
                .default("")
                .allowed_pattern(ACM_PCA_ARN_PATTERN)
                .constraint_description("empty, or an ACM Private CA ARN such as arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"),
        );
        let external_signed_certificate = root.parameter(
            "ExternalSignedCertificate",
            Parameter::new(ParameterType::String)
                .description("PkiMode=External: the cluster certificate (PEM) your CA issued for the ClusterCsr output. Empty on the first deploy; give it together with ExternalTrustAnchor to finish initialization.")
                .default(""),
        );
        let external_trust_anchor = root.parameter(
            "ExternalTrustAnchor",
            Parameter::new(ParameterType::String)
                .description("PkiMode=External: the certificate (PEM) of the CA that signed ExternalSignedCertificate, the cluster's trust anchor. Empty on the first deploy.")
                .default(""),
        );
        let given =
            |p: &ParamHandle<String>| Expr::not(Expr::equals(p.value().into_expr(), Expr::str("")));
        let mode_is = |m: &str| Expr::equals(pki_mode.value().into_expr(), Expr::str(m));
        let acm_pca_arn_given = root.condition("AcmPcaArnGiven", given(&acm_pca_arn));

        root.rule(
            "AcmPrivateCaNeedsArn",
            Rule {
                condition: Some(mode_is("AcmPrivateCa")),
                assertions: vec![(
                    given(&acm_pca_arn),
                    "PkiMode=AcmPrivateCa needs AcmPcaArn: give the ARN of your ACM Private CA (arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>)".into(),
                )],
            },
        );
        root.rule(
            "AcmPcaArnNeedsAcmPrivateCa",
            Rule {
                condition: Some(given(&acm_pca_arn)),
                assertions: vec![(
                    mode_is("AcmPrivateCa"),
                    "AcmPcaArn is set but PkiMode is not AcmPrivateCa: set PkiMode=AcmPrivateCa, or clear AcmPcaArn".into(),
                )],
            },
        );
        root.rule(
            "ExternalCertificatesNeedExternalMode",
            Rule {
                condition: Some(Expr::or([
                    given(&external_signed_certificate),
                    given(&external_trust_anchor),
                ])),
                assertions: vec![
                    (
                        mode_is("External"),
                        "ExternalSignedCertificate or ExternalTrustAnchor is set but PkiMode is not External: set PkiMode=External, or clear both".into(),
                    ),
                    (
                        Expr::and([
                            given(&external_signed_certificate),
                            given(&external_trust_anchor),
                        ]),
                        "give both ExternalSignedCertificate and ExternalTrustAnchor (PEM) to finish an External initialization, or neither (the first deploy publishes the CSR in the ClusterCsr output)".into(),
                    ),
                ],
            },
        );
        stack.set_metadata(
            "AWS::CloudFormation::Interface",
            json!({
                "ParameterGroups": [
                    {"Label": {"default": "Network"}, "Parameters": ["VpcId", "SubnetIds", "ClientSubnetId"]},
                    {"Label": {"default": "Cluster"}, "Parameters": ["HsmsPerSubnet", "HsmType", "ClusterMode", "BackupRetentionDays"]},
                    {"Label": {"default": "Client and key store"}, "Parameters": ["ClientInstanceType", "EnableKeyStore"]},
                    {"Label": {"default": "Cluster certificate (PKI)"}, "Parameters": ["PkiMode", "AcmPcaArn", "ExternalSignedCertificate", "ExternalTrustAnchor"]}
                ]
            }),
        );
        StackParameters {
            vpc_id,
            subnet_ids,
            hsms_per_subnet,
            client_subnet_id,
            enable_key_store,
            hsm_type,
            cluster_mode,
            backup_retention_days,
            client_instance_type,
            pki_mode,
            acm_pca_arn,
            external_signed_certificate,
            external_trust_anchor,
            key_store_enabled,
            acm_pca_arn_given,
        }
    }

    /// The PKI choice made at deploy with `PkiMode`, `AcmPcaArn`, `ExternalSignedCertificate`
    /// and `ExternalTrustAnchor` (for [`CloudHsmDeploymentProps::pki`]).
    pub fn pki(&self) -> Pki {
        Pki::FromParameters(Box::new(PkiParameters {
            mode: self.pki_mode.value(),
            acm_pca_arn: self.acm_pca_arn.value(),
            external_signed_certificate: self.external_signed_certificate.value(),
            external_trust_anchor: self.external_trust_anchor.value(),
            acm_pca_arn_given: self.acm_pca_arn_given.clone(),
        }))
    }

    /// The deployment's inputs, all reading these parameters.
    pub fn inputs(&self) -> HsmInputs {
        HsmInputs {
            vpc_id: self.vpc_id.value(),
            subnet_ids: self.subnet_ids.value(),
            hsms_per_subnet: self.hsms_per_subnet.value(),
            client_subnet_id: self.client_subnet_id.value(),
            key_store: KeyStore::When {
                condition: self.key_store_enabled.clone(),
                flag: self.enable_key_store.value(),
            },
            hsm_type: self.hsm_type.value(),
            cluster_mode: self.cluster_mode.value(),
            backup_retention_days: self.backup_retention_days.value(),
            client_instance_type: self.client_instance_type.value(),
        }
    }
}

#[derive(Debug, Clone)]
/// The cluster parameters every app has (network, sizes, key store, types), the
/// `KeyStoreEnabled` condition and the rules on them.
struct ClusterParameters {
    vpc_id: ParamHandle<String>,
    subnet_ids: ParamHandle<Vec<String>>,
    hsms_per_subnet: ParamHandle<i64>,
    client_subnet_id: ParamHandle<String>,
    enable_key_store: ParamHandle<String>,
    hsm_type: ParamHandle<String>,
    cluster_mode: ParamHandle<String>,
    backup_retention_days: ParamHandle<i64>,
    client_instance_type: ParamHandle<String>,
    key_store_enabled: ConditionHandle,
}

fn declare_cluster_parameters(root: &mut Scope<'_>, d: &ParameterDefaults) -> ClusterParameters {
    let with_default = |p: Parameter, v: &Option<String>| match v {
        Some(v) => p.default(v.clone()),
        None => p,
    };
    let vpc_id = root.parameter(
        "VpcId",
        with_default(
            Parameter::new(ParameterType::vpc_id())
                .description("VPC of the cluster and its client."),
            &d.vpc_id,
        ),
    );
    let subnet_ids = root.parameter(
        "SubnetIds",
        with_default(
            Parameter::new(ParameterType::subnet_ids())
                .description("Subnets of the cluster: one per Availability Zone, all in VpcId (1 to 10). The key store needs at least 2."),
            &d.subnet_ids.as_ref().map(|s| s.join(",")),
        ),
    );
    let hsms_per_subnet = root.parameter(
        "HsmsPerSubnet",
        Parameter::new(ParameterType::Number)
            .description("HSMs in each subnet. 0 keeps the cluster (and its backups) without HSMs.")
            .default(d.hsms_per_subnet.to_string())
            .min_value(0.0)
            .max_value(28.0)
            .constraint_description(
                "a whole number from 0 to 28 (the default CloudHSM quota is 28 HSMs per cluster)",
            ),
    );
    let client_subnet_id = root.parameter(
        "ClientSubnetId",
        with_default(
            Parameter::new(ParameterType::subnet_id())
                .description("Subnet of the administration client instance (in VpcId, with a route to SSM, S3 and the HSMs)."),
            &d.client_subnet_id,
        ),
    );
    let enable_key_store = root.parameter(
        "EnableKeyStore",
        Parameter::new(ParameterType::String)
            .description("Create a KMS custom key store backed by the cluster (needs at least 2 HSMs in 2 Availability Zones).")
            .default(d.enable_key_store.to_string())
            .allowed_values(["true", "false"]),
    );
    let hsm_type = root.parameter(
        "HsmType",
        Parameter::new(ParameterType::String)
            .description("HSM type (create-only: changing it replaces the cluster).")
            .default(d.hsm_type.clone())
            .allowed_values(["hsm2m.medium", "hsm1.medium"]),
    );
    let cluster_mode = root.parameter(
        "ClusterMode",
        Parameter::new(ParameterType::String)
            .description("Cluster mode for hsm2m.medium (create-only).")
            .default(d.cluster_mode.clone())
            .allowed_values(["FIPS", "NON_FIPS"]),
    );
    let backup_retention_days = root.parameter(
        "BackupRetentionDays",
        Parameter::new(ParameterType::Number)
            .description("Days CloudHSM keeps backups (7 to 379).")
            .default(d.backup_retention_days.to_string())
            .min_value(7.0)
            .max_value(379.0),
    );
    let client_instance_type = root.parameter(
        "ClientInstanceType",
        Parameter::new(ParameterType::String)
            .description("EC2 instance type of the client (x86_64: the client runs the x86_64 Amazon Linux 2023 AMI).")
            .default(d.client_instance_type.clone())
            .allowed_pattern("^[a-z][a-z0-9-]*\\.[a-z0-9]+$")
            .constraint_description("an EC2 instance type such as t3.micro"),
    );
    // PKI: fixed defaults (BuiltIn, nothing given); certificates are public, so no NoEcho.
    let key_store_enabled = root.condition(
        "KeyStoreEnabled",
        Expr::equals(enable_key_store.value().into_expr(), Expr::str("true")),
    );

    // Checked by CloudFormation before any resource is touched.
    root.rule(
        "SubnetsInVpc",
        Rule {
            condition: None,
            assertions: vec![(
                Expr::each_member_equals(
                    Expr::ValueOfAll("AWS::EC2::Subnet::Id".into(), "VpcId".into()),
                    vpc_id.value().into_expr(),
                ),
                "SubnetIds and ClientSubnetId must all be subnets of VpcId".into(),
            )],
        },
    );
    root.rule(
        "KeyStoreNeedsHsms",
        Rule {
            condition: Some(Expr::equals(
                enable_key_store.value().into_expr(),
                Expr::str("true"),
            )),
            assertions: vec![(
                Expr::not(Expr::equals(
                    hsms_per_subnet.value().into_expr(),
                    Expr::str("0"),
                )),
                "EnableKeyStore=true needs HsmsPerSubnet of at least 1 (and at least 2 subnets)"
                    .into(),
            )],
        },
    );
    ClusterParameters {
        vpc_id,
        subnet_ids,
        hsms_per_subnet,
        client_subnet_id,
        enable_key_store,
        hsm_type,
        cluster_mode,
        backup_retention_days,
        client_instance_type,
        key_store_enabled,
    }
}

/// Parameter names of the restore app (besides the cluster parameters of [`PARAMETER_NAMES`]).
/// (`Source…SecretArn`: the outputs `AdminPasswordSecretArn` and `TrustAnchorSecretArn` keep
/// their standard names, and a parameter cannot share an output's id.)
pub const RESTORE_PARAMETER_NAMES: [&str; 3] = [
    "SourceBackupId",
    "SourceAdminPasswordSecretArn",
    "SourceTrustAnchorSecretArn",
];

/// The parameters of a deployment restored from a backup: the cluster parameters (no PKI: a
/// restored cluster is already initialized) plus the backup and the secrets of the stack that
/// made it.
#[derive(Debug, Clone)]
pub struct RestoreParameters {
    cluster: ClusterParameters,
    pub source_backup_id: ParamHandle<String>,
    pub admin_password_secret_arn: ParamHandle<String>,
    pub trust_anchor_secret_arn: ParamHandle<String>,
}

impl RestoreParameters {
    /// Declares the parameters at the stack root, the `KeyStoreEnabled` condition, the rules and
    /// the console parameter groups.
    pub fn declare(stack: &mut Stack, d: &ParameterDefaults) -> RestoreParameters {
        let mut root = stack.root();
        let cluster = declare_cluster_parameters(&mut root, d);
        let source_backup_id = root.parameter(
            "SourceBackupId",
            Parameter::new(ParameterType::String)
                .description("The CloudHSM backup to restore (READY, in this Region; `aws cloudhsmv2 describe-backups`). Its users, keys and cluster certificate come back; ClusterMode must be the backup's.")
                .allowed_pattern(BACKUP_ID_PATTERN)
                .constraint_description("a backup id such as backup-ro5c4er4aac"),
        );
        let admin_password_secret_arn = root.parameter(
            "SourceAdminPasswordSecretArn",
            Parameter::new(ParameterType::String)
                .description("ARN of the Secrets Manager secret with the admin (crypto officer) password of the backup's cluster (e.g. the AdminPasswordSecretArn output of the stack that made it). The restored users keep their passwords.")
                .allowed_pattern(SECRET_ARN_PATTERN)
                .constraint_description("a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"),
        );
        let trust_anchor_secret_arn = root.parameter(
            "SourceTrustAnchorSecretArn",
            Parameter::new(ParameterType::String)
                .description("ARN of the secret with the trust anchor (PEM) of the backup's cluster (the retained TrustAnchorSecretArn output of the stack that made it).")
                .allowed_pattern(SECRET_ARN_PATTERN)
                .constraint_description("a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"),
        );
        stack.set_metadata(
            "AWS::CloudFormation::Interface",
            json!({
                "ParameterGroups": [
                    {"Label": {"default": "Backup"}, "Parameters": ["SourceBackupId", "SourceAdminPasswordSecretArn", "SourceTrustAnchorSecretArn"]},
                    {"Label": {"default": "Network"}, "Parameters": ["VpcId", "SubnetIds", "ClientSubnetId"]},
                    {"Label": {"default": "Cluster"}, "Parameters": ["HsmsPerSubnet", "HsmType", "ClusterMode", "BackupRetentionDays"]},
                    {"Label": {"default": "Client and key store"}, "Parameters": ["ClientInstanceType", "EnableKeyStore"]}
                ]
            }),
        );
        RestoreParameters {
            cluster,
            source_backup_id,
            admin_password_secret_arn,
            trust_anchor_secret_arn,
        }
    }

    /// The deployment's inputs, all reading these parameters.
    pub fn inputs(&self) -> HsmInputs {
        self.cluster.inputs()
    }

    /// [`ClusterSource::Backup`] from `SourceBackupId`, `SourceAdminPasswordSecretArn` and
    /// `SourceTrustAnchorSecretArn`.
    pub fn source(&self) -> ClusterSource {
        ClusterSource::Backup {
            backup_id: self.source_backup_id.value(),
            admin_password_secret_arn: self.admin_password_secret_arn.value(),
            trust_anchor_secret_arn: self.trust_anchor_secret_arn.value(),
        }
    }
}

impl ClusterParameters {
    fn inputs(&self) -> HsmInputs {
        HsmInputs {
            vpc_id: self.vpc_id.value(),
            subnet_ids: self.subnet_ids.value(),
            hsms_per_subnet: self.hsms_per_subnet.value(),
            client_subnet_id: self.client_subnet_id.value(),
            key_store: KeyStore::When {
                condition: self.key_store_enabled.clone(),
                flag: self.enable_key_store.value(),
            },
            hsm_type: self.hsm_type.value(),
            cluster_mode: self.cluster_mode.value(),
            backup_retention_days: self.backup_retention_days.value(),
            client_instance_type: self.client_instance_type.value(),
        }
    }
}

/// Outputs with their exact names: `ClusterId`, `ClusterSecurityGroupId`, `AdminPasswordSecretArn`,
/// `TrustAnchorSecretArn`, `ClientInstanceId`, `ClusterCsr` (not for a restored cluster), and
/// `KeyStoreId` when the key store may exist.
pub fn add_standard_outputs(root: &mut Scope<'_>, d: &super::CloudHsmDeployment) {
    root.output("ClusterId", d.cluster_id(), "CloudHSM cluster id", None);
    root.output(
        "ClusterSecurityGroupId",
        d.cluster_security_group_id(),
        "Security group of the cluster's HSM ENIs",
        None,
    );
    root.output(
        "AdminPasswordSecretArn",
        d.admin_password_secret_arn(),
        "Secrets Manager secret holding the admin (crypto officer) password",
        None,
    );
    root.output(
        "TrustAnchorSecretArn",
        d.trust_anchor_secret_arn(),
        "Secret holding the cluster's trust anchor certificate (retained)",
        None,
    );
    root.output(
        "ClientInstanceId",
        d.client_instance_id(),
        "EC2 instance that administers the cluster",
        None,
    );
    // A restored cluster is initialized already: no CSR, no output.
    if d.initialization.is_some() {
        root.output(
            "ClusterCsr",
            d.cluster_csr(),
            "External PKI: the cluster's CSR (PEM) to sign while initialization waits for the certificate; empty once initialized",
            None,
        );
    }
    if let Some((id, cond)) = d.key_store_id() {
        root.output("KeyStoreId", id, "KMS custom key store id", cond.as_ref());
    }
}
