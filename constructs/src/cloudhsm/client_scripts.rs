//! The SSM Command documents run on the client instance (`aws:runShellScript`, schema 2.2).
//!
//! Parameters are ids and ARNs only, each with an `allowedPattern`, so a value can neither carry a
//! secret nor inject shell code. The scripts (in `client_scripts/*.sh`) fetch secrets on the
//! instance with `aws secretsmanager get-secret-value` and hand them to `cloudhsm-cli` through
//! `CLOUDHSM_ROLE`/`CLOUDHSM_PIN` or its password prompt; every `cloudhsm-cli` answer is checked
//! (`error_code == 0`) so a failure fails the command.

use serde_json::{json, Map, Value};

use super::ClientDocuments;

pub const COMMON: &str = include_str!("client_scripts/common.sh");
pub const ACTIVATE_CLUSTER: &str = include_str!("client_scripts/activate_cluster.sh");
pub const REFRESH_CLIENT_CONFIG: &str = include_str!("client_scripts/refresh_client_config.sh");
pub const CREATE_KMS_USER: &str = include_str!("client_scripts/create_kms_user.sh");

const CLUSTER_ID_PATTERN: &str = "^cluster-[2-7a-zA-Z]{11,16}$";
const SECRET_ARN_PATTERN: &str =
    "^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$";
const OPTIONAL_SECRET_ARN_PATTERN: &str =
    "^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+)?$";
const HEREDOC_END: &str = "CLOUDHSM_CONSTRUCT_SCRIPT";

/// A document parameter: (name, required).
type Param = (&'static str, bool);

fn parameter(name: &str, required: bool) -> Value {
    let (pattern, what) = if name == "ClusterId" {
        (CLUSTER_ID_PATTERN, "The CloudHSM cluster id")
    } else if required {
        (
            SECRET_ARN_PATTERN,
            "ARN of a Secrets Manager secret (the value is read on the instance)",
        )
    } else {
        (
            OPTIONAL_SECRET_ARN_PATTERN,
            "ARN of a Secrets Manager secret (the value is read on the instance), or empty",
        )
    };
    let mut p = json!({"type": "String", "description": format!("{name}: {what}"), "allowedPattern": pattern});
    if !required {
        p["default"] = json!("");
    }
    p
}

/// The full script: shared helpers then the document's own part.
pub fn script(body: &str) -> String {
    format!("#!/bin/bash\n{COMMON}\n{body}")
}

/// `runCommand` lines: the script is written to a private temporary file and run with bash, so it
/// does not depend on the shell the agent uses (the agent may run the lines with `sh`).
fn run_command(body: &str) -> Vec<String> {
    let mut lines = vec![
        "set -e".to_string(),
        "f=$(mktemp)".to_string(),
        format!("cat >\"$f\" <<'{HEREDOC_END}'"),
    ];
    lines.extend(script(body).lines().map(str::to_string));
    lines.push(HEREDOC_END.to_string());
    lines.push("rc=0; bash \"$f\" || rc=$?; rm -f \"$f\"; exit $rc".to_string());
    lines
}

fn document(description: &str, params: &[Param], body: &str) -> Value {
    let mut parameters = Map::new();
    for (name, required) in params {
        parameters.insert((*name).to_string(), parameter(name, *required));
    }
    json!({
        "schemaVersion": "2.2",
        "description": description,
        "parameters": parameters,
        "mainSteps": [{
            "action": "aws:runShellScript",
            "name": "run",
            "precondition": {"StringEquals": ["platformType", "Linux"]},
            "inputs": {"timeoutSeconds": "600", "runCommand": run_command(body)}
        }]
    })
}

pub const ACTIVATE_PARAMS: &[Param] = &[
    ("ClusterId", true),
    ("AdminPasswordSecretArn", true),
    ("TrustAnchorSecretArn", true),
];
pub const REFRESH_PARAMS: &[Param] = &[("ClusterId", true), ("TrustAnchorSecretArn", false)];
pub const KMSUSER_PARAMS: &[Param] = &[
    ("ClusterId", true),
    ("AdminPasswordSecretArn", true),
    ("KmsUserSecretArn", true),
    ("TrustAnchorSecretArn", false),
];

/// The three documents (`ActivateCluster`, `RefreshClientConfig`, `CreateKmsUser`).
pub fn client_documents() -> ClientDocuments {
    ClientDocuments {
        activate_cluster: document(
            "Activate the CloudHSM cluster: install the trust anchor, configure the CLI, set the admin password from Secrets Manager",
            ACTIVATE_PARAMS,
            ACTIVATE_CLUSTER,
        ),
        refresh_client_config: document(
            "Point the CloudHSM CLI at the cluster's current HSMs",
            REFRESH_PARAMS,
            REFRESH_CLIENT_CONFIG,
        ),
        create_kms_user: document(
            "Create the crypto user kmsuser on every HSM with its own password and verify full cluster coverage",
            KMSUSER_PARAMS,
            CREATE_KMS_USER,
        ),
    }
}

#[cfg(test)]
mod tests;
