pub mod custom_resource_timeout;
pub mod ebs_encrypted;
pub mod iam_no_service_wildcard;
pub mod iam_wildcard_resource;
pub mod imdsv2_required;
pub mod kms_rotation;
pub mod log_retention;
pub mod no_open_ingress;
pub mod no_public_ip;
pub mod no_secret_values;
pub mod sfn_tasks_handle_errors;
pub mod trust_anchor_retained;

pub const ALL: [crate::Rule; 12] = [
    ("custom_resource_timeout", custom_resource_timeout::check),
    ("ebs_encrypted", ebs_encrypted::check),
    ("iam_no_service_wildcard", iam_no_service_wildcard::check),
    ("iam_wildcard_resource", iam_wildcard_resource::check),
    ("imdsv2_required", imdsv2_required::check),
    ("kms_rotation", kms_rotation::check),
    ("log_retention", log_retention::check),
    ("no_open_ingress", no_open_ingress::check),
    ("no_public_ip", no_public_ip::check),
    ("no_secret_values", no_secret_values::check),
    ("sfn_tasks_handle_errors", sfn_tasks_handle_errors::check),
    ("trust_anchor_retained", trust_anchor_retained::check),
];
