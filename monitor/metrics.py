"""Every Prometheus metric qualmon exports, built in one place from an injected registry.

Names follow Prometheus conventions: ``qualmon_`` prefix, base units (``_seconds``, ``_ratio``,
``_yuan``), ``_total`` on counters. Labels are bounded by configuration: event types, outcomes,
DLQ reasons and severities are fixed sets whose children are created up front; slice labels come
from orgs down to ``orgs_depth`` of the org tree (``QUALMON_METRIC_ORGS_DEPTH``), product lines
and channels, and stop at ``max_series`` (never an event id).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from streams.feedback import VERDICTS
from streams.indicators import ANOMALY_NAMES, INDICATORS, wilson_interval
from streams.rolling import WINDOWS
from streams.schema import EVENT_TYPES
from streams.scoring import CATEGORIES

OUTCOMES = ("accepted", "duplicate", "late", "invalid")
DLQ_REASONS = ("not_json", "not_an_event", "invalid_event")
SEVERITIES = ("minor", "major", "critical")
SLICE_LABELS = ("org", "product_line", "channel")
BOUNDS = ("lower", "expected", "upper")  # the order of a reading's band
#: What an alert of each kind can be about, a fixed set: an anomaly alert, any name an anomaly
#: has (indicators, SLA breaches, concentrations, data-quality checks); an overdue measure's,
#: the indicator it is to move.
ALERT_NAMES = {"anomaly": ANOMALY_NAMES, "measure_overdue": tuple(INDICATORS)}
RECEIVERS = ("alertmanager", "webhook", "topic")
DELIVERY_OUTCOMES = ("sent", "failed", "dead_letter")
INSPECTION_RULES = ("complaint_concentration", "severity", "new_product", "manual")
EVALUATION_VERDICTS = ("effective", "not_effective")
#: Windows exported as gauges (all of them are served by GET /v1/indicators?window=...).
GAUGE_WINDOWS = tuple(w for w in WINDOWS if w != "bucket")


class Metrics:
    def __init__(
        self, registry: CollectorRegistry, max_series: int = 20_000, orgs_depth: int | None = None
    ) -> None:
        self.registry = registry
        self.max_series = max_series
        #: Slices of an org deeper than this in the org tree (1 = head office) get no gauges;
        #: None: every org's do.
        self.orgs_depth = orgs_depth
        #: org code -> its depth; the closing stage binds its slicer's, learnt from events. An
        #: org it does not know (the ``_other`` fold) is exported.
        self.org_depths: Mapping[str, int] = {}
        #: Series exported so far (readings and windows), bounded by ``max_series``.
        self._exported: set[tuple[str, ...]] = set()
        #: (indicator, org, product_line, channel) -> its value, sample size, score and band
        #: children, bound once: ``labels()`` costs several times a ``set()``.
        self._children: dict[tuple[str, ...], tuple[Any, ...]] = {}
        # process_resident_memory_bytes, CPU seconds, open fds: a worker's memory grows with the
        # event ids it remembers and bounds its sustained rate (docs/operations.md, "Sizing").
        # A fresh registry has no process collector of its own.
        ProcessCollector(registry=registry)

        self.events = Counter(
            "qualmon_events_total",
            "Events seen by the worker, by type and outcome (accepted, duplicate, late, invalid).",
            ["event_type", "outcome"],
            registry=registry,
        )
        #: (event_type, outcome) -> counter child, bound up front for the per-event path.
        self.event_counts = {
            (event_type, outcome): self.events.labels(event_type, outcome)
            for event_type in (*EVENT_TYPES, "unknown")
            for outcome in OUTCOMES
        }
        self.http_events = Counter(
            "qualmon_http_events_total",
            "Events posted to /v1/events, by outcome (accepted, rejected, unavailable).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("accepted", "rejected", "unavailable"):
            self.http_events.labels(outcome)
        self.dlq = Counter(
            "qualmon_dlq_messages_total",
            "Kafka records sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in DLQ_REASONS:
            self.dlq.labels(reason)
        self.anomalies = Counter(
            "qualmon_anomalies_total",
            "Anomalies detected, by indicator and severity.",
            ["indicator", "severity"],
            registry=registry,
        )
        for name in ANOMALY_NAMES:
            for severity in SEVERITIES:
                self.anomalies.labels(name, severity)
        self.anomaly_categories = Counter(
            "qualmon_anomalies_by_category_total",
            "Anomalies detected, by category (business, concentration, data_quality).",
            ["category"],
            registry=registry,
        )
        for category in CATEGORIES:
            self.anomaly_categories.labels(category)
        self.feedback = Counter(
            "qualmon_anomaly_feedback_total",
            "Verdicts posted on anomalies, by verdict.",
            ["verdict"],
            registry=registry,
        )
        for verdict in VERDICTS:
            self.feedback.labels(verdict)
        self.late_partial_events = Counter(
            "qualmon_partial_events_late_total",
            "Events a worker accepted that reached the closing stage after their bucket had "
            "closed (late, detected there); kept in late_events, not added.",
            registry=registry,
        )
        self.closing = Gauge(
            "qualmon_worker_closing",
            "1 on the worker that closes buckets (the owner of input partition 0), else 0.",
            registry=registry,
        )
        self.buckets_closed = Counter(
            "qualmon_buckets_closed_total", "Event-time buckets closed and scored.",
            registry=registry,
        )  # fmt: skip
        self.bucket_close = Histogram(
            "qualmon_bucket_close_seconds",
            "Time from a bucket closing to its readings and anomalies being stored and published.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.watermark = Gauge(
            "qualmon_watermark_timestamp_seconds",
            "Latest event time seen by the worker (the watermark), as a Unix timestamp.",
            registry=registry,
        )
        self.series = Gauge(
            "qualmon_series_watched", "Indicator series with a detector.", registry=registry
        )
        self.assigned_partitions = Gauge(
            "qualmon_worker_assigned_partitions",
            "Input partitions this worker owns.",
            registry=registry,
        )
        self.series_not_exported = Counter(
            "qualmon_metric_series_not_exported_total",
            "Readings not exported as gauges because max_series was reached.",
            registry=registry,
        )
        self.indicator = {
            i.name: Gauge(
                i.metric,
                f"{i.description} Last closed bucket of each slice.",
                SLICE_LABELS,
                registry=registry,
            )
            for i in INDICATORS.values()
        }
        self.window_gauge = {
            i.name: Gauge(
                i.metric.replace("qualmon_indicator_", "qualmon_window_", 1),
                f"{i.description} Over a rolling window ending with the last closed bucket.",
                ["window", *SLICE_LABELS],
                registry=registry,
            )
            for i in INDICATORS.values()
        }
        self.compliance_interval = Gauge(
            "qualmon_indicator_compliance_interval_ratio",
            "95 % Wilson interval of the business compliance rate of the last closed bucket.",
            ["bound", *SLICE_LABELS],
            registry=registry,
        )
        self.sample_size = Gauge(
            "qualmon_indicator_sample_size",
            "Exposure or sample size the last reading of an indicator rests on.",
            ["indicator", *SLICE_LABELS],
            registry=registry,
        )
        self.score = Gauge(
            "qualmon_anomaly_score",
            "Anomaly score in [0, 1] of the last closed bucket; 0.5 and above is an anomaly.",
            ["indicator", *SLICE_LABELS],
            registry=registry,
        )
        # One gauge per indicator (not one for all) so that each keeps its indicator's unit.
        self.indicator_band = {
            i.name: Gauge(
                band_metric(i.metric),
                f"Expected value (bound=expected) and normal band (bound=lower, upper) of "
                f"{i.metric} for the last closed bucket of each slice.",
                [*SLICE_LABELS, "bound"],
                registry=registry,
            )
            for i in INDICATORS.values()
        }
        self.detector = Histogram(
            "qualmon_detector_seconds",
            "Time the detectors took to score one closed bucket (all its slices and indicators).",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        # Only partitions this worker owns have a child, so lag summed over workers is exact.
        self.consumer_lag = Gauge(
            "qualmon_consumer_lag_records",
            "Records of an owned input partition not yet processed: high watermark - position.",
            ["partition"],
            registry=registry,
        )

        self.alerts_firing = Gauge(
            "qualmon_alerts_firing",
            "Alerts firing now, by kind, indicator and severity (acknowledged ones included).",
            ["kind", "indicator", "severity"],
            registry=registry,
        )
        self.alerts_acknowledged = Gauge(
            "qualmon_alerts_acknowledged",
            "Firing alerts someone has acknowledged, by kind, indicator and severity.",
            ["kind", "indicator", "severity"],
            registry=registry,
        )
        self.alerts_opened = Counter(
            "qualmon_alerts_opened_total",
            "Alerts opened, by kind and severity.",
            ["kind", "severity"],
            registry=registry,
        )
        for kind, names in ALERT_NAMES.items():
            for severity in SEVERITIES:
                self.alerts_opened.labels(kind, severity)
                for name in names:
                    self.alerts_firing.labels(kind, name, severity)
                    self.alerts_acknowledged.labels(kind, name, severity)
        self.alert_notifications = Counter(
            "qualmon_alert_notifications_total",
            "Alert notification deliveries, by receiver type and outcome (sent, failed attempt, "
            "dead_letter after the last attempt).",
            ["receiver", "outcome"],
            registry=registry,
        )
        for receiver in RECEIVERS:
            for outcome in DELIVERY_OUTCOMES:
                self.alert_notifications.labels(receiver, outcome)
        self.alert_notifications_pending = Gauge(
            "qualmon_alert_notifications_pending",
            "Notifications waiting in the outbox (first attempt or retry).",
            registry=registry,
        )
        self.inspections_open = Gauge(
            "qualmon_inspections_open", "Special inspections not closed.", registry=registry
        )
        self.inspections_opened = Counter(
            "qualmon_inspections_opened_total",
            "Special inspections opened, by the rule that opened them.",
            ["rule"],
            registry=registry,
        )
        for rule in INSPECTION_RULES:
            self.inspections_opened.labels(rule)
        self.measures_overdue = Gauge(
            "qualmon_measures_overdue",
            "Improvement measures past their deadline and not done.",
            registry=registry,
        )
        self.evaluations = Counter(
            "qualmon_effect_evaluations_total",
            "Effect evaluations computed, by verdict.",
            ["verdict"],
            registry=registry,
        )
        for verdict in EVALUATION_VERDICTS:
            self.evaluations.labels(verdict)

    def stop_closing(self) -> None:
        """This worker no longer closes buckets: drop every series the closing stage exports, so
        that summed over workers each is exported by its owner only."""
        for gauge in (
            *self.indicator.values(), *self.window_gauge.values(), *self.indicator_band.values(),
            self.compliance_interval, self.sample_size, self.score,
            self.alerts_firing, self.alerts_acknowledged,
        ):  # fmt: skip
            gauge.clear()
        for gauge in (
            self.watermark, self.series, self.alert_notifications_pending,
            self.inspections_open, self.measures_overdue, self.closing,
        ):  # fmt: skip
            gauge.set(0)
        self._exported.clear()
        self._children.clear()

    def set_alert_state(
        self, counts: list[dict], *, open_inspections: int, overdue_measures: int, pending: int
    ) -> None:
        """Gauges from the store's counts: every known child is reset, then the counts set."""
        seen = set()
        for row in counts:
            key = (row["kind"], row["indicator"], row["severity"])
            # An alert under a name an older version used is not exported, so that the label
            # values stay a fixed set; the API still lists it.
            if key[1] in ALERT_NAMES.get(key[0], ()) and key[2] in SEVERITIES:
                seen.add(key)
                self.alerts_firing.labels(*key).set(row["firing"])
                self.alerts_acknowledged.labels(*key).set(row["acknowledged"])
        # The others to 0 only now: a scrape in between must not see a firing alert at 0.
        for kind, names in ALERT_NAMES.items():
            for name in names:
                for severity in SEVERITIES:
                    if (kind, name, severity) not in seen:
                        self.alerts_firing.labels(kind, name, severity).set(0)
                        self.alerts_acknowledged.labels(kind, name, severity).set(0)
        self.inspections_open.set(open_inspections)
        self.measures_overdue.set(overdue_measures)
        self.alert_notifications_pending.set(pending)

    def windows(self, rows: list[tuple[tuple[str, str, str], str, list[float]]]) -> None:
        """Export indicators over rolling windows for the total and single-dimension slices
        (org, product line, channel); deeper slices are served by the API only."""
        for key, window, sums in rows:
            if sum(1 for part in key if part != "*") > 1 or window not in GAUGE_WINDOWS:
                continue
            if not self._exports_org(key[0]):
                continue
            series = ("window", window, *key)
            if series not in self._exported:
                if len(self._exported) >= self.max_series:
                    self.series_not_exported.inc()
                    continue
                self._exported.add(series)
            for name, definition in INDICATORS.items():
                value = definition.read(sums).value
                if value is not None:
                    gauge = self.window_gauge[name]
                    gauge.labels(window, *key).set(value * definition.metric_scale)

    def interval(self, key: tuple[str, str, str], k: float, n: float) -> None:
        """Export the Wilson interval of a compliance reading (k compliant of n sampled)."""
        if ("compliance_rate", *key) not in self._exported:
            return  # its reading was not exported either (max_series)
        lower, upper = wilson_interval(k, n)
        self.compliance_interval.labels("lower", *key).set(lower)
        self.compliance_interval.labels("upper", *key).set(upper)

    def reading(
        self,
        indicator: str,
        key: tuple[str, str, str],
        value: float,
        n: float,
        score: float,
        band: tuple[float, float, float] | None = None,
    ) -> None:
        """Export one scored reading, unless its org is deeper than ``orgs_depth`` or it would
        push past ``max_series``."""
        series = (indicator, *key)
        children = self._children.get(series)
        if children is None:
            if not self._exports_org(key[0]):
                return
            if len(self._exported) >= self.max_series:
                self.series_not_exported.inc()
                return
            self._exported.add(series)
            children = self._children[series] = (
                self.indicator[indicator].labels(*key),
                self.sample_size.labels(indicator, *key),
                self.score.labels(indicator, *key),
                tuple(self.indicator_band[indicator].labels(*key, b) for b in BOUNDS),
            )
        gauge, sample_size, score_gauge, band_gauges = children
        scale = INDICATORS[indicator].metric_scale
        gauge.set(value * scale)
        sample_size.set(n)
        score_gauge.set(score)
        if band is not None:
            for band_gauge, bound_value in zip(band_gauges, band, strict=True):
                band_gauge.set(bound_value * scale)

    def _exports_org(self, org: str) -> bool:
        return self.orgs_depth is None or self.org_depths.get(org, 0) <= self.orgs_depth


def band_metric(indicator_metric: str) -> str:
    """``qualmon_indicator_loss_ratio`` -> ``qualmon_indicator_band_loss_ratio`` (same unit).

    >>> band_metric("qualmon_indicator_premium_income_yuan")
    'qualmon_indicator_band_premium_income_yuan'
    """
    return indicator_metric.replace("qualmon_indicator_", "qualmon_indicator_band_", 1)
