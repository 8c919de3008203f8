"""The alert engine on a real store (SQLite, and PostgreSQL when reachable): grouping, dedup,
resolution, flapping, silences and acknowledgement, read off the alerts and the outbox."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from alerting.engine import AlertEngine, epoch
from monitor.metrics import Metrics
from monitor.settings import Settings
from monitor.store import Store
from streams.windows import iso
from tests.alerting.helpers import (
    COMPLAINTS,
    DAY,
    SURRENDERS,
    T0,
    Clock,
    anomaly,
    reading,
    universal,
)

PATHS = ["00", "00/44", "00/44/4403", "00/44/4401", "00/31", "00/31/3101"]


def engine_for(store: Store, tmp_path: Path, **overrides: object) -> tuple[AlertEngine, Clock]:
    settings = Settings(
        data_dir=tmp_path,
        alertmanager_url="http://127.0.0.1:9",
        webhook_urls={"44": ("http://127.0.0.1:9/gd",), "*": ("http://127.0.0.1:9/hq",)},
        webhook_secret="0123456789abcdef",
        alert_cooldown_seconds=2 * DAY,
        **overrides,
    )
    clock = Clock()
    engine = AlertEngine(store, settings, Metrics(CollectorRegistry()), clock)
    engine.orgs.learn(PATHS)
    return engine, clock


def people(store: Store, alert_id: str | None = None) -> list[tuple[str, str]]:
    """(receiver, event) of every notification meant for a person, in queue order."""
    return [
        (n["receiver"], n["event"])
        for n in store.notifications(alert_id=alert_id)
        if not n["receiver"].startswith("topic")
    ]


def test_a_wave_and_its_roll_ups_make_one_alert_and_one_page(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest(
        [
            anomaly(10, "44", "*", "*", score=0.55, severity="minor", value=8.0),
            anomaly(10),
            anomaly(10, "4403", "*", "*", value=12.0),
        ]
    )
    engine.ingest([anomaly(11, value=31.0), anomaly(11, "4403", "life", "*", value=14.0)])
    engine.ingest([anomaly(12, "4403", "life", "*", value=15.0)])
    (alert,) = store.alerts()[0]
    assert (alert["org"], alert["product_line"], alert["channel"]) == ("4403", "life", "BANCA")
    # The value shown is the named slice's latest, not a roll-up's that joined after it.
    assert (alert["value"], alert["last_bucket"]) == (31.0, epoch(anomaly(12)["bucket_start"]))
    assert alert["anomalies"] == 6 and alert["state"] == "firing"
    assert alert["severity"] == "critical"  # major, key indicator
    assert alert["org_path"] == "00/44/4403"
    # Nearest org with receivers up the tree is 44; the head office's hook is not paged.
    assert people(store) == [
        ("alertmanager", "opened"),
        ("webhook:http://127.0.0.1:9/gd", "opened"),
    ]
    topic = [orjson.loads(n["body"])["event"] for n in store.notifications(receiver="topic")]
    assert topic == ["opened", "updated", "updated", "updated", "updated", "updated"]


def test_a_redelivered_anomaly_changes_nothing(store: Store, tmp_path: Path) -> None:
    engine, clock = engine_for(store, tmp_path)
    engine.ingest([anomaly(10)])
    before = (store.alerts()[0], store.notifications(), store.inspections()[0])
    clock.now += 60
    engine.ingest([anomaly(10)])  # the worker re-scored the bucket after a restart
    assert (store.alerts()[0], store.notifications(), store.inspections()[0]) == before
    assert store.count("inspections") == 1


def test_back_to_normal_resolves_and_a_quick_return_is_a_flap(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path, alert_flap_limit=2)
    engine.ingest([anomaly(10)])
    store.add_readings([reading(11)])  # readings reach the store before the engine sees them
    engine.ingest([], [reading(11)])
    (alert,) = store.alerts()[0]
    assert alert["state"] == "resolved"
    engine.ingest([anomaly(12)])  # within the 2-day cooldown: the same alert fires again
    (alert,) = store.alerts()[0]
    assert (alert["state"], alert["flaps"], alert["flapping"]) == ("firing", 1, 0)
    store.add_readings([reading(13)])
    engine.ingest([anomaly(14)], [reading(13)])  # resolved on day 13, back on 14: a 2nd flap
    (alert,) = store.alerts()[0]
    assert (alert["flaps"], alert["flapping"]) == (2, 1)
    assert [e for r, e in people(store) if r == "alertmanager"] == [
        "opened", "resolved", "refired", "resolved",
    ]  # fmt: skip  # the 2nd re-fire, flapping, pages nobody
    store.add_readings([reading(15)])
    engine.ingest([anomaly(30)], [reading(15)])  # resolved, then long after the cooldown: new
    assert store.alerts(state="resolved")[0][0]["alert_id"] == alert["alert_id"]
    assert store.alerts(state="firing")[0][0]["alert_id"] != alert["alert_id"]


def hours_of(day: int, indicator: str = "hotline_answer_rate") -> list[tuple]:
    """A day's 24 hourly readings, none alarming (a small branch's few calls an hour)."""
    r = reading(day, indicator=indicator)
    return [(*r[:4], r[4] + h * 3600, *r[5:]) for h in range(24)]


def test_a_day_judged_whole_beside_hourly_buckets_is_over_when_the_next_day_is(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path, bucket_seconds=3600)
    day_10, day_11 = hours_of(10), hours_of(11)
    store.add_readings(day_10 + day_11)
    # The day's verdict comes with its last hour; none of its hours alarmed alone.
    engine.ingest([anomaly(10, indicator="hotline_answer_rate")], day_10)
    assert store.alerts()[0][0]["state"] == "firing"
    engine.ingest([], day_11[:-1])  # the next day's hours say nothing either
    assert store.alerts()[0][0]["state"] == "firing"
    engine.ingest([], day_11[-1:])  # the next day is over, judged whole, and raised nothing
    assert store.alerts()[0][0]["state"] == "resolved"


def test_a_day_judged_anomalous_again_keeps_its_alert_firing(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path, bucket_seconds=3600)
    for day in (10, 11):
        hours = hours_of(day)
        store.add_readings(hours)
        engine.ingest([anomaly(day, indicator="hotline_answer_rate")], hours)
    (alert,) = store.alerts()[0]
    assert (alert["state"], alert["anomalies"], alert["flaps"]) == ("firing", 2, 0)
    hours = hours_of(12)
    store.add_readings(hours)
    engine.ingest([], hours)
    assert store.alerts()[0][0]["state"] == "resolved"


def test_a_day_and_its_last_hour_both_anomalous_show_the_days_reading(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path, bucket_seconds=3600)
    day = anomaly(10, indicator="hotline_answer_rate", value=0.55)
    last_hour = anomaly(10, indicator="hotline_answer_rate", value=0.2)
    last_hour.update(
        anomaly_id="last-hour", bucket_seconds=3600,
        bucket_start=iso(epoch(day["bucket_start"]) + 23 * 3600),
    )  # fmt: skip
    engine.ingest([day, last_hour])  # one checkpoint: the day is judged as its last hour ends
    (alert,) = store.alerts()[0]
    assert (alert["value"], alert["anomaly_id"], alert["anomalies"]) == (0.55, day["anomaly_id"], 2)


HOTLINE = "hotline_answer_rate"
#: A branch's hotline down for a day: each of its lines and channels, a cross-cut (one channel
#: across its lines), and roll-ups up to the company's life line.
OUTAGE = [
    anomaly(10, "3101", "health", "AGENCY", indicator=HOTLINE),
    anomaly(10, "3101", "life", "*", indicator=HOTLINE),
    anomaly(10, "3101", "accident", "*", indicator=HOTLINE),
    anomaly(10, "3101", "*", "BANCA", indicator=HOTLINE),
    anomaly(10, "3101", "*", "*", indicator=HOTLINE, value=0.4),
    anomaly(10, "31", "*", "*", indicator=HOTLINE),
    anomaly(10, "*", "life", "*", indicator=HOTLINE),
]


@pytest.mark.parametrize("order", [1, -1], ids=["narrowest-first", "widest-first"])
def test_a_problem_across_a_branchs_lines_names_the_branch(
    store: Store, tmp_path: Path, order: int
) -> None:
    engine, _ = engine_for(store, tmp_path)
    for a in OUTAGE[::order]:  # one checkpoint per anomaly, in either order
        store.save_checkpoint("w", b"s", anomalies=[a])
        engine.ingest([a])
    (alert,) = store.alerts()[0]
    # Disjoint slices of 3101 widen the name to 3101; the cross-cut (BANCA) and the roll-ups,
    # the company's life line among them, join without widening it further.
    assert (alert["org_path"], alert["product_line"], alert["channel"]) == ("00/31/3101", "*", "*")
    assert alert["summary"] == f"{HOTLINE} is anomalous in org 3101"
    assert (alert["value"], alert["anomalies"]) == (0.4, len(OUTAGE))


def test_a_cross_cut_does_not_widen_the_name(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    # The company's BANCA channel is anomalous because of the branch's life line, not beside it.
    engine.ingest([anomaly(10, "4403", "life", "*"), anomaly(10, "*", "*", "BANCA")])
    (alert,) = store.alerts()[0]
    assert (alert["org"], alert["product_line"], alert["channel"]) == ("4403", "life", "*")


def test_a_name_widened_over_a_branch_takes_no_problem_it_has_no_part_in(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest(
        [
            anomaly(10, "3101", "health", "*", indicator=HOTLINE),
            anomaly(10, "3101", "accident", "*", indicator=HOTLINE),
        ]
    )
    # The company's life line overlaps the name (org 3101, every line) but none of the slices
    # that are anomalous in 3101: its own alert, which a branch's life line then names.
    engine.ingest([anomaly(11, "*", "life", "*", indicator=HOTLINE)])
    engine.ingest([anomaly(12, "4403", "life", "BANCA", indicator=HOTLINE)])
    alerts, _ = store.alerts()
    assert sorted(
        (a["org_path"], a["product_line"], a["channel"], a["anomalies"]) for a in alerts
    ) == [
        ("00/31/3101", "*", "*", 2),
        ("00/44/4403", "life", "BANCA", 2),
    ]


def test_the_companys_lines_never_widen_to_the_company(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest(
        [
            anomaly(10, "*", "life", "*", indicator=HOTLINE),
            anomaly(10, "*", "health", "*", indicator=HOTLINE),
        ]
    )
    engine.ingest([anomaly(11, "4403", "accident", "BANCA", indicator=HOTLINE)])
    alerts, _ = store.alerts()
    assert sorted((a["org"], a["product_line"], a["channel"]) for a in alerts) == [
        ("*", "health", "*"),
        ("*", "life", "*"),
        ("4403", "accident", "BANCA"),
    ]


@pytest.mark.parametrize("org", ["*", "44"])
def test_a_problem_is_not_hidden_under_an_alert_that_moved_elsewhere(
    store: Store, tmp_path: Path, org: str
) -> None:
    # The company's (or the region's) life line opens an alert, which its branch's life line
    # then names; the same org's health line is another problem, not a member out of sight.
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, org, "life", "*", indicator=HOTLINE)])
    engine.ingest([anomaly(10, "4403", "life", "BANCA", indicator=HOTLINE)])
    engine.ingest([anomaly(11, org, "health", "*", indicator=HOTLINE)])
    alerts, _ = store.alerts()
    assert {(a["org"], a["product_line"], a["channel"], a["anomalies"]) for a in alerts} == {
        ("4403", "life", "BANCA", 2),
        (org, "health", "*", 1),
    }


@pytest.mark.parametrize(
    ("counts", "named"),
    [
        # A rate cut: every branch surrenders far more; without either region the rest of the
        # company is still far above its usual.
        ({"4403": (30, 3), "4401": (20, 3), "3101": (40, 4)}, "*"),
        # One branch mis-sells: the company's line is its roll-up.
        ({"4403": (80, 3), "4401": (3, 3), "3101": (7, 4)}, "4403"),
    ],
)
def test_a_company_wide_incident_is_one_alert_named_after_the_company(
    store: Store, tmp_path: Path, counts: dict[str, tuple[float, float]], named: str
) -> None:
    engine, _ = engine_for(store, tmp_path)
    anomalies, readings = universal(10, counts)
    engine.ingest(anomalies, readings)
    (alert,) = store.alerts()[0]
    assert (alert["org"], alert["product_line"], alert["channel"]) == (named, "universal", "*")
    assert alert["anomalies"] == len(anomalies)
    assert alert["severity"] == "critical" if named == "*" else "major"


def test_a_branch_alert_becomes_company_wide_when_the_company_is_anomalous_beyond_it(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest(*universal(10, {"4403": (30, 3), "4401": (3, 3), "3101": (4, 4)}))
    assert store.alerts()[0][0]["org"] == "4403"  # one branch: the company is its roll-up
    # The next day every branch surrenders: the branch's alert is the company's now, and the
    # other branches join it rather than paging on their own.
    engine.ingest(*universal(11, {"4403": (30, 3), "4401": (20, 3), "3101": (40, 4)}))
    (alert,) = store.alerts()[0]
    assert (alert["org"], alert["product_line"], alert["anomalies"]) == ("*", "universal", 6)
    (inspection,) = store.inspections()[0]
    assert (inspection["org"], inspection["product_line"]) == ("*", "universal")


def names(store: Store, **filters: str) -> set[tuple[str, str, str]]:
    return {(a["org"], a["product_line"], a["channel"]) for a in store.alerts(**filters)[0]}


EVERYWHERE = {"4403": (30, 3), "4401": (20, 3), "3101": (40, 4)}


def test_branch_alerts_already_firing_give_their_new_anomalies_to_the_companys(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    # Two branches of one province: the province carries the excess, two branch alerts.
    engine.ingest(*universal(10, {"4403": (30, 3), "4401": (20, 3), "3101": (4, 4)}))
    assert names(store) == {("4403", "universal", "*"), ("4401", "universal", "*")}
    engine.ingest(*universal(11, EVERYWHERE))
    alerts = {a["org"]: a for a in store.alerts()[0]}
    # The first became the company's; the second takes no more anomalies (it resolves when
    # its slice is normal again): 4401's next anomaly joined the company-wide alert.
    assert set(alerts) == {"*", "4401"}
    assert (alerts["*"]["anomalies"], alerts["4401"]["anomalies"]) == (6, 1)


def test_a_broad_slice_does_not_hide_another_problem_of_the_alert_it_meets(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    # 4403's life and universal lines: one alert, named the branch.
    life = anomaly(10, "4403", "life", "*", indicator=SURRENDERS, k=40, value=40, expected=3)
    anomalies, readings = universal(10, {"4403": (30, 3), "4401": (3, 3), "3101": (4, 4)})
    engine.ingest([life, *anomalies], readings)
    assert names(store) == {("4403", "*", "*")}
    # The universal line turns company-wide: an alert of its own, the branch's stays.
    engine.ingest(*universal(11, EVERYWHERE))
    assert names(store) == {("4403", "*", "*"), ("*", "universal", "*")}


def test_a_broad_slice_does_not_take_over_the_companys_channel_alert(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(9, "*", "*", "BANCA", indicator=SURRENDERS, k=60, value=60)])
    engine.ingest(*universal(10, EVERYWHERE))
    assert names(store) == {("*", "*", "BANCA"), ("*", "universal", "*")}


def test_a_company_slice_is_broad_by_its_latest_anomaly(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest(*universal(10, EVERYWHERE))
    engine.ingest(*universal(11, EVERYWHERE))  # still company-wide, checkpoints apart
    assert names(store, state="firing") == {("*", "universal", "*")}
    # The rate cut is over; one branch now mis-sells, and the company's line is its roll-up:
    # the alert is named after that branch, the one anomalous now.
    engine.ingest(*universal(12, {"4403": (3, 3), "4401": (3, 3), "3101": (90, 4)}))
    assert names(store, state="firing") == {("3101", "universal", "*")}


def test_a_company_anomaly_not_judged_leaves_the_incident_company_wide(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest(*universal(10, EVERYWHERE))
    engine.ingest(universal(11, EVERYWHERE)[0])  # no branch readings at hand: not judged
    assert names(store, state="firing") == {("*", "universal", "*")}
    (inspection,) = store.inspections()[0]
    assert inspection["org"] == "*"


def test_a_late_anomaly_does_not_override_a_later_buckets_verdict(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest(*universal(10, EVERYWHERE))
    engine.ingest(*universal(11, EVERYWHERE))
    # Day 9's company line, late and judged a roll-up, then another ingest reading the
    # members back from the store: day 11's verdict stands in both.
    engine.ingest(*universal(9, {"4403": (60, 3), "4401": (3, 3), "3101": (4, 4)}))
    assert names(store, state="firing") == {("*", "universal", "*")}
    engine.ingest([anomaly(8, "4401", "universal", "*", indicator=SURRENDERS, value=20)])
    assert names(store, state="firing") == {("*", "universal", "*")}


def test_a_day_judged_whole_leaves_its_last_hours_verdict(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path, bucket_seconds=3600)
    hour = T0 + 10 * DAY + 23 * 3600
    found, readings = universal(10, EVERYWHERE)
    hourly = [
        a | {"bucket_start": iso(hour), "bucket_seconds": 3600, "anomaly_id": f"h-{a['org']}"}
        for a in found
    ]
    day = anomaly(10, "*", "universal", "*", indicator=SURRENDERS, k=900, value=900, expected=99)
    engine.ingest([*hourly, day], [(*r[:4], hour, *r[5:]) for r in readings])
    assert names(store, state="firing") == {("*", "universal", "*")}


def test_a_company_wide_incident_back_within_the_cooldown_fires_its_alert_again(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest(*universal(10, {"4403": (30, 3), "4401": (3, 3), "3101": (4, 4)}))
    engine.ingest(*universal(11, EVERYWHERE))  # 4403's alert became the company's
    normal = [
        (SURRENDERS, org, "universal", "*", T0 + 12 * DAY, 3.0, 3.0, 0.0, 0.1, 3.0, 0.0, 6.0)
        for org in ("*", "4403", "4401", "3101")
    ]
    store.add_readings(normal)
    engine.ingest([], normal)
    assert names(store, state="firing") == set()
    engine.ingest(*universal(13, EVERYWHERE))
    assert [(a["org"], a["flaps"]) for a in store.alerts()[0]] == [("*", 1)]


def test_an_alert_named_after_a_branch_again_fires_again_when_the_branch_relapses(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    one_branch = {"4403": (3, 3), "4401": (3, 3), "3101": (90, 4)}
    engine.ingest(*universal(10, EVERYWHERE))  # company-wide: the company's group
    engine.ingest(*universal(11, one_branch))  # only 3101 now: named, and grouped, 3101
    normal = [
        (SURRENDERS, org, "universal", "*", T0 + 12 * DAY, 3.0, 3.0, 0.0, 0.1, 3.0, 0.0, 6.0)
        for org in ("*", "4403", "4401", "3101")
    ]
    store.add_readings(normal)
    engine.ingest([], normal)
    engine.ingest(*universal(13, one_branch))  # 3101 again, within the cooldown: a flap
    assert [(a["org"], a["flaps"]) for a in store.alerts()[0]] == [("3101", 1)]


def test_a_branch_inspection_holding_more_follows_its_alert_company_wide(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest(*universal(10, {"4403": (30, 3), "4401": (3, 3), "3101": (4, 4)}))
    # 4403's surrender inspection takes its cooling-off alert too (the same matter).
    engine.ingest([anomaly(10, "4403", "universal", "BANCA", indicator="cooling_off_cancel_rate")])
    engine.ingest(*universal(11, EVERYWHERE))
    (alert,) = store.alerts(indicator=SURRENDERS)[0]
    inspection = store.inspection(alert["inspection_id"])
    assert inspection is not None
    assert (alert["org"], inspection["org"], inspection["product_line"]) == ("*", "*", "universal")
    assert len(store.inspection_alert_ids(inspection["inspection_id"])) == 2


def test_premium_receipts_falling_to_none_everywhere_are_one_alert(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    premium, expected = "premium_income", {"4403": 30.0, "4401": 20.0, "3101": 40.0, "*": 90.0}
    found = [
        anomaly(10, org, "universal", "*", indicator=premium, k=0, value=0.0, expected=e * 1.5e4)
        | {"detail": {"expected_count": e}}
        for org, e in expected.items()
    ]
    readings = [
        (
            premium,
            a["org"],
            "universal",
            "*",
            T0 + 10 * DAY,
            0.0,
            0.0,
            0.0,
            0.9,
            a["expected"],
            0,
            0,
        )
        for a in found
    ]
    engine.ingest(found, readings)
    assert names(store) == {("*", "universal", "*")}


def test_a_company_wide_incident_caught_up_after_a_crash_is_one_alert(
    store: Store, tmp_path: Path
) -> None:
    anomalies, readings = universal(10, EVERYWHERE)
    store.save_checkpoint("w", b"s", readings=readings, anomalies=anomalies)  # then died
    engine, _ = engine_for(store, tmp_path)
    engine.catch_up(since=time.time() - 3600)
    assert names(store) == {("*", "universal", "*")}


def test_a_company_wide_incident_is_not_filed_under_one_branchs_inspection(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    # A branch's cooling-off cancellations (mis-selling, the same matter) opened an inspection.
    engine.ingest([anomaly(9, "4401", "universal", "BANCA", indicator="cooling_off_cancel_rate")])
    engine.ingest(*universal(10, EVERYWHERE))
    (alert,) = store.alerts(indicator=SURRENDERS)[0]
    inspection = store.inspection(alert["inspection_id"])
    assert inspection is not None
    assert (inspection["org"], inspection["product_line"], inspection["channel"]) == (
        "*",
        "universal",
        "*",
    )


def test_a_renamed_alert_shows_its_named_slices_reading_raised_by_the_launch_watch(
    store: Store, tmp_path: Path
) -> None:
    watch = [{"product_line": "health", "launched": "2026-03-01", "org": "*"}]
    engine, _ = engine_for(store, tmp_path, product_watch=watch)
    first = anomaly(10, "3101", "health", "AGENCY", indicator=HOTLINE, value=0.1)
    store.save_checkpoint("w", b"s", anomalies=[first])
    # The watch raises the line's reading (score 0.4, under watch) — never stored as an anomaly.
    line = reading(10, "3101", "health", "*", indicator=HOTLINE, score=0.4, value=0.5)
    engine.ingest([first], [line])
    second = anomaly(10, "3101", "health", "BANCA", indicator=HOTLINE, value=0.2)
    store.save_checkpoint("w", b"s", anomalies=[second])
    engine.ingest([second])
    (alert,) = store.alerts()[0]
    assert (alert["product_line"], alert["channel"], alert["value"]) == ("health", "*", 0.5)


def test_an_alert_resolves_only_when_every_member_slice_is_normal(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10), anomaly(10, "4403", "*", "*")])
    store.add_readings([reading(11)])
    engine.ingest([], [reading(11)])
    assert store.alerts()[0][0]["state"] == "firing"  # the org's total is still unheard of
    store.add_readings([reading(11, "4403", "*", "*")])
    engine.ingest([], [reading(11, "4403", "*", "*")])
    assert store.alerts()[0][0]["state"] == "resolved"


def test_an_alert_that_fires_again_is_named_read_and_resolved_by_its_new_episode(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, value=30.0), anomaly(10, "4403", "health", "AGENCY", value=9.0)])
    assert store.alerts()[0][0]["product_line"] == "*"  # two lines of 4403: named the branch
    normal = [reading(11), reading(11, "4403", "health", "AGENCY")]
    store.add_readings(normal)
    engine.ingest([], normal)
    engine.ingest([anomaly(12, value=25.0)])  # within the cooldown, on the life line alone
    (alert,) = store.alerts()[0]
    assert (alert["state"], alert["flaps"]) == ("firing", 1)
    # The last episode's health line neither widens the name nor is shown.
    assert (alert["org"], alert["product_line"], alert["channel"]) == ("4403", "life", "BANCA")
    assert alert["value"] == 25.0
    # Nor does it hold the alert open: its last normal reading was before the refire.
    store.add_readings([reading(13)])
    engine.ingest([], [reading(13)])
    assert store.alerts()[0][0]["state"] == "resolved"


def test_an_acknowledged_alert_does_not_page_again(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, score=0.55, severity="minor", k=12)])  # major after the key step
    (alert,) = store.alerts()[0]
    assert engine.acknowledge(alert["alert_id"], "li.wei")["acknowledged_by"] == "li.wei"
    engine.ingest([anomaly(11, score=1.0, severity="critical")])  # would escalate to critical
    (alert,) = store.alerts()[0]
    assert alert["severity"] == "critical"
    assert people(store) == [
        ("alertmanager", "opened"),
        ("webhook:http://127.0.0.1:9/gd", "opened"),
        ("alertmanager:silence", "acknowledged"),  # keeps Alertmanager from repeating it
    ]
    audit = store.audit_log("alert", alert["alert_id"])
    assert [(a["action"], a["actor"], a["after"]["acknowledged_by"]) for a in audit] == [
        ("acknowledge", "li.wei", "li.wei")
    ]


def test_a_silenced_alert_notifies_nobody_but_is_recorded(store: Store, tmp_path: Path) -> None:
    engine, clock = engine_for(store, tmp_path)
    store.add_silence(
        {
            "silence_id": "s1",
            "matchers": '{"org": "4403"}',
            "starts_at": clock.now - 1,
            "ends_at": clock.now + 3600,
            "created_by": "ops",
            "comment": "known",
            "created_at": 0,
        }
    )
    engine.ingest([anomaly(10)])
    assert people(store) == []
    assert store.count("alerts") == 1 and len(store.notifications(receiver="topic")) == 1
    clock.now += 7200  # the silence ended; a different org is not matched anyway
    engine.ingest([anomaly(10, "3101", "health", "AGENCY", score=1.0, severity="critical")])
    assert [r for r, _ in people(store)] == ["alertmanager", "webhook:http://127.0.0.1:9/hq"]


def test_minor_alerts_are_recorded_but_page_nobody(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, indicator="premium_income", score=0.55, severity="minor")])
    assert store.alerts()[0][0]["severity"] == "minor"
    assert people(store) == [] and store.count("inspections") == 0


def test_sla_breaches_are_facts_and_page_whatever_their_count(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    breaches = [
        # As the watch raises them: one case past its limit, against none expected.
        anomaly(
            10,
            line=line,
            indicator=f"{kind}_sla_breach",
            score=0.75,
            k=1.0,
            value=1.0,
            expected=0.0,
            n=1.0,
        )
        for kind in ("claim", "complaint")
        for line in ("life", "health")
    ]
    engine.ingest(breaches)
    alerts = store.alerts()[0]
    # One case past its limit is a fact, not thin evidence: major, as docs/indicators.md says.
    assert sorted((a["indicator"], a["severity"]) for a in alerts) == [
        ("claim_sla_breach", "major"),
        ("complaint_sla_breach", "major"),
    ]
    assert all(a["inspection_id"] is not None for a in alerts)
    assert [e for r, e in people(store) if r == "alertmanager"] == ["opened", "opened"]
    # A statistical judgement on a few counts is still thin evidence.
    engine.ingest([anomaly(10, "3101", indicator="hotline_answer_rate", k=3.0)])
    assert store.alerts(indicator="hotline_answer_rate")[0][0]["severity"] == "minor"


def test_a_reading_far_below_its_expectation_rests_on_what_was_expected(
    store: Store, tmp_path: Path
) -> None:
    # A branch's hotline answering none of its 4,000 calls: k = 0, but no thin evidence.
    engine, _ = engine_for(store, tmp_path)
    outage = anomaly(10, "3101", "*", "*", indicator="hotline_answer_rate", k=0.0, value=0.0)
    engine.ingest([outage])
    assert store.alerts(indicator="hotline_answer_rate")[0][0]["severity"] == "major"


@pytest.mark.parametrize(("expected_count", "severity"), [(20.0, "major"), (3.0, "minor")])
def test_a_count_falling_to_none_rests_on_the_count_expected(
    store: Store, tmp_path: Path, expected_count: float, severity: str
) -> None:
    # A branch's premium receipts, 20 a day, falling to none: no thin evidence; where 3 were
    # expected, it is.
    engine, _ = engine_for(store, tmp_path)
    receipts = anomaly(
        10, "3101", "*", "*", indicator="premium_income", k=0.0, n=0.0, value=0.0, expected=5e4
    )
    receipts["detail"] = orjson.dumps({"expected_count": expected_count}).decode()
    engine.ingest([receipts])
    assert store.alerts(indicator="premium_income")[0][0]["severity"] == severity


def test_routing_to_every_ancestor_when_configured(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path, alert_routing="ancestors")
    assert engine.outbox.webhooks_for("00/44/4403") == [
        "http://127.0.0.1:9/gd",
        "http://127.0.0.1:9/hq",
    ]
    assert engine.outbox.webhooks_for("00/31/3101") == ["http://127.0.0.1:9/hq"]


@pytest.mark.parametrize("severity", ["minor", "major", "critical"])
def test_alert_state_is_exported_as_metrics(store: Store, tmp_path: Path, severity: str) -> None:
    engine, _ = engine_for(store, tmp_path)
    score = {"minor": 0.55, "major": 0.8, "critical": 1.0}[severity]
    engine.ingest([anomaly(10, indicator="hotline_answer_rate", score=score, severity=severity)])
    registry = engine.metrics.registry  # type: ignore[union-attr]
    labels = {"kind": "anomaly", "indicator": "hotline_answer_rate", "severity": severity}
    assert registry.get_sample_value("qualmon_alerts_firing", labels) == 1
    assert (
        registry.get_sample_value(
            "qualmon_alerts_opened_total", {"kind": "anomaly", "severity": severity}
        )
        == 1
    )
    assert (
        registry.get_sample_value("qualmon_alerts_firing", {**labels, "indicator": COMPLAINTS}) == 0
    )


@pytest.mark.parametrize(
    "name", ["complaints_concentration", "claim_sla_breach", "complaint_sla_breach", "feed_silence"]
)
def test_alerts_on_concentrations_sla_breaches_and_data_are_exported(
    store: Store, tmp_path: Path, name: str
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, indicator=name, score=1.0, severity="critical")])
    sample = engine.metrics.registry.get_sample_value  # type: ignore[union-attr]
    labels = {"kind": "anomaly", "indicator": name, "severity": "critical"}
    # What QualmonCriticalUnacknowledged (docs/alerting.md) subtracts: firing, none acknowledged.
    assert sample("qualmon_alerts_firing", labels) == 1
    assert sample("qualmon_alerts_acknowledged", labels) == 0
    (alert,) = store.alerts(state="firing")[0]
    engine.acknowledge(alert["alert_id"], "li.wei")
    assert sample("qualmon_alerts_acknowledged", labels) == 1


def test_anomalies_stored_before_a_crash_are_caught_up_once(store: Store, tmp_path: Path) -> None:
    engine_for(store, tmp_path)
    store.save_checkpoint("w", b"s", anomalies=[anomaly(10)])  # the worker died right after
    fresh, _ = engine_for(store, tmp_path)  # the restarted worker's engine
    assert fresh.catch_up(since=time.time() - 3600) == 3  # topic, Alertmanager, webhook
    assert fresh.catch_up(since=0) == 0
    assert store.count("alerts") == 1 and store.count("inspections") == 1


def test_a_failed_checkpoint_hook_catches_up_on_the_next(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, _ = engine_for(store, tmp_path)
    store.save_checkpoint("w", b"s", anomalies=[anomaly(10)])
    real_ingest = engine.ingest
    failures = iter([OSError("disk I/O error")])

    def flaky(*args: object, **kwargs: object) -> int:
        for failure in failures:
            raise failure
        return real_ingest(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "ingest", flaky)
    assert engine.after_checkpoint([anomaly(10)], [], PATHS) == 0  # logged, not raised
    assert store.count("alerts") == 0
    engine.after_checkpoint([], [], PATHS)  # the next checkpoint: catch-up first
    assert store.count("alerts") == 1
