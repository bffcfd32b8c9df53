//! `synth`: synthesize the CloudHSM stack into `cdk.out/` (default), or deploy / destroy / show
//! status / benchmark (`synth deploy|destroy|status|bench`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use synth::cli::SynthArgs;
use synth::{ops, Arch, SynthOptions};

#[derive(Parser, Debug)]
#[command(
    name = "synth",
    version,
    about = "Synthesize and operate the CloudHSM construct stack",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    synth: SynthArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Synthesize (if needed), publish assets, create or update the stack and wait.
    Deploy(ops::DeployArgs),
    /// Delete the stack and wait.
    Destroy(ops::DestroyArgs),
    /// Show the stack, cluster, HSMs and client.
    Status(ops::StatusArgs),
    /// Deploy configurations into the emulator and report timings.
    Bench(ops::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Deploy(a)) => ops::deploy::run(a),
        Some(Command::Destroy(a)) => ops::destroy::run(a),
        Some(Command::Status(a)) => ops::status::run(a),
        Some(Command::Bench(a)) => ops::bench::run(a),
        None => run_synth(&cli.synth),
    }
}

fn run_synth(args: &SynthArgs) -> ExitCode {
    let arch = match Arch::parse(&args.arch) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("synth: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = SynthOptions {
        app: args.app.clone(),
        arch,
        out_dir: args.out_dir(),
        overrides: args.overrides(),
        stack_name: args.stack_name.clone(),
        skip_assets: args.skip_assets,
        yaml: args.yaml,
    };
    match synth::synthesize(&opts) {
        Ok(report) => {
            for (stack, resources) in &report.resources {
                let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
                for (_, t) in resources {
                    *by_type.entry(t.as_str()).or_default() += 1;
                }
                eprintln!("synth: stack {stack}: {} resources", resources.len());
                for (t, n) in by_type {
                    eprintln!("  {n:>3}  {t}");
                }
            }
            for s in &report.stacks {
                eprintln!(
                    "synth: wrote {} ({} bytes)",
                    s.template_file.display(),
                    s.template_bytes
                );
            }
            match &report.asset {
                Some(a) => eprintln!(
                    "synth: Lambda asset {} ({}, {:.1}s)",
                    a.sha256,
                    if a.built {
                        "built"
                    } else {
                        "unchanged, cached"
                    },
                    report.asset_time.as_secs_f64()
                ),
                None => eprintln!(
                    "synth: --skip-assets: the assembly has no Lambda asset and is NOT deployable"
                ),
            }
            eprintln!(
                "synth: synthesized in {} ms into {}",
                report.synth_time.as_millis(),
                opts.out_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("synth: {e}");
            ExitCode::FAILURE
        }
    }
}
