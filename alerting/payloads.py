"""What each receiver gets: Alertmanager API v2 alerts, signed webhook bodies, topic records.

An alert's Alertmanager identity is its label set. ``alert_id`` is one of the labels, so two
alerts never merge inside Alertmanager, and ``severity`` is one too, so its routes can use it;
an escalation therefore ends the old label set and starts the new one in the same request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.store.alerts import ALERT_COLUMNS

ALERTNAMES = {"anomaly": "QualmonAnomaly", "measure_overdue": "QualmonMeasureOverdue"}
#: What an alert looks like outside: every column but the internal ones.
PUBLIC_FIELDS = tuple(c for c in ALERT_COLUMNS if c not in ("group_key", "last_bucket"))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def public(alert: dict[str, Any]) -> dict[str, Any]:
    out = {f: alert[f] for f in PUBLIC_FIELDS}
    out["flapping"] = bool(out["flapping"])
    return out


def labels(alert: dict[str, Any], severity: str | None = None) -> dict[str, str]:
    return {
        "alertname": ALERTNAMES[alert["kind"]],
        "alert_id": alert["alert_id"],
        "indicator": alert["indicator"],
        "org": alert["org"],
        "product_line": alert["product_line"],
        "channel": alert["channel"],
        "severity": severity or alert["severity"],
        "service": "qualmon",
    }


def generator_url(alert: dict[str, Any], base_url: str) -> str:
    if alert["kind"] == "measure_overdue" and alert["inspection_id"]:
        return f"{base_url}/v1/inspections/{alert['inspection_id']}"
    if alert["anomaly_id"].startswith("watch-"):
        return f"{base_url}/v1/alerts/{alert['alert_id']}"
    return f"{base_url}/v1/anomalies/{alert['anomaly_id']}"


def alertmanager(
    alert: dict[str, Any], base_url: str, *, ends_at: float | None = None
) -> dict[str, Any]:
    """One alert in Alertmanager's ``POST /api/v2/alerts`` shape."""
    annotations = {"summary": alert["summary"], "description": _description(alert)}
    if alert["acknowledged_by"]:
        annotations["acknowledged_by"] = alert["acknowledged_by"]
    if alert["inspection_id"]:
        annotations["inspection_id"] = alert["inspection_id"]
    body: dict[str, Any] = {
        "labels": labels(alert),
        "annotations": annotations,
        "startsAt": iso(alert["opened_at"]),
        "generatorURL": generator_url(alert, base_url),
    }
    if ends_at is not None:
        body["endsAt"] = iso(ends_at)
    return body


def alertmanager_batch(
    alert: dict[str, Any], event: str, base_url: str, now: float, previous_severity: str | None
) -> list[dict[str, Any]]:
    """What to post for one alert event: resolved ends it; an escalation ends the old severity."""
    if event == "resolved":
        return [alertmanager(alert, base_url, ends_at=alert["resolved_at"] or now)]
    batch = [alertmanager(alert, base_url)]
    if previous_severity and previous_severity != alert["severity"]:
        old = alertmanager(alert, base_url, ends_at=now)
        old["labels"]["severity"] = previous_severity
        batch.insert(0, old)
    return batch


#: How long an acknowledgement silences an alert in Alertmanager; it resolves long before.
ACK_SILENCE_SECONDS = 30 * 86400


def alertmanager_silence(alert: dict[str, Any], now: float) -> dict[str, Any]:
    """An Alertmanager silence (``POST /api/v2/silences``) for one acknowledged alert."""
    return {
        "matchers": [
            {"name": "alert_id", "value": alert["alert_id"], "isRegex": False, "isEqual": True}
        ],
        "startsAt": iso(now),
        "endsAt": iso(now + ACK_SILENCE_SECONDS),
        "createdBy": f"qualmon ({alert['acknowledged_by']})",
        "comment": f"acknowledged in qualmon: {alert['summary']}",
    }


def webhook(alert: dict[str, Any], event: str, base_url: str) -> dict[str, Any]:
    return {
        "version": "1",
        "event": event,
        "alert": public(alert),
        "url": f"{base_url}/v1/alerts/{alert['alert_id']}",
        "generator_url": generator_url(alert, base_url),
    }


def topic(alert: dict[str, Any], event: str) -> dict[str, Any]:
    return {"event": event, "alert": public(alert)}


def _description(alert: dict[str, Any]) -> str:
    if alert["kind"] == "measure_overdue":
        return alert["summary"]
    return (
        f"{alert['indicator']} at {alert['value']:.4g} against an expected "
        f"{alert['expected']:.4g} (score {alert['score']:.2f}) in org {alert['org']}, "
        f"product line {alert['product_line']}, channel {alert['channel']}; "
        f"{alert['anomalies']} anomalous bucket(s) so far."
    )
