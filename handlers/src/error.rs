//! The typed step error. Its variant names are the Lambda `errorType` values that the state
//! machines' `Retry`/`Catch` match (docs/architecture.md, "errorType" table).

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};

/// Every step returns `Result<serde_json::Value, StepError>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Throttling, internal failure, network: safe to retry.
    #[error("{0}")]
    Transient(String),
    /// The request cannot succeed as given; the message says what and how to fix it.
    #[error("{0}")]
    InvalidInput(String),
    /// A resource reached a failure state (DEGRADED, FAILED, command failed).
    #[error("{0}")]
    ResourceFailed(String),
    /// A bounded wait ran out.
    #[error("{0}")]
    WaitTimeout(String),
    /// Refused because of live state (e.g. the key store still holds KMS keys).
    #[error("{0}")]
    Conflict(String),
}

impl StepError {
    /// The Lambda `errorType`, stable across builds.
    pub fn error_type(&self) -> &'static str {
        match self {
            StepError::Transient(_) => "Transient",
            StepError::InvalidInput(_) => "InvalidInput",
            StepError::ResourceFailed(_) => "ResourceFailed",
            StepError::WaitTimeout(_) => "WaitTimeout",
            StepError::Conflict(_) => "Conflict",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            StepError::Transient(m)
            | StepError::InvalidInput(m)
            | StepError::ResourceFailed(m)
            | StepError::WaitTimeout(m)
            | StepError::Conflict(m) => m,
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        StepError::InvalidInput(msg.into())
    }
}

impl From<StepError> for lambda_runtime::Diagnostic {
    fn from(e: StepError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.message().to_string(),
        }
    }
}

pub type StepResult<T = serde_json::Value> = Result<T, StepError>;

/// Error codes that mean "try again later" in any of the services we call.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "PriorRequestNotComplete",
    "SlowDown",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServiceError",
    "InternalServiceErrorException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    // CloudHSM: "internal failure. The request can be retried." (aws-behaviour.md 1.2)
    "CloudHsmInternalFailureException",
    // CloudHSM: "an error occurred" with no further meaning; treated as retryable.
    "CloudHsmServiceException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "InternalServiceErrorException",
];

pub fn is_transient_code(code: &str) -> bool {
    TRANSIENT_CODES.contains(&code)
}

/// What we know about a failed SDK call, independent of the service.
#[derive(Debug, Clone)]
pub struct AwsFailure {
    /// Operation name, e.g. `cloudhsmv2:CreateHsm`.
    pub op: String,
    /// Service error code (`__type`), when the service answered.
    pub code: Option<String>,
    pub message: String,
    /// Throttling, 5xx, timeout, connection failure.
    pub transient: bool,
}

impl AwsFailure {
    pub fn from_sdk<E, R>(op: &str, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
        R: fmt::Debug + HasStatus,
    {
        match err {
            SdkError::ServiceError(se) => {
                let code = se.err().code().map(str::to_string);
                let status = se.raw().status_code();
                let transient =
                    code.as_deref().is_some_and(is_transient_code) || (500..600).contains(&status);
                AwsFailure {
                    op: op.to_string(),
                    message: se.err().message().unwrap_or_default().to_string(),
                    code,
                    transient,
                }
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => AwsFailure {
                op: op.to_string(),
                code: None,
                message: format!("{}", aws_sdk_kms::error::DisplayErrorContext(err)),
                transient: true,
            },
            // ConstructionFailure and future variants: our request was malformed.
            _ => AwsFailure {
                op: op.to_string(),
                code: None,
                message: format!("{}", aws_sdk_kms::error::DisplayErrorContext(err)),
                transient: false,
            },
        }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    pub fn describe(&self) -> String {
        match &self.code {
            Some(c) => format!("{} failed: {}: {}", self.op, c, self.message),
            None => format!("{} failed: {}", self.op, self.message),
        }
    }

    /// Transient when retryable, otherwise the given classification.
    pub fn or_else(self, non_transient: fn(String) -> StepError) -> StepError {
        if self.transient {
            StepError::Transient(self.describe())
        } else {
            non_transient(self.describe())
        }
    }
}

/// The HTTP status of a raw response (the SDK's response type, or `()` in tests).
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_kms::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Classify an SDK error: retryable ones become `Transient`, anything else `InvalidInput`
/// (the request as given cannot succeed). Call sites that know better match on the code first.
pub fn aws_err<E, R>(op: &str, err: SdkError<E, R>) -> StepError
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: fmt::Debug + HasStatus,
{
    AwsFailure::from_sdk(op, &err).or_else(StepError::InvalidInput)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_uses_stable_error_type_names() {
        let d: lambda_runtime::Diagnostic = StepError::WaitTimeout("x".into()).into();
        assert_eq!(d.error_type, "WaitTimeout");
        assert_eq!(d.error_message, "x");
        let d: lambda_runtime::Diagnostic = StepError::Conflict("keys".into()).into();
        assert_eq!(d.error_type, "Conflict");
    }

    #[test]
    fn transient_codes() {
        assert!(is_transient_code("ThrottlingException"));
        assert!(is_transient_code("CloudHsmInternalFailureException"));
        assert!(!is_transient_code("CloudHsmInvalidRequestException"));
        assert!(!is_transient_code("CustomKeyStoreHasCMKsException"));
    }
}
