"""Special inspections (专项检查): which alerts open one, their lifecycle, measures, audit log.

A special inspection is a business investigation: a data-quality alert (a silent feed, a duplicate
surge, a unit jump) pages operators but never opens or joins one. Rules, in order, for a business
alert not yet part of an inspection:

* an open inspection about the same matter whose scope overlaps the alert's (same org path,
  product line and channel or ``*`` on either side) absorbs it — no twin is opened. The same
  matter is the same indicator family (:data:`streams.indicators.FAMILIES`: complaints, claims,
  mis-selling, ...); an inspection naming no indicator (``*``) or covering a launch takes any
  business alert in its scope. When none covers the alert, an untouched one (``opened``, by
  the last two rules) of its own org — not the company's — takes it and widens to cover both,
  as an alert does; it follows its own alert's scope too (:meth:`Inspections.follow`);
* any alert on a product line inside its launch watch window opens one covering the launch (the
  line in the launching org), not only the slice that fired;
* a *complaint concentration* — an alert on a complaint indicator in an org, line or channel,
  not the company total — opens one;
* so does an alert at or above ``QUALMON_INSPECTION_MIN_SEVERITY``.

An inspection is keyed on its cause (the alert that opened it), so a redelivered anomaly cannot
open a second one. Lifecycle: ``opened → investigating → measures_set → evaluating → closed``;
an evaluation that finds no effect moves it to ``reopened``, from where work starts again. Every
change is written to the audit log with who, when, what and the row before and after, and
published to ``<prefix>.inspections`` through the outbox.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from alerting.rules import (
    RANK,
    business,
    common_scope,
    concerns,
    covers,
    inspection_id_for,
    overlaps,
    summary,
)
from monitor.errors import Conflict, NotFound
from monitor.metrics import Metrics
from monitor.settings import Settings
from monitor.store import Store, Transaction
from streams.slices import org_code

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
#: Rules whose inspections follow the scope of the alerts they were opened for (a launch's
#: covers the launch, a manual one what its author chose).
RESCOPABLE = ("severity", "complaint_concentration")


class Inspections:
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

    # ---- from alerts -----------------------------------------------------------------------

    def rule_for(self, alert: dict[str, Any]) -> str | None:
        """Which rule opens an inspection for this business anomaly alert (:meth:`consider`
        asks only for those), if any; a launch comes first, because its inspection covers the
        whole launch rather than the slice that fired."""
        watch = self.engine.watch
        if watch.watched(alert["product_line"], alert["org_path"], alert["last_bucket"]):
            return "new_product"
        total = (alert["org"], alert["product_line"], alert["channel"]) == ("*", "*", "*")
        if alert["indicator"] in self.settings.inspection_complaint_indicators and not total:
            return "complaint_concentration"
        if RANK[alert["severity"]] >= RANK[self.settings.inspection_min_severity]:
            return "severity"
        return None

    def consider(
        self, tx: Transaction, alert: dict[str, Any], now: float, company_wide: bool = False
    ) -> str | None:
        """Attach the alert to an open inspection of its matter and scope, or open one when a
        rule says so; a data-quality alert neither joins nor opens one. A ``company_wide``
        incident (:mod:`alerting.breadth`) is not filed under an inspection of one branch."""
        if alert["kind"] != "anomaly" or not business(alert["indicator"]):
            return None
        scope = _scope(alert)
        ours = [i for i in self.store.open_inspections(tx) if concerns(i, alert["indicator"])]
        covering = [
            i
            for i in ours
            if (covers(_scope(i), scope) if company_wide else overlaps(scope, _scope(i)))
        ]
        # A disjoint slice of the same org is the same problem, as it is for an alert: an
        # untouched inspection widens to take it, when none covers it already.
        siblings = (i for i in ours if i["org_path"] == scope[0] != "*")
        taker = (
            covering[0]
            if covering
            else next(
                (i for i in siblings if self._rescope(tx, i, common_scope(_scope(i), scope), now)),
                None,
            )
        )
        if taker is not None:
            self._attach(tx, taker["inspection_id"], alert, now, "absorb_alert")
            return str(taker["inspection_id"])
        rule = self.rule_for(alert)
        if rule is None:
            return None
        org, org_path, line, channel = (
            alert["org"],
            alert["org_path"],
            alert["product_line"],
            alert["channel"],
        )
        if rule == "new_product":
            watch_org = next(
                (w.org for w in self.settings.product_watch if w.product_line == line), "*"
            )
            org, org_path, channel = watch_org, self.engine.orgs.path(watch_org), "*"
        inspection = {
            "inspection_id": inspection_id_for(alert["alert_id"]),
            "cause_id": f"alert:{alert['alert_id']}",
            "rule": rule,
            "title": _title(alert["indicator"], _scope(alert)),
            "indicator": alert["indicator"],
            "org": org,
            "org_path": org_path,
            "product_line": line,
            "channel": channel,
            "state": "opened",
            "reopened": 0,
            "opened_at": now,
            "updated_at": now,
            "closed_at": None,
        }
        if self.store.create_inspection(tx, inspection):
            self.store.audit(
                tx,
                "inspection",
                inspection["inspection_id"],
                "open",
                SYSTEM_ACTOR,
                now,
                None,
                inspection,
            )
            self.publish(tx, inspection, "opened", now)
            if self.metrics:
                self.metrics.inspections_opened.labels(rule).inc()
        self._attach(tx, inspection["inspection_id"], alert, now, "attach_alert")
        return str(inspection["inspection_id"])

    def follow(
        self, tx: Transaction, alert: dict[str, Any], now: float, company_wide: bool = False
    ) -> None:
        """Move the inspection an alert opened with it while nobody works on it: to the alert's
        new scope while it is the inspection's only alert (widened to siblings of its first
        slice, or narrowed from a roll-up to where the problem sits); once it has taken others,
        only wider — within the org, or to the ``company_wide`` incident the alert has become
        when that covers all it took — never away from an alert it took."""
        row = self.store.get_inspection(tx, alert["inspection_id"], lock=True)
        if row is None or row["cause_id"] != f"alert:{alert['alert_id']}":
            return
        theirs = _scope(alert)
        others = self.store.inspection_alert_ids(row["inspection_id"], tx) != [alert["alert_id"]]
        # With others taken, only wider: to the company-wide incident when it covers them all
        # (the incident is the company's, so is its inspection), else within the org.
        if others and not (company_wide and covers(theirs, _scope(row))):
            if theirs[0] != row["org_path"] or theirs[0] == "*":
                return
            theirs = common_scope(_scope(row), theirs)
        self._rescope(tx, row, theirs, now)

    def _rescope(
        self, tx: Transaction, row: dict[str, Any], scope: tuple[str, str, str], now: float
    ) -> bool:
        """Give an untouched inspection a new scope; once someone works on it (or it covers a
        launch, not the slice that fired), its scope is theirs."""
        if row["state"] != "opened" or row["rule"] not in RESCOPABLE:
            return False
        if scope == _scope(row):
            return True
        org = org_code(scope[0])
        after = {
            **row,
            # A title someone wrote stays theirs; the one qualmon gave follows the scope.
            "title": _title(row["indicator"], scope)
            if row["title"] == _title(row["indicator"], _scope(row))
            else row["title"],
            "org": org,
            "org_path": scope[0],
            "product_line": scope[1],
            "channel": scope[2],
            "updated_at": now,
        }
        changes = {k: v for k, v in after.items() if row[k] != v}
        if not self.store.update_untouched(tx, row["inspection_id"], **changes):
            return False
        self.store.audit(
            tx, "inspection", row["inspection_id"], "rescope", SYSTEM_ACTOR, now, row, after
        )
        self.publish(tx, after, "rescoped", now)
        return True

    def _attach(
        self, tx: Transaction, inspection_id: str, alert: dict[str, Any], now: float, action: str
    ) -> None:
        if self.store.attach_alert(tx, inspection_id, alert["alert_id"], now):
            self.store.audit(
                tx,
                "inspection",
                inspection_id,
                action,
                SYSTEM_ACTOR,
                now,
                None,
                {"alert_id": alert["alert_id"]},
            )
        alert["inspection_id"] = inspection_id
        self.store.update_alert(tx, alert["alert_id"], inspection_id=inspection_id)

    def publish(self, tx: Transaction, inspection: dict[str, Any], event: str, now: float) -> None:
        self.engine.outbox.publish_inspection(tx, inspection, event, now)

    # ---- people's actions ------------------------------------------------------------------

    def load(self, tx: Transaction, inspection_id: str) -> dict[str, Any]:
        row = self.store.get_inspection(tx, inspection_id, lock=True)
        if row is None:
            raise NotFound(f"no inspection with id {inspection_id!r}")
        return row

    def transition(
        self,
        tx: Transaction,
        row: dict[str, Any],
        to: str,
        actor: str,
        now: float,
        action: str = "transition",
    ) -> dict[str, Any]:
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
            "inspection_id": inspection_id,
            "cause_id": f"manual:{inspection_id}",
            "rule": "manual",
            "state": "opened",
            "reopened": 0,
            "opened_at": now,
            "updated_at": now,
            "closed_at": None,
            "org_path": self.engine.orgs.path(data["org"]),
            **data,
        }
        with self.store.db.transaction() as tx:
            self.store.create_inspection(tx, row)
            self.store.audit(tx, "inspection", inspection_id, "open", actor, now, None, row)
            self.publish(tx, row, "opened", now)
        if self.metrics:
            self.metrics.inspections_opened.labels("manual").inc()
        self.engine.on_change()
        return row

    def patch(self, inspection_id: str, changes: dict[str, Any], actor: str) -> dict[str, Any]:
        now = self.clock()
        with self.store.db.transaction() as tx:
            row = self.load(tx, inspection_id)
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

    def add_cause(
        self, inspection_id: str, category: str, analysis: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        now = self.clock()
        with self.store.db.transaction() as tx:
            row = self.load(tx, inspection_id)
            cause = {
                "cause_id": uuid.uuid4().hex[:16],
                "inspection_id": inspection_id,
                "category": category,
                "analysis": analysis,
                "created_by": actor,
                "created_at": now,
            }
            self.store.add_cause(tx, cause)
            self.store.audit(
                tx, "root_cause", str(cause["cause_id"]), "add", actor, now, None, cause
            )
            if row["state"] == "opened":
                self.transition(tx, row, "investigating", actor, now)
        return cause


def _scope(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["org_path"], row["product_line"], row["channel"])


def _title(indicator: str, scope: tuple[str, str, str]) -> str:
    """The title qualmon gives an inspection it opens on ``scope`` (org path, line, channel)."""
    return f"Special inspection: {summary(indicator, (org_code(scope[0]), *scope[1:]))}"
