//! Choosing and building the example app with the command line's settings.

use constructs::cloudhsm::ParameterDefaults;
use constructs::tree::{App, FileAsset};

/// Overrides of parameter defaults from the command line (`None` = keep the app's default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DefaultOverrides {
    pub vpc_id: Option<String>,
    pub subnet_ids: Option<Vec<String>>,
    pub hsms_per_subnet: Option<i64>,
    pub client_subnet_id: Option<String>,
    pub enable_key_store: Option<bool>,
    pub hsm_type: Option<String>,
    pub cluster_mode: Option<String>,
    pub backup_retention_days: Option<i64>,
    pub client_instance_type: Option<String>,
}

impl DefaultOverrides {
    pub fn is_empty(&self) -> bool {
        *self == DefaultOverrides::default()
    }

    /// Applies the overrides on top of `base`.
    pub fn apply(&self, base: ParameterDefaults) -> ParameterDefaults {
        ParameterDefaults {
            vpc_id: self.vpc_id.clone().or(base.vpc_id),
            subnet_ids: self.subnet_ids.clone().or(base.subnet_ids),
            hsms_per_subnet: self.hsms_per_subnet.unwrap_or(base.hsms_per_subnet),
            client_subnet_id: self.client_subnet_id.clone().or(base.client_subnet_id),
            enable_key_store: self.enable_key_store.unwrap_or(base.enable_key_store),
            hsm_type: self.hsm_type.clone().unwrap_or(base.hsm_type),
            cluster_mode: self.cluster_mode.clone().unwrap_or(base.cluster_mode),
            backup_retention_days: self
                .backup_retention_days
                .unwrap_or(base.backup_retention_days),
            client_instance_type: self
                .client_instance_type
                .clone()
                .unwrap_or(base.client_instance_type),
        }
    }
}

/// Builds `app` ("dev", "production", "embedded", "restore").
pub fn build_app(
    app: &str,
    overrides: &DefaultOverrides,
    code: FileAsset,
    arch: constructs::cloudhsm::Architecture,
    stack_name: Option<String>,
) -> Result<App, String> {
    let base = match app {
        "dev" => Some(examples::dev_defaults()),
        "production" => Some(examples::production_defaults()),
        "restore" => Some(examples::dev_defaults()),
        "embedded" => None,
        other => {
            return Err(format!(
                "unknown app `{other}`; choose one of {}",
                examples::APPS.join(", ")
            ))
        }
    };
    let defaults = match base {
        Some(b) => Some(overrides.apply(b)),
        None if !overrides.is_empty() => {
            return Err("the embedded app declares its own parameters; parameter-default flags apply to --app dev and --app production".into())
        }
        None => None,
    };
    let opts = examples::AppOptions {
        defaults,
        code,
        architecture: arch,
        stack_name,
    };
    examples::build(app, &opts)
}
