"""KMS custom key stores of type AWS_CLOUDHSM, on top of moto's KMS.

``install()`` adds the six key store operations to moto's KMS (``api``), the key store rules to
CreateKey/GenerateRandom/ScheduleKeyDeletion, and the ``/_emu/kms/...`` introspection route.
State lives on moto's KMS backends; transitions are lazy (see ``stores``).

Control routes: ``GET /_emu/kms/custom-key-stores`` (stores with their network and sessions,
never passwords), ``POST /_emu/kms/reset`` (KMS alone).

Other parts of the emulator that read the HSM side (users, sessions, passwords) should call
:func:`advance_all` first, so a connect whose duration has elapsed has rotated the kmsuser password
and opened KMS's session before anyone looks.
"""

from __future__ import annotations

import threading
from typing import Any

from emu import control

from . import api, stores


def _kms_backends() -> list[Any]:
    from moto.kms.models import kms_backends

    found = []
    for account_id in list(kms_backends.keys()):
        per_region = kms_backends[account_id]
        for region in list(per_region.keys()):
            found.append(per_region[region])
    return found


def advance_all() -> None:
    """Apply every elapsed key store transition in every account and Region."""
    for backend in _kms_backends():
        stores.advance_backend(backend)


def _introspect(_body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
    """Key stores with their internals (never the password), for tests and debugging."""
    advance_all()
    out = []
    for backend in _kms_backends():
        for store in stores.registry(backend).values():
            entry = store.to_entry()
            entry.update(
                AccountId=store.account_id,
                Region=store.region,
                SecurityGroupId=store.security_group_id,
                NetworkInterfaceIds=list(store.eni_ids),
                KmsUserSessionOnHsms=list(store.session.counted_on) if store.session else [],
                TransitionDueInSeconds=None,
            )
            if store.deadline is not None:
                from emu import clock

                entry["TransitionDueInSeconds"] = max(0.0, store.deadline - clock.now())
            out.append(entry)
    return 200, {"CustomKeyStores": out}


def _reset_kms(_body: dict[str, Any], _query: dict[str, str]) -> tuple[int, Any]:
    """Reset KMS alone (keys and key stores), leaving every other service as it is.

    A full ``/_emu/reset`` rebuilds moto's EC2 backend, which takes seconds; key store tests
    make their own VPCs and clusters and only need a clean KMS.
    """
    from moto.kms.models import kms_backends

    with stores.LOCK:
        reset()
        kms_backends.reset()
    return 200, {"reset": "kms"}


_advancing = threading.local()


def _hook_cloudhsm_reads() -> None:
    """Advance key stores whenever the CloudHSM model is read (its ``tick``).

    Transitions are lazy; without this, a connect whose duration has elapsed would rotate the
    kmsuser password and open KMS's session only at the next KMS request, and a ``cloudhsm-cli``
    ``user list`` in between would see the old state.
    """
    try:
        from emu.cloudhsm import models
    except ImportError:  # no CloudHSM package: nothing to keep in step
        return
    original = models.CloudHsmBackend.tick

    def tick(self: Any) -> None:
        original(self)
        if getattr(_advancing, "active", False):
            return
        _advancing.active = True
        try:
            from moto.kms.models import kms_backends

            stores.advance_backend(kms_backends[self.account_id][self.region_name])
        finally:
            _advancing.active = False

    models.CloudHsmBackend.tick = tick


_routes_installed = False


def install() -> None:
    global _routes_installed
    if _routes_installed:
        return
    api.install()
    _hook_cloudhsm_reads()
    if not _routes_installed:
        control.route("GET", "kms/custom-key-stores")(_introspect)
        control.route("POST", "kms/reset")(_reset_kms)
    _routes_installed = True


def reset() -> None:
    """Forget every key store, ending KMS's kmsuser sessions on the HSMs (moto's own reset also
    drops the stores with the backends)."""
    from . import kmsuser

    with stores.LOCK:
        for backend in _kms_backends():
            registry = stores.registry(backend)
            for store in registry.values():
                try:
                    kmsuser.logout(store.session)
                except Exception:  # the CloudHSM model may already be gone (full reset)
                    pass
            registry.clear()
