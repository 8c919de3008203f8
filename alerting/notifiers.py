"""Delivering one notification: Alertmanager API v2, a signed webhook, or a Kafka topic.

Webhooks are signed like this, so a receiver can check origin and freshness::

    X-Qualmon-Timestamp: <unix seconds>
    X-Qualmon-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>
    X-Qualmon-Delivery: <notification id, the same on every retry: receivers de-duplicate on it>

>>> sign(b"0123456789abcdef", 1767225600, b'{"a":1}')
'sha256=539b0e21b535c5201ef7d1453c0a0de4ad132293226de9018be0cfbf0092faa6'
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

import httpx


class DeliveryFailed(Exception):
    """A delivery that may succeed later (receiver down, 5xx, 429)."""


class DeliveryRefused(Exception):
    """A delivery that will never succeed as it is (4xx): it goes straight to the dead letters."""


Publish = Callable[[str, bytes, bytes], Awaitable[None]]


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def _check(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    message = f"{what} answered {response.status_code}: {response.text[:300]}"
    if response.status_code in (408, 429) or response.status_code >= 500:
        raise DeliveryFailed(message)
    raise DeliveryRefused(message)


async def to_alertmanager(
    client: httpx.AsyncClient, base_url: str, body: bytes, path: str = "/api/v2/alerts"
) -> None:
    """``POST /api/v2/alerts`` with a JSON array of alerts (or ``/api/v2/silences``, one)."""
    url = f"{base_url}{path}"
    try:
        response = await client.post(
            url, content=body, headers={"Content-Type": "application/json"}
        )
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"Alertmanager at {url}: {exc!r}") from exc
    _check(response, f"Alertmanager at {url}")


async def to_webhook(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    secret: bytes,
    delivery: str,
    event: str,
    now: float,
) -> None:
    timestamp = int(now)
    headers = {
        "Content-Type": "application/json",
        "X-Qualmon-Timestamp": str(timestamp),
        "X-Qualmon-Signature": sign(secret, timestamp, body),
        "X-Qualmon-Delivery": delivery,
        "X-Qualmon-Event": event,
    }
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"webhook {url}: {exc!r}") from exc
    _check(response, f"webhook {url}")
