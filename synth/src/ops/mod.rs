//! The operations of the `synth` binary beyond synthesis: `deploy`, `destroy`, `status`, `bench`.
//! Each command module has a clap `…Args` struct and `run(args) -> ExitCode`; main.rs dispatches
//! to them. `run` is synchronous (it builds its own tokio runtime), so main stays plain.

pub mod assembly;
pub mod aws;
pub mod bench;
pub mod critical_path;
pub mod deploy;
pub mod destroy;
pub mod history;
pub mod http;
pub mod params;
pub mod rootcause;
pub mod status;
pub mod synthesis;
pub mod watch;

pub use bench::BenchArgs;
pub use deploy::DeployArgs;
pub use destroy::DestroyArgs;
pub use status::StatusArgs;

/// `--output text|json`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}
