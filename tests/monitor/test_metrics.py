"""Metrics: a gauge in base units per indicator and its band, bounded windows, children
created up front."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from monitor.metrics import Metrics
from streams.fields import FIELD, new_accumulator
from streams.indicators import INDICATORS, SIGNALS


def test_every_indicator_has_a_bucket_gauge_and_a_window_gauge() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    names = {m.name for m in registry.collect()}
    for indicator in INDICATORS.values():
        assert indicator.metric in names
        assert indicator.metric.replace("qualmon_indicator_", "qualmon_window_") in names
    # Anomaly, category and feedback children exist before anything happened.
    sample = registry.get_sample_value
    for name in ("compliance_rate", *SIGNALS):
        assert sample("qualmon_anomalies_total", {"indicator": name, "severity": "major"}) == 0
    for category in ("business", "concentration", "data_quality"):
        assert sample("qualmon_anomalies_by_category_total", {"category": category}) == 0
    assert sample("qualmon_anomaly_feedback_total", {"verdict": "expected"}) == 0
    assert metrics.window_gauge.keys() == INDICATORS.keys()


def test_compliance_rate_exports_its_wilson_interval() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    key = ("4403", "*", "*")
    metrics.reading("compliance_rate", key, 0.9, 50.0, 0.0)
    metrics.interval(key, 45.0, 50.0)
    labels = {"org": "4403", "product_line": "*", "channel": "*"}
    sample = registry.get_sample_value
    # 45 of 50: Wilson 95 % interval 0.7864 - 0.9565 (see streams.readers)
    lower = sample("qualmon_indicator_compliance_interval_ratio", {"bound": "lower", **labels})
    upper = sample("qualmon_indicator_compliance_interval_ratio", {"bound": "upper", **labels})
    assert (round(lower, 4), round(upper, 4)) == (0.7864, 0.9565)


def test_window_gauges_for_single_dimension_slices_in_base_units() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_series=3)
    sums = new_accumulator()
    sums[FIELD["claims_closed"]], sums[FIELD["settlement_days_sum"]] = 4.0, 10.0
    sums[FIELD["calls"]], sums[FIELD["calls_answered"]] = 10.0, 9.0
    metrics.windows([
        (("4403", "*", "*"), "30d", sums),
        (("4403", "life", "*"), "30d", sums),  # two dimensions: API only
        (("*", "*", "*"), "bucket", sums),  # the bucket has its own gauges
        (("*", "*", "*"), "mtd", sums),
        (("*", "life", "*"), "qtd", sums),
        (("*", "*", "BANCA"), "7d", sums),  # past max_series
    ])  # fmt: skip
    sample = registry.get_sample_value
    labels = {"window": "30d", "org": "4403", "product_line": "*", "channel": "*"}
    # 10 days / 4 claims = 2.5 days = 216,000 s
    assert sample("qualmon_window_claim_settlement_seconds", labels) == 216_000.0
    assert sample("qualmon_window_hotline_answer_ratio", labels) == 0.9
    assert sample("qualmon_window_hotline_answer_ratio", {**labels, "product_line": "life"}) is None
    assert sample("qualmon_window_hotline_answer_ratio",
                  {**labels, "org": "*", "window": "mtd"}) == 0.9  # fmt: skip
    assert sample("qualmon_window_hotline_answer_ratio",
                  {**labels, "org": "*", "channel": "BANCA", "window": "7d"}) is None  # fmt: skip
    assert sample("qualmon_metric_series_not_exported_total") == 1


SLICE = {"org": "4403", "product_line": "*", "channel": "*"}


def test_band_is_exported_in_the_gauges_base_unit() -> None:
    registry = CollectorRegistry()
    Metrics(registry).reading(
        "claim_settlement_days_mean", ("4403", "*", "*"), 2.0, 10, 0.1, band=(1.0, 2.5, 4.0)
    )
    sample = registry.get_sample_value
    assert sample("qualmon_indicator_claim_settlement_seconds", SLICE) == 2 * 86400
    band = "qualmon_indicator_band_claim_settlement_seconds"
    assert [sample(band, {**SLICE, "bound": b}) for b in ("lower", "expected", "upper")] == [
        86400.0, 2.5 * 86400, 4 * 86400,
    ]  # fmt: skip


def test_band_stops_at_the_series_cap_with_its_reading() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_series=1)
    metrics.reading("loss_ratio", ("4403", "*", "*"), 0.5, 40, 0.0, band=(0.4, 0.5, 0.6))
    metrics.reading("loss_ratio", ("4404", "*", "*"), 0.5, 40, 0.0, band=(0.4, 0.5, 0.6))
    other = {**SLICE, "org": "4404", "bound": "expected"}
    assert registry.get_sample_value("qualmon_indicator_band_loss_ratio", other) is None
    assert registry.get_sample_value("qualmon_metric_series_not_exported_total") == 1


def test_consumer_lag_child_can_be_removed_when_a_partition_is_revoked() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.consumer_lag.labels("3").set(42)
    assert registry.get_sample_value("qualmon_consumer_lag_records", {"partition": "3"}) == 42
    metrics.consumer_lag.remove("3")
    assert registry.get_sample_value("qualmon_consumer_lag_records", {"partition": "3"}) is None


def test_a_worker_that_stops_closing_drops_the_series_only_the_closer_exports() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    key = ("4403", "*", "*")
    metrics.closing.set(1)
    metrics.reading("hotline_answer_rate", key, 0.9, 20, 0.1, (0.8, 0.9, 1.0))
    metrics.events.labels("call.completed", "accepted").inc(5)
    labels = dict(zip(("org", "product_line", "channel"), key, strict=True))
    sample = registry.get_sample_value
    assert sample("qualmon_indicator_hotline_answer_ratio", labels) == 0.9
    metrics.stop_closing()
    assert sample("qualmon_indicator_hotline_answer_ratio", labels) is None
    assert sample("qualmon_anomaly_score", {"indicator": "hotline_answer_rate", **labels}) is None
    assert sample("qualmon_alerts_firing", {"kind": "anomaly", "indicator": "loss_ratio",
                                            "severity": "major"}) is None  # fmt: skip
    assert sample("qualmon_worker_closing") == 0
    # What the worker itself read stays: summed over workers it counts each event once.
    labels_events = {"event_type": "call.completed", "outcome": "accepted"}
    assert sample("qualmon_events_total", labels_events) == 5
    # Closing again later exports afresh.
    metrics.reading("hotline_answer_rate", key, 0.8, 20, 0.1)
    assert sample("qualmon_indicator_hotline_answer_ratio", labels) == 0.8


def test_orgs_deeper_than_the_configured_depth_get_no_gauges() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, orgs_depth=2)
    metrics.org_depths = {"00": 1, "44": 2, "4403": 3}
    sums = new_accumulator()
    sums[FIELD["calls"]], sums[FIELD["calls_answered"]] = 10, 9
    for org in ("*", "00", "44", "4403", "_other"):
        metrics.reading("hotline_answer_rate", (org, "*", "*"), 0.9, 10, 0.1)
        metrics.windows([((org, "*", "*"), "day", sums)])
    metrics.reading("hotline_answer_rate", ("4403", "life", "BANCA"), 0.9, 10, 0.1)
    sample = registry.get_sample_value
    gauge = "qualmon_indicator_hotline_answer_ratio"
    orgs = ("*", "00", "44", "4403", "_other")
    slices = [{"org": org, "product_line": "*", "channel": "*"} for org in orgs]
    exported = {s["org"] for s in slices if sample(gauge, s) is not None}
    assert exported == {"*", "00", "44", "_other"}  # _other: the fold, of no one depth
    labels = {"window": "day", "org": "4403", "product_line": "*", "channel": "*"}
    assert sample("qualmon_window_hotline_answer_ratio", labels) is None
    assert sample("qualmon_window_hotline_answer_ratio", {**labels, "org": "44"}) == 0.9
    combination = {"org": "4403", "product_line": "life", "channel": "BANCA"}
    assert (
        sample("qualmon_anomaly_score", {"indicator": "hotline_answer_rate", **combination}) is None
    )
    assert sample("qualmon_metric_series_not_exported_total") == 0


def test_the_process_memory_the_sizing_guide_watches_is_exported() -> None:
    # docs/operations.md sizes workers by process_resident_memory_bytes; the service builds its
    # metrics on a registry of its own, which exports no process metrics unless asked to.
    registry = CollectorRegistry()
    Metrics(registry)
    assert (registry.get_sample_value("process_resident_memory_bytes") or 0) > 0
    assert registry.get_sample_value("process_cpu_seconds_total") is not None
