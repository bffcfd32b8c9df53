//! Where the commands talk to: real AWS (profile/region from the usual chain) or an emulator
//! endpoint. One place builds every client so `--endpoint-url` means the same for all of them.

use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_s3::config::{Credentials, Region};

/// Connection options shared by every command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// Talk to this endpoint instead of AWS (the emulator, e.g. http://127.0.0.1:4566).
    #[arg(long = "endpoint-url", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS Region (default: from the profile/environment; us-east-1 with --endpoint-url).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Named profile from ~/.aws/config.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
}

/// Every client the commands use, built from one configuration.
pub struct Aws {
    pub cfn: aws_sdk_cloudformation::Client,
    pub s3: aws_sdk_s3::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub hsm: aws_sdk_cloudhsmv2::Client,
    pub kms: aws_sdk_kms::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub sts: aws_sdk_sts::Client,
    pub region: String,
    /// `Some(url)` when talking to an emulator.
    pub endpoint_url: Option<String>,
}

impl Aws {
    pub async fn connect(target: &TargetArgs) -> Result<Aws, String> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(profile) = &target.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &target.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &target.endpoint_url {
            loader = loader.endpoint_url(url.trim_end_matches('/'));
            if target.region.is_none()
                && std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                loader = loader.region(Region::new("us-east-1"));
            }
            // The emulator accepts any signature; dummy keys avoid depending on a local profile.
            if target.profile.is_none() && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                loader = loader.credentials_provider(Credentials::new(
                    "testing", "testing", None, None, "emulator",
                ));
            }
        }
        let conf = loader.load().await;
        let region = conf
            .region()
            .map(|r| r.to_string())
            .ok_or("no AWS Region: pass --region or set AWS_REGION / a profile region")?;
        // Emulator endpoints are IPs or localhost: virtual-host bucket names do not resolve there.
        let s3_conf = aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(target.endpoint_url.is_some())
            .build();
        Ok(Aws {
            cfn: aws_sdk_cloudformation::Client::new(&conf),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            sfn: aws_sdk_sfn::Client::new(&conf),
            hsm: aws_sdk_cloudhsmv2::Client::new(&conf),
            kms: aws_sdk_kms::Client::new(&conf),
            ec2: aws_sdk_ec2::Client::new(&conf),
            sts: aws_sdk_sts::Client::new(&conf),
            region,
            endpoint_url: target.endpoint_url.clone(),
        })
    }

    pub fn is_emulator(&self) -> bool {
        self.endpoint_url.is_some()
    }

    /// "region us-east-1" or "emulator http://…": said in messages about missing things.
    pub fn where_(&self) -> String {
        match &self.endpoint_url {
            Some(url) => format!("region {} at {url}", self.region),
            None => format!("region {}", self.region),
        }
    }

    pub async fn account_id(&self) -> Result<String, String> {
        let who = self.sts.get_caller_identity().send().await.map_err(|e| {
            format!(
                "cannot identify the AWS account (sts:GetCallerIdentity): {}",
                describe(&e)
            )
        })?;
        who.account()
            .map(str::to_string)
            .ok_or_else(|| "sts:GetCallerIdentity returned no account".to_string())
    }
}

/// An SDK error as one line: `Code: message`, or the transport error chain.
pub fn describe<E, R>(err: &aws_sdk_cloudformation::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_cloudformation::error::SdkError;
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            match (e.code(), e.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                (None, Some(m)) => m.to_string(),
                (None, None) => format!("{e}"),
            }
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

/// The service error's message (for matching "does not exist", "No updates are to be performed").
pub fn message<E, R>(err: &aws_sdk_cloudformation::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.message())
        .unwrap_or_default()
        .to_string()
}

/// Converts an SDK history event into the neutral form `history` works on.
pub fn history_event(e: &aws_sdk_sfn::types::HistoryEvent) -> super::history::Event {
    use super::history::{Event, Failure, StateEntered};
    let failure = |error: Option<&str>, cause: Option<&str>| {
        Some(Failure {
            error: error.map(str::to_string),
            cause: cause.map(str::to_string),
        })
    };
    let failure = if let Some(d) = e.task_failed_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.task_timed_out_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.task_start_failed_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.task_submit_failed_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.lambda_function_failed_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.lambda_function_timed_out_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.lambda_function_start_failed_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.lambda_function_schedule_failed_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.execution_failed_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.execution_timed_out_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.execution_aborted_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.map_run_failed_event_details() {
        failure(d.error(), d.cause())
    } else if let Some(d) = e.evaluation_failed_event_details() {
        failure(d.error(), d.cause())
    } else {
        None
    };
    Event {
        id: e.id(),
        previous_id: e.previous_event_id(),
        kind: e.r#type().as_str().to_string(),
        state_entered: e.state_entered_event_details().map(|d| StateEntered {
            name: d.name().to_string(),
            input: d.input().map(str::to_string),
        }),
        failure,
        task_resource_type: e
            .task_scheduled_event_details()
            .map(|d| d.resource_type().to_string()),
    }
}
