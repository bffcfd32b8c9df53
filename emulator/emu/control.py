"""The emulator's own HTTP API, served under ``/_emu/`` on the same port as the AWS APIs.

Any module registers handlers with :func:`route`; the server (``emu.server``) dispatches every
``/_emu/...`` request to them and everything else to moto. A handler receives the parsed JSON body
(``{}`` when empty) and the query parameters, and returns ``(status, json_payload)``.

Packages that add behaviour (``emu.cloudhsm``, ``emu.kms``, ``emu.client``, ``emu.lambda_rt``,
``emu.cfn``, ...) expose ``install()``; ``emu.server`` calls each once at start-up, after moto is
imported and before the first request. ``install()`` applies patches and registers routes.
Each package also exposes ``reset()`` when it keeps state outside moto's backends;
``POST /_emu/reset`` calls them all.
"""

from __future__ import annotations

from typing import Any, Callable

Handler = Callable[[dict[str, Any], dict[str, str]], "tuple[int, Any]"]

ROUTES: dict[tuple[str, str], Handler] = {}


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` for ``METHOD /_emu/<path>`` (path without the ``/_emu/`` prefix)."""

    def decorate(handler: Handler) -> Handler:
        key = (method.upper(), path.strip("/"))
        if key in ROUTES:
            raise ValueError(f"route registered twice: {key}")
        ROUTES[key] = handler
        return handler

    return decorate


def find(method: str, path: str) -> Handler | None:
    return ROUTES.get((method.upper(), path.strip("/")))


# Raw routes see the request as bytes and answer bytes: for callers that are not JSON clients
# (e.g. the custom-resource ResponseURL, whose body size matters). Keyed by path prefix under
# /_emu/; the handler gets (method, rest_of_path, query, body) and returns
# (status, headers, body_bytes).
RawHandler = Callable[[str, str, dict[str, str], bytes], "tuple[int, list, bytes]"]
RAW_ROUTES: dict[str, RawHandler] = {}


def raw_route(prefix: str) -> Callable[[RawHandler], RawHandler]:
    def decorate(handler: RawHandler) -> RawHandler:
        RAW_ROUTES[prefix.strip("/") + "/"] = handler
        return handler

    return decorate
