"""Key store connect failures (issue 5): every ConnectionErrorCode injected through
`/_emu/faults` (kind `kms_connect`) gets its documented outcome, and kmsuser missing on one HSM
is caught before the connect.

Documented outcomes (docs/e2e.md, from handlers' `connection_error` table, aws-behaviour.md 3.3):
NETWORK_ERRORS, INTERNAL_ERROR, USER_LOGGED_IN are transient — the workflow disconnects and
connects again, so one injected failure ends CONNECTED; every other code fails the deployment
with the code and what to do about it.

One stack without the key store is created for the module; each test turns the key store on
with an update (a failed update rolls back and removes the store), then off again.
"""

from __future__ import annotations

import re

import pytest

from e2e_support import (LOG_DIR_DEFAULT, Stack, assert_converged, assert_no_leaks, cluster,
                         key_stores, make_network, secret_value)

RETRIED = ["NETWORK_ERRORS", "INTERNAL_ERROR", "USER_LOGGED_IN"]
FAILING = {  # code -> what the message must tell the user
    "USER_NOT_FOUND": r"kmsuser",
    "INVALID_CREDENTIALS": r"password",
    "USER_LOCKED_OUT": r"locked",
    "CLUSTER_NOT_FOUND": r"cluster",
    "INSUFFICIENT_CLOUDHSM_HSMS": r"HSM",
    "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET": r"free (IP )?address",
    "SUBNET_NOT_FOUND": r"subnet",
}


@pytest.fixture(scope="module")
def base(module_emu):
    network = make_network(module_emu)
    stack = Stack(module_emu, "e2e-keystore-faults", LOG_DIR_DEFAULT)
    params = {"VpcId": network.vpc_id, "SubnetIds": network.hsm_subnets(2), "HsmsPerSubnet": 1,
              "ClientSubnetId": network.client_subnet, "EnableKeyStore": "false"}
    created = stack.deploy_ok(**params)
    assert_converged(module_emu, created, network, network.hsm_subnets(2), 1)
    yield {"emu": module_emu, "network": network, "stack": stack, "params": params,
           "created": created}
    module_emu.clear_faults()
    stack.destroy()


def _key_store_off(base) -> None:
    base["emu"].clear_faults()
    if key_stores(base["emu"]):
        result = base["stack"].deploy(**{**base["params"], "EnableKeyStore": "false"})
        assert result.returncode == 0, result.describe()
    assert not key_stores(base["emu"]), f"turning the key store off left {key_stores(base['emu'])}"


@pytest.mark.parametrize("code", RETRIED)
def test_transient_connection_error_is_retried(base, code):
    emu, stack = base["emu"], base["stack"]
    rule = emu.add_fault(kind="kms_connect", count=1, outcome={"ConnectionErrorCode": code})
    result = stack.deploy(**{**base["params"], "EnableKeyStore": "true"})
    assert emu.fault_hits(rule["id"]) == 1, "the connect failure was not injected"
    assert result.returncode == 0, result.describe()
    store_id = result.outputs.get("KeyStoreId")
    store = emu.client("kms").describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]
    assert store["ConnectionState"] == "CONNECTED", store
    _key_store_off(base)


@pytest.mark.parametrize("code", sorted(FAILING))
def test_permanent_connection_error_fails_clearly(base, code):
    emu, stack, network = base["emu"], base["stack"], base["network"]
    rule = emu.add_fault(kind="kms_connect", count=None, outcome={"ConnectionErrorCode": code})
    result = stack.deploy(**{**base["params"], "EnableKeyStore": "true"})
    assert emu.fault_hits(rule["id"]) >= 1, "the connect failure was not injected"
    assert result.returncode != 0, result.describe()
    shown = result.root_cause_text()
    assert code in shown, f"the failure must name {code}:\n{result.describe()}"
    assert re.search(FAILING[code], shown, re.I), f"no fix/meaning for {code}:\n{result.describe()}"
    # Bounded: the connect was not retried forever (a permanent code is not retried at all,
    # or at most a few times). Counted from the emulator's rule hits, not from time.
    assert emu.fault_hits(rule["id"]) <= 3, f"{code} retried {emu.fault_hits(rule['id'])} times"
    # Clean rollback: the update is undone, the store removed, the cluster untouched.
    assert stack.cfn_status() == "UPDATE_ROLLBACK_COMPLETE", stack.cfn_status()
    emu.clear_faults()
    assert not key_stores(emu), f"the failed key store was left behind: {key_stores(emu)}"
    assert_converged(emu, base["created"], network, network.hsm_subnets(2), 1)
    _key_store_off(base)


def test_kmsuser_missing_on_one_hsm_is_caught_before_connect(base):
    """kmsuser exists on one HSM only (left from an earlier attempt). The key store workflow must
    not connect with it like that: it either recreates kmsuser on every HSM and connects, or fails
    before any ConnectCustomKeyStore with a message about kmsuser."""
    emu, stack, network = base["emu"], base["stack"], base["network"]
    out = base["created"].outputs
    c = cluster(emu, out["ClusterId"])
    one = c["Hsms"][0]
    inst = emu.client("ec2").describe_instances(InstanceIds=[out["ClientInstanceId"]])
    groups = [g["GroupId"] for g in inst["Reservations"][0]["Instances"][0]["SecurityGroups"]]
    admin = secret_value(emu, out["AdminPasswordSecretArn"])
    # Make kmsuser partial: delete it from one HSM when earlier tests left it on every HSM
    # (turning the key store off keeps kmsuser), else create it on one HSM only.
    present = [h for h, v in emu.hsm_users(c["ClusterId"]).items() if "kmsuser" in v["users"]]
    login = {"username": "admin", "role": "admin", "password": admin}
    if present:
        made = emu.ok("POST", "cloudhsm/hsm-side", {
            "cluster_id": c["ClusterId"], "security_group_ids": groups, "hsms": [one["EniIp"]],
            "op": "user_delete", "login": login, "username": "kmsuser", "role": "crypto-user"})
    else:
        made = emu.ok("POST", "cloudhsm/hsm-side", {
            "cluster_id": c["ClusterId"], "security_group_ids": groups, "hsms": [one["EniIp"]],
            "op": "user_create", "login": login,
            "username": "kmsuser", "role": "crypto-user", "password": "e2e-partial-kmsuser-1"})
    assert made["ok"], made
    users = emu.hsm_users(c["ClusterId"])
    assert sum("kmsuser" in v["users"] for v in users.values()) == 1, users

    result = stack.deploy(**{**base["params"], "EnableKeyStore": "true"})
    users = emu.hsm_users(c["ClusterId"])
    if result.returncode == 0:
        assert all("kmsuser" in v["users"] for v in users.values()), \
            f"connected while kmsuser is missing on an HSM: {users}"
        store = emu.client("kms").describe_custom_key_stores(
            CustomKeyStoreId=result.outputs["KeyStoreId"])["CustomKeyStores"][0]
        assert store["ConnectionState"] == "CONNECTED", store
    else:
        assert re.search(r"kmsuser", result.root_cause_text()), result.describe()
        entered = [e["stateEnteredEventDetails"]["name"]
                   for m in emu.introspect()["state_machines"] for ex in m["executions"]
                   for e in ex["history"] if "stateEnteredEventDetails" in e]
        assert not [n for n in entered if "Connect" in n and "Disconnect" not in n], \
            f"a connect was attempted with kmsuser missing on an HSM: {entered}"
    _key_store_off(base)
    assert_no_leaks(emu)
