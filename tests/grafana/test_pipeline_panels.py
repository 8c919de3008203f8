"""The pipeline dashboard's bucket-close panels show data with daily buckets (the default), run
by the real promtool on the series a worker exports: one close a day."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy.ops_files import metric_names, run
from tests.grafana.queries import ROOT, load, promql

PIPELINE = ROOT / "grafana" / "dashboards" / "pipeline-health.json"
CLOSES = {
    "qualmon_bucket_close_seconds_bucket",
    "qualmon_detector_seconds_bucket",
    "qualmon_buckets_closed_total",
}
WORKER = 'job="qualmon-worker", instance="worker-1:8000"'


def _one_close_a_day() -> list[dict[str, str]]:
    """A worker that closed one daily bucket at 01:00 (the day's end plus the lateness), which
    took between 5 and 10 seconds to store and to score; nothing else in two days."""
    before, after = "0x4", " 1x188"  # samples every 15 minutes: 0 until 01:00, then 1
    series = [{"series": f"qualmon_buckets_closed_total{{{WORKER}}}", "values": before + after}]
    for histogram in ("qualmon_bucket_close_seconds", "qualmon_detector_seconds"):
        series += [
            {"series": f'{histogram}_bucket{{{WORKER}, le="5"}}', "values": "0x192"},
            {"series": f'{histogram}_bucket{{{WORKER}, le="10"}}', "values": before + after},
            {"series": f'{histogram}_bucket{{{WORKER}, le="+Inf"}}', "values": before + after},
        ]
    return series


def _expected(expr: str) -> float:
    quantile = re.match(r"histogram_quantile\(([\d.]+),", expr)
    # The one close lies in the bucket (5, 10]: a quantile interpolates within it.
    return 5 + 5 * float(quantile.group(1)) if quantile else 1.0


def test_bucket_close_panels_show_the_days_close_all_day(tmp_path: Path) -> None:
    queries = [(w, e) for w, e in promql(load(PIPELINE)) if metric_names(e) & CLOSES]
    assert {m for _, e in queries for m in metric_names(e)} == CLOSES
    checks = [
        {"expr": expr, "eval_time": at,
         "exp_samples": [{"labels": "{}", "value": _expected(expr)}]}
        for _, expr in queries
        for at in ("3h", "23h")  # 2 and 22 hours after the close: a day holds it either way
    ]  # fmt: skip
    path = tmp_path / "pipeline_panels_test.yml"
    path.write_text(yaml.safe_dump({
        "evaluation_interval": "1m",
        "tests": [{"interval": "15m", "input_series": _one_close_a_day(),
                   "promql_expr_test": checks}],
    }))  # fmt: skip
    run("promtool", "test", "rules", path)
