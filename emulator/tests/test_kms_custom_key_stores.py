"""KMS custom key stores (AWS_CLOUDHSM): create/describe/update/delete, exceptions and state
rules (aws-behaviour.md 3.1, 3.2, 3.4)."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from test_kms_support import KMSUSER_PASSWORD, World, error_code, error_message, world  # noqa: F401


# ------------------------------------------------------------------------------ create / describe


def test_create_describes_a_disconnected_cloudhsm_store(world: World) -> None:
    cluster = world.make_cluster()
    before = time.time()
    store_id = world.create_store(cluster, name="prod-store")
    assert store_id.startswith("cks-") and len(store_id) == len("cks-1234567890abcdef0")
    entry = world.store(store_id)
    assert entry["CustomKeyStoreName"] == "prod-store"
    assert entry["CloudHsmClusterId"] == cluster.cluster_id
    assert entry["TrustAnchorCertificate"] == cluster.trust_anchor
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert entry["CustomKeyStoreType"] == "AWS_CLOUDHSM"
    assert "ConnectionErrorCode" not in entry
    created = entry["CreationDate"].timestamp()
    assert before - 1 <= created <= time.time() + 1


def test_creation_date_is_epoch_seconds_on_the_wire(world: World) -> None:
    import json
    import urllib.request

    cluster = world.make_cluster()
    world.create_store(cluster)
    request = urllib.request.Request(
        world.emulator.endpoint + "/",
        data=b"{}",
        method="POST",
        headers={
            "X-Amz-Target": "TrentService.DescribeCustomKeyStores",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    with urllib.request.urlopen(request) as response:
        body = json.loads(response.read())
    assert isinstance(body["CustomKeyStores"][0]["CreationDate"], (int, float))


def test_describe_by_id_by_name_and_not_found(world: World) -> None:
    a = world.create_store(world.make_cluster(), name="alpha")
    b = world.create_store(world.make_cluster(), name="beta")
    by_name = world.kms.describe_custom_key_stores(CustomKeyStoreName="beta")["CustomKeyStores"]
    assert [s["CustomKeyStoreId"] for s in by_name] == [b]
    by_id = world.kms.describe_custom_key_stores(CustomKeyStoreId=a)["CustomKeyStores"]
    assert [s["CustomKeyStoreName"] for s in by_id] == ["alpha"]
    everything = world.kms.describe_custom_key_stores()["CustomKeyStores"]
    assert {s["CustomKeyStoreId"] for s in everything} == {a, b}
    for kwargs in ({"CustomKeyStoreId": "cks-00000000000000000"}, {"CustomKeyStoreName": "nope"}):
        with pytest.raises(ClientError) as excinfo:
            world.kms.describe_custom_key_stores(**kwargs)
        assert error_code(excinfo) == "CustomKeyStoreNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        world.kms.describe_custom_key_stores(CustomKeyStoreId=a, CustomKeyStoreName="alpha")
    assert error_code(excinfo) == "ValidationException"


def test_describe_paginates_with_marker(world: World) -> None:
    ids = [world.create_store(world.make_cluster(), name=f"s{i}") for i in range(5)]
    seen, marker, pages = [], None, 0
    while True:
        kwargs = {"Limit": 2, **({"Marker": marker} if marker else {})}
        page = world.kms.describe_custom_key_stores(**kwargs)
        pages += 1
        seen += [s["CustomKeyStoreId"] for s in page["CustomKeyStores"]]
        assert len(page["CustomKeyStores"]) <= 2
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert pages == 3 and seen == ids
    paginated = world.kms.get_paginator("describe_custom_key_stores").paginate(PaginationConfig={"PageSize": 2})
    assert [s["CustomKeyStoreId"] for p in paginated for s in p["CustomKeyStores"]] == ids
    with pytest.raises(ClientError) as excinfo:
        world.kms.describe_custom_key_stores(Marker="not-a-marker")
    assert error_code(excinfo) == "InvalidMarkerException"


def test_create_is_idempotent_for_identical_disconnected_store(world: World) -> None:
    cluster = world.make_cluster()
    first = world.create_store(cluster, name="same")
    assert world.create_store(cluster, name="same") == first
    assert len(world.kms.describe_custom_key_stores()["CustomKeyStores"]) == 1
    # Any property different: the name is taken.
    with pytest.raises(ClientError) as excinfo:
        world.create_store(cluster, name="same", KeyStorePassword="AnotherPassword9")
    assert error_code(excinfo) == "CustomKeyStoreNameInUseException"


def test_create_is_not_idempotent_once_connected(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    with pytest.raises(ClientError) as excinfo:
        world.create_store(cluster)
    assert error_code(excinfo) == "CustomKeyStoreNameInUseException"
    assert store_id


def test_name_must_be_unique(world: World) -> None:
    world.create_store(world.make_cluster(), name="taken")
    with pytest.raises(ClientError) as excinfo:
        world.create_store(world.make_cluster(), name="taken")
    assert error_code(excinfo) == "CustomKeyStoreNameInUseException"


def test_cluster_not_found(world: World) -> None:
    cluster = world.make_cluster()
    with pytest.raises(ClientError) as excinfo:
        world.create_store(cluster, CloudHsmClusterId="cluster-doesnotexist2")
    assert error_code(excinfo) == "CloudHsmClusterNotFoundException"


@pytest.mark.parametrize("state", ["UNINITIALIZED", "INITIALIZED"])
def test_cluster_not_active(world: World, state: str) -> None:
    cluster = world.make_cluster(state=state)
    with pytest.raises(ClientError) as excinfo:
        world.create_store(cluster)
    assert error_code(excinfo) == "CloudHsmClusterNotActiveException"


def test_cluster_in_use_by_another_store(world: World) -> None:
    cluster = world.make_cluster()
    world.create_store(cluster, name="first")
    with pytest.raises(ClientError) as excinfo:
        world.create_store(cluster, name="second")
    assert error_code(excinfo) == "CloudHsmClusterInUseException"


def test_cluster_sharing_backup_history_is_in_use(world: World) -> None:
    original = world.make_cluster()
    world.create_store(original, name="first")
    restored = world.make_cluster(lineage_of=original)
    with pytest.raises(ClientError) as excinfo:
        world.create_store(restored, name="second")
    assert error_code(excinfo) == "CloudHsmClusterInUseException"


def test_incorrect_trust_anchor(world: World) -> None:
    cluster = world.make_cluster()
    other = world.make_cluster(ca=1)
    assert other.trust_anchor != cluster.trust_anchor
    with pytest.raises(ClientError) as excinfo:
        world.create_store(cluster, TrustAnchorCertificate=other.trust_anchor)
    assert error_code(excinfo) == "IncorrectTrustAnchorException"
    # The same PEM with other line endings is the same certificate.
    crlf = cluster.trust_anchor.replace("\n", "\r\n")
    assert world.create_store(cluster, TrustAnchorCertificate=crlf).startswith("cks-")


@pytest.mark.parametrize(
    "hsm_azs,subnet_azs",
    [
        (("us-east-1a",), ("us-east-1a", "us-east-1b")),  # one HSM
        (("us-east-1a", "us-east-1a"), ("us-east-1a", "us-east-1b")),  # two HSMs, one AZ
    ],
)
def test_create_needs_active_hsms_in_two_azs(world: World, hsm_azs: tuple, subnet_azs: tuple) -> None:
    cluster = world.make_cluster(hsm_azs=hsm_azs, subnet_azs=subnet_azs)
    with pytest.raises(ClientError) as excinfo:
        world.create_store(cluster)
    assert error_code(excinfo) == "CloudHsmClusterInvalidConfigurationException"
    assert error_message(excinfo) == "CloudHSM cluster must contain active HSMs in at least two Availability Zones"


def test_create_counts_only_active_hsms(world: World) -> None:
    cluster = world.make_cluster(hsm_azs=("us-east-1a", "us-east-1b"), degraded=(1,))
    with pytest.raises(ClientError) as excinfo:
        world.create_store(cluster)
    assert error_code(excinfo) == "CloudHsmClusterInvalidConfigurationException"


def test_create_needs_subnets_in_two_azs(world: World) -> None:
    cluster = world.make_cluster(hsm_azs=("us-east-1a", "us-east-1a"), subnet_azs=("us-east-1a",))
    with pytest.raises(ClientError) as excinfo:
        world.create_store(cluster)
    assert error_code(excinfo) == "CloudHsmClusterInvalidConfigurationException"
    assert "two different Availability Zones" in error_message(excinfo)


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_create_needs_the_cluster_sg_self_rules(world: World, direction: str) -> None:
    cluster = world.make_cluster()
    rule = [{"IpProtocol": "tcp", "FromPort": 2223, "ToPort": 2225,
             "UserIdGroupPairs": [{"GroupId": cluster.security_group_id}]}]
    revoke = getattr(world.ec2, f"revoke_security_group_{direction}")
    revoke(GroupId=cluster.security_group_id, IpPermissions=rule)
    with pytest.raises(ClientError) as excinfo:
        world.create_store(cluster)
    assert error_code(excinfo) == "CloudHsmClusterInvalidConfigurationException"
    assert "2223-2225" in error_message(excinfo)


def test_quota_of_ten_stores(world: World) -> None:
    for i in range(10):
        world.create_store(world.make_cluster(), name=f"store-{i}")
    with pytest.raises(ClientError) as excinfo:
        world.create_store(world.make_cluster(), name="store-10")
    assert error_code(excinfo) == "LimitExceededException"
    # Deleting one frees a slot.
    first = world.kms.describe_custom_key_stores(CustomKeyStoreName="store-0")["CustomKeyStores"][0]
    world.kms.delete_custom_key_store(CustomKeyStoreId=first["CustomKeyStoreId"])
    assert world.create_store(world.make_cluster(), name="store-10").startswith("cks-")


@pytest.mark.parametrize(
    "field,value",
    [("KeyStorePassword", "short6"), ("KeyStorePassword", "x" * 33), ("CustomKeyStoreName", "")],
)
def test_parameter_validation_never_echoes_the_password(world: World, field: str, value: str) -> None:
    cluster = world.make_cluster()
    kms = world.kms_client(validate=False)
    params = dict(
        CustomKeyStoreName="n",
        CloudHsmClusterId=cluster.cluster_id,
        TrustAnchorCertificate=cluster.trust_anchor,
        KeyStorePassword=KMSUSER_PASSWORD,
    )
    params[field] = value
    with pytest.raises(ClientError) as excinfo:
        kms.create_custom_key_store(**params)
    assert error_code(excinfo) == "ValidationException"
    assert value == "" or value not in error_message(excinfo)


def test_external_key_stores_are_refused_not_faked(world: World) -> None:
    kms = world.kms_client(validate=False)
    with pytest.raises(ClientError) as excinfo:
        kms.create_custom_key_store(CustomKeyStoreName="xks", CustomKeyStoreType="EXTERNAL_KEY_STORE")
    assert error_code(excinfo) == "UnsupportedOperationException"


# ------------------------------------------------------------------------------ state rules


def test_update_and_delete_need_disconnected(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.connected_store(cluster)
    for call in (
        lambda: world.kms.update_custom_key_store(CustomKeyStoreId=store_id, KeyStorePassword="NewPassword123"),
        lambda: world.kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId=cluster.cluster_id),
        lambda: world.kms.update_custom_key_store(
            CustomKeyStoreId=store_id, NewCustomKeyStoreName="n2", KeyStorePassword="NewPassword123"
        ),
        lambda: world.kms.delete_custom_key_store(CustomKeyStoreId=store_id),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "CustomKeyStoreInvalidStateException"
    # A rename alone is allowed while CONNECTED.
    world.kms.update_custom_key_store(CustomKeyStoreId=store_id, NewCustomKeyStoreName="renamed")
    entry = world.store(store_id)
    assert entry["CustomKeyStoreName"] == "renamed" and entry["ConnectionState"] == "CONNECTED"


def test_update_and_delete_refused_while_connecting_and_failed(world: World) -> None:
    cluster = world.make_cluster(kmsuser_on=[])
    store_id = world.create_store(cluster)
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.state(store_id) == "CONNECTING"
    for state in ("CONNECTING", "FAILED"):
        if state == "FAILED":
            world.wait_state(store_id, "FAILED")
        for call in (
            lambda: world.kms.update_custom_key_store(CustomKeyStoreId=store_id, NewCustomKeyStoreName="x"),
            lambda: world.kms.delete_custom_key_store(CustomKeyStoreId=store_id),
        ):
            with pytest.raises(ClientError) as excinfo:
                call()
            assert error_code(excinfo) == "CustomKeyStoreInvalidStateException", state


def test_update_while_disconnected(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster, name="before")
    world.create_store(world.make_cluster(), name="other")
    with pytest.raises(ClientError) as excinfo:
        world.kms.update_custom_key_store(CustomKeyStoreId=store_id, NewCustomKeyStoreName="other")
    assert error_code(excinfo) == "CustomKeyStoreNameInUseException"
    world.kms.update_custom_key_store(
        CustomKeyStoreId=store_id, NewCustomKeyStoreName="after", KeyStorePassword="ChangedPassword1"
    )
    assert world.store(store_id)["CustomKeyStoreName"] == "after"
    with pytest.raises(ClientError) as excinfo:
        world.kms.update_custom_key_store(CustomKeyStoreId="cks-00000000000000000", NewCustomKeyStoreName="z")
    assert error_code(excinfo) == "CustomKeyStoreNotFoundException"


def test_update_to_related_and_unrelated_clusters(world: World) -> None:
    original = world.make_cluster()
    store_id = world.create_store(original)
    unrelated = world.make_cluster()
    with pytest.raises(ClientError) as excinfo:
        world.kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId=unrelated.cluster_id)
    assert error_code(excinfo) == "CloudHsmClusterNotRelatedException"
    with pytest.raises(ClientError) as excinfo:
        world.kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId="cluster-doesnotexist2")
    assert error_code(excinfo) == "CloudHsmClusterNotFoundException"
    small = world.make_cluster(lineage_of=original, hsm_azs=("us-east-1a",), subnet_azs=("us-east-1a", "us-east-1b"))
    with pytest.raises(ClientError) as excinfo:
        world.kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId=small.cluster_id)
    assert error_code(excinfo) == "CloudHsmClusterInvalidConfigurationException"
    restored = world.make_cluster(lineage_of=original)
    world.kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId=restored.cluster_id)
    assert world.store(store_id)["CloudHsmClusterId"] == restored.cluster_id
    # The store now connects to the restored cluster.
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.wait_state(store_id, "CONNECTED", "FAILED")["ConnectionState"] == "CONNECTED"


def test_update_to_inactive_related_cluster(world: World) -> None:
    original = world.make_cluster()
    store_id = world.create_store(original)
    # A restore from the original's backup, still being created.
    world.emulator.emu("POST", "clock", {"durations": {"cloudhsm.cluster_create": 100000}})
    inactive = world.make_cluster(lineage_of=original, state="CREATE_IN_PROGRESS")
    with pytest.raises(ClientError) as excinfo:
        world.kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId=inactive.cluster_id)
    assert error_code(excinfo) == "CloudHsmClusterNotActiveException"


def test_delete_removes_the_store_and_leaves_the_cluster(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    world.kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert world.kms.describe_custom_key_stores()["CustomKeyStores"] == []
    with pytest.raises(ClientError) as excinfo:
        world.kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert error_code(excinfo) == "CustomKeyStoreNotFoundException"
    # The cluster is untouched and can back a new store.
    assert world.create_store(cluster).startswith("cks-")


def test_disconnect_refused_when_disconnected_or_disconnecting(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    with pytest.raises(ClientError) as excinfo:
        world.kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert error_code(excinfo) == "CustomKeyStoreInvalidStateException"
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    world.wait_state(store_id, "CONNECTED")
    world.kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert world.state(store_id) == "DISCONNECTING"
    for call in (world.kms.disconnect_custom_key_store, world.kms.connect_custom_key_store):
        with pytest.raises(ClientError) as excinfo:
            call(CustomKeyStoreId=store_id)
        assert error_code(excinfo) == "CustomKeyStoreInvalidStateException"
    world.wait_state(store_id, "DISCONNECTED")


def test_api_fault_injection_reaches_key_store_operations(world: World) -> None:
    cluster = world.make_cluster()
    store_id = world.create_store(cluster)
    status, _ = world.emulator.emu(
        "POST", "faults",
        {"service": "kms", "operation": "ConnectCustomKeyStore", "error_code": "KMSInternalException",
         "status": 500, "count": 1},
    )
    assert status == 200
    with pytest.raises(ClientError) as excinfo:
        world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert error_code(excinfo) == "KMSInternalException"
    assert world.state(store_id) == "DISCONNECTED"
    world.kms.connect_custom_key_store(CustomKeyStoreId=store_id)  # the rule is used up
    assert world.state(store_id) == "CONNECTING"
