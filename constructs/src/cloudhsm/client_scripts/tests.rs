//! The client documents: parameters, and the scripts run for real (bash) against stand-ins for
//! `aws`, `configure-cli` and `cloudhsm-cli` that record what they receive.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::*;

const ADMIN_PW: &str = "AdminPw0123456789abcdefghijKLMNO";
const KMS_PW: &str = "KmsPw0123456789abcdefghijKLMNOPQ";
const ANCHOR_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:hsm/trust-anchor-AbC";
const ADMIN_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hsm/admin-XyZ";
const KMS_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:hsm/kmsuser-initial-QwE";

#[test]
fn documents_take_ids_and_arns_only() {
    let docs = client_documents();
    for doc in [
        &docs.activate_cluster,
        &docs.refresh_client_config,
        &docs.create_kms_user,
    ] {
        assert_eq!(doc["schemaVersion"], "2.2");
        let params = doc["parameters"].as_object().unwrap();
        for (name, p) in params {
            assert!(name.ends_with("Id") || name.ends_with("Arn"), "{name}");
            assert!(
                p["allowedPattern"].as_str().unwrap().starts_with('^'),
                "{name}"
            );
        }
        let text = doc["mainSteps"][0]["inputs"]["runCommand"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n");
        // Every {{ X }} names a declared parameter.
        let mut rest = text.as_str();
        while let Some(i) = rest.find("{{") {
            let end = rest[i..].find("}}").unwrap() + i;
            let name = rest[i + 2..end].trim();
            assert!(params.contains_key(name), "undeclared parameter {name}");
            rest = &rest[end + 2..];
        }
        assert!(!text.contains("set -x") || text.contains("Never add `set -x`"));
        assert!(!text.lines().any(|l| l.trim_start().starts_with("set -x")));
    }
    let p = &docs.create_kms_user["parameters"];
    assert_eq!(p["TrustAnchorSecretArn"]["default"], "");
}

#[test]
fn allowed_patterns_reject_injection() {
    // The patterns are ordinary regular expressions; check them with grep -E.
    let check = |pattern: &str, value: &str| {
        Command::new("grep")
            .args(["-qE", pattern])
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{value}\n").as_bytes())?;
                c.wait()
            })
            .unwrap()
            .success()
    };
    assert!(check(CLUSTER_ID_PATTERN, "cluster-igklspoyj5v"));
    assert!(!check(CLUSTER_ID_PATTERN, "cluster-x'; rm -rf /; '"));
    assert!(check(SECRET_ARN_PATTERN, ADMIN_ARN));
    assert!(!check(
        SECRET_ARN_PATTERN,
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:a b"
    ));
    assert!(check(OPTIONAL_SECRET_ARN_PATTERN, ""));
}

/// A scratch "instance": stand-in tools, a state file for the HSM users, a log of every call.
struct Box_ {
    dir: PathBuf,
}

impl Box_ {
    fn new(name: &str, users: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cloudhsm-doc-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::write(dir.join("users.json"), users).unwrap();
        let aws = format!(
            r#"#!/bin/bash
echo "aws $*" >>"{d}/calls.log"
case "$*" in
  *"{anchor}"*) printf '%s\n' "-----BEGIN CERTIFICATE-----" "MIIBfake" "-----END CERTIFICATE-----" ;;
  *"{admin}"*) printf '%s\n' "{admin_pw}" ;;
  *"{kms}"*) printf '%s\n' "{kms_pw}" ;;
  *"placeholder-anchor"*) printf '%s\n' "PENDING: written by the cluster initialization workflow" ;;
  *) echo "ResourceNotFoundException" >&2; exit 254 ;;
