"""The instance sandbox keeps the emulator's own Python reachable when the checkout lies under a
directory the instance makes private (e.g. a clone under /tmp, whose /tmp the instance replaces).
Found when a fresh clone under /tmp failed every client test with "configure-cli: cannot execute:
required file not found" (the stand-ins' interpreter was hidden)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emu.client import sandbox


def test_paths_under_private_directories_are_kept(monkeypatch):
    monkeypatch.setattr(sys, "prefix", "/tmp/clone/emulator/.venv")
    monkeypatch.setattr(sandbox, "EMULATOR_DIR", Path("/tmp/clone/emulator"))
    assert sandbox._host_paths_to_keep() == ["tmp/clone/emulator", "tmp/clone/emulator/.venv"]
    monkeypatch.setattr(sys, "prefix", "/work/repo/emulator/.venv")
    monkeypatch.setattr(sandbox, "EMULATOR_DIR", Path("/work/repo/emulator"))
    assert sandbox._host_paths_to_keep() == []


@pytest.mark.skipif(not sandbox.unshare_available(), reason="needs mount namespaces")
def test_a_kept_host_path_is_visible_inside_the_instance(tmp_path, monkeypatch):
    # A host directory under /tmp stands in for a checkout there; the instance's own /tmp is empty.
    host = Path("/tmp") / f"emu-keep-test-{tmp_path.name}"
    host.mkdir(exist_ok=True)
    (host / "marker").write_text("host file\n")
    monkeypatch.setattr(sandbox, "_host_paths_to_keep", lambda: [str(host).lstrip("/")])
    root = tmp_path / "root"
    for d in sandbox.PRIVATE_DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp/script.sh").write_text(f"cat {host}/marker; ls /tmp\n")
    keep = sandbox._host_paths_to_keep()
    argv = ["unshare", "--mount", "--propagation", "private", "/bin/bash", "-c", sandbox._SETUP,
            "emu-setup", str(root), "/", "/tmp/script.sh", str(len(keep)), *keep,
            *sandbox._mount_order(root)]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    finally:
        shutil.rmtree(host, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    assert "host file" in out.stdout
    # Only the kept path and the script: the host's /tmp stays hidden.
    assert sorted(out.stdout.split()[2:]) == sorted([host.name, "script.sh"]), out.stdout
