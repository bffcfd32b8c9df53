"""KMS keys in a CloudHSM key store: CreateKey(Origin=AWS_CLOUDHSM), KeyState Unavailable,
GenerateRandom, deletion, and CustomKeyStoreHasCMKsException (aws-behaviour.md 3.1, 3.2, 3.4)."""

from __future__ import annotations

import time
import pytest
from botocore.exceptions import ClientError
from test_kms_support import World, error_code, world  # noqa: F401


def _create_key(world: World, store_id: str, **extra) -> dict:
    return world.kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id, **extra)["KeyMetadata"]


def test_create_key_in_a_connected_store(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    meta = _create_key(world, store_id, Description="in the HSMs")
    assert meta["Origin"] == "AWS_CLOUDHSM"
    assert meta["CustomKeyStoreId"] == store_id
    assert meta["CloudHsmClusterId"] == cluster.cluster_id
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT" and meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["KeyState"] == "Enabled" and meta["MultiRegion"] is False
    described = world.kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["CustomKeyStoreId"] == store_id and described["CloudHsmClusterId"] == cluster.cluster_id
    assert meta["KeyId"] in [k["KeyId"] for k in world.kms.list_keys()["Keys"]]
    # An ordinary key carries neither field.
    plain = world.kms.create_key()["KeyMetadata"]
    assert "CustomKeyStoreId" not in plain and "CloudHsmClusterId" not in plain


def test_keys_work_only_while_the_store_is_connected(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    key_id = _create_key(world, store_id)["KeyId"]
    blob = world.kms.encrypt(KeyId=key_id, Plaintext=b"secret data")["CiphertextBlob"]
    assert world.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret data"
    world.disconnect(store_id)
    assert world.kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Unavailable"
    for call in (lambda: world.kms.encrypt(KeyId=key_id, Plaintext=b"x"),
                 lambda: world.kms.decrypt(CiphertextBlob=blob),
                 lambda: world.kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "KMSInvalidStateException"
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Unavailable"  # CONNECTING
    world.wait_state(store_id, "CONNECTED")
    assert world.kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert world.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret data"


def test_create_key_needs_a_connected_store(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    with pytest.raises(ClientError) as excinfo:
        _create_key(world, store_id)
    assert error_code(excinfo) == "CustomKeyStoreInvalidStateException"
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    with pytest.raises(ClientError) as excinfo:
        _create_key(world, store_id)  # CONNECTING
    assert error_code(excinfo) == "CustomKeyStoreInvalidStateException"
    world.wait_state(store_id, "CONNECTED")
    assert _create_key(world, store_id)["KeyState"] == "Enabled"


def test_create_key_unknown_store(world: World) -> None:
    with pytest.raises(ClientError) as excinfo:
        _create_key(world, "cks-00000000000000000")
    assert error_code(excinfo) == "CustomKeyStoreNotFoundException"


def test_create_key_needs_two_active_hsms_in_two_azs(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    world.delete_hsm(cluster, cluster.hsm_ids[1])
    with pytest.raises(ClientError) as excinfo:
        _create_key(world, store_id)
    assert error_code(excinfo) == "CloudHsmClusterInvalidConfigurationException"


@pytest.mark.parametrize(
    "extra",
    [{"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
     {"MultiRegion": True}],
)
def test_only_single_region_symmetric_keys(world: World, extra: dict) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    with pytest.raises(ClientError) as excinfo:
        _create_key(world, store_id, **extra)
    assert error_code(excinfo) == "UnsupportedOperationException"


def test_origin_and_store_id_go_together(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    with pytest.raises(ClientError) as excinfo:
        world.kms.create_key(Origin="AWS_CLOUDHSM")
    assert error_code(excinfo) in ("ValidationException", "UnsupportedOperationException")
    with pytest.raises(ClientError) as excinfo:
        world.kms.create_key(CustomKeyStoreId=store_id)
    assert error_code(excinfo) == "UnsupportedOperationException"


def test_delete_store_with_keys_is_refused_including_pending_deletion(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    key_ids = sorted(_create_key(world, store_id)["KeyId"] for _ in range(2))
    world.disconnect(store_id)
    with pytest.raises(ClientError) as excinfo:
        world.kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert error_code(excinfo) == "CustomKeyStoreHasCMKsException"
    assert all(k in excinfo.value.response["Error"]["Message"] for k in key_ids)
    # Scheduling deletion works while disconnected; the keys still block the delete.
    for key_id in key_ids:
        response = world.kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        assert response["KeyId"] == key_id
        assert world.kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    with pytest.raises(ClientError) as excinfo:
        world.kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert error_code(excinfo) == "CustomKeyStoreHasCMKsException"
    assert world.store(store_id)["ConnectionState"] == "DISCONNECTED"


def test_keys_leave_after_the_scaled_pending_window_then_delete_succeeds(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    key_id = _create_key(world, store_id)["KeyId"]
    kept = _create_key(world, store_id)["KeyId"]
    world.disconnect(store_id)
    scale = world.scale()
    world.emulator.emu("POST", "clock", {"scale": 1e-6})  # 7 days = 0.6 s
    try:
        world.kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        world.kms.schedule_key_deletion(KeyId=kept, PendingWindowInDays=30)
        world.kms.cancel_key_deletion(KeyId=kept)
        time.sleep(0.8)
        listed = [k["KeyId"] for k in world.kms.list_keys()["Keys"]]
        assert key_id not in listed and kept in listed
        with pytest.raises(ClientError) as excinfo:
            world.kms.describe_key(KeyId=key_id)
        assert error_code(excinfo) == "NotFoundException"
        with pytest.raises(ClientError) as excinfo:
            world.kms.delete_custom_key_store(CustomKeyStoreId=store_id)
        assert error_code(excinfo) == "CustomKeyStoreHasCMKsException"
        world.kms.schedule_key_deletion(KeyId=kept, PendingWindowInDays=7)
        time.sleep(0.8)
        world.kms.delete_custom_key_store(CustomKeyStoreId=store_id)
        assert world.kms.describe_custom_key_stores()["CustomKeyStores"] == []
    finally:
        world.emulator.emu("POST", "clock", {"scale": scale})


def test_generate_random_in_a_key_store(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    with pytest.raises(ClientError) as excinfo:
        world.kms.generate_random(NumberOfBytes=16, CustomKeyStoreId=store_id)
    assert error_code(excinfo) == "CustomKeyStoreInvalidStateException"
    with pytest.raises(ClientError) as excinfo:
        world.kms.generate_random(NumberOfBytes=16, CustomKeyStoreId="cks-00000000000000000")
    assert error_code(excinfo) == "CustomKeyStoreNotFoundException"
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    world.wait_state(store_id, "CONNECTED")
    random = world.kms.generate_random(NumberOfBytes=16, CustomKeyStoreId=store_id)["Plaintext"]
    assert len(random) == 16
    assert len(world.kms.generate_random(NumberOfBytes=8)["Plaintext"]) == 8  # no store: unchanged
