"""Write qualmon's Grafana dashboards as provisioning JSON into ``grafana/dashboards/``.

Run ``python -m grafana.build_dashboards`` after changing an indicator, a metric or a panel, and
commit the JSON it writes; ``tests/grafana`` fails when the files and this script disagree.
Dashboards: quality overview, drill-down, anomalies and inspections, pipeline health.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from grafana.panels import (
    PROM,
    custom_variable,
    dashboard,
    label_variable,
    prom,
    prom_table,
    series,
    single,
    sql_table,
)  # fmt: skip
from monitor.metrics import band_metric
from streams.indicators import INDICATORS

OUT = Path(__file__).resolve().parent / "dashboards"
#: Panel title of each indicator; a new indicator without an entry here fails the build, not
#: the dashboard.
TITLES = {
    "premium_income": "Premium income",
    "premium_attainment": "Premium attainment vs target",
    "premium_pace": "Premium pace (attainment / expected progress)",
    "loss_ratio": "Simple loss ratio",
    "claim_settlement_days_mean": "Mean claim settlement time",
    "claim_settlement_days_p90": "Claim settlement time, p90",
    "claim_payout_rate": "Claim payout rate",
    "claims_open": "Open claims (backlog)",
    "claims_open_age_days_mean": "Mean age of open claims",
    "claims_overdue": "Claims open past the settlement limit",
    "surrender_rate": "Surrender rate",
    "cooling_off_cancel_rate": "Cooling-off cancellation rate",
    "complaint_rate_per_10k_policies": "Complaints per 10k policies",
    "complaint_rate_per_10k_policies_own": "Own-channel complaints per 10k policies",
    "complaint_rate_per_10k_policies_regulator": "Regulator complaints per 10k policies",
    "complaint_rate_per_100m_premium": "Complaints per 100m yuan premium",
    "complaint_rate_per_100m_premium_own": "Own-channel complaints per 100m yuan premium",
    "complaint_rate_per_100m_premium_regulator": "Regulator complaints per 100m yuan premium",
    "complaint_closed_in_15d_rate": "Complaints closed within 15 days",
    "complaint_closed_in_30d_rate": "Complaints closed within 30 days",
    "complaint_closed_in_60d_rate": "Complaints closed within 60 days",
    "complaint_handling_days_mean": "Mean complaint handling time",
    "complaints_open": "Open complaints",
    "complaints_overdue_15d": "Complaints open past 15 days",
    "complaints_overdue_30d": "Complaints open past 30 days",
    "complaints_overdue_60d": "Complaints open past 60 days",
    "hotline_answer_rate": "Hotline answer rate",
    "hotline_answer_20s_rate": "Hotline answered within 20 s",
    "csat": "Customer satisfaction (CSAT)",
    "nps": "Net promoter score (NPS)",
    "compliance_rate": "Business compliance rate",
}


def unit_of(metric: str) -> str:
    """Grafana unit of an indicator gauge, from its base-unit suffix on /metrics.

    >>> unit_of("qualmon_indicator_loss_ratio"), unit_of("qualmon_indicator_claims_open")
    ('percentunit', 'short')
    """
    if "per_10k_policies" in metric:
        return "suffix: per 10k policies"
    if "per_100m_yuan" in metric:
        return "suffix: per 100m yuan"
    for suffix, unit in (("_yuan", "prefix:¥"), ("_ratio", "percentunit"), ("_seconds", "s")):
        if metric.endswith(suffix):
            return unit
    return "short"


UNITS = {name: unit_of(i.metric) for name, i in INDICATORS.items()}
ANOMALY_ANNOTATION = "max by (indicator, org, product_line, channel) (qualmon_anomaly_score) >= 0.5"
WINDOWS = ["1m", "5m", "15m", "1h", "6h"]


def _slice(org: str = "$org", product_line: str = "*", channel: str = "*") -> str:
    return f'org="{org}", product_line="{product_line}", channel="{channel}"'


def _slice_variables() -> list[Any]:
    """Org, then the product lines seen in that org, then the channels seen in both."""
    return [
        label_variable("org", "Org"),
        label_variable("product_line", "Product line", 'qualmon_anomaly_score{org="$org"}'),
        label_variable("channel", "Channel",
                       'qualmon_anomaly_score{org="$org", product_line="$product_line"}'),
    ]  # fmt: skip


def _anomaly_annotations() -> db.AnnotationQuery:
    return (
        db.AnnotationQuery().name("Anomalies").datasource(PROM).enable(True)
        .icon_color("red").expr(ANOMALY_ANNOTATION)
    )  # fmt: skip


def overview() -> db.Dashboard:
    d = dashboard(
        "qualmon-overview", "qualmon · Quality overview",
        "Every quality indicator of the last closed bucket against its expected value and "
        "normal band, side by side for the orgs chosen (* = the whole company); anomalies as "
        "red annotations.",
        ["quality"],
    ).with_variable(label_variable("org", "Org", multi=True))  # fmt: skip
    d = d.annotation(_anomaly_annotations())
    d = d.with_panel(
        prom_table(
            "Worst anomaly score by org (0.5 and above is an anomaly)", "none",
            prom("org:qualmon_anomaly_score:max", ref="A", instant=True), w=24,
        )
    )  # fmt: skip
    for name, indicator in INDICATORS.items():
        s = _slice()
        d = d.with_panel(series(
            f"{TITLES[name]} — org $org", UNITS[name],
            prom(f"{indicator.metric}{{{s}}}", "value", "A"),
            prom(f"{band_metric(indicator.metric)}{{{s}}}", "{{bound}}", "B"),
            w=24,
        ).repeat("org").repeat_direction("h"))  # fmt: skip
    return d


def drilldown() -> db.Dashboard:
    d = dashboard(
        "qualmon-drilldown",
        "qualmon · Drill-down",
        "One indicator per row across org → product line → channel, each with its expected "
        "band, and the anomaly score of the three levels.",
        ["quality"],
    )
    for variable in _slice_variables():
        d = d.with_variable(variable)
    d = d.annotation(_anomaly_annotations())
    levels = {
        "org $org": _slice(),
        "$org · $product_line": _slice(product_line="$product_line"),
        "$org · $product_line · $channel": _slice(product_line="$product_line", channel="$channel"),
    }
    for name, indicator in INDICATORS.items():
        d = d.with_row(db.Row(TITLES[name]))
        for title, s in levels.items():
            d = d.with_panel(series(
                f"{TITLES[name]} — {title}", UNITS[name],
                prom(f"{indicator.metric}{{{s}}}", "value", "A"),
                prom(f"{band_metric(indicator.metric)}{{{s}}}", "{{bound}}", "B"),
                w=6,
            ))  # fmt: skip
        scores = [
            prom(f'qualmon_anomaly_score{{indicator="{name}", {s}}}', title, ref)
            for (title, s), ref in zip(levels.items(), "ABC", strict=True)
        ]
        d = d.with_panel(series(f"{TITLES[name]} — anomaly score", "none", *scores, w=6))
    return d


_SLICE_FILTER = """
  AND ('$org' = '*' OR {t}.org = '$org')
  AND ('$product_line' = '*' OR {t}.product_line = '$product_line')
  AND ('$channel' = '*' OR {t}.channel = '$channel')"""

# The store keeps times as epoch seconds (REAL) and bucket starts as ISO-8601 text.
RECENT_ANOMALIES = (
    """SELECT a.bucket_start::timestamptz AS "bucket", a.indicator, a.category, a.org,
  a.product_line, a.channel, a.severity, a.score, a.value, a.expected, a.lower, a.upper,
  f.verdict AS "feedback", f.note AS "feedback note", to_timestamp(f.created_at) AS "feedback at"
