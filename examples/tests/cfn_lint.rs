//! cfn-lint (all checks, informational ones included) finds nothing in any synthesized template.

mod common;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn cfn_lint_finds_nothing() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let lint = root.join(".tools/venv/bin/cfn-lint");
    if !lint.exists() {
        eprintln!("\n!!!!!!!! cfn-lint is NOT installed at {}: SKIPPING the cfn-lint test. Run tools/setup (CI does). !!!!!!!!\n", lint.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("cfn-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for app in examples::APPS {
        let p = dir.join(format!("{app}.template.json"));
        std::fs::write(
            &p,
            serde_json::to_string_pretty(&common::synth(app)).unwrap(),
        )
        .unwrap();
        files.push(p);
    }
    let out = Command::new(&lint)
        .args(["--include-checks", "I", "--"])
        .args(&files)
        .output()
        .expect("run cfn-lint");
    let _ = std::fs::remove_dir_all(&dir);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "cfn-lint findings:\n{text}"
    );
}
