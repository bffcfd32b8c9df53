//! The Lambda asset: the handlers' `bootstrap` built with cargo-lambda into a zip, rebuilt only
//! when the handlers' sources change (content hash of the inputs), staged as
//! `asset.<sha256 of the zip>.zip`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// A Lambda architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Arm64,
    X86_64,
}

impl Arch {
    /// The machine this runs on.
    pub fn host() -> Arch {
        if std::env::consts::ARCH == "aarch64" {
            Arch::Arm64
        } else {
            Arch::X86_64
        }
    }

    pub fn parse(s: &str) -> Result<Arch, String> {
        match s {
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            "x86_64" | "x86-64" | "amd64" => Ok(Arch::X86_64),
            "host" => Ok(Arch::host()),
            other => Err(format!(
                "unknown architecture `{other}`; use arm64, x86_64 or host"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::X86_64 => "x86_64",
        }
    }

    fn cargo_lambda_flag(self) -> &'static str {
        match self {
            Arch::Arm64 => "--arm64",
            Arch::X86_64 => "--x86-64",
        }
    }

    fn rust_target(self) -> &'static str {
        match self {
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
        }
    }

    pub fn to_constructs(self) -> constructs::cloudhsm::Architecture {
        match self {
            Arch::Arm64 => constructs::cloudhsm::Architecture::Arm64,
            Arch::X86_64 => constructs::cloudhsm::Architecture::X86_64,
        }
    }
}

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("synth lives in the workspace")
        .to_path_buf()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 over everything that determines the `bootstrap` binary: the handlers crate's sources,
/// its manifest, the workspace manifest and lock file, and the architecture.
pub fn handlers_inputs_hash(root: &Path, arch: Arch) -> Result<String, String> {
    let mut files = vec![
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
        root.join("handlers/Cargo.toml"),
    ];
    collect_files(&root.join("handlers/src"), &mut files)?;
    if root.join("handlers/build.rs").exists() {
        files.push(root.join("handlers/build.rs"));
    }
    files.sort();
    let mut h = Sha256::new();
    h.update(arch.name().as_bytes());
    for f in files {
        let rel = f
            .strip_prefix(root)
            .unwrap_or(&f)
            .to_string_lossy()
            .into_owned();
        let bytes = fs::read(&f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        h.update((rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(hex(&h.finalize()))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for e in entries {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// The built zip, from the cache or a fresh build.
#[derive(Debug, Clone)]
pub struct BuiltAsset {
    pub zip: PathBuf,
    pub sha256: String,
    /// False when the cached zip was reused.
    pub built: bool,
}

/// Returns the handlers' zip for `arch`, building it with cargo-lambda only when the inputs
/// changed since the last build.
pub fn build_handlers(root: &Path, arch: Arch) -> Result<BuiltAsset, String> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    build_handlers_in(root, arch, &target_dir)
}

/// [`build_handlers`] with an explicit target directory (the cache lives in
/// `<target>/lambda-assets/<arch>/<inputs hash>.zip`).
pub fn build_handlers_in(root: &Path, arch: Arch, target_dir: &Path) -> Result<BuiltAsset, String> {
    let inputs = handlers_inputs_hash(root, arch)?;
    let cache_dir = target_dir.join("lambda-assets").join(arch.name());
    let cached = cache_dir.join(format!("{inputs}.zip"));
    if cached.exists() {
        let bytes =
            fs::read(&cached).map_err(|e| format!("cannot read {}: {e}", cached.display()))?;
        return Ok(BuiltAsset {
            sha256: sha256_hex(&bytes),
            zip: cached,
            built: false,
        });
    }
    let venv_bin = root.join(".tools/venv/bin");
    let cargo_lambda = venv_bin.join("cargo-lambda");
    if !cargo_lambda.exists() {
        return Err(format!(
            "cargo-lambda is not installed at {}: run `tools/setup` first (or synthesize with --skip-assets for a template-only assembly)",
            cargo_lambda.display()
        ));
    }
    if arch == Arch::Arm64 && Arch::host() != Arch::Arm64 {
        ensure_rust_target(arch)?;
    }
    // cargo-lambda finds zig through the first python3 on PATH: the venv's.
    let path = match std::env::var_os("PATH") {
        Some(p) => {
            let mut parts = vec![venv_bin.clone()];
            parts.extend(std::env::split_paths(&p));
            std::env::join_paths(parts).map_err(|e| e.to_string())?
        }
        None => venv_bin.clone().into_os_string(),
    };
    eprintln!("synth: building the Lambda asset for {} with cargo-lambda (handlers changed or first build)…", arch.name());
    let status = Command::new(&cargo_lambda)
        .args([
            "lambda",
            "build",
            "--release",
            arch.cargo_lambda_flag(),
            "--output-format",
            "zip",
            "-p",
            "handlers",
        ])
        .current_dir(root)
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", cargo_lambda.display()))?;
    if !status.success() {
        return Err(format!(
            "cargo lambda build failed ({status}) for {}; see the output above{}",
            arch.name(),
            if arch == Arch::Arm64 {
                " — if the arm64 toolchain is the problem, try `--arch x86_64`"
            } else {
                ""
            }
        ));
    }
    let zip = find_bootstrap_zip(&target_dir.join("lambda"))?;
    fs::create_dir_all(&cache_dir)
        .map_err(|e| format!("cannot create {}: {e}", cache_dir.display()))?;
    fs::copy(&zip, &cached)
        .map_err(|e| format!("cannot copy {} to {}: {e}", zip.display(), cached.display()))?;
    let bytes = fs::read(&cached).map_err(|e| e.to_string())?;
    Ok(BuiltAsset {
        sha256: sha256_hex(&bytes),
        zip: cached,
        built: true,
    })
}

/// cargo-lambda writes `target/lambda/<binary>/bootstrap.zip`; the handlers crate has one binary.
fn find_bootstrap_zip(lambda_dir: &Path) -> Result<PathBuf, String> {
    for name in ["bootstrap", "handlers"] {
        let p = lambda_dir.join(name).join("bootstrap.zip");
        if p.exists() {
            return Ok(p);
        }
    }
    let mut found = Vec::new();
    if let Ok(entries) = fs::read_dir(lambda_dir) {
        for e in entries.flatten() {
            let p = e.path().join("bootstrap.zip");
            if p.exists() {
                found.push(p);
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!(
            "cargo lambda build produced no bootstrap.zip under {}",
            lambda_dir.display()
        )),
        _ => Err(format!(
            "several bootstrap.zip under {}; the handlers crate must have one binary",
            lambda_dir.display()
        )),
    }
}

fn ensure_rust_target(arch: Arch) -> Result<(), String> {
    let target = arch.rust_target();
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    if let Ok(out) = &installed {
        if String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == target)
        {
            return Ok(());
        }
    }
    eprintln!("synth: installing the Rust standard library for {target} (rustup target add)…");
    let ok = Command::new("rustup")
        .args(["target", "add", target])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the Rust target {target} is missing and `rustup target add {target}` failed: install it, or build the Lambda asset for x86_64 with `--arch x86_64` (or `--arch host` for a local emulator)"
        ))
    }
}
