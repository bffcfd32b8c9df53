"""The emulator's side of the ``cloudhsm-cli`` stand-in (Client SDK 5, single-command mode).

The executable in the instance (``emu/client/bin/cloudhsm-cli``) is thin: it reads the client
configuration (``/opt/cloudhsm/etc/cloudhsm-cli.cfg``), the trust anchor the configuration names
(``hsm_ca_file``, by default ``/opt/cloudhsm/etc/customerCA.crt``), ``CLOUDHSM_ROLE`` /
``CLOUDHSM_PIN`` and a password typed on stdin when ``--password`` is omitted, and posts them to
``POST /_emu/client/cloudhsm-cli``. This module parses the command line like the real CLI, talks
to the HSMs through :mod:`emu.cloudhsm.hsm_side` and returns what the CLI prints and its exit
status. Output follows the documented JSON shape ``{"error_code": 0, "data": ...}``; on failure
``error_code`` is 1 and ``data`` the message (the failure shape is uncertain in the reference),
exit status 1. Argument errors are reported like clap (the real CLI's parser): ``error: ...`` on
stderr, exit status 2.

Reach: the configured servers identify the cluster; the client then connects to every HSM of the
cluster it can reach from the instance's security groups (Client SDK 5 learns new HSMs from the
cluster). No reach → a connection error. Every connection is TLS verified against the configured
``hsm_ca_file``: it must hold the cluster's trust anchor (activation reports its own errors).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

COMMANDS = {
    ("cluster", "activate"): {"password"},
    ("login",): {"username", "role", "password"},
    ("logout",): set(),
    ("user", "create"): {"username", "role", "password"},
    ("user", "list"): set(),
    ("user", "change-password"): {"username", "role", "password"},
    ("user", "delete"): {"username", "role"},
}
REQUIRED = {
    ("login",): {"username", "role"},
    ("user", "create"): {"username", "role"},
    ("user", "change-password"): {"username", "role"},
    ("user", "delete"): {"username", "role"},
}
# Commands that prompt for a password when --password is omitted (and whether they confirm it).
PROMPTS = {("cluster", "activate"): True, ("login",): False, ("user", "create"): True,
           ("user", "change-password"): True}


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str = ""


class UsageError(Exception):
    pass


def _json(error_code: int, data: Any) -> str:
    return json.dumps({"error_code": error_code, "data": data}, indent=2) + "\n"


def ok(data: Any) -> Outcome:
    return Outcome(0, _json(0, data))


def failed(message: str) -> Outcome:
    return Outcome(1, _json(1, message))


def parse(argv: list[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """(command words, options) or UsageError."""
    words: list[str] = []
    rest = list(argv)
    while rest and not rest[0].startswith("-"):
        words.append(rest.pop(0))
    command = tuple(words)
    if command not in COMMANDS:
        if not words:
            raise UsageError("a subcommand is required")
        raise UsageError(f"unrecognized subcommand '{' '.join(words)}'")
    allowed = COMMANDS[command]
    options: dict[str, str] = {}
    while rest:
        flag = rest.pop(0)
        if not flag.startswith("--"):
            raise UsageError(f"unexpected argument '{flag}' found")
        name, _, inline = flag[2:].partition("=")
        if name not in allowed:
            raise UsageError(f"unexpected argument '--{name}' found")
        if inline:
            value = inline
        elif rest:
            value = rest.pop(0)
        else:
            raise UsageError(f"a value is required for '--{name} <{name.upper()}>' but none was supplied")
        options[name] = value
    missing = sorted(REQUIRED.get(command, set()) - set(options))
    if missing:
        listed = " ".join(f"--{m} <{m.upper()}>" for m in missing)
        raise UsageError(f"the following required arguments were not provided:\n  {listed}")
    return command, options


def needs_password_prompt(argv: list[str]) -> tuple[bool, bool]:
    """(prompt?, confirm?) — used by the stand-in before it calls the emulator."""
    try:
        command, options = parse(argv)
    except UsageError:
        return False, False
    if command in PROMPTS and "password" not in options:
        return True, PROMPTS[command]
    return False, False


def usage_error(message: str) -> Outcome:
    return Outcome(2, "", f"error: {message}\n\nFor more information, try '--help'.\n")


def _split_pin(pin: str | None) -> tuple[str, str] | None:
    if not pin or ":" not in pin:
        return None
    user, _, password = pin.partition(":")
    return user, password


def run(*, account: str, region: str, security_groups: list[str], argv: list[str],
        role_env: str | None, pin_env: str | None, servers: list[str] | None,
        ca_pem: str | None, stdin_password: str | None) -> Outcome:
    from emu.cloudhsm import hsm_side
    from emu.cloudhsm.hsm_side import HsmSideError

    try:
        command, options = parse(argv)
    except UsageError as err:
        return usage_error(str(err))
    if not servers:
        return failed("No HSM servers configured in /opt/cloudhsm/etc/cloudhsm-cli.cfg. "
                      "Run configure-cli first.")
    password = options.get("password", stdin_password)
    try:
        cluster_id = cluster_for_servers(account, region, servers)
        if cluster_id is None:
            raise HsmSideError("CONNECTION_FAILED",
                               "Failed to connect to the cluster: no HSM answers at "
                               + ", ".join(servers))
        reached = hsm_side.reachable_hsms(account, region, cluster_id, security_groups)
        if not reached:
            raise HsmSideError(
                "CONNECTION_FAILED",
                "Failed to connect to the HSM(s) at " + ", ".join(servers)
                + ": connection timed out (TCP 2223-2225)")
        if command == ("cluster", "activate"):
            if password is None:
                return failed("A password is required")
            hsm_side.cluster_activate(account, region, cluster_id, reached, password, ca_pem)
            return ok("Cluster activation successful")
        check_trust_anchor(account, region, cluster_id, ca_pem)
        if command == ("user", "list"):
            users = hsm_side.user_list(account, region, cluster_id, reached)
            return ok({"users": users})
        if command == ("logout",):
            return failed("Not logged in")
        if command == ("login",):
            if password is None:
                return failed("A password is required")
            session = hsm_side.login(account, region, cluster_id, reached, options["username"],
                                     options["role"], password)
            hsm_side.logout(session)  # single-command mode: the process ends
            return ok({"username": session.username, "role": session.role})
        # Commands that need a logged-in user: single-command mode logs in from the environment.
        credentials = _split_pin(pin_env)
        if not role_env or credentials is None:
            return failed("This command requires a logged in user. Set CLOUDHSM_ROLE and "
                          "CLOUDHSM_PIN=<username>:<password> or run login in interactive mode.")
        session = hsm_side.login(account, region, cluster_id, reached, credentials[0], role_env,
                                 credentials[1])
        try:
            if command == ("user", "create"):
                if password is None:
                    return failed("A password is required")
                data = hsm_side.user_create(session, options["username"], options["role"],
                                            password)
            elif command == ("user", "change-password"):
                if password is None:
                    return failed("A password is required")
                data = hsm_side.user_change_password(session, options["username"],
                                                     options["role"], password)
            else:
                data = hsm_side.user_delete(session, options["username"], options["role"])
        finally:
            hsm_side.logout(session)
        return ok(data)
    except HsmSideError as err:
        return failed(err.message)


def check_trust_anchor(account: str, region: str, cluster_id: str, ca_pem: str | None) -> None:
    """The client verifies every HSM's TLS certificate against ``hsm_ca_file``: without the
    cluster's trust anchor there (or before the cluster has one) it cannot connect."""
    from emu.cloudhsm import models, pki
    from emu.cloudhsm.hsm_side import HsmSideError

    with models.LOCK:
        cluster = models.backend(account, region).clusters.get(cluster_id)
        anchor = cluster.trust_anchor_pem if cluster else None
    if not ca_pem:
        raise HsmSideError("CONNECTION_FAILED",
                           "Failed to connect to the HSM(s): the CA file configured as "
                           "hsm_ca_file (/opt/cloudhsm/etc/customerCA.crt) is missing")
    if not anchor or not pki.same_certificate(ca_pem, anchor):
        raise HsmSideError("CONNECTION_FAILED",
                           "Failed to connect to the HSM(s): TLS handshake failed, the HSM "
                           "certificate does not chain to the configured CA (customerCA.crt)")


def cluster_for_servers(account: str, region: str, servers: list[str]) -> str | None:
    """The cluster whose HSM ENI answers at one of the configured addresses."""
    from emu.cloudhsm import models

    with models.LOCK:
        backend = models.backend(account, region)
        backend.tick()
        for cluster in backend.clusters.values():
            for hsm in cluster.hsms.values():
                if hsm.eni_ip in servers and hsm.state in ("ACTIVE", "DEGRADED"):
                    return cluster.cluster_id
    return None


def redacted(argv: list[str]) -> list[str]:
    """argv with password values masked, for the emulator's records."""
    out, hide = [], False
    for arg in argv:
        if hide:
            out.append("****")
            hide = False
        elif arg == "--password":
            out.append(arg)
            hide = True
        elif arg.startswith("--password="):
            out.append("--password=****")
        else:
            out.append(arg)
    return out
