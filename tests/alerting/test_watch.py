"""New-product watch windows: a launch's first days alert from a lower score and get an
inspection covering the launch."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from alerting.engine import AlertEngine
from monitor.alert_settings import ProductWatch
from monitor.settings import Settings
from monitor.store import Store
from tests.alerting.helpers import Clock, anomaly, reading

LAUNCH = ProductWatch(product_line="health", launched=date(2026, 3, 2), org="44")


def engine_for(store: Store, tmp_path: Path) -> AlertEngine:
    settings = Settings(data_dir=tmp_path, product_watch=(LAUNCH,), product_watch_days=30)
    engine = AlertEngine(store, settings, None, Clock())
    engine.orgs.learn(["00", "00/44", "00/44/4403", "00/31", "00/31/3101"])
    return engine


def test_a_watched_launch_alerts_from_the_lower_score_and_opens_its_inspection(
    store: Store, tmp_path: Path
) -> None:
    engine = engine_for(store, tmp_path)
    readings = [
        reading(5, "4403", "health", "*", score=0.42),  # watched: 44 launched health on day 0
        reading(5, "3101", "health", "*", score=0.42),  # another province: not watched
        reading(5, "4403", "life", "*", score=0.42),  # another line: not watched
        reading(40, "4403", "health", "*", score=0.42),  # after the 30-day window
        reading(6, "4403", "health", "*", score=0.30),  # below the watch threshold
    ]
    store.add_readings(readings)
    engine.ingest([], readings)
    (alert,) = store.alerts()[0]
    assert (alert["org"], alert["product_line"], alert["severity"]) == ("4403", "health", "minor")
    assert alert["anomaly_id"].startswith("watch-")
    (inspection,) = store.inspections()[0]
    assert inspection["rule"] == "new_product"
    assert (inspection["org"], inspection["org_path"], inspection["product_line"]) == (
        "44",
        "00/44",
        "health",
    )
    assert alert["inspection_id"] == inspection["inspection_id"]
    # The next bucket scoring below the watch threshold resolves it.
    later = [reading(7, "4403", "health", "*", score=0.2)]
    store.add_readings(later)
    engine.ingest([], later)
    assert store.alert(alert["alert_id"])["state"] == "resolved"


def test_a_launch_inspection_takes_any_business_alert_on_the_launch(
    store: Store, tmp_path: Path
) -> None:
    engine = engine_for(store, tmp_path)
    readings = [reading(5, "4403", "health", "*", score=0.42)]
    store.add_readings(readings)
    engine.ingest([], readings)
    (inspection,) = store.inspections()[0]
    # Another matter on the launch (its hotline) joins it; one elsewhere does not.
    engine.ingest([anomaly(5, "4403", "health", "BANCA", indicator="hotline_answer_rate")])
    engine.ingest([anomaly(5, "4403", "life", "BANCA", indicator="csat")])
    joined = store.inspection_alert_ids(inspection["inspection_id"])
    assert {store.alert(a)["product_line"] for a in joined} == {"health"} and len(joined) == 2
    assert store.inspections()[1] == 2
