//! Props of [`super::CloudHsmDeployment`] and their defaults.

use crate::cfn::Value;
use crate::tree::{ConditionHandle, FileAsset};

/// Lambda architecture of the handlers' `bootstrap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Architecture {
    #[default]
    Arm64,
    X86_64,
}

impl Architecture {
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        }
    }
}

/// Whether the key store exists: always, never, or when a template condition holds.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyStore {
    Disabled,
    Enabled,
    /// Decided at deploy by `condition`; `flag` is the `"true"`/`"false"` value the condition
    /// tests (used for synth-time checks when its value is known, e.g. a parameter default).
    When {
        condition: ConditionHandle,
        flag: Value<String>,
    },
}

/// How the cluster certificate is signed during initialization.
///
/// The first three variants fix the choice at synth (for embedders); [`Pki::FromParameters`]
/// leaves it to the stack parameters `PkiMode`, `AcmPcaArn`, `ExternalSignedCertificate` and
/// `ExternalTrustAnchor` at deploy (what the `dev` and `production` apps use; build it with
/// [`super::StackParameters::pki`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Pki {
    /// A throwaway CA created in the workflow; its private key never leaves the Lambda's memory.
    #[default]
    BuiltIn,
    /// An ACM Private CA (ARN) issues the certificate.
    AcmPrivateCa { arn: Value<String> },
    /// Your own PKI: the first deploy publishes the CSR and leaves the cluster uninitialized;
    /// an update with the signed certificate and the trust anchor (PEM) finishes it.
    External {
        signed_certificate: Value<String>,
        trust_anchor: Value<String>,
    },
    /// Decided at deploy by stack parameters (any of the three modes above).
    FromParameters(Box<PkiParameters>),
}

/// The deploy-time PKI choice: values (normally `Ref`s of the PKI stack parameters) and the
/// condition that holds when an ACM Private CA ARN is given. Empty strings mean "not given" (the
/// handler treats an empty property as absent).
#[derive(Debug, Clone, PartialEq)]
pub struct PkiParameters {
    /// `BuiltIn`, `AcmPrivateCa` or `External`.
    pub mode: Value<String>,
    /// The CA ARN, or "".
    pub acm_pca_arn: Value<String>,
    /// PEM, or "" (External phase 1).
    pub external_signed_certificate: Value<String>,
    /// PEM, or "" (External phase 1).
    pub external_trust_anchor: Value<String>,
    /// Holds when `acm_pca_arn` is not empty: the function role gets the `acm-pca:` statement
    /// on that ARN only then.
    pub acm_pca_arn_given: ConditionHandle,
}

impl Pki {
    /// The `PkiMode` property: a literal for a synth-time choice, else the parameter's value.
    pub fn mode(&self) -> Value<String> {
        match self {
            Pki::BuiltIn => "BuiltIn".into(),
            Pki::AcmPrivateCa { .. } => "AcmPrivateCa".into(),
            Pki::External { .. } => "External".into(),
            Pki::FromParameters(p) => p.mode.clone(),
        }
    }
}

/// Where the cluster comes from.
// Built once per deployment: the variants' size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ClusterSource {
    /// A new cluster (native `AWS::CloudHSM::Cluster`), initialized and activated by the stack.
    #[default]
    New,
    /// A cluster created from an existing CloudHSM backup (`Custom::RestoredCluster`). It is
    /// ACTIVE once created: no initialization, no activation; the first HSM restores the backup's
    /// users and keys. The backup's users keep their password, so the stack uses the secrets
    /// given here (normally those of the stack that made the backup: its retained trust anchor
    /// secret and its admin password secret) instead of creating its own.
    Backup {
        /// `backup-…` (READY, this Region).
        backup_id: Value<String>,
        /// Secret holding the admin (crypto officer) password of the backup's cluster.
        admin_password_secret_arn: Value<String>,
        /// Secret holding the backup's cluster trust anchor (PEM).
        trust_anchor_secret_arn: Value<String>,
    },
}

/// `AllowedPattern` of a CloudHSM backup id parameter.
pub const BACKUP_ID_PATTERN: &str = "^backup-[2-7a-zA-Z]{11,16}$";
/// `AllowedPattern` of a Secrets Manager secret ARN parameter.
pub const SECRET_ARN_PATTERN: &str =
    "^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$";

/// Encryption of secrets, logs and the client's volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// AWS managed keys (`aws/secretsmanager`, `aws/ebs`, CloudWatch Logs' own encryption).
    #[default]
    AwsManaged,
    /// A customer-managed KMS key (rotation on) created by the construct for secrets, log groups
    /// and the client's root volume.
    CustomerManagedKey,
}