esac
"#,
            d = dir.display(),
            anchor = ANCHOR_ARN,
            admin = ADMIN_ARN,
            kms = KMS_ARN,
            admin_pw = ADMIN_PW,
            kms_pw = KMS_PW
        );
        let configure = format!(
            "#!/bin/bash\necho \"configure-cli $*\" >>\"{}/calls.log\"\n",
            dir.display()
        );
        // cloudhsm-cli: records argv (the --password value masked) and whether a PIN was set; the
        // password being set comes from --password (the prompt needs a terminal SSM does not give).
        let cli = format!(
            r#"#!/usr/bin/env python3
import json, os, sys
d = "{d}"
argv = sys.argv[1:]
shown = ["***" if i > 0 and argv[i - 1] == "--password" else a for i, a in enumerate(argv)]
with open(d + "/calls.log", "a") as f:
    f.write("cloudhsm-cli " + " ".join(shown) + " pin=" + ("set" if os.environ.get("CLOUDHSM_PIN") else "unset") + "\n")
state = json.load(open(d + "/users.json"))
fault = state.get("fault")
def out(code, data):
    print(json.dumps({{"error_code": code, "data": data}}))
    sys.exit(0 if code == 0 else 1)
def read_pw():
    if "--password" not in argv: out(1, "no terminal to prompt for a password")
    a = argv[argv.index("--password") + 1]
    with open(d + "/password.log", "a") as f: f.write(a + "\n")
    return a
cmd = " ".join(argv[:2])
if fault == cmd: out(1, "injected failure")
users = state["users"]
if cmd == "user list":
    out(0, {{"users": [dict(username=n, **u) for n, u in users.items()]}})
if cmd == "cluster activate":
    read_pw(); users["admin"]["role"] = "admin"
elif argv[:1] == ["user"]:
    if os.environ.get("CLOUDHSM_PIN", "").split(":")[0] != "admin" or os.environ.get("CLOUDHSM_ROLE") != "admin":
        out(1, "This command requires a logged in user")
    name = argv[argv.index("--username") + 1]
    if cmd == "user create":
        read_pw()
        if name in users: out(1, "User exists")
        users[name] = {{"role": "crypto-user", "locked": "false", "mfa": [],
                        "cluster-coverage": state.get("create_coverage", "full")}}
    elif cmd == "user change-password":
        read_pw()
    elif cmd == "user delete":
        users.pop(name)
json.dump(state, open(d + "/users.json", "w"))
out(0, "ok")
"#,
            d = dir.display()
        );
        for (name, body) in [
            ("aws", aws),
            ("configure-cli", configure),
            ("cloudhsm-cli", cli),
        ] {
            let p = dir.join("bin").join(name);
            fs::write(&p, body).unwrap();
            Command::new("chmod").arg("+x").arg(&p).status().unwrap();
        }
        Box_ { dir }
    }

    /// Run a document's script with its parameters filled in; (success, stdout+stderr).
    fn run(&self, body: &str, params: &[(&str, &str)]) -> (bool, String) {
        let mut text = script(body);
        for (k, v) in params {
            text = text.replace(&format!("{{{{ {k} }}}}"), v);
        }
        let path = self.dir.join("script.sh");
        fs::write(&path, text).unwrap();
        let out = Command::new("bash")
            .arg(&path)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.dir.join("bin").display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("CLOUDHSM_CLI", self.dir.join("bin/cloudhsm-cli"))
            .env("CLOUDHSM_CONFIGURE", self.dir.join("bin/configure-cli"))
            .env("CLOUDHSM_ETC", self.dir.join("etc"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn file(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn users(&self) -> Value {
        serde_json::from_str(&self.file("users.json")).unwrap()
    }

    /// No password in any argument or in the command output.
    fn assert_no_leak(&self, output: &str) {
        for pw in [ADMIN_PW, KMS_PW] {
            assert!(
                !self.file("calls.log").contains(pw),
                "password in a command line:\n{}",
                self.file("calls.log")
            );
            assert!(
                !output.contains(pw),
                "password in the command output:\n{output}"
            );
        }
    }
}

impl Drop for Box_ {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

const UNACTIVATED: &str = r#"{"users": {"admin": {"role": "unactivated-admin", "locked": "false", "mfa": [], "cluster-coverage": "full"},
  "app_user": {"role": "internal(APPLIANCE_USER)", "locked": "false", "mfa": [], "cluster-coverage": "full"}}}"#;
const ACTIVATED: &str = r#"{"users": {"admin": {"role": "admin", "locked": "false", "mfa": [], "cluster-coverage": "full"}}}"#;

fn activate_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ClusterId", "cluster-igklspoyj5v"),
        ("AdminPasswordSecretArn", ADMIN_ARN),
        ("TrustAnchorSecretArn", ANCHOR_ARN),
    ]
}

fn kmsuser_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ClusterId", "cluster-igklspoyj5v"),
        ("AdminPasswordSecretArn", ADMIN_ARN),
        ("KmsUserSecretArn", KMS_ARN),
        ("TrustAnchorSecretArn", ANCHOR_ARN),
    ]
}

#[test]
fn activate_installs_the_anchor_and_sets_the_password() {
    let b = Box_::new("activate", UNACTIVATED);
    let (ok, out) = b.run(ACTIVATE_CLUSTER, &activate_params());
    assert!(ok, "{out}");
    assert!(b.file("etc/customerCA.crt").contains("BEGIN CERTIFICATE"));
    assert!(b
        .file("calls.log")
        .contains("configure-cli --cluster-id cluster-igklspoyj5v"));
    assert!(b
        .file("calls.log")
        .contains("cloudhsm-cli cluster activate --password *** pin=unset"));
    assert_eq!(b.file("password.log"), format!("{ADMIN_PW}\n"));
    assert_eq!(b.users()["users"]["admin"]["role"], "admin");
    b.assert_no_leak(&out);
    // Running it again is a no-op.
    let (ok, out) = b.run(ACTIVATE_CLUSTER, &activate_params());
    assert!(ok && out.contains("already activated"), "{out}");
    assert_eq!(b.file("calls.log").matches("cluster activate").count(), 1);
}

