"""Valid events for tests, built from a few arguments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

#: A Monday 00:00 Asia/Shanghai; bucket boundaries in tests are hours after it.
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC) - timedelta(hours=8)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def event(
    event_type: str,
    event_id: str,
    when: str,
    payload: dict[str, Any],
    *,
    org_path: str = "00/44/4403",
    product_line: str = "life",
    channel: str = "AGENCY",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "event_time": when,
        "org_code": org_path.rsplit("/", 1)[-1],
        "org_path": org_path,
        "product_line": product_line,
        "channel": channel,
        "payload": payload,
        **extra,
    }


def call(event_id: str, when: str, answered: bool, wait: float = 5.0, **kw: Any) -> dict[str, Any]:
    payload = {"queue": "hotline", "answered": answered, "wait_seconds": wait}
    return event("call.completed", event_id, when, payload, **kw)


def policy(event_id: str, when: str, premium: str = "1000.00", **kw: Any) -> dict[str, Any]:
    payload = {"premium": premium, "pay_mode": "REGULAR"}
    return event("policy.issued", event_id, when, payload, amount=premium, **kw)


def premium(event_id: str, when: str, amount: str = "1000.00", **kw: Any) -> dict[str, Any]:
    payload = {"premium": amount, "premium_type": "FIRST", "period_no": 1}
    return event("premium.received", event_id, when, payload, amount=amount, **kw)


def complaint(event_id: str, when: str, source: str = "OWN", **kw: Any) -> dict[str, Any]:
    payload = {"complaint_id": f"c-{event_id}", "source": source, "category": "SALES"}
    return event("complaint.received", event_id, when, payload, **kw)


def hotline_hours(hours: range, calls: int, answered: int, prefix: str, **kw: Any) -> list[dict]:
    """``calls`` calls in each hour, the first ``answered`` of them answered."""
    return [
        call(f"{prefix}-{h}-{i}", at(h + i / (calls + 1)), i < answered, **kw)
        for h in hours
        for i in range(calls)
    ]
