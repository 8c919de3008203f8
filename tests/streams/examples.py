"""One minimal valid event per ``event_type``, for the stream tests."""

from __future__ import annotations

from typing import Any

from tests.factories import at, event

#: The smallest payload each event type accepts (every required field, nothing optional).
MINIMAL_PAYLOADS: dict[str, dict[str, Any]] = {
    "policy.issued": {"premium": "1000.00", "pay_mode": "SINGLE"},
    "premium.received": {"premium": "500.00", "premium_type": "RENEWAL"},
    "policy.cooling_off_cancel": {"refund": "1000.00", "days_since_effective": 5},
    "policy.surrendered": {"surrender_amount": "800.00", "policy_year": 3},
    "claim.reported": {"claim_id": "CL-1", "claimed_amount": "2000.00"},
    "claim.closed": {
        "claim_id": "CL-1",
        "decision": "PAID",
        "paid_amount": "1500.00",
        "reported_at": "2026-02-20T09:00:00+08:00",
    },
    "complaint.received": {"complaint_id": "C-1", "source": "OWN", "category": "SERVICE"},
    "complaint.closed": {
        "complaint_id": "C-1",
        "received_at": "2026-02-25T09:00:00+08:00",
        "outcome": "UPHELD",
    },
    "call.completed": {"queue": "hotline", "answered": True, "wait_seconds": 12},
    "survey.response": {"touchpoint": "claim", "csat_1_5": 4},
    "inspection.sample": {"object_type": "policy", "compliant": True},
    "target.set": {"period": "2026-03", "target_premium": "1000000.00"},
}


def example(
    event_type: str,
    event_id: str = "e-1",
    when: str | None = None,
    payload: dict[str, Any] | None = None,
    **envelope: Any,
) -> dict[str, Any]:
    """A valid event dict of ``event_type`` (Monday 2 March 2026, 10:00 Shanghai by default)."""
    body = {**MINIMAL_PAYLOADS[event_type], **(payload or {})}
    return event(event_type, event_id, when or at(10), body, **envelope)
