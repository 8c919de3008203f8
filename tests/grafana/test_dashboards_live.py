"""Every dashboard query returns data from a real Prometheus scraping a running qualmon fed by
the simulator, every metric a dashboard reads exists on /metrics, and every recording rule
records."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until
from tests.deploy.live import feed, prometheus, query
from tests.deploy.ops_files import metric_names, rules
from tests.grafana.queries import DASHBOARDS, load, promql

pytestmark = pytest.mark.broker


def test_every_dashboard_query_returns_data_from_prometheus(service_factory, kafka_settings):
    service = service_factory().start()
    with prometheus(service.port) as prom:
        wait_until(lambda: query(prom, 'up{job="qualmon-worker"} == 1'), 30, "a first scrape")
        feed(service, kafka_settings.kafka_bootstrap or "", kafka_settings.events_topic)
        # Two scrapes after the feed, so rates over the window see the counters move.
        wait_until(
            lambda: query(prom, "qualmon_anomalies_total > 0")
            and query(prom, "count_over_time(qualmon_consumer_lag_records[1m]) >= 2"),
            30, "Prometheus to scrape the fed service",
        )  # fmt: skip

        text = service.client.get("/metrics").text
        exported = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
        empty = []
        for path in DASHBOARDS:
            for where, expr in promql(load(path)):
                missing = metric_names(expr) - exported
                assert not missing, f"{path.stem} {where} reads {missing}, not on /metrics"
                if not query(prom, expr):
                    empty.append(f"{path.stem} {where}: {expr}")
        assert not empty, "queries without data:\n" + "\n".join(empty)

        # The recording rules (loaded into this Prometheus) produce their series too.
        recorded = [r["record"] for r in rules() if "record" in r]
        assert recorded
        wait_until(lambda: all(query(prom, name) for name in recorded), 10, "recorded series")
