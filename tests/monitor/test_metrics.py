"""Metrics declared in one place: the expected band keeps its indicator's unit and cap."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from monitor.metrics import Metrics

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