#[test]
fn activate_fails_when_the_cli_reports_an_error() {
    let b = Box_::new(
        "activate-fail",
        &UNACTIVATED.replacen('{', r#"{"fault": "cluster activate", "#, 1),
    );
    let (ok, out) = b.run(ACTIVATE_CLUSTER, &activate_params());
    assert!(!ok, "{out}");
    assert!(out.contains("cluster activate failed"), "{out}");
    b.assert_no_leak(&out);
}

#[test]
fn kmsuser_is_created_with_its_own_password_and_verified() {
    let b = Box_::new("kmsuser", ACTIVATED);
    let (ok, out) = b.run(CREATE_KMS_USER, &kmsuser_params());
    assert!(ok, "{out}");
    assert!(b.file("calls.log").contains(
        "cloudhsm-cli user create --username kmsuser --role crypto-user --password *** pin=set"
    ));
    assert_eq!(
        b.file("password.log"),
        format!("{KMS_PW}\n"),
        "kmsuser gets its own password, not the admin's"
    );
    assert_eq!(b.users()["users"]["kmsuser"]["cluster-coverage"], "full");
    b.assert_no_leak(&out);
    // Again: kmsuser exists everywhere, so its password is set (not a second create).
    let (ok, out) = b.run(CREATE_KMS_USER, &kmsuser_params());
    assert!(ok, "{out}");
    assert!(b
        .file("calls.log")
        .contains("user change-password --username kmsuser"));
}

#[test]
fn kmsuser_with_partial_coverage_is_recreated() {
    let users = r#"{"users": {"admin": {"role": "admin", "locked": "false", "mfa": [], "cluster-coverage": "full"},
      "kmsuser": {"role": "crypto-user", "locked": "false", "mfa": [], "cluster-coverage": "partial"}}}"#;
    let b = Box_::new("kmsuser-partial", users);
    let (ok, out) = b.run(CREATE_KMS_USER, &kmsuser_params());
    assert!(ok, "{out}");
    let log = b.file("calls.log");
    assert!(
        log.find("user delete --username kmsuser").unwrap()
            < log.find("user create --username kmsuser").unwrap()
    );
}

#[test]
fn kmsuser_missing_on_an_hsm_after_create_fails_the_command() {
    let users = r#"{"create_coverage": "partial", "users": {"admin": {"role": "admin", "locked": "false", "mfa": [], "cluster-coverage": "full"}}}"#;
    let b = Box_::new("kmsuser-verify", users);
    let (ok, out) = b.run(CREATE_KMS_USER, &kmsuser_params());
    assert!(!ok, "{out}");
    assert!(
        out.contains("not a crypto user present and unlocked on every HSM"),
        "{out}"
    );
    assert!(out.contains("crypto-user false partial"), "{out}");
    b.assert_no_leak(&out);
}

#[test]
fn refresh_configures_and_installs_the_anchor_only_when_given() {
    let b = Box_::new("refresh", ACTIVATED);
    let (ok, out) = b.run(
        REFRESH_CLIENT_CONFIG,
        &[
            ("ClusterId", "cluster-igklspoyj5v"),
            ("TrustAnchorSecretArn", ""),
        ],
    );
    assert!(ok, "{out}");
    assert!(b.file("etc/customerCA.crt").is_empty());
    assert!(b
        .file("calls.log")
        .contains("configure-cli --cluster-id cluster-igklspoyj5v"));
    let (ok, _) = b.run(
        REFRESH_CLIENT_CONFIG,
        &[
            ("ClusterId", "cluster-igklspoyj5v"),
            ("TrustAnchorSecretArn", ANCHOR_ARN),
        ],
    );
    assert!(ok);
    assert!(b.file("etc/customerCA.crt").contains("BEGIN CERTIFICATE"));
    // Before initialization (External PKI, phase 1) the secret holds a placeholder: configured,
    // the anchor left for activation to install.
    let b = Box_::new("refresh-pending", ACTIVATED);
    let (ok, out) = b.run(
        REFRESH_CLIENT_CONFIG,
        &[
            ("ClusterId", "cluster-igklspoyj5v"),
            (
                "TrustAnchorSecretArn",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:placeholder-anchor-AbCdEf",
            ),
        ],
    );
    assert!(ok && out.contains("not stored yet"), "{out}");
    assert!(b.file("etc/customerCA.crt").is_empty());
}

#[test]
fn run_command_wrapper_runs_under_sh_and_propagates_failure() {
    let b = Box_::new("wrapper", ACTIVATED);
    for (body, expect_ok) in [
        ("echo hello-from-bash; [[ 1 == 1 ]]", true),
        ("fail boom", false),
    ] {
        let text = run_command(body).join("\n");
        let path = b.dir.join("wrapper.sh");
        fs::write(&path, text).unwrap();
        let out = Command::new("sh").arg(&path).output().unwrap();
        assert_eq!(
            out.status.success(),
            expect_ok,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = Path::new(&b.dir);
}
