//! Content of the SSM Command documents run on the client instance.
// placeholder: the handlers helper replaces this module

use serde_json::{json, Value};

use super::ClientDocuments;

fn document(description: &str, params: &[&str]) -> Value {
    let mut parameters = serde_json::Map::new();
    for p in params {
        parameters.insert(
            (*p).to_string(),
            json!({"type": "String", "description": format!("{p} (an id or ARN, never a secret)")}),
        );
    }
    json!({
        "schemaVersion": "2.2",
        "description": description,
        "parameters": parameters,
        "mainSteps": [{
            "action": "aws:runShellScript",
            "name": "run",
            "inputs": {"runCommand": ["echo 'placeholder document: not implemented yet' >&2", "exit 1"]}
        }]
    })
}

/// The three documents (`ActivateCluster`, `RefreshClientConfig`, `CreateKmsUser`).
pub fn client_documents() -> ClientDocuments {
    ClientDocuments {
        activate_cluster: document(
            "Activate the cluster (placeholder)",
            &[
                "ClusterId",
                "AdminPasswordSecretArn",
                "TrustAnchorSecretArn",
            ],
        ),
        refresh_client_config: document(
            "Refresh the client configuration (placeholder)",
            &["ClusterId"],
        ),
        create_kms_user: document(
            "Create kmsuser on every HSM (placeholder)",
            &["ClusterId", "AdminPasswordSecretArn", "KmsUserSecretName"],
        ),
    }
}
