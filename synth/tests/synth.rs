//! The synthesis pipeline: the cloud assembly's shape, determinism, flags, errors, asset cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use synth::{assets, Arch, SynthOptions};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("synth-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

fn template_only(app: &str, out: &Path) -> SynthOptions {
    let mut o = SynthOptions::new(app, Arch::Arm64, out);
    o.skip_assets = true;
    o
}

#[test]
fn writes_a_cdk_cloud_assembly() {
    let out = temp_dir("assembly");
    let report = synth::synthesize(&template_only("dev", &out)).unwrap();
    assert_eq!(report.stacks.len(), 1);
    let manifest = read(&out.join("manifest.json"));
    assert_eq!(manifest["version"], "36.0.0");
    let stack = &manifest["artifacts"]["CloudHsmDev"];
    assert_eq!(stack["type"], "aws:cloudformation:stack");
    assert_eq!(stack["environment"], "aws://unknown-account/unknown-region");
    assert_eq!(
        stack["properties"]["templateFile"],
        "CloudHsmDev.template.json"
    );
    assert_eq!(
        stack["dependencies"],
        serde_json::json!(["CloudHsmDev.assets"])
    );
    assert_eq!(
        manifest["artifacts"]["CloudHsmDev.assets"]["properties"]["file"],
        "CloudHsmDev.assets.json"
    );
    assert_eq!(manifest["artifacts"]["Tree"]["type"], "cdk:tree");
    // Only keys of schema 36 (the CDK CLI rejects unknown ones).
    let keys: Vec<&str> = stack
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "type",
            "environment",
            "properties",
            "dependencies",
            "metadata"
        ]
    );
    let meta = &stack["metadata"]["/CloudHsmDev/Hsm/Cluster/Resource"];
    assert_eq!(meta[0]["type"], "aws:cdk:logicalId");
    // The template is itself an asset, content-addressed.
    let template_text = std::fs::read(out.join("CloudHsmDev.template.json")).unwrap();
    let sha = assets::sha256_hex(&template_text);
    assert_eq!(
        stack["properties"]["stackTemplateAssetObjectUrl"],
        format!("s3://cdk-hnb659fds-assets-${{AWS::AccountId}}-${{AWS::Region}}/{sha}.json")
    );
    let asset_manifest = read(&out.join("CloudHsmDev.assets.json"));
    assert_eq!(
        asset_manifest["files"][&sha]["source"],
        serde_json::json!({"path": "CloudHsmDev.template.json", "packaging": "file"})
    );
    assert_eq!(
        asset_manifest["files"][&sha]["destinations"]["current_account-current_region"]
            ["objectKey"],
        format!("{sha}.json")
    );
    assert_eq!(
        read(&out.join("cdk.out")),
        serde_json::json!({"version": "36.0.0"})
    );
    assert_eq!(
        read(&out.join("tree.json"))["tree"]["children"]["CloudHsmDev"]["path"],
        "CloudHsmDev"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn same_input_same_bytes_and_stale_files_removed() {
    let out = temp_dir("determinism");
    synth::synthesize(&template_only("production", &out)).unwrap();
    let first = std::fs::read(out.join("CloudHsmProduction.template.json")).unwrap();
    std::fs::write(out.join("Old.template.json"), "{}").unwrap();
    std::fs::write(out.join("synth.lock"), "").unwrap();
    synth::synthesize(&template_only("production", &out)).unwrap();
    assert_eq!(
        std::fs::read(out.join("CloudHsmProduction.template.json")).unwrap(),
        first
    );
    assert!(
        !out.join("Old.template.json").exists(),
        "stale template of an earlier run removed"
    );
    assert!(
        out.join("synth.lock").exists(),
        "files the CDK CLI owns are left alone"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn flags_set_parameter_defaults() {
    let out = temp_dir("flags");
    let mut o = template_only("dev", &out);
    o.overrides.subnet_ids = Some(vec![
        "subnet-0123456789abcdef0".into(),
        "subnet-0123456789abcdef1".into(),
    ]);
    o.overrides.hsms_per_subnet = Some(2);
    o.overrides.enable_key_store = Some(true);
    o.overrides.vpc_id = Some("vpc-0123456789abcdef0".into());
    o.stack_name = Some("MyHsm".into());
    synth::synthesize(&o).unwrap();
    let t = read(&out.join("MyHsm.template.json"));
    assert_eq!(
        t["Parameters"]["SubnetIds"]["Default"],
        "subnet-0123456789abcdef0,subnet-0123456789abcdef1"
    );
    assert_eq!(t["Parameters"]["HsmsPerSubnet"]["Default"], "2");
    assert_eq!(t["Parameters"]["EnableKeyStore"]["Default"], "true");
    assert_eq!(t["Parameters"]["VpcId"]["Default"], "vpc-0123456789abcdef0");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn binary_reports_invalid_flags_clearly() {
    let out = temp_dir("cli");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_synth"))
            .args(args)
            .arg("--out")
            .arg(&out)
            .arg("--skip-assets")
            .output()
            .unwrap()
    };
    let bad = run(&[
        "--subnet-ids",
        "subnet-0123456789abcdef0",
        "--enable-key-store",
        "true",
        "--hsms-per-subnet",
        "-1",
        "--backup-retention-days",
        "400",
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    for expected in [
        "synthesis failed with 3 error(s):",
        "[CloudHsmDev/Hsm] the key store needs HSMs in at least 2 Availability Zones but SubnetIds has 1: give 2 or more subnets, or disable the key store (EnableKeyStore=false)",
        "[CloudHsmDev/Hsm] HsmsPerSubnet is -1: it cannot be negative (0 keeps the cluster without HSMs)",
        "[CloudHsmDev/Hsm] BackupRetentionDays is 400: CloudHSM keeps backups 7 to 379 days; pick a value in that range",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let empty = run(&["--subnet-ids", ""]);
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("SubnetIds is empty"));
    let ok = run(&["--app", "embedded"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stderr).contains("NOT deployable"));
    let embedded_flags = run(&["--app", "embedded", "--hsms-per-subnet", "2"]);
    assert!(!embedded_flags.status.success());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn asset_cache_is_keyed_by_handler_sources() {
    let root = assets::workspace_root();
    let target = temp_dir("cache");
    let inputs = assets::handlers_inputs_hash(&root, Arch::X86_64).unwrap();
    assert_eq!(
        inputs,
        assets::handlers_inputs_hash(&root, Arch::X86_64).unwrap(),
        "stable"
    );
    assert_ne!(
        inputs,
        assets::handlers_inputs_hash(&root, Arch::Arm64).unwrap(),
        "architecture is an input"
    );
    let cache = target.join("lambda-assets/x86_64");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join(format!("{inputs}.zip")), b"zip bytes").unwrap();
    let built = assets::build_handlers_in(&root, Arch::X86_64, &target).unwrap();
    assert!(!built.built, "cached zip reused, nothing rebuilt");
    assert_eq!(built.sha256, assets::sha256_hex(b"zip bytes"));
    let _ = std::fs::remove_dir_all(&target);
}

#[test]
fn architecture_names() {
    assert_eq!(Arch::parse("arm64").unwrap(), Arch::Arm64);
    assert_eq!(Arch::parse("x86_64").unwrap(), Arch::X86_64);
    assert_eq!(Arch::parse("host").unwrap(), Arch::host());
    assert_eq!(
        Arch::parse("mips").unwrap_err(),
        "unknown architecture `mips`; use arm64, x86_64 or host"
    );
}
