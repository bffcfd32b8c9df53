"""The AWS SDK for Rust (aws-sdk-cloudhsmv2, the crate the handlers use) against the emulator.

Compiles a small program with ``rustc`` against the workspace's already-built SDK artifacts
(``target/debug/deps``; no cargo, no new dependencies) and runs it. Skipped when the workspace has
not been built (no ``libaws_sdk_cloudhsmv2-*.rlib``) or ``rustc`` is missing.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess

import pytest

from test_cloudhsm_support import Toolbox, hsm_env  # noqa: F401

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAM = r"""// Checks that the AWS SDK for Rust (aws-sdk-cloudhsmv2) can talk to the emulator.
use aws_sdk_cloudhsmv2 as hsm;
fn main() {
    let endpoint = std::env::args().nth(1).expect("endpoint");
    let subnet = std::env::args().nth(2).expect("subnet");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(hsm::config::Credentials::new("testing", "testing", None, None, "t"))
            .load()
            .await;
        let client = hsm::Client::new(&conf);
        if subnet == "probe" {
            let _ = client.describe_clusters().send().await;  // fails to connect; must not panic
            return;
        }
        let created = client.create_cluster().hsm_type("hsm2m.medium").subnet_ids(subnet)
            .tag_list(hsm::types::Tag::builder().key("k").value("v").build().unwrap())
            .send().await.expect("create_cluster");
        let c = created.cluster().unwrap();
        println!("created {} {:?} ts={:?} sg={:?}", c.cluster_id().unwrap(), c.state(), c.create_timestamp(), c.security_group());
        let id = c.cluster_id().unwrap().to_string();
        let described = client.describe_clusters().filters("clusterIds", vec![id.clone()]).send().await.expect("describe");
        let d = &described.clusters()[0];
        println!("described {:?} mapping={:?} retention={:?} tags={:?}", d.state(), d.subnet_mapping(), d.backup_retention_policy(), d.tag_list());
        let empty = client.describe_clusters().filters("clusterIds", vec!["cluster-abcdefghijk".into()]).send().await.expect("describe empty");
        println!("unknown -> {} clusters", empty.clusters().len());
        match client.create_hsm().cluster_id(&id).availability_zone("us-east-1z").send().await {
            Ok(_) => println!("UNEXPECTED ok"),
            Err(e) => {
                let se = e.into_service_error();
                println!("create_hsm error: is_invalid_request={} msg={:?}", se.is_cloud_hsm_invalid_request_exception(), hsm::error::ProvideErrorMetadata::message(&se));
            }
        }
        match client.delete_cluster().cluster_id("cluster-abcdefghijk").send().await {
            Ok(_) => println!("UNEXPECTED ok"),
            Err(e) => println!("delete_cluster error: not_found={}", e.into_service_error().is_cloud_hsm_resource_not_found_exception()),
        }
        let backups = client.describe_backups().send().await.expect("describe_backups");
        println!("backups {}", backups.backups().len());
    });
}
"""


def _deps_dirs() -> list[str]:
    roots = [os.environ.get("CARGO_TARGET_DIR") or "", os.path.join(REPO, "target")]
    return [os.path.join(r, p, "deps") for r in roots if r for p in ("debug", "release")
            if os.path.isdir(os.path.join(r, p, "deps"))]


@pytest.fixture(scope="module")
def sdk_program(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not shutil.which("rustc"):
        pytest.skip("rustc not installed")
    out_dir = tmp_path_factory.mktemp("rust-sdk")
    source = out_dir / "main.rs"
    source.write_text(PROGRAM)
    binary = str(out_dir / "sdkcheck")
    errors = []
    for deps in _deps_dirs():
        rlibs = {name: sorted(glob.glob(os.path.join(deps, f"lib{name}-*.rlib")), key=os.path.getmtime, reverse=True)
                 for name in ("aws_config", "aws_sdk_cloudhsmv2", "tokio")}
        if not all(rlibs.values()):
            continue
        for config, sdk, tokio in itertools.product(*rlibs.values()):
            result = subprocess.run(
                ["rustc", "--edition", "2021", str(source), "-o", binary, "-L", f"dependency={deps}",
                 "--extern", f"aws_config={config}", "--extern", f"aws_sdk_cloudhsmv2={sdk}",
                 "--extern", f"tokio={tokio}"], capture_output=True, text=True, timeout=600)
            if result.returncode == 0:
                # Linked against the tokio the SDK uses? (another copy panics: "no reactor running")
                probe = subprocess.run([binary, "http://127.0.0.1:9", "probe"], capture_output=True,
                                       text=True, timeout=120)
                if "no reactor running" not in probe.stderr:
                    return binary
                errors.append("tokio mismatch: " + tokio)
                continue
            errors.append(result.stderr[-300:])
    if not errors:
        pytest.skip("the workspace's AWS SDK for Rust artifacts are not built (cargo build first)")
    pytest.fail("could not compile against the workspace's SDK artifacts:\n" + "\n".join(errors[-3:]))


def test_rust_sdk_create_describe_and_typed_errors(hsm_env: Toolbox, sdk_program: str):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    run = subprocess.run([sdk_program, hsm_env.emu.endpoint, subnets[0]], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"})
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("created cluster-") and "Some(CreateInProgress)" in lines[0]
    assert "ts=Some(20" in lines[0] and 'sg=Some("sg-' in lines[0]  # epoch timestamps parsed
    assert "Days" in lines[1] and 'value: Some("90")' in lines[1] and 'key: "k"' in lines[1]
    assert lines[2] == "unknown -> 0 clusters"
    assert lines[3].startswith("create_hsm error: is_invalid_request=true")
    assert lines[4] == "delete_cluster error: not_found=true"
    assert lines[5] == "backups 0"
