"""The outbox: what an alert event owes each receiver, queued in the store for the dispatcher.

People (Alertmanager, webhooks) hear of an alert when it opens, fires again, escalates or
resolves — unless it is below ``QUALMON_ALERT_NOTIFY_MIN_SEVERITY``, flapping, silenced, or
acknowledged (an acknowledged alert's resolution still goes to Alertmanager, which must end it).
The ``alerts`` topic records every change. A notification's id is derived from the alert, the
receiver and the alert's version, so queueing the same event twice is a no-op. Webhook receivers
are found along the org tree (``QUALMON_ALERT_ROUTING``).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from alerting import payloads
from alerting.rules import RANK, inspection_id_for, silenced_by
from monitor.settings import Settings
from monitor.store import Store, Transaction

PEOPLE_EVENTS = ("opened", "refired", "escalated", "resolved")


class Outbox:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self._last = 0.0

    def notify(
        self,
        tx: Transaction,
        alert: dict[str, Any],
        event: str,
        now: float,
        silences: list,
        previous_severity: str | None = None,
    ) -> int:
        """Queue what ``event`` on ``alert`` owes each receiver; ids make replays no-ops."""
        # An alert that joined an inspection another alert opened is followed up there: people
        # were told when that alert fired, and one incident pages once. It still resolves what
        # it paged before it joined.
        absorbed = alert["kind"] == "anomaly" and alert["inspection_id"] not in (
            None,
            inspection_id_for(alert["alert_id"]),
        )
        version = f"{event}:{alert['anomalies']}:{alert['flaps']}:{alert['severity']}"
        rows = [self._row(alert, "topic", event, version, payloads.topic(alert, event), now)]
        held = (
            RANK[alert["severity"]] < RANK[self.settings.alert_notify_min_severity]
            or alert["flapping"]
            or silenced_by(silences, {**alert, "kind": alert["kind"]})
            or (alert["acknowledged_at"] is not None and event != "resolved")
            or (absorbed and not (event == "resolved" and self._paged(tx, alert["alert_id"])))
        )
        if (
            event == "acknowledged"
            and self.settings.alertmanager_url
            and alert["state"] == "firing"
        ):
            # Alertmanager would re-notify on its repeat_interval: silence the alert there.
            body = payloads.alertmanager_silence(alert, now)
            rows.append(self._row(alert, "alertmanager:silence", event, version, body, now))
        if event in PEOPLE_EVENTS and not held:
            base = self.settings.base_url
            if self.settings.alertmanager_url:
                batch = payloads.alertmanager_batch(alert, event, base, now, previous_severity)
                rows.append(self._row(alert, "alertmanager", event, version, batch, now))
            if alert["acknowledged_at"] is None:
                for url in self.webhooks_for(alert["org_path"]):
                    body = payloads.webhook(alert, event, base)
                    rows.append(self._row(alert, f"webhook:{url}", event, version, body, now))
        return self.store.enqueue(tx, rows)

    def _paged(self, tx: Transaction, alert_id: str) -> bool:
        """Whether people were ever told this alert fired (queued or sent)."""
        row = tx.one(
            "SELECT 1 AS paged FROM notifications WHERE alert_id = ? AND receiver NOT LIKE ? "
            "AND event <> ?",
            (alert_id, "topic%", "resolved"),
        )
        return row is not None

    def _row(
        self, alert: dict[str, Any], receiver: str, event: str, version: str, body: Any, now: float
    ) -> dict[str, Any]:
        # Rows of one transaction share ``now``; strictly increasing times keep the queue in
        # causal order (the topic's readers see opened before updated).
        self._last = max(now, self._last + 0.001)
        return {
            "notification_id": hashlib.sha256(
                f"{alert['alert_id']}|{receiver}|{version}".encode()
            ).hexdigest()[:24],
            "alert_id": alert["alert_id"],
            "receiver": receiver,
            "event": event,
            "body": orjson.dumps(body).decode(),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": None,
            "created_at": self._last,
            "sent_at": None,
        }

    def webhooks_for(self, org_path: str) -> list[str]:
        """Receivers along the org tree, from the alert's org up to ``*``."""
        routes = self.settings.webhook_urls
        chain = [] if org_path == "*" else org_path.split("/")
        orgs = [*reversed(chain), "*"]
        urls: list[str] = []
        for org in orgs:
            if org in routes:
                urls += [u for u in routes[org] if u not in urls]
                if self.settings.alert_routing == "nearest":
                    break
        return urls

    def publish_inspection(
        self, tx: Transaction, inspection: dict[str, Any], event: str, now: float
    ) -> None:
        """Queue an inspection change for the ``inspections`` topic."""
        self._last = max(now, self._last + 0.001)
        key = f"{inspection['inspection_id']}|{event}|{inspection['updated_at']}|{self._last}"
        self.store.enqueue(
            tx,
            [
                {
                    "notification_id": hashlib.sha256(key.encode()).hexdigest()[:24],
                    "alert_id": inspection["inspection_id"],
                    "receiver": "topic:inspections",
                    "event": event,
                    "body": orjson.dumps({"event": event, "inspection": inspection}).decode(),
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_error": None,
                    "created_at": self._last,
                    "sent_at": None,
                }
            ],
        )
