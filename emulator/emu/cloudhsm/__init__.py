"""CloudHSM v2 for the emulator: the control plane (18 operations), the HSM side, and the
``AWS::CloudHSM::Cluster`` CloudFormation model.

* ``models``    – clusters, HSMs, backups, quotas; lazy state transitions on ``emu.clock``.
* ``responses`` – awsJson1_1 and rpc-v2-cbor wire protocols.
* ``pki``       – the cluster CSR and certificates; InitializeCluster's certificate checks.
* ``hsm_side``  – per-HSM users, activation, login; the API ``cloudhsm-cli`` and KMS use.
* ``cfn_model`` – ``AWS::CloudHSM::Cluster``.

``install()`` swaps our backend class into moto's ``cloudhsmv2_backends`` (so ``/moto-api/reset``
clears it), routes both protocols to ``responses``, registers the CloudFormation model with
``emu.cfn`` and the ``/_emu/cloudhsm/...`` routes. ``reset()`` restores quotas and settings.

Control routes (JSON):
  GET/POST /_emu/cloudhsm/quotas    {"clusters_per_region": 4, "hsms_per_region": 6, "hsms_per_cluster": 28}
  GET/POST /_emu/cloudhsm/settings  {"allow_hsm1_medium": false}
  GET      /_emu/cloudhsm/hsm-users?cluster_id=...[&account=...&region=...]
  POST     /_emu/cloudhsm/hsm-side   drive the HSM side for tests (see _hsm_side_call)
  POST     /_emu/cloudhsm/replace-hsm {"cluster_id", "hsm_id"}: AWS replaces an HSM (new id, same ENI)
"""

from __future__ import annotations

from typing import Any

from emu import clock, control

from . import models

_installed = False
_sessions: dict[str, Any] = {}  # sessions opened through /_emu/cloudhsm/hsm-side


def _account_region(query: dict[str, str]) -> tuple[str, str]:
    from moto.core import DEFAULT_ACCOUNT_ID

    return query.get("account") or DEFAULT_ACCOUNT_ID, query.get("region") or "us-east-1"


def _update(target: dict[str, Any], body: dict[str, Any], kind: type) -> tuple[int, Any]:
    unknown = set(body) - set(target)
    if unknown:
        return 400, {"error": f"unknown keys: {sorted(unknown)}"}
    for key, value in body.items():
        if kind is int and (not isinstance(value, int) or value < 0):
            return 400, {"error": f"{key} must be a non-negative integer"}
        if kind is bool and not isinstance(value, bool):
            return 400, {"error": f"{key} must be true or false"}
    target.update(body)
    return 200, dict(target)


def _hsm_side_call(body: dict[str, Any]) -> tuple[int, Any]:
    """Drive the HSM side without an EC2 client (tests). The client is "in" the security groups
    ``security_group_ids``; session commands log in as ``login`` {username, role, password},
    run, and log out – like the CLI's single-command mode. Returns {"ok": true, "data": ...} or
    {"ok": false, "code", "message"}."""
    from . import hsm_side
    from .hsm_side import HsmSideError

    account, region = _account_region(body)
    cluster_id = body.get("cluster_id", "")
    op = body.get("op")
    try:
        reached = hsm_side.reachable_hsms(account, region, cluster_id, body.get("security_group_ids") or [])
        if body.get("hsms") is not None:  # the client is configured with only these (-a IP)
            wanted = set(body["hsms"])
            reached = [h for h in reached if h.eni_ip in wanted or h.hsm_id in wanted]
        if op == "reachable":
            data: Any = [h.hsm_id for h in reached]
        elif op == "cluster_activate":
            hsm_side.cluster_activate(account, region, cluster_id, reached, body.get("password"),
                                      body.get("trust_anchor"))
            data = "Cluster activation successful"
        elif op == "user_list":
            data = hsm_side.user_list(account, region, cluster_id, reached)
        elif op == "session_open":  # an interactive session that stays logged in
            who = body.get("login") or {}
            session = hsm_side.login(account, region, cluster_id, reached, who.get("username"),
                                     who.get("role"), who.get("password"))
            key = str(len(_sessions) + 1)
            _sessions[key] = session
            data = {"session": key}
        elif op == "session_close":
            hsm_side.logout(_sessions.pop(str(body.get("session")), None))
            data = "Logged out"
        elif op in ("login", "user_create", "user_change_password", "user_delete"):
            who = body.get("login") or {}
            session = hsm_side.login(account, region, cluster_id, reached, who.get("username"),
                                     who.get("role"), who.get("password"))
            try:
                if op == "login":
                    data = {"username": session.username, "role": session.role}
                elif op == "user_create":
                    data = hsm_side.user_create(session, body.get("username"), body.get("role"), body.get("password"))
                elif op == "user_change_password":
                    data = hsm_side.user_change_password(session, body.get("username"), body.get("role"),
                                                         body.get("password"))
                else:
                    data = hsm_side.user_delete(session, body.get("username"), body.get("role"))
            finally:
                hsm_side.logout(session)
        else:
            return 400, {"error": f"unknown op {op!r}"}
    except HsmSideError as exc:
        return 200, {"ok": False, "code": exc.code, "message": exc.message}
    return 200, {"ok": True, "data": data}


