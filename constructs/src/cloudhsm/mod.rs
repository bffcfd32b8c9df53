//! The CloudHSM constructs.

pub mod client_scripts;
pub mod workflows;

pub use client_scripts::client_documents;

/// The content (SSM document JSON, schema 2.2) of the client's command documents.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDocuments {
    pub activate_cluster: serde_json::Value,
    pub refresh_client_config: serde_json::Value,
    pub create_kms_user: serde_json::Value,
}
