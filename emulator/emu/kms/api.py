"""The KMS operations for CloudHSM key stores, as methods of moto's ``KmsResponse``.

moto maps ``X-Amz-Target: TrentService.<Op>`` to the snake_case method of the response class, so
adding ``create_custom_key_store`` etc. serves them in server mode, to boto3, the AWS SDK for Rust
and Step Functions ``aws-sdk:`` tasks alike. ``CreateKey``, ``GenerateRandom``,
``ScheduleKeyDeletion`` and ``CancelKeyDeletion`` are wrapped to add the key store rules.
API fault rules (``faults.api_fault("kms", <Op>)``) are applied centrally by ``emu.server`` before
a request reaches these methods.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from moto.kms.models import Key
from moto.kms.responses import KmsResponse

from emu import clock, recorder

from . import stores
from .errors import error, invalid_state, store_not_found, validation
from .stores import LOCK, CustomKeyStore

# --------------------------------------------------------------------------- helpers


def _params(self: KmsResponse) -> dict[str, Any]:
    return json.loads(self.body or "{}")


def _length(params: dict[str, Any], name: str, field: str, lo: int, hi: int, required: bool) -> Any:
    value = params.get(name)
    if value is None:
        if required:
            raise validation(field, "Member must not be null")
        return None
    if not isinstance(value, str) or len(value) < lo:
        raise validation(field, f"Member must have length greater than or equal to {lo}")
    if len(value) > hi:
        raise validation(field, f"Member must have length less than or equal to {hi}")
    return value


def _record_password(store_id: str, password: str, what: str) -> None:
    recorder.record("secret_value", source=what, custom_key_store_id=store_id, value=password)


def _name_in_use(name: str) -> Exception:
    return error(
        "CustomKeyStoreNameInUseException",
        f"A custom key store with the name {name} already exists in this account and Region.",
    )


def _check_cluster_not_in_use(
    registry: dict[str, CustomKeyStore], cluster_id: str, certificate: str | None, exclude: str = ""
) -> None:
    for other in registry.values():
        if other.id == exclude:
            continue
        shares_lineage = certificate is not None and stores.same_pem(
            certificate, other.cluster_certificate
        )
        if other.cluster_id == cluster_id or shares_lineage:
            raise error(
                "CloudHsmClusterInUseException",
                f"The AWS CloudHSM cluster {cluster_id} is already associated with custom key "
                f"store {other.id}, or shares its backup history (cluster certificate).",
            )


# --------------------------------------------------------------------------- the six operations


def create_custom_key_store(self: KmsResponse) -> str:
    p = _params(self)
    name = _length(p, "CustomKeyStoreName", "customKeyStoreName", 1, 256, True)
    store_type = p.get("CustomKeyStoreType") or "AWS_CLOUDHSM"
    if store_type != "AWS_CLOUDHSM":
        raise error(
            "UnsupportedOperationException",
            f"CustomKeyStoreType {store_type} is not modelled by this emulator (only AWS_CLOUDHSM).",
        )
    cluster_id = _length(p, "CloudHsmClusterId", "cloudHsmClusterId", 19, 24, True)
    trust_anchor = _length(p, "TrustAnchorCertificate", "trustAnchorCertificate", 1, 5000, True)
    password = _length(p, "KeyStorePassword", "keyStorePassword", 7, 32, True)
    backend = self.kms_backend
    account, region = self.current_account, self.region
    with LOCK:
        stores.advance_backend(backend)
        registry = stores.registry(backend)
        # Idempotent: the same property values as an existing DISCONNECTED store return its id
        # (KDG create-keystore.md).
        for other in registry.values():
            if (
                other.name == name
                and other.state == "DISCONNECTED"
                and other.cluster_id == cluster_id
                and stores.same_pem(other.trust_anchor, trust_anchor)
                and other.password == password
            ):
                return json.dumps({"CustomKeyStoreId": other.id})
        if len(registry) >= stores.QUOTA:
            raise error(
                "LimitExceededException",
                f"You have reached the quota of {stores.QUOTA} custom key stores in this account "
                "and Region.",
            )
        if any(other.name == name for other in registry.values()):
            raise _name_in_use(name)
        cluster = stores.require_cluster(account, region, cluster_id)
        _check_cluster_not_in_use(registry, cluster_id, cluster.cluster_certificate)
        stores.require_active(cluster)
        if not stores.same_pem(trust_anchor, cluster.trust_anchor):
            raise error(
                "IncorrectTrustAnchorException",
                f"The trust anchor certificate is not the trust anchor of AWS CloudHSM cluster "
                f"{cluster_id} (the customerCA.crt used to initialize it).",
            )
        stores.require_configuration(account, region, cluster, min_hsms=2)
        store = CustomKeyStore(
            id=stores.new_store_id(),
            name=name,
            cluster_id=cluster_id,
            trust_anchor=trust_anchor,
            cluster_certificate=cluster.cluster_certificate,
            password=password,
            account_id=account,
            region=region,
        )
        registry[store.id] = store
        _record_password(store.id, password, "kms.CreateCustomKeyStore KeyStorePassword")
        return json.dumps({"CustomKeyStoreId": store.id})


def connect_custom_key_store(self: KmsResponse) -> str:
    store_id = _length(_params(self), "CustomKeyStoreId", "customKeyStoreId", 1, 64, True)
    with LOCK:
        stores.connect(stores.find(self.kms_backend, store_id))
    return "{}"


def disconnect_custom_key_store(self: KmsResponse) -> str:
    store_id = _length(_params(self), "CustomKeyStoreId", "customKeyStoreId", 1, 64, True)
    with LOCK:
        stores.disconnect(stores.find(self.kms_backend, store_id))
    return "{}"


def delete_custom_key_store(self: KmsResponse) -> str:
    store_id = _length(_params(self), "CustomKeyStoreId", "customKeyStoreId", 1, 64, True)
    backend = self.kms_backend
    with LOCK:
        store = stores.find(backend, store_id)
        if store.state != "DISCONNECTED":
            raise invalid_state(store.id, store.state, "DeleteCustomKeyStore")
        keys = stores.keys_in_store(backend, store.id)
        if keys:
            raise error(
                "CustomKeyStoreHasCMKsException",
                f"Custom key store {store.id} contains {len(keys)} KMS key(s) "
                f"({', '.join(sorted(k.id for k in keys))}). Schedule their deletion and wait "
                "for it to complete before deleting the custom key store.",
            )
        del stores.registry(backend)[store.id]
    return "{}"


def update_custom_key_store(self: KmsResponse) -> str:
    p = _params(self)
    store_id = _length(p, "CustomKeyStoreId", "customKeyStoreId", 1, 64, True)
    new_name = _length(p, "NewCustomKeyStoreName", "newCustomKeyStoreName", 1, 256, False)
    password = _length(p, "KeyStorePassword", "keyStorePassword", 7, 32, False)
    cluster_id = _length(p, "CloudHsmClusterId", "cloudHsmClusterId", 19, 24, False)
    backend = self.kms_backend
    account, region = self.current_account, self.region
    with LOCK:
        store = stores.find(backend, store_id)
        name_only = password is None and cluster_id is None
        allowed = store.state == "DISCONNECTED" or (store.state == "CONNECTED" and name_only)
        if not allowed:
            raise invalid_state(store.id, store.state, "UpdateCustomKeyStore")
        registry = stores.registry(backend)
        if new_name is not None and any(
            o.name == new_name and o.id != store.id for o in registry.values()
        ):
            raise _name_in_use(new_name)
        new_cluster = None
        if cluster_id is not None or password is not None:
            # The cluster rules of UpdateCustomKeyStore apply to the cluster the store will use.
            # Uncertain whether AWS re-checks them on a password-only update; we do (a store
            # whose cluster lost its HSMs cannot be used anyway). A rename skips them.
            target = cluster_id or store.cluster_id
            new_cluster = stores.require_cluster(account, region, target)
            if cluster_id is not None and cluster_id != store.cluster_id:
                if not stores.same_pem(new_cluster.cluster_certificate, store.cluster_certificate):
                    raise error(
                        "CloudHsmClusterNotRelatedException",
                        f"AWS CloudHSM cluster {cluster_id} has a different cluster certificate "
                        f"than the original cluster {store.cluster_id}; specify a cluster that "
                        "shares its backup history.",
                    )
            stores.require_active(new_cluster)
            stores.require_configuration(account, region, new_cluster, min_hsms=2)
        if new_name is not None:
            store.name = new_name
        if password is not None:
            store.password = password
            _record_password(store.id, password, "kms.UpdateCustomKeyStore KeyStorePassword")
        if cluster_id is not None and new_cluster is not None:
            store.cluster_id = cluster_id
    return "{}"


def describe_custom_key_stores(self: KmsResponse) -> str:
    p = _params(self)
    store_id = p.get("CustomKeyStoreId")
    name = p.get("CustomKeyStoreName")
    limit = p.get("Limit")
    marker = p.get("Marker")
    if store_id is not None and name is not None:
        raise error(
            "ValidationException",
            "Specify either CustomKeyStoreId or CustomKeyStoreName, not both.",
        )
    if limit is not None and not (isinstance(limit, int) and 1 <= limit <= 1000):
        raise validation("limit", "Member must have value between 1 and 1000")
    backend = self.kms_backend
    with LOCK:
        stores.advance_backend(backend)
        listed = list(stores.registry(backend).values())
        if store_id is not None:
            listed = [s for s in listed if s.id == store_id]
            if not listed:
                raise store_not_found(store_id)
        elif name is not None:
            listed = [s for s in listed if s.name == name]
            if not listed:
                raise store_not_found(name)
        start = 0
        if marker is not None:
            ids = [s.id for s in listed]
            if marker not in ids:
                raise error("InvalidMarkerException", "The marker is not valid.")
            start = ids.index(marker)
        page = listed[start : start + (limit or 1000)]
        rest = listed[start + len(page) :]
        body: dict[str, Any] = {
            "CustomKeyStores": [s.to_entry() for s in page],
            "Truncated": bool(rest),
        }
        if rest:
            body["NextMarker"] = rest[0].id
    return json.dumps(body)


# --------------------------------------------------------------------------- keys in a key store


def _wrap_create_key(original: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    def create_key(self: KmsResponse) -> str:
        p = _params(self)
        origin = p.get("Origin") or "AWS_KMS"
        store_id = p.get("CustomKeyStoreId")
        if origin != "AWS_CLOUDHSM" and store_id is None:
            return original(self)
        # The exact errors for a mismatched Origin/CustomKeyStoreId are not documented
        # (uncertain); the CreateKey docs say both must be given together.
        if store_id is None:
            raise validation("customKeyStoreId", "CustomKeyStoreId is required when Origin is AWS_CLOUDHSM")
        if origin != "AWS_CLOUDHSM":
            raise error(
                "UnsupportedOperationException",
                f"Origin {origin} is not valid with a CustomKeyStoreId of a CloudHSM key store; "
                "use AWS_CLOUDHSM.",
            )
        key_spec = p.get("KeySpec") or p.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        key_usage = p.get("KeyUsage") or "ENCRYPT_DECRYPT"
        if key_spec != "SYMMETRIC_DEFAULT" or key_usage != "ENCRYPT_DECRYPT" or p.get("MultiRegion"):
            raise error(
                "UnsupportedOperationException",
                "KMS keys in a CloudHSM key store must be single-Region symmetric encryption keys "
                "(KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT).",
            )
        backend = self.kms_backend
        account, region = self.current_account, self.region
        with LOCK:
            store = stores.find(backend, store_id)
            if store.state != "CONNECTED":
                raise invalid_state(store.id, store.state, "CreateKey")
            cluster = stores.get_cluster(account, region, store.cluster_id)
            if cluster is None:
                # CreateKey has no cluster-not-found error; a store whose cluster is gone fails
                # its configuration rule (no active HSMs). Uncertain.
                raise error(
                    "CloudHsmClusterInvalidConfigurationException",
                    "CloudHSM cluster must contain active HSMs in at least two Availability Zones",
                )
            stores.require_configuration(account, region, cluster, min_hsms=2)
            key = backend.create_key(
                p.get("Policy"),
                key_usage,
                key_spec,
                p.get("Description"),
                p.get("Tags"),
                False,
                "AWS_CLOUDHSM",
            )
            key.custom_key_store_id = store.id
            key.cloudhsm_cluster_id = store.cluster_id
            return json.dumps(key.to_dict())

    return create_key


def _wrap_generate_random(original: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    def generate_random(self: KmsResponse) -> str:
        store_id = _params(self).get("CustomKeyStoreId")
        if store_id is not None:
            with LOCK:
                store = stores.find(self.kms_backend, store_id)
                if store.state != "CONNECTED":
                    raise invalid_state(store.id, store.state, "GenerateRandom")
        return original(self)

    return generate_random


def _wrap_schedule_key_deletion(original: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    def schedule_key_deletion(self: KmsResponse) -> str:
        result = original(self)
        days = _params(self).get("PendingWindowInDays") or 30
        key = _key(self, json.loads(result).get("KeyId"))
        if key is not None and getattr(key, "custom_key_store_id", None):
            # The pending window passes on the emulator's scaled clock.
            key.emu_deletion_deadline = clock.now() + clock.real_seconds(int(days) * 86400)
        return result

    return schedule_key_deletion


def _wrap_cancel_key_deletion(original: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    def cancel_key_deletion(self: KmsResponse) -> str:
        result = original(self)
        key = _key(self, json.loads(result).get("KeyId"))
        if key is not None:
            key.emu_deletion_deadline = None
        return result

    return cancel_key_deletion


def _key(self: KmsResponse, key_id: str | None) -> Any | None:
    if not key_id:
        return None
    backend = self.kms_backend
    return backend.keys.get(backend.get_key_id(key_id))


def _wrap_key_to_dict(original: Callable[[Key], dict[str, Any]]) -> Callable[[Key], dict[str, Any]]:
    def to_dict(self: Key) -> dict[str, Any]:
        result = original(self)
        store_id = getattr(self, "custom_key_store_id", None)
        if store_id:
            meta = result["KeyMetadata"]
            meta["CustomKeyStoreId"] = store_id
            meta["CloudHsmClusterId"] = self.cloudhsm_cluster_id
            # A key in a store that is not connected cannot be used: KeyState Unavailable.
            # PendingDeletion keeps its state (deletion proceeds while disconnected).
            store = _store_of(self)
            if (store is None or store.state != "CONNECTED") and meta["KeyState"] in ("Enabled", "Disabled"):
                meta["KeyState"] = "Unavailable"
        return result

    return to_dict


def _store_of(key: Key) -> CustomKeyStore | None:
    from moto.kms.models import kms_backends

    backend = kms_backends[key.account_id][key.region]
    store = stores.registry(backend).get(key.custom_key_store_id)
    if store is not None:
        stores.advance(store)
    return store


# Cryptographic operations whose response names the key(s) used.
CRYPTO_OPERATIONS = ("encrypt", "decrypt", "re_encrypt", "generate_data_key",
                     "generate_data_key_without_plaintext", "generate_data_key_pair",
                     "generate_data_key_pair_without_plaintext")


def _wrap_crypto(original: Callable[[KmsResponse], str]) -> Callable[[KmsResponse], str]:
    """A key in a key store that is not CONNECTED cannot be used (KeyState Unavailable).

    The check runs on the key named in the response (Decrypt finds its key in the ciphertext);
    the operation has no side effect in moto, so refusing afterwards is equivalent. The exact
    message AWS returns is uncertain.
    """

    def crypto(self: KmsResponse) -> str:
        result = original(self)
        body = json.loads(result) if isinstance(result, str) else {}
        for field in ("KeyId", "SourceKeyId"):
            key = _key(self, body.get(field)) if body.get(field) else None
            store_id = getattr(key, "custom_key_store_id", None)
            if key is None or not store_id:
                continue
            store = _store_of(key)
            if store is None or store.state != "CONNECTED":
                raise error(
                    "KMSInvalidStateException",
                    f"{key.arn} is unavailable: its custom key store {store_id} is not connected.",
                )
        return result

    crypto.__name__ = original.__name__
    return crypto


def _wrap_call_action(original: Callable[[KmsResponse], Any]) -> Callable[[KmsResponse], Any]:
    def call_action(self: KmsResponse) -> Any:
        # Lazy transitions first, so every request sees the store states as of now.
        try:
            stores.advance_backend(self.kms_backend)
        except Exception:  # never turn a bookkeeping problem into a failed unrelated request
            logging.getLogger("emu.kms").exception("advancing custom key stores failed")
        return original(self)

    return call_action


OPERATIONS = {
    "create_custom_key_store": create_custom_key_store,
    "connect_custom_key_store": connect_custom_key_store,
    "disconnect_custom_key_store": disconnect_custom_key_store,
    "delete_custom_key_store": delete_custom_key_store,
    "update_custom_key_store": update_custom_key_store,
    "describe_custom_key_stores": describe_custom_key_stores,
}

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    for name, fn in OPERATIONS.items():
        setattr(KmsResponse, name, fn)
    KmsResponse.create_key = _wrap_create_key(KmsResponse.create_key)
    KmsResponse.generate_random = _wrap_generate_random(KmsResponse.generate_random)
    KmsResponse.schedule_key_deletion = _wrap_schedule_key_deletion(KmsResponse.schedule_key_deletion)
    KmsResponse.cancel_key_deletion = _wrap_cancel_key_deletion(KmsResponse.cancel_key_deletion)
    KmsResponse.call_action = _wrap_call_action(KmsResponse.call_action)
    for name in CRYPTO_OPERATIONS:
        if hasattr(KmsResponse, name):
            setattr(KmsResponse, name, _wrap_crypto(getattr(KmsResponse, name)))
    Key.to_dict = _wrap_key_to_dict(Key.to_dict)

