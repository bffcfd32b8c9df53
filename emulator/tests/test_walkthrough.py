"""The README walk-through (``emulator/walkthrough.py``) runs end to end against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from conftest import EMULATOR_DIR, free_port

SCRIPT = os.path.join(EMULATOR_DIR, "walkthrough.py")


def run_walkthrough(endpoint: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, endpoint], capture_output=True, text=True,
                          timeout=timeout)


def test_walkthrough_builds_connects_and_tears_down(emulator: Any) -> None:
    result = run_walkthrough(emulator.endpoint, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for expected in ("cluster INITIALIZED", "cluster ACTIVE",
                     "SendCommand: kmsuser (crypto-user) created on every HSM"):
        assert expected in lines, lines
    assert any(line.startswith("key store cks-") and line.endswith(" CONNECTED") for line in lines)
    # The final lines are the teardown, in order.
    teardown = ["DeleteCustomKeyStore", "DeleteHsm: ", "DeleteHsm: ", "both HSMs deleted",
                "DeleteCluster: ", "cluster DELETED", "TerminateInstances: ",
                "deleted the password secrets", "teardown complete"]
    tail = lines[-len(teardown):]
    assert all(line.startswith(prefix) for line, prefix in zip(tail, teardown)), tail
    assert tail[-1] == "teardown complete"
    # The teardown really happened: the cluster it names is DELETED, its instance terminated.
    cluster_id = next(l.split(": ")[1] for l in lines if l.startswith("DeleteCluster: "))
    instance_id = next(l.split()[1] for l in lines if l.startswith("TerminateInstances: "))
    hsm = emulator.client("cloudhsmv2")
    cluster = hsm.describe_clusters(Filters={"clusterIds": [cluster_id]})["Clusters"][0]
    assert cluster["State"] == "DELETED" and cluster["Hsms"] == []
    ec2 = emulator.client("ec2")
    state = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "terminated"


def test_walkthrough_exits_non_zero_when_a_step_fails() -> None:
    result = run_walkthrough(f"http://127.0.0.1:{free_port()}", timeout=60)  # nothing listening
    assert result.returncode == 1
    assert result.stderr.startswith("FAILED: ")
