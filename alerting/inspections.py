"""Special inspections (专项检查): which alerts open one, their lifecycle, measures, audit log.

Rules, in order, for an alert not yet part of an inspection:

* an open inspection whose scope overlaps the alert's (same org path, product line and channel
  or ``*`` on either side) absorbs it — no twin is opened;
* a *complaint concentration* — an alert on a complaint indicator in an org, line or channel,
  not the company total — opens one;
* so does an alert at or above ``QUALMON_INSPECTION_MIN_SEVERITY``;
* so does any alert on a product line inside its launch watch window; the inspection then covers
  the launch (the line in the launching org), not only the slice that fired.

An inspection is keyed on its cause (the alert that opened it), so a redelivered anomaly cannot
open a second one. Lifecycle: ``opened → investigating → measures_set → evaluating → closed``;
an evaluation that finds no effect moves it to ``reopened``, from where work starts again. Every
change is written to the audit log with who, when, what and the row before and after, and
published to ``<prefix>.inspections`` through the outbox.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from alerting.rules import RANK, overlaps
from monitor.errors import Conflict, NotFound
from monitor.metrics import Metrics
from monitor.settings import Settings
from monitor.store import Store, Transaction

if TYPE_CHECKING:
    from alerting.engine import AlertEngine

STATES = ("opened", "investigating", "measures_set", "evaluating", "closed", "reopened")
ALLOWED: dict[str, tuple[str, ...]] = {
    "opened": ("investigating", "closed"),
    "investigating": ("measures_set", "closed"),
    "measures_set": ("investigating", "evaluating", "closed"),
    "evaluating": ("closed", "reopened"),
    "reopened": ("investigating", "measures_set", "closed"),
    "closed": ("reopened",),
}
FISHBONE = ("people", "system", "product_material", "process", "environment", "measurement")
SYSTEM_ACTOR = "qualmon"


class Inspections:
    def __init__(self, store: Store, settings: Settings, engine: AlertEngine,
                 metrics: Metrics | None, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.store, self.settings, self.engine = store, settings, engine
        self.metrics, self.clock = metrics, clock

    # ---- from alerts -----------------------------------------------------------------------

    def rule_for(self, alert: dict[str, Any]) -> str | None:
        if alert["kind"] != "anomaly":
            return None
        scope = (alert["org"], alert["product_line"], alert["channel"])
        if alert["indicator"] in self.settings.inspection_complaint_indicators and scope != (
            "*", "*", "*",
        ):  # fmt: skip
            return "complaint_concentration"
        if RANK[alert["severity"]] >= RANK[self.settings.inspection_min_severity]:
            return "severity"
        if self.engine.watched(alert["product_line"], alert["org_path"], alert["last_bucket"]):
            return "new_product"
        return None

    def consider(self, tx: Transaction, alert: dict[str, Any], now: float) -> str | None:
        """Attach the alert to an overlapping open inspection, or open one when a rule says so."""
        if alert["kind"] != "anomaly":
            return None
        scope = (alert["org_path"], alert["product_line"], alert["channel"])
        for open_one in self.store.open_inspections(tx):
            theirs = (open_one["org_path"], open_one["product_line"], open_one["channel"])
            if overlaps(scope, theirs):
                self._attach(tx, open_one["inspection_id"], alert, now, "absorb_alert")
                return str(open_one["inspection_id"])
        rule = self.rule_for(alert)
        if rule is None:
            return None
        org, org_path, line, channel = alert["org"], alert["org_path"], alert["product_line"], alert["channel"]
        if rule == "new_product":
            watch_org = next(
                (w.org for w in self.settings.product_watch if w.product_line == line), "*"
            )
            org, org_path, channel = watch_org, self.engine.path(watch_org), "*"
        cause = f"alert:{alert['alert_id']}"
        inspection = {
            "inspection_id": hashlib.sha256(cause.encode()).hexdigest()[:16],
            "cause_id": cause, "rule": rule, "title": f"Special inspection: {alert['summary']}",
            "indicator": alert["indicator"], "org": org, "org_path": org_path,
            "product_line": line, "channel": channel, "state": "opened", "reopened": 0,
            "opened_at": now, "updated_at": now, "closed_at": None,
        }  # fmt: skip
        if self.store.create_inspection(tx, inspection):
            self.store.audit(tx, "inspection", inspection["inspection_id"], "open",
                             SYSTEM_ACTOR, now, None, inspection)  # fmt: skip
            self.publish(tx, inspection, "opened", now)
            if self.metrics:
                self.metrics.inspections_opened.labels(rule).inc()
        self._attach(tx, inspection["inspection_id"], alert, now, "attach_alert")
        return str(inspection["inspection_id"])

    def _attach(self, tx: Transaction, inspection_id: str, alert: dict[str, Any], now: float,
                action: str) -> None:  # fmt: skip
        if self.store.attach_alert(tx, inspection_id, alert["alert_id"], now):
            self.store.audit(tx, "inspection", inspection_id, action, SYSTEM_ACTOR, now,
                             None, {"alert_id": alert["alert_id"]})  # fmt: skip
        alert["inspection_id"] = inspection_id
        self.store.update_alert(tx, alert["alert_id"], inspection_id=inspection_id)

    def publish(self, tx: Transaction, inspection: dict[str, Any], event: str, now: float) -> None:
        body = {"event": event, "inspection": inspection}
        self.store.enqueue(tx, [{
            "notification_id": uuid.uuid4().hex[:24], "alert_id": inspection["inspection_id"],
            "receiver": "topic:inspections", "event": event,
            "body": orjson.dumps(body).decode(), "state": "pending", "attempts": 0,
            "next_attempt_at": now, "last_error": None, "created_at": now, "sent_at": None,
        }])  # fmt: skip

    # ---- people's actions ------------------------------------------------------------------

    def _load(self, tx: Transaction, inspection_id: str) -> dict[str, Any]:
        row = self.store.get_inspection(tx, inspection_id)
        if row is None:
            raise NotFound(f"no inspection with id {inspection_id!r}")
        return row

    def transition(self, tx: Transaction, row: dict[str, Any], to: str, actor: str,
                   now: float, action: str = "transition") -> dict[str, Any]:  # fmt: skip
        if to not in ALLOWED[row["state"]]:
            raise Conflict(
                f"inspection {row['inspection_id']} is {row['state']!r}; it can move to "
                f"{list(ALLOWED[row['state']])}, not {to!r}"
            )
        after = {**row, "state": to, "updated_at": now}
        if to == "closed":
            after["closed_at"] = now
        if to == "reopened":
            after.update(reopened=row["reopened"] + 1, closed_at=None)
        changes = {k: v for k, v in after.items() if row[k] != v}
        self.store.update_inspection(tx, row["inspection_id"], **changes)
        self.store.audit(tx, "inspection", row["inspection_id"], action, actor, now, row, after)
        self.publish(tx, after, to, now)
        return after

    def open_manually(self, data: dict[str, Any], actor: str) -> dict[str, Any]:
        now = self.clock()
        inspection_id = uuid.uuid4().hex[:16]
        row = {
            "inspection_id": inspection_id, "cause_id": f"manual:{inspection_id}",
            "rule": "manual", "state": "opened", "reopened": 0, "opened_at": now,
            "updated_at": now, "closed_at": None, "org_path": self.engine.path(data["org"]),
            **data,
        }  # fmt: skip
        with self.store.db.transaction() as tx:
            self.store.create_inspection(tx, row)
            self.store.audit(tx, "inspection", inspection_id, "open", actor, now, None, row)
            self.publish(tx, row, "opened", now)
        self.engine.on_change()
        return row

    def patch(self, inspection_id: str, changes: dict[str, Any], actor: str) -> dict[str, Any]:
        now = self.clock()
        with self.store.db.transaction() as tx:
            row = self._load(tx, inspection_id)
            state = changes.pop("state", None)
            if changes:
                after = {**row, **changes, "updated_at": now}
                self.store.update_inspection(tx, inspection_id, **changes, updated_at=now)
                self.store.audit(tx, "inspection", inspection_id, "edit", actor, now, row, after)
                row = after
            if state is not None and state != row["state"]:
                row = self.transition(tx, row, state, actor, now)
        self.engine.on_change()
        return row

    def add_cause(self, inspection_id: str, category: str, analysis: dict[str, Any],
                  actor: str) -> dict[str, Any]:  # fmt: skip
        now = self.clock()
        with self.store.db.transaction() as tx:
            row = self._load(tx, inspection_id)
            cause = {"cause_id": uuid.uuid4().hex[:16], "inspection_id": inspection_id,
                     "category": category, "analysis": analysis, "created_by": actor,
                     "created_at": now}  # fmt: skip
            self.store.add_cause(tx, cause)
            self.store.audit(tx, "root_cause", cause["cause_id"], "add", actor, now, None, cause)
            if row["state"] == "opened":
                self.transition(tx, row, "investigating", actor, now)
        return cause

    def add_measure(self, inspection_id: str, data: dict[str, Any], actor: str) -> dict[str, Any]:
        now = self.clock()
        with self.store.db.transaction() as tx:
            row = self._load(tx, inspection_id)
            if row["state"] in ("closed", "evaluating"):
                raise Conflict(f"inspection {inspection_id} is {row['state']!r}; reopen it first")
            measure = {"measure_id": uuid.uuid4().hex[:16], "inspection_id": inspection_id,
                       "state": "planned", "overdue_alert_id": None, "created_at": now,
                       "updated_at": now, "effective_from": None, **data}  # fmt: skip
            self.store.add_measure(tx, measure)
            self.store.audit(tx, "measure", measure["measure_id"], "add", actor, now, None, measure)
            if row["state"] == "opened":
                row = self.transition(tx, row, "investigating", actor, now)
            if row["state"] in ("investigating", "reopened"):
                self.transition(tx, row, "measures_set", actor, now)
        self.engine.on_change()
        return measure

    def update_measure(self, inspection_id: str, measure_id: str, changes: dict[str, Any],
                       actor: str) -> dict[str, Any]:  # fmt: skip
        now = self.clock()
        with self.store.db.transaction() as tx:
            measure = self.store.get_measure(tx, measure_id)
            if measure is None or measure["inspection_id"] != inspection_id:
                raise NotFound(f"no measure {measure_id!r} in inspection {inspection_id!r}")
            after = {**measure, **changes, "updated_at": now}
            self.store.update_measure(tx, measure_id, **changes, updated_at=now)
            self.store.audit(tx, "measure", measure_id, "edit", actor, now, measure, after)
            overdue = measure["overdue_alert_id"]
            if after["state"] == "done" and overdue:
                alert = self.store.get_alert(tx, overdue)
                if alert and alert["state"] == "firing":
                    self.engine.resolve(tx, alert, now, [])
        self.engine.on_change()
        return after

    # ---- overdue measures ------------------------------------------------------------------

    def check_overdue(self, now: float | None = None) -> list[str]:
        """Open one alert per measure past its deadline and not done; returns their ids."""
        now = self.clock() if now is None else now
        opened = []
        silences = self.store.active_silences(None, now)
        for m in self.store.overdue_measures(now):
            alert_id = hashlib.sha256(f"measure-overdue|{m['measure_id']}".encode()).hexdigest()[:20]
            alert = {
                "alert_id": alert_id, "kind": "measure_overdue",
                "group_key": f"measure|{m['measure_id']}", "indicator": m["indicator"],
                "org": m["org"], "org_path": self.engine.path(m["org"]),
                "product_line": m["product_line"], "channel": m["channel"],
                "severity": "major", "score": 0.0, "value": 0.0, "expected": m["target"],
                "state": "firing", "anomaly_id": f"measure:{m['measure_id']}",
                "last_bucket": int(m["deadline"]), "anomalies": 0, "flaps": 0, "flapping": 0,
                "summary": f"Measure {m['title']!r} ({m['department']}, owner {m['owner']}) "
                           f"is past its deadline",
                "acknowledged_by": None, "acknowledged_at": None,
                "inspection_id": m["inspection_id"], "opened_at": now, "updated_at": now,
                "resolved_at": None,
            }  # fmt: skip
            with self.store.db.transaction() as tx:
                self.store.insert_alert(tx, alert)
                self.store.update_measure(tx, m["measure_id"], overdue_alert_id=alert_id)
                self.store.audit(tx, "measure", m["measure_id"], "overdue", SYSTEM_ACTOR, now,
                                 None, {"alert_id": alert_id})  # fmt: skip
                self.engine.notify(tx, alert, "opened", now, silences)
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
            row = self._load(tx, inspection_id)
            measure = self.store.get_measure(tx, measure_id)
        if measure is None or measure["inspection_id"] != inspection_id:
            raise NotFound(f"no measure {measure_id!r} in inspection {inspection_id!r}")
        if row["state"] not in ("measures_set", "evaluating"):
            raise Conflict(
                f"inspection {inspection_id} is {row['state']!r}; measures are evaluated from "
                "'measures_set' or 'evaluating'"
            )
        effect = evaluate(
            self.store, measure, self.engine.paths,
            bucket_seconds=self.settings.bucket_seconds,
            window_buckets=self.settings.evaluation_window_buckets,
            alpha=self.settings.evaluation_alpha,
        )  # fmt: skip
        evaluation = {
            "evaluation_id": uuid.uuid4().hex[:16], "inspection_id": inspection_id,
            "measure_id": measure_id, "verdict": effect.verdict, "body": effect.as_dict(),
            "created_by": actor, "created_at": now,
        }  # fmt: skip
        with self.store.db.transaction() as tx:
            row = self._load(tx, inspection_id)
            if row["state"] == "measures_set":
                row = self.transition(tx, row, "evaluating", actor, now)
            self.store.add_evaluation(tx, evaluation)
            self.store.audit(tx, "evaluation", evaluation["evaluation_id"], "evaluate", actor,
                             now, None, evaluation)  # fmt: skip
            outcome = "closed" if effect.verdict == "effective" else "reopened"
            self.transition(tx, row, outcome, actor, now, action=f"evaluation_{effect.verdict}")
        if self.metrics:
            self.metrics.evaluations.labels(effect.verdict).inc()
        self.engine.on_change()
        return evaluation