FROM anomalies a
LEFT JOIN anomaly_feedback f ON f.anomaly_id = a.anomaly_id
WHERE $__timeFilter(a.bucket_start::timestamptz)"""
    + _SLICE_FILTER.format(t="a")
    + "\nORDER BY a.bucket_start DESC\nLIMIT 500"
)
OPEN_INSPECTIONS = (
    """SELECT i.inspection_id, i.title, i.state, i.rule, i.org, i.product_line, i.channel,
  i.indicator, to_timestamp(i.opened_at) AS "opened",
  (SELECT count(*) FROM measures m WHERE m.inspection_id = i.inspection_id
     AND m.state <> 'done') AS "open measures"
FROM inspections i
WHERE i.state <> 'closed'"""
    + _SLICE_FILTER.format(t="i")
    + "\nORDER BY i.opened_at"
)
OVERDUE_MEASURES = (
    """SELECT m.measure_id, m.inspection_id, i.title AS "inspection", m.title AS "measure",
  m.department, m.owner, to_timestamp(m.deadline) AS "deadline",
  now() - to_timestamp(m.deadline) AS "overdue by", m.state
FROM measures m
JOIN inspections i ON i.inspection_id = m.inspection_id
WHERE m.state <> 'done' AND m.deadline < extract(epoch FROM now())"""
    + _SLICE_FILTER.format(t="i")
    + "\nORDER BY m.deadline"
)


def anomalies_and_inspections() -> db.Dashboard:
    d = dashboard(
        "qualmon-inspections", "qualmon · Anomalies and inspections",
        "History from the qualmon store (PostgreSQL): open special inspections, overdue "
        "improvement measures, and recent anomalies with the feedback given on them.",
        ["quality", "inspections"],
    )  # fmt: skip
    for variable in _slice_variables():
        d = d.with_variable(variable)
    d = d.with_variable(custom_variable("window", "Window", WINDOWS, "1h"))
    return (
        d.with_panel(series(
            "Anomalies detected by indicator and severity", "short",
            prom("sum by (indicator, severity) (increase(qualmon_anomalies_total[$window]))",
                 "{{indicator}} {{severity}}"),
            w=24,
        ))
        .with_panel(sql_table("Open special inspections", OPEN_INSPECTIONS))
        .with_panel(sql_table("Overdue improvement measures", OVERDUE_MEASURES))
        .with_panel(sql_table("Recent anomalies with feedback", RECENT_ANOMALIES))
    )  # fmt: skip


#: What bucket closes are read over. A bucket closes once a day by default, so a rate window
#: of minutes holds no close most of the day and the panels would be empty; a day always holds
#: one (deploy/prometheus/rules/pipeline.yml widens its alerts' window for the same reason).
CLOSES_WINDOW = "1d"


def _quantiles(histogram: str) -> list[Any]:
    """p50 and p90 of a histogram's observations over the last day."""
    return [
        prom(f"histogram_quantile({q}, sum by (le) "
             f"(increase({histogram}_bucket[{CLOSES_WINDOW}])))", f"p{int(q * 100)}", ref)
        for q, ref in ((0.5, "A"), (0.9, "B"))
    ]  # fmt: skip


