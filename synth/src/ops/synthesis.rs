//! The one place the operations call the synthesis library (`synth/src/lib.rs`, owned by the
//! constructs side): synthesize an example app into a cloud assembly directory, with its Lambda
//! asset built for an architecture.

use std::path::Path;

/// The example apps (`examples/`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppChoice {
    /// One cluster, no key store.
    Dev,
    /// Cluster + KMS custom key store.
    Production,
    /// The constructs embedded in a larger stack.
    Embedded,
    /// A cluster restored from a CloudHSM backup.
    Restore,
}

impl AppChoice {
    pub fn name(self) -> &'static str {
        match self {
            AppChoice::Dev => "dev",
            AppChoice::Production => "production",
            AppChoice::Embedded => "embedded",
            AppChoice::Restore => "restore",
        }
    }
}

/// Lambda architectures.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchChoice {
    #[value(name = "x86_64")]
    X86_64,
    #[value(name = "arm64")]
    Arm64,
}

impl ArchChoice {
    /// The machine this runs on: what an emulator can execute without emulation.
    pub fn host() -> ArchChoice {
        if std::env::consts::ARCH == "aarch64" {
            ArchChoice::Arm64
        } else {
            ArchChoice::X86_64
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ArchChoice::X86_64 => "x86_64",
            ArchChoice::Arm64 => "arm64",
        }
    }
}

/// Synthesizes `app` into `out_dir` (manifest.json, template, asset manifest, Lambda zip).
/// `arch` None = the app's default architecture.
pub fn synthesize(app: AppChoice, arch: Option<ArchChoice>, out_dir: &Path) -> Result<(), String> {
    crate::synthesize_app(app.name(), arch.map(ArchChoice::name), out_dir).map(|_| ())
}
