//! The synthesis pipeline behind the `synth` binary, as library functions:
//! build the example app → validate → emit `cdk.out/` (templates, asset manifests, manifest,
//! tree) with the Lambda asset built by cargo-lambda when the handlers changed.
//!
//! `ops` (deploy, destroy, status, bench) calls [`synthesize_app`].

pub mod app;
pub mod assembly;
pub mod assets;
pub mod cli;
pub mod ops;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use app::DefaultOverrides;
pub use assets::Arch;

/// Everything a synthesis run needs.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub app: String,
    pub arch: Arch,
    pub out_dir: PathBuf,
    pub overrides: DefaultOverrides,
    pub stack_name: Option<String>,
    /// Template-only assembly (no Lambda build; not deployable).
    pub skip_assets: bool,
    pub yaml: bool,
}

impl SynthOptions {
    pub fn new(app: &str, arch: Arch, out_dir: &Path) -> Self {
        SynthOptions {
            app: app.into(),
            arch,
            out_dir: out_dir.to_path_buf(),
            overrides: DefaultOverrides::default(),
            stack_name: None,
            skip_assets: false,
            yaml: false,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct SynthReport {
    pub stacks: Vec<assembly::WrittenStack>,
    /// Resource logical id → type, per stack (in template order).
    pub resources: Vec<(String, Vec<(String, String)>)>,
    pub asset: Option<assets::BuiltAsset>,
    pub asset_time: Duration,
    pub synth_time: Duration,
}

/// Synthesizes `app` into `out_dir` with the Lambda asset built for `arch` ("arm64", "x86_64",
/// "host"; None = arm64, the production default).
pub fn synthesize_app(
    app: &str,
    arch: Option<&str>,
    out_dir: &Path,
) -> Result<SynthReport, String> {
    let arch = match arch {
        Some(a) => Arch::parse(a)?,
        None => Arch::Arm64,
    };
    synthesize(&SynthOptions::new(app, arch, out_dir))
}

/// The whole pipeline.
pub fn synthesize(opts: &SynthOptions) -> Result<SynthReport, String> {
    let root = assets::workspace_root();
    let t0 = Instant::now();
    let (code, asset, sources) = if opts.skip_assets {
        (
            constructs::cloudhsm::placeholder_code("skip-assets"),
            None,
            vec![],
        )
    } else {
        let built = assets::build_handlers(&root, opts.arch)?;
        let file = constructs::tree::FileAsset {
            sha256: built.sha256.clone(),
            file_name: format!("asset.{}.zip", built.sha256),
            extension: ".zip".into(),
            display_name: format!("handlers bootstrap ({})", opts.arch.name()),
        };
        let sources = vec![(file.file_name.clone(), built.zip.clone())];
        (file, Some(built), sources)
    };
    let asset_time = t0.elapsed();
    let t1 = Instant::now();
    let app = app::build_app(
        &opts.app,
        &opts.overrides,
        code,
        opts.arch.to_constructs(),
        opts.stack_name.clone(),
    )?;
    let mut synthesized = app.synth().map_err(|e| e.to_string())?;
    if opts.skip_assets {
        for s in &mut synthesized.stacks {
            s.assets.clear();
        }
    }
    let docs = assembly::write(&synthesized, &opts.out_dir, &sources)?;
    if opts.yaml {
        for s in &synthesized.stacks {
            let p = opts.out_dir.join(format!("{}.template.yaml", s.name));
            std::fs::write(&p, &s.template_yaml)
                .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
    }
    let resources = synthesized
        .stacks
        .iter()
        .map(|s| {
            let list = s.template["Resources"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v["Type"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (s.name.clone(), list)
        })
        .collect();
    Ok(SynthReport {
        stacks: docs.stacks,
        resources,
        asset,
        asset_time,
        synth_time: t1.elapsed(),
    })
}
