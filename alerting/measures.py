"""Improvement measures: their deadlines, overdue alerts, and effect evaluations.

A measure names a responsible department and owner, a deadline and its expected effect (an
indicator, a slice, a target). Adding the first measure moves the inspection to
``measures_set``. A measure still ``planned`` after its deadline raises an alert of kind
``measure_overdue`` (once; marking it done resolves it). Evaluating a measure computes its effect
from the indicator history (:mod:`alerting.evaluation`): effective closes the inspection, not
effective reopens it. Every change is in the audit log.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from alerting.inspections import SYSTEM_ACTOR
from monitor.errors import Conflict, NotFound
from monitor.metrics import Metrics
from monitor.settings import Settings
from monitor.store import Store

if TYPE_CHECKING:
    from alerting.engine import AlertEngine


class Measures:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        engine: AlertEngine,
        metrics: Metrics | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.settings, self.engine = store, settings, engine
        self.metrics, self.clock = metrics, clock

    def add(self, inspection_id: str, data: dict[str, Any], actor: str) -> dict[str, Any]:
        now = self.clock()
        with self.store.db.transaction() as tx:
            row = self.engine.inspections.load(tx, inspection_id)
            if row["state"] in ("closed", "evaluating"):
                raise Conflict(f"inspection {inspection_id} is {row['state']!r}; reopen it first")
            measure = {
                "measure_id": uuid.uuid4().hex[:16],
                "inspection_id": inspection_id,
                "state": "planned",
                "overdue_alert_id": None,
                "created_at": now,
                "updated_at": now,
                "effective_from": None,
                **data,
            }
            self.store.add_measure(tx, measure)
            self.store.audit(tx, "measure", measure["measure_id"], "add", actor, now, None, measure)
            if row["state"] == "opened":
                row = self.engine.inspections.transition(tx, row, "investigating", actor, now)
            if row["state"] in ("investigating", "reopened"):
                self.engine.inspections.transition(tx, row, "measures_set", actor, now)
        self.engine.on_change()
        return measure

    def update(
        self, inspection_id: str, measure_id: str, changes: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        now = self.clock()
        with self.store.db.transaction() as tx:
            measure = self.store.get_measure(tx, measure_id)
            if measure is None or measure["inspection_id"] != inspection_id:
                raise NotFound(f"no measure {measure_id!r} in inspection {inspection_id!r}")
            overdue = measure["overdue_alert_id"]
            # Done, or given a later deadline: the overdue alert, if any, is over; a measure
            # late again on its new deadline gets a new one.
            extended = changes.get("deadline", measure["deadline"]) > measure["deadline"]
            if overdue and extended:
                changes["overdue_alert_id"] = None
            after = {**measure, **changes, "updated_at": now}
            self.store.update_measure(tx, measure_id, **changes, updated_at=now)
            self.store.audit(tx, "measure", measure_id, "edit", actor, now, measure, after)
            if overdue and (after["state"] == "done" or extended):
                alert = self.store.get_alert(tx, overdue)
                if alert and alert["state"] == "firing":
                    self.engine.resolve(tx, alert, now, [])
        self.engine.on_change()
        return after

    # ---- overdue measures --------------------------------------------------------------------

    def check_overdue(self, now: float | None = None) -> list[str]:
        """Open one alert per measure past its deadline and not done; returns their ids."""
        now = self.clock() if now is None else now
        opened = []
        silences = self.store.active_silences(None, now)
        for m in self.store.overdue_measures(now):
            cause = f"measure-overdue|{m['measure_id']}|{m['deadline']}"
            alert_id = hashlib.sha256(cause.encode()).hexdigest()[:20]
            alert = {
                "alert_id": alert_id,
                "kind": "measure_overdue",
                "group_key": f"measure|{m['measure_id']}",
                "indicator": m["indicator"],
                "org": m["org"],
                "org_path": self.engine.orgs.path(m["org"]),
                "product_line": m["product_line"],
                "channel": m["channel"],
                "severity": "major",
                "score": 0.0,
                "value": 0.0,
                "expected": m["target"],
                "state": "firing",
                "anomaly_id": f"measure:{m['measure_id']}",
                "last_bucket": int(m["deadline"]),
                "anomalies": 0,
                "flaps": 0,
                "flapping": 0,
                "summary": f"Measure {m['title']!r} ({m['department']}, owner {m['owner']}) "
                f"is past its deadline",
                "acknowledged_by": None,
                "acknowledged_at": None,
                "inspection_id": m["inspection_id"],
                "opened_at": now,
                "updated_at": now,
                "resolved_at": None,
            }
            with self.store.db.transaction() as tx:
                self.store.insert_alert(tx, alert)
                self.store.update_measure(tx, m["measure_id"], overdue_alert_id=alert_id)
                self.store.audit(
                    tx,
                    "measure",
                    m["measure_id"],
                    "overdue",
                    SYSTEM_ACTOR,
                    now,
                    None,
                    {"alert_id": alert_id},
                )
                self.engine.outbox.notify(tx, alert, "opened", now, silences)
            if self.metrics:
                self.metrics.alerts_opened.labels("measure_overdue", "major").inc()
            opened.append(alert_id)
        if opened:
            self.engine.on_change()
        return opened

    # ---- effect evaluation -------------------------------------------------------------------

    def evaluate(self, inspection_id: str, measure_id: str, actor: str) -> dict[str, Any]:
        """Compute a measure's effect; effective closes the inspection, not effective reopens it."""
        from alerting.evaluation import evaluate

        now = self.clock()
        with self.store.db.transaction() as tx:
            row = self.engine.inspections.load(tx, inspection_id)
            measure = self.store.get_measure(tx, measure_id)
        if measure is None or measure["inspection_id"] != inspection_id:
            raise NotFound(f"no measure {measure_id!r} in inspection {inspection_id!r}")
        if row["state"] not in ("measures_set", "evaluating"):
            raise Conflict(
                f"inspection {inspection_id} is {row['state']!r}; measures are evaluated from "
                "'measures_set' or 'evaluating'"
            )
        self.engine.orgs.refresh()  # learnt by the worker, maybe
        effect = evaluate(
            self.store,
            measure,
            self.engine.orgs.paths,
            bucket_seconds=self.settings.bucket_seconds,
            window_buckets=self.settings.evaluation_window_buckets,
            alpha=self.settings.evaluation_alpha,
        )
        evaluation = {
            "evaluation_id": uuid.uuid4().hex[:16],
            "inspection_id": inspection_id,
            "measure_id": measure_id,
            "verdict": effect.verdict,
            "body": effect.as_dict(),
            "created_by": actor,
            "created_at": now,
        }
        with self.store.db.transaction() as tx:
            row = self.engine.inspections.load(tx, inspection_id)
            if row["state"] == "measures_set":
                row = self.engine.inspections.transition(tx, row, "evaluating", actor, now)
            self.store.add_evaluation(tx, evaluation)
            self.store.audit(
                tx,
                "evaluation",
                str(evaluation["evaluation_id"]),
                "evaluate",
                actor,
                now,
                None,
                evaluation,
            )
            outcome = "closed" if effect.verdict == "effective" else "reopened"
            self.engine.inspections.transition(
                tx, row, outcome, actor, now, action=f"evaluation_{effect.verdict}"
            )
        if self.metrics:
            self.metrics.evaluations.labels(effect.verdict).inc()
        self.engine.on_change()
        return evaluation
