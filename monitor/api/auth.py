"""Who may call what: producer keys, and reader and manager roles.

Authentication is on as soon as ``QUALMON_API_KEYS`` names a key; with none, every call is
allowed (development on loopback). A key goes in ``Authorization: Bearer <key>`` or
``X-API-Key``. One rule over the whole API, by method and path, so that no route can forget it:

* ``POST /v1/events`` needs a **producer** key — the other services posting events;
* every other read under ``/v1`` needs a **reader** (or manager) key — the quality department;
* every other write under ``/v1`` (acknowledge, silence, inspections, measures, feedback) needs
  a **manager** key, and the key's name is who the audit log records.

Probes, ``/metrics``, the OpenAPI pages and the event JSON Schema stay open: orchestrators and
Prometheus call them, and the schema is the contract producers code against.

>>> required_role("POST", "/v1/events"), required_role("GET", "/v1/anomalies")
('producer', 'reader')
>>> required_role("POST", "/v1/alerts/a1/ack"), required_role("GET", "/metrics")
('manager', None)
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Header, HTTPException, Request

ROLES = ("producer", "reader", "manager")
#: What each role may do; a manager also reads, a producer only posts events.
GRANTS = {"producer": {"producer"}, "reader": {"reader"}, "manager": {"reader", "manager"}}
OPEN_V1 = frozenset({"/v1/schema/events"})


def required_role(method: str, path: str) -> str | None:
    """The role a call needs; None for the open paths."""
    if not path.startswith("/v1/") or path in OPEN_V1:
        return None
    if path == "/v1/events" and method == "POST":
        return "producer"
    return "reader" if method in ("GET", "HEAD") else "manager"


async def authorize(
    request: Request,
    authorization: Annotated[
        str | None, Header(description="`Bearer <API key>` when authentication is on.")
    ] = None,
    x_api_key: Annotated[
        str | None, Header(description="The API key, as an alternative to Authorization.")
    ] = None,
) -> None:
    """Let the call through, or answer 401 (no or unknown key) or 403 (a key of another role)."""
    request.state.principal = None
    keys = request.app.state.qualmon.settings.api_keys
    role = required_role(request.method, request.url.path)
    if not keys or role is None:
        return
    presented = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    if not presented:
        raise HTTPException(
            401,
            f"{request.method} {request.url.path} needs a {role} API key in "
            "'Authorization: Bearer <key>' or 'X-API-Key'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Compared against every key in constant time: how far a guess matched stays unknown.
    matches = [
        name
        for name, key in keys.items()
        if hmac.compare_digest(key.key.get_secret_value().encode(), presented.encode())
    ]
    if not matches:
        raise HTTPException(401, "API key not recognised", headers={"WWW-Authenticate": "Bearer"})
    name = matches[0]
    granted = keys[name].role
    if role not in GRANTS[granted]:
        raise HTTPException(
            403,
            f"API key {name!r} has role {granted!r}; {request.method} {request.url.path} "
            f"needs {role}",
        )
    request.state.principal = name
