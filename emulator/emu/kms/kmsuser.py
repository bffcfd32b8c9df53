"""What KMS does to the ``kmsuser`` crypto user when it connects and disconnects.

KMS logs in as kmsuser on every HSM of the cluster, rotates the password to a value only KMS
knows, and stays logged in while connected (aws-behaviour.md 2.6). It goes through the same HSM
side as ``cloudhsm-cli`` (``emu.cloudhsm.hsm_side``), so failed logins count and lock the user
(5 failures) exactly as a CLI login would, and a password cannot be rotated while someone else is
logged in as kmsuser.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from .hsm_view import ClusterView

USERNAME = "kmsuser"
ROLE = "crypto-user"
_ALPHABET = string.ascii_letters + string.digits

# hsm_side error code -> ConnectionErrorCode
_CODES = {
    "USER_NOT_FOUND": "USER_NOT_FOUND",
    "INVALID_CREDENTIALS": "INVALID_CREDENTIALS",
    "USER_LOCKED": "USER_LOCKED_OUT",
    "USER_LOGGED_IN": "USER_LOGGED_IN",
    "CLUSTER_NOT_FOUND": "CLUSTER_NOT_FOUND",
    "CONNECTION_FAILED": "INSUFFICIENT_CLOUDHSM_HSMS",
}


def new_password() -> str:
    # 32 alphanumeric characters: the longest password CloudHSM accepts (2.6: 7-32 alphanumeric).
    return "".join(secrets.choice(_ALPHABET) for _ in range(32))


def _hsm_side() -> Any:
    from emu.cloudhsm import hsm_side

    return hsm_side


def login_and_rotate(
    account_id: str, region: str, cluster: ClusterView, password: str, new: str
) -> tuple[str | None, Any]:
    """Log in as kmsuser on every active HSM and rotate its password to ``new``.

    Returns (ConnectionErrorCode, None) on failure, (None, session) on success; the session stays
    open while the store is connected.
    """
    hsm_side = _hsm_side()
    active = cluster.active_hsms()
    # A kmsuser that is not a crypto user is not the CU KMS needs ("no kmsuser CU account").
    if any(h.user(USERNAME) is None or h.user(USERNAME).role != ROLE for h in active):
        return "USER_NOT_FOUND", None
    try:
        session = hsm_side.login(
            account_id, region, cluster.cluster_id, [h.hsm_id for h in active], USERNAME, ROLE, password
        )
    except hsm_side.HsmSideError as err:
        return _CODES.get(err.code, "INTERNAL_ERROR"), None
    try:
        hsm_side.user_change_password(session, USERNAME, ROLE, new)
    except hsm_side.HsmSideError as err:
        hsm_side.logout(session)
        return _CODES.get(err.code, "INTERNAL_ERROR"), None
    return None, session


def logout(session: Any) -> None:
    if session is not None:
        _hsm_side().logout(session)
