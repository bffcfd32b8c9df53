"""What KMS does to the ``kmsuser`` crypto user on each HSM when it connects and disconnects.

KMS logs in as kmsuser on every HSM of the cluster, rotates the password to a value only KMS
knows, and stays logged in while connected (aws-behaviour.md 2.6). A wrong password counts as a
failed login on that HSM; 5 failed logins lock the user (2.4 ``login``).
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from .hsm_view import ClusterView, HsmView

USERNAME = "kmsuser"
MAX_FAILED_LOGINS = 5
_ALPHABET = string.ascii_letters + string.digits


def new_password() -> str:
    # 32 alphanumeric characters: the longest password CloudHSM accepts (2.6: 7-32 alphanumeric).
    return "".join(secrets.choice(_ALPHABET) for _ in range(32))


def _user(hsm: HsmView) -> Any | None:
    return hsm.user(USERNAME)


def _is_crypto_user(user: Any) -> bool:
    role = str(getattr(user, "role", "crypto-user")).lower().replace("_", "-")
    return role in ("crypto-user", "cu")


def check_login(cluster: ClusterView, password: str) -> str | None:
    """Try kmsuser's login on every active HSM; return a ConnectionErrorCode or None on success.

    Order (my reading of the KDG troubleshooting page): a missing user anywhere is found before
    any login is attempted; a locked user refuses the login whatever the password; a wrong
    password counts a failed login on each HSM where it is wrong; a user with an open session
    cannot have its password rotated (USER_LOGGED_IN).
    """
    hsms = cluster.active_hsms()
    users = [(_user(h), h) for h in hsms]
    if any(u is None or not _is_crypto_user(u) for u, _ in users):
        return "USER_NOT_FOUND"
    if any(getattr(u, "locked", False) for u, _ in users):
        return "USER_LOCKED_OUT"
    wrong = [u for u, _ in users if getattr(u, "password", None) != password]
    if wrong:
        for user in wrong:
            user.failed_logins = int(getattr(user, "failed_logins", 0)) + 1
            if user.failed_logins >= MAX_FAILED_LOGINS:
                user.locked = True
        return "INVALID_CREDENTIALS"
    if any(int(getattr(u, "sessions", 0)) > 0 for u, _ in users):
        return "USER_LOGGED_IN"
    return None


def rotate_and_open_sessions(cluster: ClusterView, password: str) -> list[str]:
    """Log in on every active HSM, set the new password, keep a session. Returns the HSM ids."""
    opened = []
    for hsm in cluster.active_hsms():
        user = _user(hsm)
        user.failed_logins = 0
        user.password = password
        user.sessions = int(getattr(user, "sessions", 0)) + 1
        opened.append(hsm.hsm_id)
    return opened


def close_sessions(cluster: ClusterView | None, hsm_ids: list[str]) -> None:
    """End KMS's sessions on the HSMs it logged into (those still present)."""
    if cluster is None:
        return
    for hsm in cluster.hsms:
        if hsm.hsm_id in hsm_ids:
            user = _user(hsm)
            if user is not None and int(getattr(user, "sessions", 0)) > 0:
                user.sessions -= 1