def _register_routes() -> None:
    @control.route("GET", "cloudhsm/quotas")
    def get_quotas(body, query):
        return 200, dict(models.quotas)

    @control.route("POST", "cloudhsm/quotas")
    def set_quotas(body, query):
        with models.LOCK:
            return _update(models.quotas, body, int)

    @control.route("GET", "cloudhsm/settings")
    def get_settings(body, query):
        return 200, dict(models.settings)

    @control.route("POST", "cloudhsm/settings")
    def set_settings(body, query):
        with models.LOCK:
            return _update(models.settings, body, bool)

    @control.route("POST", "cloudhsm/hsm-side")
    def hsm_side_call(body, query):
        return _hsm_side_call(body)

    @control.route("POST", "cloudhsm/replace-hsm")
    def replace_hsm(body, query):
        account, region = _account_region(body)
        with models.LOCK:
            b = models.backend(account, region)
            b.tick()
            try:
                new = b.replace_hsm(body.get("cluster_id", ""), body.get("hsm_id", ""))
            except models.CloudHsmError as exc:
                return 404, {"error": exc.message}
            return 200, {"old_hsm_id": body.get("hsm_id"), "new_hsm_id": new.hsm_id, "eni_id": new.eni_id}

    @control.route("GET", "cloudhsm/hsm-users")
    def hsm_users(body, query):
        from .hsm_side import HsmSideError, describe_users

        account, region = _account_region(query)
        try:
            return 200, describe_users(account, region, query.get("cluster_id", ""))
        except HsmSideError as exc:
            return 404, {"error": exc.message}


def install() -> None:
    """Patch moto's cloudhsmv2 service; idempotent."""
    global _installed
    if _installed:
        return
    import moto.cloudhsmv2.models as moto_models
    import moto.cloudhsmv2.urls as moto_urls

    from . import responses

    for name, seconds in models.EXTRA_DURATIONS.items():
        clock.DEFAULT_DURATIONS.setdefault(name, seconds)
        if name not in clock.durations():
            clock.configure(durations={name: seconds})

    moto_models.cloudhsmv2_backends.backend = models.CloudHsmBackend
    moto_models.cloudhsmv2_backends.clear()  # drop any instance of moto's own class
    moto_urls.url_paths.clear()
    moto_urls.url_paths.update(
        {
            "{0}/$": responses.json_dispatch,
            "{0}/service/BaldrApiService/operation/(?P<operation>[A-Za-z]+)$": responses.cbor_dispatch,
        }
    )
    try:
        from . import cfn_model
    except ImportError:  # emu.cfn absent: no CloudFormation model
        cfn_model = None
    if cfn_model is not None:
        cfn_model.install()
    _register_routes()
    _installed = True


def reset() -> None:
    with models.LOCK:
        models.quotas.clear()
        models.quotas.update(models.QUOTA_DEFAULTS)
        models.settings.clear()
        models.settings.update(models.SETTINGS_DEFAULTS)
        _sessions.clear()
