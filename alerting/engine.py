"""From anomalies to alerts: grouping, dedup, flapping, silences, auto-resolve, the outbox.

:meth:`AlertEngine.ingest` takes the anomalies and readings of one worker checkpoint *after* the
checkpoint stored them, and in one store transaction

1. skips any anomaly already turned into an alert (its id is in ``alert_sources``): a redelivered
   anomaly is a no-op;
2. groups the rest by indicator and org (child slices under their org) — an open alert of the
   group, or a firing alert of the indicator on an overlapping slice of the org tree (a roll-up
   joins the problem it rolls up), is updated and named after its member slices
   (:mod:`alerting.grouping`); one resolved less than the cooldown ago (event time) fires again
   as the same alert and counts a flap; otherwise a new alert opens. A company slice anomalous
   beyond any one region (:mod:`alerting.breadth`) is taken first and names its alert: the
   branches it covers join it as one company-wide incident;
3. resolves every firing alert whose member series all have a later bucket scoring below the
   threshold — bucket by bucket, in event-time order;
4. queues notifications in the outbox — never sends: :mod:`alerting.dispatcher` delivers them from
   an asyncio task, so the consume loop never waits on a receiver;
5. lets :mod:`alerting.inspections` open or grow a special inspection.

Alert and notification ids are derived from their cause, so a replay after a crash queues nothing
twice. People (Alertmanager, webhooks) are not told about an update that does not raise the
severity, nor about anything while the alert is acknowledged, silenced or flapping; the
``alerts`` topic records every change.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from alerting import payloads
from alerting.breadth import Branches, branches_of, deviation
from alerting.grouping import Grouping
from alerting.inspections import Inspections
from alerting.orgs import OrgTree
from alerting.outbox import Outbox
from alerting.rules import (
    RANK,
    evidence,
    expected_count,
    group_key,
    severity,
    specificity,
    summary,
)
from alerting.watch import ProductWatch
from monitor.metrics import Metrics
from monitor.settings import Settings
from monitor.store import Store, Transaction

log = logging.getLogger(__name__)


def epoch(bucket_start: str | int | float) -> int:
    if isinstance(bucket_start, str):
        return int(datetime.fromisoformat(bucket_start).timestamp())
    return int(bucket_start)


class AlertEngine:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        exports_metrics: bool = True,
    ) -> None:
        self.store, self.settings, self.metrics, self.clock = store, settings, metrics, clock
        #: Whether this process exports the alert-state gauges (read from the store, so one
        #: process of the deployment should: the worker that closes buckets).
        self.exports_metrics = exports_metrics
        self.orgs = OrgTree(store)
        self.on_change: Callable[[], None] = lambda: None  # the dispatcher's wake-up
        self._behind_since: float | None = None
        self.outbox = Outbox(store, settings)
        self.watch = ProductWatch(settings, self.orgs.path)
        self.grouping = Grouping(store, self.orgs)
        from alerting.measures import Measures

        self.inspections = Inspections(store, settings, self, metrics, clock)
        self.measures = Measures(store, settings, self, metrics, clock)

    # ---- ingest ----------------------------------------------------------------------------

    def after_checkpoint(
        self,
        anomalies: Iterable[dict[str, Any]],
        readings: Sequence[Sequence[Any]],
        org_paths: Iterable[str],
    ) -> int:
        """The worker's hook, called once a checkpoint is stored and acknowledged.

        Error policy: the checkpoint's anomalies are already safe in the store, so a failure
        here is logged and does not stop the consume loop; the next call first catches up on
        every anomaly stored since the failure (``alert_sources`` makes that idempotent).
        """
        stored_by = time.time()  # the store stamps anomalies with wall time, not self.clock
        try:
            if self._behind_since is not None:
                self.catch_up(self._behind_since)
                self._behind_since = None
            self.orgs.learn(org_paths)
            return self.ingest(anomalies, readings)
        except Exception:  # a store error; recovered by the catch-up above, by decision
            if self._behind_since is None:
                self._behind_since = stored_by - 1.0
            log.exception("alerting failed on a checkpoint; will catch up on the next one")
            return 0

    def catch_up(self, since: float) -> int:
        """Alert on anomalies stored since ``since`` but never seen here (a crash between a
        checkpoint and its ingest); those already turned into alerts are skipped. The
        checkpoints' readings are not at hand: a company-wide anomaly is judged on its
        branches' stored ones."""
        anomalies = self.store.anomalies_created_since(since)
        branches = list(branches_of(self.orgs.paths))
        keys = {
            (a["indicator"], a["product_line"], a["channel"], epoch(a["bucket_start"]))
            for a in anomalies
            if a["org"] == "*"
        }
        readings = [
            r for key in sorted(keys) for r in self.store.readings_at(key[0], branches, *key[1:])
        ]
        return self.ingest(anomalies, readings)

    def ingest(
        self, anomalies: Iterable[dict[str, Any]], readings: Sequence[Sequence[Any]] = ()
    ) -> int:
        """Turn one checkpoint's anomalies and (already stored) readings into alert changes;
        returns how many notifications were queued."""
        now = self.clock()
        found = [dict(a) for a in anomalies] + self.watch.anomalies(readings)
        # Narrow slices first, so a problem's own slice, not its roll-up, scopes an inspection;
        # a day judged whole after the hour that ends it, so that its reading is the one shown.
        found.sort(
            key=lambda a: (
                self._last_bucket(a),
                [-x for x in self._narrowness(a)],
                self._span(a),
                a["anomaly_id"],
            )
        )
        silences = self.store.active_silences(None, now)
        # Bucket by bucket, so a return to normal and a later relapse in one checkpoint are a
        # resolution and a re-fire, not one long alert.
        by_bucket: dict[int, tuple[list, set]] = {}
        for a in found:
            by_bucket.setdefault(self._last_bucket(a), ([], set()))[0].append(a)
        for r in readings:
            by_bucket.setdefault(int(r[4]), ([], set()))[1].add(r[0])
        queued = 0
        self.grouping.start()
        branches = Branches(readings, self.orgs.paths)
        with self.store.db.transaction() as tx:
            for bucket in sorted(by_bucket):
                bucket_anomalies, indicators = by_bucket[bucket]
                verdicts = {
                    a["anomaly_id"]: branches.verdict(a, bucket)
                    for a in bucket_anomalies
                    if self._span(a) == self.settings.bucket_seconds
                }
                broad = {i for i, verdict in verdicts.items() if verdict}
                # A company-wide incident first, so the branches it covers join its alert; the
                # slice deviating most for what was expected names it (the company's life line
                # at eight times its usual, not the AGENCY channel that sells it among others).
                bucket_anomalies.sort(
                    key=lambda a: -deviation(a) if a["anomaly_id"] in broad else math.inf
                )
                for anomaly in bucket_anomalies:
                    queued += self._on_anomaly(
                        tx, anomaly, now, silences, verdicts.get(anomaly["anomaly_id"])
                    )
                if indicators:
                    queued += self._resolve(tx, indicators, bucket, now, silences)
        if queued:
            self.on_change()
        self.refresh_metrics()
        return queued

    def _span(self, a: dict[str, Any]) -> int:
        return int(a.get("bucket_seconds") or self.settings.bucket_seconds)

    def _last_bucket(self, a: dict[str, Any]) -> int:
        """Start of the last bucket the anomaly covers: for a day judged whole beside hourly
        buckets, its last hour."""
        return epoch(a["bucket_start"]) + max(self._span(a) - self.settings.bucket_seconds, 0)

    def _clear_after(self, a: dict[str, Any]) -> int | None:
        """When a day judged whole beside shorter buckets is over: at the end of the next day,
        if that day is not judged anomalous again. None of the day's hours was evidence alone,
        so no hour's normal reading says anything; None for an ordinary bucket's anomaly."""
        span = self._span(a)
        return self._last_bucket(a) + span if span > self.settings.bucket_seconds else None

    def _narrowness(self, a: dict[str, Any]) -> tuple[int, int]:
        key = (a["org"], a["product_line"], a["channel"])
        return specificity(key, self.orgs.depth(a["org"]))

    def _on_anomaly(
        self,
        tx: Transaction,
        a: dict[str, Any],
        now: float,
        silences: list,
        broad: bool | None,
    ) -> int:
        """Turn anomaly ``a`` into an alert change; ``broad`` is its verdict on breadth (None:
        not judged)."""
        source = a["anomaly_id"]
        if self.store.source_known(tx, source):
            return 0
        key = (a["org"], a["product_line"], a["channel"])
        sev = severity(
            a["severity"],
            a["indicator"],
            key,
            self.orgs.depth(a["org"]),
            k=evidence(a["value"], a["expected"], a["k"], a["n"], expected_count(a)),
            key_indicators=self.settings.alert_key_indicators,
        )
        group, bucket = group_key(a["indicator"], key), self._last_bucket(a)
        latest = self.store.latest_in_group(tx, group)
        scope = (self.orgs.path(key[0]), key[1], key[2])
        target = self.grouping.target(tx, a["indicator"], scope, bool(broad), latest)
        previous_severity = None
        if target is not None:
            alert, event = dict(target[0]), "updated"
            if not target[2]:
                broad = False  # a broad cross-cut of the alert's company-wide incident
            if RANK[sev] > RANK[alert["severity"]]:
                previous_severity, alert["severity"], event = alert["severity"], sev, "escalated"
            self.grouping.absorb(tx, alert, target[1], a, scope, broad, bucket)
        elif (
            latest is not None
            and latest["state"] != "firing"
            and bucket - latest["last_bucket"] <= self.settings.alert_cooldown_seconds
        ):
            alert, event = dict(latest), "refired"
            alert["flaps"] += 1
            alert["flapping"] = int(alert["flaps"] >= self.settings.alert_flap_limit)
            alert.update(state="firing", resolved_at=None, severity=sev)
            # A new episode: named and read by its own slices, not the last episode's.
            members = self.grouping.members(tx, alert)
            self.grouping.absorb(tx, alert, members, a, scope, broad, bucket)
        else:
            alert, event = self._new(a, key, group, sev, bucket, now), "opened"
            self.grouping.opened(alert, scope, broad, bucket)
        alert["updated_at"] = now
        changes: dict[str, Any] = {}
        if event == "opened":
            self.store.insert_alert(tx, alert)
            if self.metrics:
                self.metrics.alerts_opened.labels("anomaly", alert["severity"]).inc()
        else:
            before = target[0] if target is not None else latest
            changes = {c: alert[c] for c in alert if c != "alert_id" and alert[c] != before[c]}  # type: ignore[index]
            self.store.update_alert(tx, alert["alert_id"], **changes)
        series = (a["indicator"], *key)
        self.store.add_source(
            tx,
            source,
            alert,
            series,
            bucket,
            self._clear_after(a),
            (a["value"], a["expected"]),
            broad,
        )
        name = (alert["org_path"], alert["product_line"], alert["channel"])
        company_wide = bool(self.grouping.members(tx, alert).slices.get(name))
        if alert["inspection_id"] is None:
            self.inspections.consider(tx, alert, now, company_wide)  # sets its inspection_id
        elif "org_path" in changes or "product_line" in changes or "channel" in changes:
            self.inspections.follow(tx, alert, now, company_wide)
        return self.outbox.notify(tx, alert, event, now, silences, previous_severity)

    def _new(
        self,
        a: dict[str, Any],
        key: tuple[str, str, str],
        group: str,
        sev: str,
        bucket: int,
        now: float,
    ) -> dict[str, Any]:
        alert_id = hashlib.sha256(f"{group}|{a['anomaly_id']}".encode()).hexdigest()[:20]
        return {
            "alert_id": alert_id,
            "kind": "anomaly",
            "group_key": group,
            "indicator": a["indicator"],
            "org": key[0],
            "org_path": self.orgs.path(key[0]),
            "product_line": key[1],
            "channel": key[2],
            "severity": sev,
            "score": a["score"],
            "value": a["value"],
            "expected": a["expected"],
            "state": "firing",
            "anomaly_id": a["anomaly_id"],
            "last_bucket": bucket,
            "anomalies": 1,
            "flaps": 0,
            "flapping": 0,
            "summary": summary(a["indicator"], key),
            "acknowledged_by": None,
            "acknowledged_at": None,
            "inspection_id": None,
            "opened_at": now,
            "updated_at": now,
            "resolved_at": None,
        }

    def _resolve(
        self, tx: Transaction, indicators: set[str], until: int, now: float, silences: list
    ) -> int:
        queued = 0
        for alert in self.store.firing(tx, kind="anomaly"):
            if alert["indicator"] not in indicators:
                continue
            threshold = self.watch.threshold(alert)
            members = self.store.alert_sources(tx, alert)
            if members and all(
                until >= m["clear_after"]
                if m["clear_after"] is not None
                else self.store.normal_since(
                    tx,
                    (m["indicator"], m["org"], m["product_line"], m["channel"]),
                    alert["last_bucket"],
                    until,
                    threshold,
                )
                for m in members
            ):
                queued += self.resolve(tx, alert, now, silences)
        return queued

    def resolve(self, tx: Transaction, alert: dict[str, Any], now: float, silences: list) -> int:
        alert = {**alert, "state": "resolved", "resolved_at": now, "updated_at": now}
        self.store.update_alert(
            tx, alert["alert_id"], state="resolved", resolved_at=now, updated_at=now
        )
        return self.outbox.notify(tx, alert, "resolved", now, silences)

    # ---- people's actions ------------------------------------------------------------------

    def acknowledge(self, alert_id: str, actor: str) -> dict[str, Any] | None:
        now = self.clock()
        with self.store.db.transaction() as tx:
            alert = self.store.get_alert(tx, alert_id)
            if alert is None:
                return None
            if alert["acknowledged_at"] is None:
                before = payloads.public(alert)
                alert.update(acknowledged_by=actor, acknowledged_at=now, updated_at=now)
                self.store.update_alert(
                    tx, alert_id, acknowledged_by=actor, acknowledged_at=now, updated_at=now
                )
                self.store.audit(
                    tx, "alert", alert_id, "acknowledge", actor, now, before, payloads.public(alert)
                )
                self.outbox.notify(tx, alert, "acknowledged", now, [])
        self.on_change()
        self.refresh_metrics()
        return alert

    # ---- metrics -----------------------------------------------------------------------------

    def refresh_metrics(self) -> None:
        if self.metrics is not None and self.exports_metrics:
            self.metrics.set_alert_state(
                self.store.alert_counts(),
                open_inspections=len(self.store.open_inspections()),
                overdue_measures=self.store.count_overdue(self.clock()),
                pending=self.store.count_pending(),
            )
