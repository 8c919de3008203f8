"""Special inspections on a real store: rules, lifecycle with its audit log, overdue measures,
and effect evaluations computed from simulated indicator history."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from alerting.engine import AlertEngine
from monitor.errors import Conflict, InsufficientData
from monitor.metrics import Metrics
from monitor.settings import Settings
from monitor.store import Store, open_store
from tests.alerting.helpers import COMPLAINTS, DAY, T0, Clock, anomaly

ORGS = ("4401", "4402", "4403", "4404", "3101", "3102")
PATHS = ["00", "00/44", "00/31", *(f"00/{o[:2]}/{o}" for o in ORGS)]
EFFECTIVE = T0 + 35 * DAY  # a Monday: the windows are four whole weeks each


def engine_for(store: Store, tmp_path: Path, **overrides: object) -> tuple[AlertEngine, Clock]:
    settings = Settings(data_dir=tmp_path, alertmanager_url="http://127.0.0.1:9", **overrides)
    clock = Clock(EFFECTIVE + 40 * DAY)
    engine = AlertEngine(store, settings, Metrics(CollectorRegistry()), clock)
    engine.orgs.learn(PATHS)
    return engine, clock


def simulate_history(store: Store, *, worked: bool, seed: int = 11) -> None:
    """Daily complaint rates of six branches for ten weeks, with weekends at half the weekday
    level and company-wide shocks; 4403 runs at 14 per 10k policies against ~5 elsewhere until
    the measure, and afterwards at 5 if it worked, still at 14 if it did not."""
    rng = random.Random(seed)
    rows = []
    for day in range(70):
        start = T0 + day * DAY
        shock = rng.gauss(0, 0.6)
        weekday = 0.5 if day % 7 in (5, 6) else 1.0
        for org in ORGS:
            level = 5.0 + (0.4 if org.startswith("31") else 0.0)
            if org == "4403" and (start < EFFECTIVE or not worked):
                level = 14.0
            value = max(0.0, level * weekday + shock + rng.gauss(0, 1.0))
            rows.append(
                (
                    COMPLAINTS,
                    org,
                    "life",
                    "BANCA",
                    start,
                    value,
                    value,
                    10_000.0,
                    0.0,
                    level,
                    0.0,
                    0.0,
                )
            )
    store.add_readings(rows)


def open_with_measure(engine: AlertEngine, target: float = 7.0) -> tuple[str, str]:
    engine.ingest([anomaly(34)])
    (inspection,) = engine.store.inspections()[0]
    measure = engine.measures.add(
        inspection["inspection_id"],
        {
            "title": "Re-train BANCA sellers on suitability",
            "department": "Bancassurance",
            "owner": "wang.fang",
            "deadline": EFFECTIVE + 14 * DAY,
            "indicator": COMPLAINTS,
            "org": "4403",
            "product_line": "life",
            "channel": "BANCA",
            "target": target,
        },
        "zhang.min",
    )
    engine.measures.update(
        inspection["inspection_id"],
        measure["measure_id"],
        {"effective_from": EFFECTIVE},
        "zhang.min",
    )
    return inspection["inspection_id"], measure["measure_id"]


def test_a_measure_that_worked_is_effective_and_closes_the_inspection(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    simulate_history(store, worked=True)
    inspection_id, measure_id = open_with_measure(engine)
    evaluation = engine.measures.evaluate(inspection_id, measure_id, "zhang.min")
    result = evaluation["body"]
    assert evaluation["verdict"] == "effective"
    assert result["controls"] == ["3101", "3102", "4401", "4402", "4404"]
    assert result["buckets_before"] == result["buckets_after"] == 28
    assert result["effect"] == pytest.approx(-9.0 * 5 / 7 - 4.5 * 2 / 7, abs=1.0)
    assert result["p_value"] < 0.001 and result["target_met"]
    assert "significant at α = 0.05" in result["statement"]
    assert store.inspection(inspection_id)["state"] == "closed"


def test_a_measure_that_did_not_work_reopens_the_inspection(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    simulate_history(store, worked=False)
    inspection_id, measure_id = open_with_measure(engine)
    evaluation = engine.measures.evaluate(inspection_id, measure_id, "zhang.min")
    assert evaluation["verdict"] == "not_effective"
    assert evaluation["body"]["p_value"] > 0.05 and not evaluation["body"]["target_met"]
    row = store.inspection(inspection_id)
    assert (row["state"], row["reopened"]) == ("reopened", 1)
    trail = [
        (e["action"], e["actor"], (e["before"] or {}).get("state"), (e["after"] or {}).get("state"))
        for e in store.audit_for_inspection(inspection_id)
        if e["entity"] == "inspection"
    ]
    assert trail == [
        ("open", "qualmon", None, "opened"),
        ("attach_alert", "qualmon", None, None),
        ("transition", "zhang.min", "opened", "investigating"),
        ("transition", "zhang.min", "investigating", "measures_set"),
        ("transition", "zhang.min", "measures_set", "evaluating"),
        ("evaluation_not_effective", "zhang.min", "evaluating", "reopened"),
    ]
    # Work starts again: a new measure moves it back to measures_set.
    engine.inspections.patch(inspection_id, {"state": "investigating"}, "zhang.min")
    assert store.inspection(inspection_id)["state"] == "investigating"


def test_an_evaluation_needs_the_after_window_to_have_passed(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path, evaluation_window_buckets=50)
    simulate_history(store, worked=True)
    inspection_id, measure_id = open_with_measure(engine)
    with pytest.raises(InsufficientData) as refused:
        engine.measures.evaluate(inspection_id, measure_id, "zhang.min")
    # Times as ISO-8601, not Unix seconds; what waiting fixes and what it does not.
    assert "35 buckets before and 35 after 2026-04-05T16:00:00+00:00" in str(refused.value)
    assert "once the after-window has passed (2026-05-25T16:00:00+00:00)" in str(refused.value)
    assert "too few readings (its first is of 2026-03-01T16:00:00+00:00)" in str(refused.value)
    assert store.inspection(inspection_id)["state"] == "measures_set"  # nothing changed
    assert store.evaluations(inspection_id) == []


def test_an_after_window_the_service_has_closed_is_not_waited_for(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path, evaluation_window_buckets=50)
    simulate_history(store, worked=True)
    # Other slices go on being closed for two months past the window; 4403's readings stopped.
    later = [
        (COMPLAINTS, "3101", "life", "BANCA", T0 + day * DAY, 5.0, 5.0, 1e4, 0.0, 5.0, 0.0, 0.0)
        for day in range(70, 130)
    ]
    store.add_readings(later)
    inspection_id, measure_id = open_with_measure(engine)
    with pytest.raises(InsufficientData) as refused:
        engine.measures.evaluate(inspection_id, measure_id, "zhang.min")
    # Only too short a history before the measure is said; no wait is advised.
    assert "evaluate once" not in str(refused.value)
    assert str(refused.value).endswith("which waiting will not change")


def test_an_evaluation_on_a_slice_without_readings_says_so(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    simulate_history(store, worked=True)
    inspection_id, _ = open_with_measure(engine)
    # The branch 44 with a channel is not a slice qualmon computes (only selling orgs are).
    measure = engine.measures.add(
        inspection_id,
        {"title": "Re-train", "department": "Bancassurance", "owner": "wang.fang",
         "deadline": EFFECTIVE + 14 * DAY, "indicator": COMPLAINTS, "org": "44",
         "product_line": "life", "channel": "BANCA", "target": 7.0},
        "zhang.min",
    )  # fmt: skip
    engine.measures.update(inspection_id, measure["measure_id"], {"effective_from": EFFECTIVE}, "z")
    with pytest.raises(InsufficientData, match="no reading at all for org 44, product line life"):
        engine.measures.evaluate(inspection_id, measure["measure_id"], "zhang.min")
    assert store.evaluations(inspection_id) == []


def test_an_open_inspection_absorbs_overlapping_alerts_and_is_opened_once(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10)])
    engine.ingest([anomaly(10)])  # redelivered
    store.add_readings(
        [(COMPLAINTS, "4403", "life", "BANCA", T0 + 11 * DAY, 2.0, 1.0, 1.0, 0.0, 2.0, 0.0, 0.0)]
    )
    engine.ingest([], [(COMPLAINTS, "4403", "life", "BANCA", T0 + 11 * DAY)])
    # Another complaint indicator on the same scope, long after: still the same inspection.
    engine.ingest(
        [anomaly(20, indicator=f"{COMPLAINTS}_regulator", score=1.0, severity="critical")]
    )
    # Another branch: a second inspection.
    engine.ingest([anomaly(20, "3101", "health", "AGENCY")])
    inspections, total = store.inspections()
    assert total == 2
    by_org = {i["org"]: i["inspection_id"] for i in inspections}
    assert len(store.inspection_alert_ids(by_org["4403"])) == 2
    assert len(store.inspection_alert_ids(by_org["3101"])) == 1


def test_lifecycle_refuses_skipping_steps(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    row = engine.inspections.open_manually(
        {
            "title": "Launch check",
            "indicator": COMPLAINTS,
            "org": "4401",
            "product_line": "health",
            "channel": "*",
        },
        "chen.jie",
    )
    with pytest.raises(
        Conflict, match="it can move to \\['investigating', 'closed'\\], not 'evaluating'"
    ):
        engine.inspections.patch(row["inspection_id"], {"state": "evaluating"}, "chen.jie")
    assert store.inspection(row["inspection_id"])["state"] == "opened"


def test_an_overdue_measure_raises_its_own_alert_once(store: Store, tmp_path: Path) -> None:
    engine, clock = engine_for(store, tmp_path)
    engine.ingest([anomaly(34)])
    (inspection,) = store.inspections()[0]
    measure = engine.measures.add(
        inspection["inspection_id"],
        {
            "title": "Call back every cancelling customer",
            "department": "Customer service",
            "owner": "liu.yang",
            "deadline": clock.now + DAY,
            "indicator": COMPLAINTS,
            "org": "4403",
            "product_line": "life",
            "channel": "BANCA",
            "target": 7.0,
        },
        "zhang.min",
    )
    assert engine.measures.check_overdue() == []
    clock.now += 2 * DAY
    (alert_id,) = engine.measures.check_overdue()
    assert engine.measures.check_overdue() == []
    alert = store.alert(alert_id)
    assert (alert["kind"], alert["severity"], alert["state"]) == (
        "measure_overdue",
        "major",
        "firing",
    )
    assert alert["inspection_id"] == inspection["inspection_id"]
    assert "liu.yang" in alert["summary"]
    sent = store.notifications(alert_id=alert_id, receiver="alertmanager")
    assert [n["event"] for n in sent] == ["opened"]
    registry = engine.metrics.registry  # type: ignore[union-attr]
    engine.refresh_metrics()
    assert registry.get_sample_value("qualmon_measures_overdue") == 1
    # A later deadline ends this alert; missing the new deadline raises a new one.
    ids = (inspection["inspection_id"], measure["measure_id"])
    engine.measures.update(*ids, {"deadline": clock.now + DAY}, "zhang.min")
    assert store.alert(alert_id)["state"] == "resolved"
    assert engine.measures.check_overdue() == []
    clock.now += 2 * DAY
    (again,) = engine.measures.check_overdue()
    assert again != alert_id
    engine.measures.update(*ids, {"state": "done"}, "liu.yang")
    assert store.alert(again)["state"] == "resolved"
    assert engine.measures.check_overdue(clock.now + 30 * DAY) == []


def test_data_quality_alerts_page_but_never_open_or_join_an_inspection(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, "4402", "*", "*")])  # complaints in 4402: an inspection opens
    broken = [
        anomaly(10, "3102", "*", "*", indicator="feed_silence", score=1.0, severity="critical"),
        anomaly(10, "3101", "*", "*", indicator="duplicate_surge", score=1.0, severity="critical"),
        anomaly(10, "4402", "*", "*", indicator="amount_unit_jump", score=1.0, severity="critical"),
    ]
    engine.ingest(broken)
    (inspection,), total = store.inspections()
    assert total == 1 and inspection["indicator"] == COMPLAINTS
    for a in broken:
        (alert,) = store.alerts(indicator=a["indicator"])[0]
        assert alert["inspection_id"] is None
        assert alert["severity"] == "critical"
        # Operators are told: a broken feed needs fixing, not a special inspection.
        sent = store.notifications(alert_id=alert["alert_id"], receiver="alertmanager")
        assert [n["event"] for n in sent] == ["opened"]
    assert store.inspection_alert_ids(inspection["inspection_id"]) == [
        store.alerts(indicator=COMPLAINTS)[0][0]["alert_id"]
    ]


def test_an_inspection_absorbs_alerts_on_its_matter_only(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    manual = engine.inspections.open_manually(
        {"title": "t", "indicator": "loss_ratio", "org": "44", "product_line": "*", "channel": "*"},
        "li.wei",
    )
    # Complaints concentrating in 4403/life/BANCA: the regulation's trigger opens its own
    # inspection, and the complaint rate of the same slice joins that one.
    concentration = "complaints_concentration"
    engine.ingest([anomaly(10, indicator=concentration, score=1.0, severity="critical")])
    engine.ingest([anomaly(10)])
    # Claims in 4401: the loss-ratio inspection's matter and scope.
    engine.ingest([anomaly(10, "4401", indicator="claim_payout_rate", severity="critical")])
    # The hotline company-wide and surrenders in 4403 are other matters: their own inspections.
    engine.ingest([anomaly(10, "*", "*", "*", indicator="hotline_answer_rate")])
    engine.ingest([anomaly(10, indicator="surrender_rate", score=1.0, severity="critical")])

    def inspection_of(indicator: str) -> dict:
        (alert,) = store.alerts(indicator=indicator)[0]
        return store.inspection(alert["inspection_id"])

    complaints = inspection_of(concentration)
    assert (complaints["rule"], complaints["org"]) == ("complaint_concentration", "4403")
    assert inspection_of(COMPLAINTS)["inspection_id"] == complaints["inspection_id"]
    assert inspection_of("claim_payout_rate")["inspection_id"] == manual["inspection_id"]
    assert inspection_of("hotline_answer_rate")["rule"] == "severity"
    assert inspection_of("surrender_rate")["indicator"] == "surrender_rate"
    assert store.inspections()[1] == 4


def test_an_inspection_without_an_indicator_takes_any_business_alert_in_its_scope(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    manual = engine.inspections.open_manually(
        {"title": "t", "indicator": "*", "org": "4403", "product_line": "*", "channel": "*"},
        "li.wei",
    )
    engine.ingest([anomaly(10), anomaly(10, indicator="hotline_answer_rate")])
    engine.ingest([anomaly(10, "4403", "*", "*", indicator="duplicate_surge", score=1.0)])
    absorbed = set(store.inspection_alert_ids(manual["inspection_id"]))
    assert {a["indicator"] for a in store.alerts()[0] if a["alert_id"] in absorbed} == {
        COMPLAINTS,
        "hotline_answer_rate",
    }
    assert store.inspections()[1] == 1


def test_an_untouched_inspection_follows_its_alert_to_the_whole_branch(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    hotline = "hotline_answer_rate"
    engine.ingest([anomaly(10, "3101", "health", "AGENCY", indicator=hotline)])
    (inspection,), _ = store.inspections()
    assert (inspection["product_line"], inspection["channel"]) == ("health", "AGENCY")
    # The next checkpoint finds the life line of 3101 down too: the alert widens to 3101, and
    # the inspection nobody has started on goes with it — the company's life line and the answer
    # rate within 20 seconds then join it instead of opening inspections of their own.
    engine.ingest(
        [
            anomaly(10, "3101", "life", "*", indicator=hotline),
            anomaly(10, "*", "life", "*", indicator=hotline),
            anomaly(10, "3101", "life", "*", indicator="hotline_answer_20s_rate"),
        ]
    )
    (inspection,), _ = store.inspections()
    assert (inspection["org"], inspection["product_line"], inspection["channel"]) == (
        "3101",
        "*",
        "*",
    )
    assert inspection["title"] == f"Special inspection: {hotline} is anomalous in org 3101"
    assert len(store.inspection_alert_ids(inspection["inspection_id"])) == 2
    (rescope,) = [
        e
        for e in store.audit_for_inspection(inspection["inspection_id"])
        if e["action"] == "rescope"
    ]
    assert (rescope["before"]["product_line"], rescope["after"]["product_line"]) == ("health", "*")
    topic = [
        orjson.loads(n["body"])["event"] for n in store.notifications(receiver="topic:inspections")
    ]
    assert topic == ["opened", "rescoped"]


def test_an_inspection_someone_works_on_keeps_its_scope(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    hotline = "hotline_answer_rate"
    engine.ingest([anomaly(10, "3101", "health", "AGENCY", indicator=hotline)])
    (inspection,), _ = store.inspections()
    engine.inspections.patch(inspection["inspection_id"], {"state": "investigating"}, "li.wei")
    engine.ingest([anomaly(10, "3101", "life", "*", indicator=hotline)])
    (alert,) = store.alerts()[0]
    assert (alert["product_line"], alert["channel"]) == ("*", "*")
    after = store.inspection(inspection["inspection_id"])
    assert (after["product_line"], after["channel"], after["state"]) == (
        "health",
        "AGENCY",
        "investigating",
    )


def test_an_untouched_inspection_takes_a_sibling_slice_of_its_org(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, "3101", "health", "AGENCY", indicator="hotline_answer_rate")])
    # Another indicator of the matter on another line of the same branch, before the first
    # alert has seen that line: one inspection, widened to the branch.
    engine.ingest([anomaly(10, "3101", "life", "*", indicator="hotline_answer_20s_rate")])
    # A slice of another branch is another problem.
    engine.ingest([anomaly(10, "3102", "life", "*", indicator="hotline_answer_20s_rate")])
    inspections, total = store.inspections()
    assert total == 2
    widened = next(i for i in inspections if i["org"] == "3101")
    assert (widened["product_line"], widened["channel"]) == ("*", "*")
    assert len(store.inspection_alert_ids(widened["inspection_id"])) == 2


def test_an_inspection_never_narrows_away_from_an_alert_it_took(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, "3101", "*", "*", indicator="hotline_answer_rate")])
    engine.ingest([anomaly(10, "3101", "life", "*", indicator="hotline_answer_20s_rate")])
    # The answer rate's alert narrows to where its problem sits; the inspection keeps the life
    # line it took with the other alert: the branch.
    engine.ingest([anomaly(11, "3101", "health", "AGENCY", indicator="hotline_answer_rate")])
    (inspection,), _ = store.inspections()
    (alert,) = store.alerts(indicator="hotline_answer_rate")[0]
    assert (alert["product_line"], alert["channel"]) == ("health", "AGENCY")
    assert (inspection["product_line"], inspection["channel"]) == ("*", "*")
    assert len(store.inspection_alert_ids(inspection["inspection_id"])) == 2


def test_an_inspection_covering_an_alert_takes_it_before_one_would_widen(
    store: Store, tmp_path: Path
) -> None:
    engine, clock = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, "3101", "health", "AGENCY", indicator="hotline_answer_rate")])
    clock.now += 60
    manual = engine.inspections.open_manually(
        {"title": "t", "indicator": "*", "org": "3101", "product_line": "life", "channel": "*"},
        "li.wei",
    )
    engine.ingest([anomaly(10, "3101", "life", "BANCA", indicator="hotline_answer_20s_rate")])
    assert len(store.inspection_alert_ids(manual["inspection_id"])) == 1
    automatic = next(i for i in store.inspections()[0] if i["rule"] == "severity")
    assert (automatic["product_line"], automatic["channel"]) == ("health", "AGENCY")


def test_an_inspection_of_a_company_line_never_widens_to_the_company_total(
    store: Store, tmp_path: Path
) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, "*", "life", "*", indicator="complaints_concentration")])
    engine.ingest([anomaly(10, "*", "health", "*", indicator=COMPLAINTS)])
    inspections, _ = store.inspections()
    assert ("*", "*", "*") not in {(i["org"], i["product_line"], i["channel"]) for i in inspections}


def test_a_rescope_never_overwrites_an_inspection_someone_moved_on_meanwhile(
    store: Store, tmp_path: Path
) -> None:
    # The engine read the inspection as untouched; before it writes, the API (another
    # connection, on PostgreSQL) moves it on: the rescope is refused and changes nothing.
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, "3101", "health", "AGENCY", indicator="hotline_answer_rate")])
    (stale,), _ = store.inspections()
    engine.inspections.patch(stale["inspection_id"], {"state": "investigating"}, "li.wei")
    with store.db.transaction() as tx:
        assert not engine.inspections._rescope(tx, stale, ("00/31/3101", "*", "*"), 0.0)
    after = store.inspection(stale["inspection_id"])
    assert (after["product_line"], after["channel"]) == ("health", "AGENCY")
    assert not [
        e for e in store.audit_for_inspection(stale["inspection_id"]) if e["action"] == "rescope"
    ]


def test_a_title_someone_wrote_survives_a_rescope(store: Store, tmp_path: Path) -> None:
    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, "3101", "health", "AGENCY", indicator="hotline_answer_rate")])
    (inspection,), _ = store.inspections()
    engine.inspections.patch(inspection["inspection_id"], {"title": "3101 hotline"}, "li.wei")
    engine.ingest([anomaly(10, "3101", "life", "*", indicator="hotline_answer_rate")])
    after = store.inspection(inspection["inspection_id"])
    assert (after["product_line"], after["title"]) == ("*", "3101 hotline")


def test_an_inspection_read_to_be_changed_is_locked_until_the_change_ends(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SQLite serialises write transactions from their start: nothing to lock")
    import psycopg

    engine, _ = engine_for(store, tmp_path)
    engine.ingest([anomaly(10, "3101", "health", "AGENCY", indicator="hotline_answer_rate")])
    (inspection,), _ = store.inspections()
    other = open_store(store_url)  # the API's connection, beside the engine's
    try:
        with store.db.transaction() as tx:
            engine.inspections.load(tx, inspection["inspection_id"])
            with pytest.raises(psycopg.errors.LockNotAvailable), other.db.transaction() as theirs:
                theirs.execute("SET LOCAL lock_timeout = '50ms'")
                other.get_inspection(theirs, inspection["inspection_id"], lock=True)
        with other.db.transaction() as theirs:  # free again once the first change has ended
            assert other.get_inspection(theirs, inspection["inspection_id"], lock=True)
    finally:
        other.close()
