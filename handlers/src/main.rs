//! `bootstrap`: the one Lambda binary. `_HANDLER` selects the function group.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use handlers::clients::Clients;
use handlers::error::StepError;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .with_target(false)
        .init();
    // ureq is built without a TLS provider: use aws-lc-rs for the whole process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let handler = std::env::var("_HANDLER").unwrap_or_default();
    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // Shared by every invocation for the life of the process.
    let clients: &'static Clients = Box::leak(Box::new(Clients::from_conf(&conf)));
    let handler: &'static str = Box::leak(handler.into_boxed_str());

    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        handlers::dispatch(clients, handler, ev.payload).await
    }))
    .await
}

// The error type returned to the runtime must convert into a Diagnostic with our errorType.
const _: fn(StepError) -> lambda_runtime::Diagnostic = |e| e.into();
