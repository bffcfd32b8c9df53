"""Connecting and disconnecting CloudHSM key stores: asynchronous states, ConnectionErrorCode from
real conditions and from fault injection, kmsuser password rotation, and the network KMS builds
(aws-behaviour.md 2.6, 3.2, 3.3, 3.5)."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from test_kms_support import (  # noqa: F401
    ADMIN_PASSWORD,
    CONNECT_SECONDS,
    KMSUSER_PASSWORD,
    World,
    error_code,
    world,
)

ADMIN = {"username": "admin", "role": "admin", "password": ADMIN_PASSWORD}


def test_connect_is_asynchronous_and_takes_the_scaled_duration(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    started = time.time()
    assert world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert world.state(store_id) == "CONNECTING"
    entry = world.wait_state(store_id, "CONNECTED", "FAILED")
    elapsed = time.time() - started
    scale = world.scale()
    assert entry["ConnectionState"] == "CONNECTED" and "ConnectionErrorCode" not in entry
    assert elapsed >= CONNECT_SECONDS * scale * 0.95


def test_connect_rotates_kmsuser_password_and_keeps_a_session(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    users = [world.kmsuser(cluster, h) for h in cluster.hsm_ids]
    assert all(u["sessions"] == 1 and u["failed_logins"] == 0 for u in users), users
    # The new password is recorded only as a secret value, for leak tests.
    password = world.rotated_password(store_id)
    assert len(password) == 32 and password.isalnum() and password != KMSUSER_PASSWORD
    records = world.emulator.introspect()["records"]
    assert not any(password in str(r) for r in records if r["kind"] != "secret_value")
    # The old password no longer logs in on the HSMs; the new one does, on every HSM.
    result = world.kmsuser_login(cluster, KMSUSER_PASSWORD)
    assert result["ok"] is False and result["code"] == "INVALID_CREDENTIALS", result
    assert world.kmsuser_login(cluster, password)["ok"]
    # Disconnect ends KMS's session; the password stays what KMS set.
    world.disconnect(store_id)
    assert all(world.kmsuser(cluster, h)["sessions"] == 0 for h in cluster.hsm_ids)
    assert world.kmsuser_login(cluster, password)["ok"]


def test_hsm_side_sees_a_finished_connect_without_a_kms_request(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    time.sleep(CONNECT_SECONDS * world.scale() * 1.2)
    # Only the HSM side is read: KMS's session and rotation are already there.
    assert all(world.kmsuser(cluster, h)["sessions"] == 1 for h in cluster.hsm_ids)
    assert not world.kmsuser_login(cluster, KMSUSER_PASSWORD)["ok"]
    assert world.state(store_id) == "CONNECTED"


def test_connect_builds_and_disconnect_removes_the_kms_network(world: World) -> None:
    cluster = world.make_cluster(hsm_azs=("us-east-1a", "us-east-1b"), subnet_azs=("us-east-1a", "us-east-1b", "us-east-1c"))
    store_id = world.create_store(cluster)
    assert world.kms_network(store_id, cluster) == ([], [])
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.kms_network(store_id, cluster) == ([], [])  # nothing before the connect completes
    world.wait_state(store_id, "CONNECTED")
    groups, enis = world.kms_network(store_id, cluster)
    assert len(groups) == 1
    group = groups[0]
    assert group["VpcId"] == cluster.vpc_id
    assert len(group["IpPermissions"]) == 1
    assert [p["GroupId"] for p in group["IpPermissions"][0]["UserIdGroupPairs"]] == [cluster.security_group_id]
    # One ENI per cluster subnet (including the subnet without an HSM), in both groups.
    assert sorted(e["SubnetId"] for e in enis) == sorted(cluster.subnets.values())
    for eni in enis:
        assert eni["Description"] == f"KMS managed ENI for cluster {cluster.cluster_id}"
        assert {g["GroupId"] for g in eni["Groups"]} == {group["GroupId"], cluster.security_group_id}
    world.kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.state(store_id) == "DISCONNECTING"
    world.wait_state(store_id, "DISCONNECTED")
    assert world.kms_network(store_id, cluster) == ([], [])


def test_connect_when_connected_or_connecting_is_accepted(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)  # CONNECTING: valid
    world.wait_state(store_id, "CONNECTED")
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)  # CONNECTED: valid, no change
    assert world.state(store_id) == "CONNECTED"
    assert all(world.kmsuser(cluster, h)["sessions"] == 1 for h in cluster.hsm_ids)


def test_disconnect_while_connecting_cancels(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    world.kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.state(store_id) == "DISCONNECTING"
    world.wait_state(store_id, "DISCONNECTED")
    time.sleep(CONNECT_SECONDS * world.scale())
    assert world.state(store_id) == "DISCONNECTED"
    assert world.kmsuser_login(cluster, KMSUSER_PASSWORD)["ok"]  # never rotated


# ------------------------------------------------------------------------------ real conditions


def _connect_and_fail(world: World, store_id: str) -> dict:
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    entry = world.wait_state(store_id, "CONNECTED", "FAILED")
    assert entry["ConnectionState"] == "FAILED", entry
    return entry


def test_user_not_found_when_kmsuser_is_on_one_of_two_hsms(world: World) -> None:
    cluster = world.make_cluster(kmsuser_on=[0])
    store_id = world.create_store(cluster)
    entry = _connect_and_fail(world, store_id)
    assert entry["ConnectionErrorCode"] == "USER_NOT_FOUND"
    # Nothing changed on the HSM that has kmsuser.
    assert world.kmsuser(cluster, cluster.hsm_ids[1]) is None
    assert world.kmsuser(cluster, cluster.hsm_ids[0])["sessions"] == 0
    assert world.kmsuser_login(cluster, KMSUSER_PASSWORD, [cluster.hsm_ids[0]])["ok"]


def test_invalid_credentials_counts_failed_logins_until_locked_out(world: World) -> None:
    cluster = world.make_cluster(kmsuser_password="SomethingElse123")
    store_id = world.create_store(cluster)
    for attempt in range(1, 6):
        entry = _connect_and_fail(world, store_id)
        assert entry["ConnectionErrorCode"] == "INVALID_CREDENTIALS"
        assert all(world.kmsuser(cluster, h)["failed_logins"] == attempt for h in cluster.hsm_ids)
        world.disconnect(store_id)
    assert all(world.kmsuser(cluster, h)["locked"] for h in cluster.hsm_ids)
    entry = _connect_and_fail(world, store_id)
    assert entry["ConnectionErrorCode"] == "USER_LOCKED_OUT"


def test_user_locked_out(world: World) -> None:
    cluster = world.make_cluster()
    for _ in range(5):  # someone mistypes kmsuser's password on the second HSM
        assert not world.kmsuser_login(cluster, "WrongPassword99", [cluster.hsm_ids[1]])["ok"]
    assert world.kmsuser(cluster, cluster.hsm_ids[1])["locked"]
    assert not world.kmsuser(cluster, cluster.hsm_ids[0])["locked"]
    store_id = world.create_store(cluster)
    assert _connect_and_fail(world, store_id)["ConnectionErrorCode"] == "USER_LOCKED_OUT"


def test_user_logged_in(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    body = world.hsm_side(cluster, "session_open",
                          login={"username": "kmsuser", "role": "crypto-user", "password": KMSUSER_PASSWORD})
    assert body["ok"], body
    assert _connect_and_fail(world, store_id)["ConnectionErrorCode"] == "USER_LOGGED_IN"
    # Logging out and reconnecting (after Disconnect) works.
    assert world.hsm_side(cluster, "session_close", session=body["data"]["session"])["ok"]
    world.disconnect(store_id)
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.wait_state(store_id, "CONNECTED", "FAILED")["ConnectionState"] == "CONNECTED"


def test_cluster_not_found(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    world.delete_cluster(cluster)
    # Connect accepts the request (no cluster-not-found exception on Connect) and ends FAILED.
    assert _connect_and_fail(world, store_id)["ConnectionErrorCode"] == "CLUSTER_NOT_FOUND"


def test_insufficient_cloudhsm_hsms_when_hsms_go_during_connect(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    for hsm_id in cluster.hsm_ids:
        world.delete_hsm(cluster, hsm_id)
    entry = world.wait_state(store_id, "CONNECTED", "FAILED")
    assert entry["ConnectionErrorCode"] == "INSUFFICIENT_CLOUDHSM_HSMS"


def test_subnet_not_found(world: World) -> None:
    cluster = world.make_cluster(subnet_azs=("us-east-1a", "us-east-1b", "us-east-1c"))
    store_id = world.create_store(cluster)
    world.ec2.delete_subnet(SubnetId=cluster.subnets["us-east-1c"])  # the subnet without an HSM
    assert _connect_and_fail(world, store_id)["ConnectionErrorCode"] == "SUBNET_NOT_FOUND"


def test_insufficient_free_addresses_in_subnet(world: World) -> None:
    cluster = world.make_cluster(subnet_prefix=28)  # 11 usable addresses, one taken by the HSM
    store_id = world.create_store(cluster)
    subnet = cluster.subnets["us-east-1b"]
    while world.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"] > 0:
        world.ec2.create_network_interface(SubnetId=subnet)
    assert _connect_and_fail(world, store_id)["ConnectionErrorCode"] == "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET"
    assert world.kms_network(store_id, cluster) == ([], [])


# ------------------------------------------------------------------------------ quick failures


def test_quick_failure_no_active_hsm_leaves_disconnected(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    for hsm_id in cluster.hsm_ids:
        world.delete_hsm(cluster, hsm_id)
    with pytest.raises(ClientError) as excinfo:
        world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert error_code(excinfo) == "CloudHsmClusterInvalidConfigurationException"
    assert world.state(store_id) == "DISCONNECTED"


def test_connect_needs_only_one_active_hsm(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    world.delete_hsm(cluster, cluster.hsm_ids[1])
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.wait_state(store_id, "CONNECTED", "FAILED")["ConnectionState"] == "CONNECTED"


def test_connect_unknown_store(world: World) -> None:
    with pytest.raises(ClientError) as excinfo:
        world.kms.connect_custom_key_store(CustomKeyStoreId="cks-00000000000000000")
    assert error_code(excinfo) == "CustomKeyStoreNotFoundException"


# ------------------------------------------------------------------------------ faults, recovery


@pytest.mark.parametrize(
    "code",
    ["NETWORK_ERRORS", "INTERNAL_ERROR", "USER_LOGGED_IN", "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET"],
)
def test_forced_connection_error_code(world: World, code: str) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    other = world.create_store(world.make_cluster())
    world.fault({"kind": "kms_connect", "match": {"custom_key_store_id": store_id},
                 "outcome": {"ConnectionErrorCode": code}})
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    world.kms.connect_custom_key_store(CustomKeyStoreId=other)
    assert world.state(store_id) == "CONNECTING"  # the failure comes after the connect duration
    entry = world.wait_state(store_id, "CONNECTED", "FAILED")
    assert entry["ConnectionState"] == "FAILED" and entry["ConnectionErrorCode"] == code
    assert world.wait_state(other, "CONNECTED", "FAILED")["ConnectionState"] == "CONNECTED"
    # Nothing happened on the HSMs; the rule was used once, so a retry connects.
    assert world.kmsuser_login(cluster, KMSUSER_PASSWORD)["ok"]
    world.disconnect(store_id)
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.wait_state(store_id, "CONNECTED", "FAILED")["ConnectionState"] == "CONNECTED"


def test_failed_store_refuses_connect_until_disconnected(world: World) -> None:
    cluster = world.make_cluster(kmsuser_on=[1])
    store_id = world.create_store(cluster)
    _connect_and_fail(world, store_id)
    with pytest.raises(ClientError) as excinfo:
        world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert error_code(excinfo) == "CustomKeyStoreInvalidStateException"
    assert world.state(store_id) == "FAILED"
    world.kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    entry = world.wait_state(store_id, "DISCONNECTED")
    assert "ConnectionErrorCode" not in entry
    # Fix the cause (create kmsuser on the other HSM with the same password), connect again.
    body = world.hsm_side(cluster, "user_create", hsms=[cluster.hsm_ids[0]], login=ADMIN,
                          username="kmsuser", role="crypto-user", password=KMSUSER_PASSWORD)
    assert body["ok"], body
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.wait_state(store_id, "CONNECTED", "FAILED")["ConnectionState"] == "CONNECTED"


def test_reconnect_with_old_password_after_update_fails(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    world.disconnect(store_id)
    # Telling KMS the original password again: KMS rotated it on connect, so it is wrong now.
    world.kms.update_custom_key_store(CustomKeyStoreId=store_id, KeyStorePassword=KMSUSER_PASSWORD)
    assert _connect_and_fail(world, store_id)["ConnectionErrorCode"] == "INVALID_CREDENTIALS"


def test_reconnect_without_update_uses_the_rotated_password(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    first = world.rotated_password(store_id)
    world.disconnect(store_id)
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.wait_state(store_id, "CONNECTED", "FAILED")["ConnectionState"] == "CONNECTED"
    second = world.rotated_password(store_id)
    assert second not in (first, KMSUSER_PASSWORD)
    assert not world.kmsuser_login(cluster, first)["ok"] and world.kmsuser_login(cluster, second)["ok"]


def test_documented_recovery_change_password_then_update(world: World) -> None:
    """KDG: disconnect, change kmsuser's password yourself, UpdateCustomKeyStore, reconnect."""
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    world.disconnect(store_id)
    body = world.hsm_side(cluster, "user_change_password", login=ADMIN,
                          username="kmsuser", role="crypto-user", password="MyOwnPassword42")
    assert body["ok"], body
    world.kms.update_custom_key_store(CustomKeyStoreId=store_id, KeyStorePassword="MyOwnPassword42")
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.wait_state(store_id, "CONNECTED", "FAILED")["ConnectionState"] == "CONNECTED"


def test_introspection_route_never_shows_the_password(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    password = world.rotated_password(store_id)
    status, body = world.emulator.emu("GET", "kms/custom-key-stores")
    assert status == 200
    (entry,) = body["CustomKeyStores"]
    assert entry["CustomKeyStoreId"] == store_id and entry["ConnectionState"] == "CONNECTED"
    assert sorted(entry["KmsUserSessionOnHsms"]) == sorted(cluster.hsm_ids)
    assert len(entry["NetworkInterfaceIds"]) == 2 and entry["SecurityGroupId"].startswith("sg-")
    assert password not in str(body) and KMSUSER_PASSWORD not in str(body)
