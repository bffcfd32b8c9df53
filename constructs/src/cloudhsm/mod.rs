//! The CloudHSM constructs: [`CloudHsmDeployment`] (cluster, client, secrets, functions,
//! workflows, custom resources), the standard stack parameters and outputs, and the workflow
//! definitions and client documents they run.

pub mod client_scripts;
mod deployment;
mod parameters;
mod props;
pub mod workflows;

pub use client_scripts::client_documents;
pub use deployment::{client_user_data, CloudHsmDeployment, FUNCTION_GROUPS, HSM_PORTS};
pub use parameters::{
    add_standard_outputs, ParameterDefaults, RestoreParameters, StackParameters, PARAMETER_NAMES,
    RESTORE_PARAMETER_NAMES,
};
pub use props::*;

/// The content (SSM document JSON, schema 2.2) of the client's command documents.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDocuments {
    pub activate_cluster: serde_json::Value,
    pub refresh_client_config: serde_json::Value,
    pub create_kms_user: serde_json::Value,
}
