"""KMS custom key store (issue 5): create → CONNECTED with kmsuser on every HSM, updates that
would drop below 2 HSMs in 2 AZs are refused, turning the store off and on, delete with and
without KMS keys in the store.

The tests share one stack (created by the first test) to keep the suite's runtime down; they
run in file order and each leaves the stack as it found it.
"""

from __future__ import annotations

import re
import time

import pytest

from e2e_support import (LOG_DIR_DEFAULT, Stack, assert_converged, assert_nothing_billing,
                         key_stores, make_network)


@pytest.fixture(scope="module")
def ks(module_emu):
    network = make_network(module_emu)
    stack = Stack(module_emu, "e2e-keystore", LOG_DIR_DEFAULT)
    params = {"VpcId": network.vpc_id, "SubnetIds": network.hsm_subnets(2), "HsmsPerSubnet": 1,
              "ClientSubnetId": network.client_subnet, "EnableKeyStore": "true"}
    return {"emu": module_emu, "network": network, "stack": stack, "params": params, "created": None}


def _store(emu, store_id):
    found = emu.client("kms").describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"]
    assert len(found) == 1
    return found[0]


def test_create_connected_with_kmsuser_on_every_hsm(ks):
    emu, stack, network = ks["emu"], ks["stack"], ks["network"]
    result = stack.deploy_ok(**ks["params"])
    ks["created"] = result
    c = assert_converged(emu, result, network, network.hsm_subnets(2), 1)
    store_id = result.outputs.get("KeyStoreId")
    assert store_id and store_id.startswith("cks-"), result.outputs
    store = _store(emu, store_id)
    assert store["ConnectionState"] == "CONNECTED", store
    assert store["CloudHsmClusterId"] == c["ClusterId"]
    users = emu.hsm_users(c["ClusterId"])
    assert len(users) == 2
    for hsm_id, view in users.items():
        kmsuser = view["users"].get("kmsuser")
        assert kmsuser and kmsuser["role"] in ("crypto-user", "CRYPTO_USER", "crypto_user"), \
            f"kmsuser missing or wrong role on {hsm_id}: {view['users']}"
    # The initial kmsuser password secret is removed after the connect (KMS rotated it).
    sm = emu.client("secretsmanager")
    names = [s["Name"] for s in sm.list_secrets()["SecretList"]]
    assert f"{stack.name}/kmsuser-initial" not in names, names
    # `synth status` shows the key store state.
    status = stack.status_cmd()
    assert status.returncode == 0, status.describe()
    assert "CONNECTED" in str(status.out) + status.stderr


@pytest.mark.parametrize("change", ["HsmsPerSubnet=0", "one-subnet"])
def test_update_below_two_hsms_in_two_azs_refused(ks, change):
    emu, stack, network = ks["emu"], ks["stack"], ks["network"]
    assert ks["created"] is not None, "needs the stack from the create test"
    params = dict(ks["params"])
    if change == "HsmsPerSubnet=0":
        params["HsmsPerSubnet"] = 0
    else:
        params["SubnetIds"] = network.hsm_subnets(1)
    result = stack.deploy(**params)
    assert result.returncode != 0, result.describe()
    shown = result.root_cause_text()
    assert re.search(r"key ?store", shown, re.I) and "2" in shown, f"unclear refusal:\n{result.describe()}"
    assert stack.cfn_status() == "UPDATE_ROLLBACK_COMPLETE" or stack.cfn_status() == "CREATE_COMPLETE" \
        or stack.cfn_status() == "UPDATE_COMPLETE", stack.cfn_status()
    # Nothing was taken away: both HSMs and the connected store are still there.
    assert_converged(emu, ks["created"], network, network.hsm_subnets(2), 1)
    assert _store(emu, ks["created"].outputs["KeyStoreId"])["ConnectionState"] == "CONNECTED"


def test_turning_the_key_store_off_deletes_it_and_on_again_creates_one(ks):
    """EnableKeyStore=false removes the store (disconnected, deleted) and keeps the cluster and its
    HSMs; =true again creates and connects a new store."""
    emu, stack, network = ks["emu"], ks["stack"], ks["network"]
    assert ks["created"] is not None, "needs the stack from the create test"
    old_store = ks["created"].outputs["KeyStoreId"]
    cluster_id = ks["created"].outputs["ClusterId"]
    off = stack.deploy_ok(**{**ks["params"], "EnableKeyStore": "false"})
    assert "KeyStoreId" not in off.outputs, off.outputs
    assert all(s["CustomKeyStoreId"] != old_store for s in key_stores(emu)), "the store was left"
    assert off.outputs["ClusterId"] == cluster_id
    assert_converged(emu, off, network, network.hsm_subnets(2), 1)

    on = stack.deploy_ok(**ks["params"])
    new_store = on.outputs.get("KeyStoreId")
    assert new_store and new_store != old_store, on.outputs
    assert _store(emu, new_store)["ConnectionState"] == "CONNECTED"
    assert on.outputs["ClusterId"] == cluster_id
    ks["created"] = on


def test_delete_with_kms_keys_fails_then_succeeds_without(ks):
    """With a KMS key in the store the delete must not lose it: it fails naming the key. After
    the key is deleted (pending deletion, then gone) the delete succeeds and nothing bills."""
    emu, stack, network = ks["emu"], ks["stack"], ks["network"]
    assert ks["created"] is not None, "needs the stack from the create test"
    store_id = ks["created"].outputs["KeyStoreId"]
    kms = emu.client("kms")
    key_id = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id,
                            Description="e2e key in the custom key store")["KeyMetadata"]["KeyId"]

    refused = stack.destroy()
    assert refused.returncode != 0, refused.describe()
    assert key_id in refused.root_cause_text(), f"the failure must name the key:\n{refused.describe()}"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] != "PendingDeletion"
    assert any(s["CustomKeyStoreId"] == store_id for s in key_stores(emu)), "the store was lost"

    # A key pending deletion still blocks; once its window passes (the emulator's clock is sped up
    # for the window only), the delete goes through.
    clock = emu.ok("GET", "clock")
    emu.ok("POST", "clock", {"scale": 1e-6})
    try:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    finally:
        emu.ok("POST", "clock", {"scale": clock["scale"]})
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion":
                kms.list_keys()  # lets the emulator purge keys whose window has passed
                time.sleep(0.5)
                continue
        except kms.exceptions.NotFoundException:
            break
    result = stack.destroy()
    assert result.returncode == 0 and result.status == "DELETE_COMPLETE", result.describe()
    assert_nothing_billing(emu, network)