/// Deploy-time inputs: literals, your own resources' attributes, or parameter references
/// (see [`super::StackParameters`]).
#[derive(Debug, Clone)]
pub struct HsmInputs {
    pub vpc_id: Value<String>,
    /// One subnet per Availability Zone, all in `vpc_id` (1–10).
    pub subnet_ids: Value<Vec<String>>,
    /// HSMs per subnet (≥ 0; 0 keeps the cluster and its backups without HSMs).
    pub hsms_per_subnet: Value<i64>,
    /// Where the client instance runs (any subnet of the VPC with a route to SSM and S3).
    pub client_subnet_id: Value<String>,
    pub key_store: KeyStore,
    /// Default `hsm2m.medium` (hsm1.medium is end of life).
    pub hsm_type: Value<String>,
    /// `FIPS` or `NON_FIPS` (create-only).
    pub cluster_mode: Value<String>,
    /// 7–379 days.
    pub backup_retention_days: Value<i64>,
    pub client_instance_type: Value<String>,
}

impl HsmInputs {
    /// Literal inputs with the defaults for everything but the network.
    pub fn new(vpc_id: &str, subnet_ids: &[&str], client_subnet_id: &str) -> Self {
        HsmInputs {
            vpc_id: vpc_id.into(),
            subnet_ids: subnet_ids.to_vec().into(),
            hsms_per_subnet: 1.into(),
            client_subnet_id: client_subnet_id.into(),
            key_store: KeyStore::Disabled,
            hsm_type: DEFAULT_HSM_TYPE.into(),
            cluster_mode: DEFAULT_CLUSTER_MODE.into(),
            backup_retention_days: DEFAULT_BACKUP_RETENTION_DAYS.into(),
            client_instance_type: DEFAULT_CLIENT_INSTANCE_TYPE.into(),
        }
    }
}

pub const DEFAULT_HSM_TYPE: &str = "hsm2m.medium";
pub const DEFAULT_CLUSTER_MODE: &str = "FIPS";
pub const DEFAULT_BACKUP_RETENTION_DAYS: i64 = 90;
/// x86_64, matching the AL2023 x86_64 AMI the client uses.
pub const DEFAULT_CLIENT_INSTANCE_TYPE: &str = "t3.micro";
/// Public SSM parameter with the latest Amazon Linux 2023 AMI (x86_64).
pub const AL2023_AMI_PARAMETER: &str =
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";
/// `AllowedPattern` of the `AcmPcaArn` parameter: empty, or an ACM Private CA
/// certificate-authority ARN in any partition.
pub const ACM_PCA_ARN_PATTERN: &str =
    "^(|arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:[0-9]{12}:certificate-authority/[0-9a-f-]+)$";
/// Retention values CloudWatch Logs accepts.
pub const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Props of [`super::CloudHsmDeployment`].
#[derive(Debug, Clone)]
pub struct CloudHsmDeploymentProps {
    pub inputs: HsmInputs,
    /// The handlers' Lambda zip (one asset for every function).
    pub code: FileAsset,
    /// Default arm64.
    pub architecture: Architecture,
    pub encryption: Encryption,
    pub pki: Pki,
    /// A new cluster (default) or one restored from a backup.
    pub source: ClusterSource,
    /// Retention of the functions' and workflows' logs (a CloudWatch Logs value; default 30).
    pub log_retention_days: u32,
    /// Keep the KMS custom key store when the stack (or the key store) is deleted.
    pub retain_key_store_on_delete: bool,
    /// Default: the stack name.
    pub key_store_name: Option<Value<String>>,
}

impl CloudHsmDeploymentProps {
    pub fn new(inputs: HsmInputs, code: FileAsset) -> Self {
        CloudHsmDeploymentProps {
            inputs,
            code,
            architecture: Architecture::default(),
            encryption: Encryption::default(),
            pki: Pki::default(),
            source: ClusterSource::default(),
            log_retention_days: 30,
            retain_key_store_on_delete: false,
            key_store_name: None,
        }
    }
}

/// A placeholder asset for tests and `--skip-assets` (content = the given label).
pub fn placeholder_code(label: &str) -> FileAsset {
    use sha2::{Digest, Sha256};
    let sha: String = Sha256::digest(label.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    FileAsset {
        file_name: format!("asset.{sha}.zip"),
        sha256: sha,
        extension: ".zip".into(),
        display_name: "handlers bootstrap (placeholder)".into(),
    }
}