def pipeline_health() -> db.Dashboard:
    d = dashboard(
        "qualmon-pipeline", "qualmon · Pipeline health",
        "Is every event read, counted and scored in time? Events by type and outcome, dead "
        "letters, late events, consumer lag, bucket-close delay and detector time.",
        ["pipeline"],
    ).with_variable(custom_variable("window", "Rate window", WINDOWS, "5m"))  # fmt: skip
    events = "qualmon_events_total"
    by_type = "sum by (event_type, outcome) (rate(qualmon_events_total[$window]))"
    late = 'sum by (event_type) (rate(qualmon_events_total{outcome="late"}[$window]))'
    return (
        d.with_panel(single("Events/s accepted", "ops",
                            prom(f'sum(rate({events}{{outcome="accepted"}}[$window]))')))
        .with_panel(single("Consumer lag", "short", prom("sum(qualmon_consumer_lag_records)")))
        .with_panel(single("Partitions owned", "short",
                           prom("sum(qualmon_worker_assigned_partitions)")))
        .with_panel(single("Workers closing buckets (one expected)", "short",
                           prom("sum(qualmon_worker_closing)")))
        .with_panel(single("Event-time watermark behind now", "s",
                           prom("time() - max(qualmon_watermark_timestamp_seconds)")))
        .with_panel(series("Events/s by type and outcome", "ops",
                           prom(by_type, "{{event_type}} {{outcome}}")))
        .with_panel(series("Events/s posted over HTTP by outcome", "ops",
                           prom("sum by (outcome) (rate(qualmon_http_events_total[$window]))",
                                "{{outcome}}")))
        .with_panel(series("Dead letters/s by reason", "ops",
                           prom("sum by (reason) (rate(qualmon_dlq_messages_total[$window]))",
                                "{{reason}}")))
        .with_panel(series("Late events/s by type", "ops", prom(late, "{{event_type}}"),
                           prom("sum(rate(qualmon_partial_events_late_total[$window]))",
                                "found late when merged", "B")))
        .with_panel(series("Consumer lag by partition", "short",
                           prom("sum by (instance, partition) (qualmon_consumer_lag_records)",
                                "{{instance}} p{{partition}}")))
        .with_panel(series("Bucket-close delay (closed → published and stored), last day", "s",
                           *_quantiles("qualmon_bucket_close_seconds")))
        .with_panel(series("Detector time per closed bucket, last day", "s",
                           *_quantiles("qualmon_detector_seconds")))
        .with_panel(series("Buckets closed in the last day and series watched", "short",
                           prom(f"sum(increase(qualmon_buckets_closed_total[{CLOSES_WINDOW}]))",
                                "buckets closed"),
                           prom("sum(qualmon_series_watched)", "series", "B")))
    )  # fmt: skip


DASHBOARDS = {
    "quality-overview": overview,
    "drill-down": drilldown,
    "anomalies-and-inspections": anomalies_and_inspections,
    "pipeline-health": pipeline_health,
}


def render(name: str) -> str:
    """One dashboard as the JSON text its file must hold."""
    model = DASHBOARDS[name]().build()
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name in DASHBOARDS:
        (OUT / f"{name}.json").write_text(render(name))
        print(f"wrote {OUT / f'{name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
