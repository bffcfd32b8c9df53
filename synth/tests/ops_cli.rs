//! The operations commands as a user runs them: the `synth` binary.
//!
//! Tests that need an emulator run when `EMULATOR_URL` is set (e.g. `emulator/serve --port 4566`
//! and `EMULATOR_URL=http://127.0.0.1:4566`); without it they print why they skipped.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Output};

fn synth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synth"))
        .args(args)
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run synth")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn emulator() -> Option<String> {
    match std::env::var("EMULATOR_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("EMULATOR_URL not set: skipping the emulator part of this test");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A minimal cloud assembly: one stack with a parameter, a topic, an output, and one file asset
/// (uploaded under a key unique to this run, so a reused emulator does not have it yet).
fn tiny_assembly() -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(unique("synth-ops-assembly"));
    let key = format!("{}.zip", unique("asset"));
    std::fs::create_dir_all(dir.join("asset.0f1e")).unwrap();
    let write = |name: &str, v: Value| {
        std::fs::write(dir.join(name), serde_json::to_vec_pretty(&v).unwrap()).unwrap()
    };
    write(
        "manifest.json",
        json!({"version": "36.0.0", "artifacts": {
            "Tiny.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Tiny.assets.json"}},
            "Tiny": {"type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region",
                     "properties": {"templateFile": "Tiny.template.json"}, "dependencies": ["Tiny.assets"]}}}),
    );
    write(
        "Tiny.template.json",
        json!({
            "Parameters": {
                "TopicName": {"Type": "String"},
                "Size": {"Type": "Number", "Default": 1, "MinValue": 1, "MaxValue": 3}
            },
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Ref": "TopicName"}}}},
            "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}}
        }),
    );
    std::fs::write(dir.join("asset.0f1e/hello.txt"), "hello").unwrap();
    write(
        "Tiny.assets.json",
        json!({"version": "36.0.0", "files": {"0f1e": {
            "source": {"path": "asset.0f1e", "packaging": "zip"},
            "destinations": {"current_account-current_region": {
                "bucketName": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}",
                "objectKey": key}}}}}),
    );
    (dir, key)
}

#[test]
fn malformed_parameter_override_fails_before_any_call() {
    // No emulator needed: the endpoint is never contacted.
    let (dir, _) = tiny_assembly();
    let out = synth(&[
        "deploy",
        "--stack-name",
        "x",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--assembly",
        dir.to_str().unwrap(),
        "--parameter-overrides",
        "TopicName",
    ]);
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("bad parameter override \"TopicName\"") && err.contains("Key=Value"),
        "{err}"
    );

    let out = synth(&[
        "deploy",
        "--stack-name",
        "x",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--output",
        "json",
        "--assembly",
        dir.to_str().unwrap(),
        "--parameter-overrides",
        "A=1",
        "A=2",
    ]);
    let (stdout, _) = text(&out);
    assert!(!out.status.success());
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert!(v["error"].as_str().unwrap().contains("given twice"), "{v}");
    assert_eq!(v["status"], Value::Null);
}

#[test]
fn status_of_a_missing_stack_fails_clearly() {
    let Some(url) = emulator() else { return };
    let name = unique("missing");
    let out = synth(&["status", "--stack-name", &name, "--endpoint-url", &url]);
    let (_, err) = text(&out);
    assert!(!out.status.success(), "status of a missing stack must fail");
    assert!(
        err.contains(&format!("stack {name} does not exist")),
        "{err}"
    );

    let out = synth(&[
        "status",
        "--stack-name",
        &name,
        "--endpoint-url",
        &url,
        "--output",
        "json",
    ]);
    let (stdout, _) = text(&out);
    assert!(!out.status.success());
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("does not exist"),
        "{v}"
    );
}

#[test]
fn deploy_reports_invalid_parameters_against_the_template() {
    let Some(url) = emulator() else { return };
    let (dir, _) = tiny_assembly();
    let name = unique("badparam");
    let dir_s = dir.to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["TopicName=t", "TopicNmae=x"],
            "parameter TopicNmae does not exist in the template (parameters: Size, TopicName)",
        ),
        (&["Size=3"], "parameter TopicName has no default"),
        (
            &["TopicName=t", "Size=9"],
            "parameter Size: 9 is above the maximum 3",
        ),
    ];
    for (overrides, expected) in cases {
        let mut args = vec![
            "deploy",
            "--stack-name",
            &name,
            "--endpoint-url",
            &url,
            "--assembly",
            dir_s,
            "--parameter-overrides",
        ];
        args.extend_from_slice(overrides);
        let out = synth(&args);
        let (_, err) = text(&out);
        assert!(!out.status.success(), "{overrides:?} must fail");
        assert!(err.contains(expected), "{overrides:?}: {err}");
    }
    // Nothing was created.
    let out = synth(&["status", "--stack-name", &name, "--endpoint-url", &url]);
    assert!(!out.status.success());
}

#[test]
fn deploy_status_destroy_a_tiny_stack() {
    let Some(url) = emulator() else { return };
    let (dir, key) = tiny_assembly();
    let name = unique("tiny");
    let topic = unique("topic");
    let out = synth(&[
        "deploy",
        "--stack-name",
        &name,
        "--endpoint-url",
        &url,
        "--assembly",
        dir.to_str().unwrap(),
        "--output",
        "json",
        "--parameter-overrides",
        &format!("TopicName={topic}"),
    ]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "deploy failed: {stdout}\n{err}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["status"], "CREATE_COMPLETE", "{v}");
    assert!(
        v["outputs"]["TopicArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{topic}")),
        "{v}"
    );
    assert!(
        err.contains(&format!("{key} (uploaded")),
        "asset upload not reported: {err}"
    );
    assert!(
        err.contains("CREATE_COMPLETE"),
        "no live stack events: {err}"
    );

    // Same template and parameters again: "No updates are to be performed" is success.
    let out = synth(&[
        "deploy",
        "--stack-name",
        &name,
        "--endpoint-url",
        &url,
        "--assembly",
        dir.to_str().unwrap(),
        "--output",
        "json",
        "--parameter-overrides",
        &format!("TopicName={topic}"),
    ]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "redeploy failed: {stdout}\n{err}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["no_changes"], true, "{v}");
    assert!(
        err.contains("already there"),
        "the asset must not be uploaded twice: {err}"
    );

    let out = synth(&[
        "status",
        "--stack-name",
        &name,
        "--endpoint-url",
        &url,
        "--output",
        "json",
    ]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["status"], "CREATE_COMPLETE");
    assert_eq!(v["cluster"], Value::Null, "no cluster in this stack");

    let out = synth(&["destroy", "--stack-name", &name, "--endpoint-url", &url]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "destroy failed: {stdout}\n{err}");
    assert!(stdout.contains("DELETE_COMPLETE"), "{stdout}");
    let out = synth(&["status", "--stack-name", &name, "--endpoint-url", &url]);
    assert!(!out.status.success(), "the stack must be gone");
}
