//! Test support: `Clients` whose calls are answered by aws-smithy-mocks rules.
//! (Built by hand: the SDK crates' `test-util` feature is not enabled in this workspace.)

use aws_sdk_kms::error::ErrorMetadata;
use aws_smithy_mocks::{create_mock_http_client, MockResponseInterceptor, Rule, RuleMode};

use crate::clients::Clients;

macro_rules! mocked {
    ($krate:ident, $rules:expr) => {{
        let mut i = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for r in $rules {
            i = i.with_rule(r);
        }
        let conf = $krate::Config::builder()
            .behavior_version($krate::config::BehaviorVersion::latest())
            .region($krate::config::Region::new("us-east-1"))
            .credentials_provider($krate::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .retry_config($krate::config::retry::RetryConfig::disabled())
            .http_client(create_mock_http_client())
            .interceptor(i)
            .build();
        $krate::Client::from_conf(conf)
    }};
}

/// Every client sees every rule; a rule only matches its own operation.
pub fn clients(rules: &[&Rule]) -> Clients {
    Clients {
        hsm: mocked!(aws_sdk_cloudhsmv2, rules),
        kms: mocked!(aws_sdk_kms, rules),
        secrets: mocked!(aws_sdk_secretsmanager, rules),
        ssm: mocked!(aws_sdk_ssm, rules),
        ec2: mocked!(aws_sdk_ec2, rules),
        sfn: mocked!(aws_sdk_sfn, rules),
        pca: mocked!(aws_sdk_acmpca, rules),
    }
}

/// Error metadata as a service would send it (`__type` code and message).
pub fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}
