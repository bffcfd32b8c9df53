//! The synthesis command line (`synth [OPTIONS]`).

use std::path::PathBuf;

use clap::Args;

use crate::app::DefaultOverrides;

/// Options of `synth` itself (no subcommand).
#[derive(Args, Debug, Clone)]
pub struct SynthArgs {
    /// Example app to synthesize.
    #[arg(long, default_value = "dev", value_parser = ["dev", "production", "embedded", "restore"])]
    pub app: String,
    /// Lambda architecture: arm64 (default), x86_64, or host (this machine's, for a local emulator).
    #[arg(long, default_value = "arm64", value_parser = ["arm64", "x86_64", "host"])]
    pub arch: String,
    /// Output directory (default: $CDK_OUTDIR when the CDK CLI runs us, else cdk.out).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stack name (default: the app's: CloudHsmDev, CloudHsmProduction, PaymentsPlatform, CloudHsmRestore).
    #[arg(long)]
    pub stack_name: Option<String>,
    /// Do not build the Lambda asset: a template-only assembly (not deployable), for quick checks.
    #[arg(long)]
    pub skip_assets: bool,
    /// Also write <Stack>.template.yaml next to the JSON template.
    #[arg(long)]
    pub yaml: bool,

    /// Default of VpcId.
    #[arg(long)]
    pub vpc_id: Option<String>,
    /// Default of SubnetIds (comma-separated; "" = none).
    #[arg(long)]
    pub subnet_ids: Option<String>,
    /// Default of HsmsPerSubnet.
    #[arg(long, allow_negative_numbers = true)]
    pub hsms_per_subnet: Option<i64>,
    /// Default of ClientSubnetId.
    #[arg(long)]
    pub client_subnet_id: Option<String>,
    /// Default of EnableKeyStore.
    #[arg(long)]
    pub enable_key_store: Option<bool>,
    /// Default of HsmType.
    #[arg(long)]
    pub hsm_type: Option<String>,
    /// Default of ClusterMode (FIPS or NON_FIPS).
    #[arg(long)]
    pub cluster_mode: Option<String>,
    /// Default of BackupRetentionDays (7-379).
    #[arg(long, allow_negative_numbers = true)]
    pub backup_retention_days: Option<i64>,
    /// Default of ClientInstanceType.
    #[arg(long)]
    pub client_instance_type: Option<String>,
}

impl SynthArgs {
    pub fn overrides(&self) -> DefaultOverrides {
        DefaultOverrides {
            vpc_id: self.vpc_id.clone(),
            subnet_ids: self.subnet_ids.as_ref().map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            }),
            hsms_per_subnet: self.hsms_per_subnet,
            client_subnet_id: self.client_subnet_id.clone(),
            enable_key_store: self.enable_key_store,
            hsm_type: self.hsm_type.clone(),
            cluster_mode: self.cluster_mode.clone(),
            backup_retention_days: self.backup_retention_days,
            client_instance_type: self.client_instance_type.clone(),
        }
    }

    pub fn out_dir(&self) -> PathBuf {
        self.out
            .clone()
            .or_else(|| std::env::var_os("CDK_OUTDIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("cdk.out"))
    }
}
