"""The asyncio task that empties the outbox: deliveries, retries with backoff, dead letters.

It runs beside the consume loop (a Faust task in the worker) and never blocks it: the loop only
writes outbox rows (:mod:`alerting.engine`) and sets :attr:`AlertEngine.on_change`. State lives
in the store, so a restarted worker carries on where the last one stopped: a notification is
marked sent only after its receiver accepted it — at least once, with ``X-Qualmon-Delivery`` for
receivers to drop repeats. Each receiver gets its notifications in the order they were queued
(a retry may let later ones pass it). A failed attempt is retried after
``backoff × 2^(attempt−1)``; after
``QUALMON_NOTIFY_MAX_ATTEMPTS`` (or at once on a 4xx refusal) the row becomes a dead letter
(``state = 'dead'``, the last error kept) and is logged and counted.

Alertmanager forgets an alert without ``endsAt`` after its ``resolve_timeout``, so every
``QUALMON_ALERT_RESEND_SECONDS`` the firing alerts — not silenced, not flapping — are posted
again; Alertmanager de-duplicates them by label set and notifies nobody twice. Overdue measures
are looked for on the same beat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from alerting import payloads
from alerting.engine import AlertEngine
from alerting.notifiers import (
    DeliveryFailed,
    DeliveryRefused,
    Publish,
    to_alertmanager,
    to_webhook,
)
from alerting.rules import RANK, silenced_by

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        engine: AlertEngine,
        publish: Publish | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.engine, self.store, self.settings = engine, engine.store, engine.settings
        self.metrics, self.publish = engine.metrics, publish
        self.clock = clock or engine.clock
        self.wake = asyncio.Event()
        engine.on_change = self._poke
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        secret = self.settings.webhook_secret
        self._secret = secret.get_secret_value().encode() if secret else b""

    def _poke(self) -> None:
        # The engine may run on another thread (the API's); Event is not thread-safe.
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.wake.set()
        else:
            loop.call_soon_threadsafe(self.wake.set)

    async def run(self, idle_seconds: float = 1.0) -> None:
        """Deliver forever; cancelled with the worker."""
        self._loop = asyncio.get_running_loop()
        next_beat = 0.0
        try:
            while True:
                if self.clock() >= next_beat:
                    self.engine.measures.check_overdue()
                    await self.resend()
                    next_beat = self.clock() + self.settings.alert_resend_seconds
                await self.deliver_due()
                self.engine.refresh_metrics()
                due = self.store.next_due()
                wait = (
                    idle_seconds if due is None else max(0.0, min(idle_seconds, due - self.clock()))
                )
                self.wake.clear()
                with contextlib.suppress(TimeoutError):  # nothing woke it: time for a round
                    await asyncio.wait_for(self.wake.wait(), timeout=wait)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.settings.notify_timeout_seconds)
        return self._client

    async def deliver_due(self) -> int:
        """Attempt every notification that is due; returns how many were delivered."""
        lanes: dict[str, list[dict[str, Any]]] = {}
        for row in self.store.due_notifications(self.clock()):
            lanes.setdefault(row["receiver"], []).append(row)

        async def lane(rows: list[dict[str, Any]]) -> int:
            # One receiver's notifications go one after another, in the order they were
            # queued; a failure holds back the rest of the lane until the next round.
            delivered = 0
            for row in rows:
                if not await self._attempt(row):
                    break
                delivered += 1
            return delivered

        return sum(await asyncio.gather(*(lane(rows) for rows in lanes.values())))

    async def _attempt(self, row: dict[str, Any]) -> bool:
        receiver, kind = row["receiver"], _kind(row["receiver"])
        now = self.clock()
        try:
            await self._send(row, now)
        except (DeliveryFailed, DeliveryRefused) as exc:
            attempts = row["attempts"] + 1
            dead = isinstance(exc, DeliveryRefused) or attempts >= self.settings.notify_max_attempts
            backoff = self.settings.notify_backoff_seconds * 2 ** (attempts - 1)
            self.store.settle_notification(
                row["notification_id"],
                attempts=attempts,
                last_error=str(exc)[:1000],
                state="dead" if dead else "pending",
                next_attempt_at=now + backoff,
            )
            if self.metrics:
                self.metrics.alert_notifications.labels(
                    kind, "dead_letter" if dead else "failed"
                ).inc()
            if dead:
                log.error(
                    "notification %s to %s is a dead letter after %d attempt(s): %s",
                    row["notification_id"],
                    receiver,
                    attempts,
                    exc,
                )
            else:
                log.warning(
                    "notification %s to %s failed (attempt %d), retry in %.0fs: %s",
                    row["notification_id"],
                    receiver,
                    attempts,
                    backoff,
                    exc,
                )
            return False
        self.store.settle_notification(
            row["notification_id"], state="sent", sent_at=now, attempts=row["attempts"] + 1
        )
        if self.metrics:
            self.metrics.alert_notifications.labels(kind, "sent").inc()
        return True

    async def _send(self, row: dict[str, Any], now: float) -> None:
        receiver, body = row["receiver"], row["body"].encode()
        if receiver.startswith("alertmanager"):
            if not self.settings.alertmanager_url:
                raise DeliveryRefused("QUALMON_ALERTMANAGER_URL is no longer set")
            path = "/api/v2/silences" if receiver == "alertmanager:silence" else "/api/v2/alerts"
            await to_alertmanager(self.client, self.settings.alertmanager_url, body, path)
        elif receiver.startswith("webhook:"):
            await to_webhook(
                self.client,
                receiver.removeprefix("webhook:"),
                body,
                self._secret,
                row["notification_id"],
                row["event"],
                now,
            )
        elif receiver.startswith("topic"):
            if self.publish is None:
                return  # no Kafka in this process (tests, `qualmon api`): nothing to publish to
            topic = (
                self.settings.inspections_topic
                if receiver == "topic:inspections"
                else self.settings.alerts_topic
            )
            decoded = orjson.loads(body)
            item = decoded.get("alert") or decoded.get("inspection") or {}
            key = str(item.get("org", "*")).encode()
            try:
                await self.publish(topic, key, body)
            except Exception as exc:  # the Kafka client's errors have no common base
                raise DeliveryFailed(f"topic {topic}: {exc!r}") from exc
        else:
            raise DeliveryRefused(f"unknown receiver {receiver!r}")

    async def resend(self) -> int:
        """Post every firing, unsilenced, unflapping alert to Alertmanager again."""
        if not self.settings.alertmanager_url:
            return 0
        now = self.clock()
        silences = self.store.active_silences(None, now)
        firing = [
            a
            for a in self.store.firing()
            if not a["flapping"]
            and not silenced_by(silences, a)
            and RANK[a["severity"]] >= RANK[self.settings.alert_notify_min_severity]
            and self._notified(a["alert_id"])
        ]
        if not firing:
            return 0
        body = orjson.dumps([payloads.alertmanager(a, self.settings.base_url) for a in firing])
        try:
            await to_alertmanager(self.client, self.settings.alertmanager_url, body)
        except (DeliveryFailed, DeliveryRefused) as exc:
            log.warning("re-sending %d firing alerts to Alertmanager failed: %s", len(firing), exc)
            return 0
        return len(firing)

    def _notified(self, alert_id: str) -> bool:
        """Only alerts Alertmanager has already accepted once are kept alive there."""
        sent = self.store.notifications(alert_id=alert_id, receiver="alertmanager", state="sent")
        return any(n["event"] != "resolved" for n in sent)


def _kind(receiver: str) -> str:
    if receiver.startswith("webhook:"):
        return "webhook"
    return "topic" if receiver.startswith("topic") else "alertmanager"
