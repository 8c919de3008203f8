"""Both stages of the worker against a real SQLite store: records in, readings and anomalies out,
a restart from a checkpoint that ends exactly where an uninterrupted run ends, and several
workers' intakes that together give what one gives."""

from __future__ import annotations

import pickle
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.errors import ClosingTakenOver, PartitionTakenOver
from monitor.metrics import Metrics
from monitor.settings import Settings
from monitor.store import Store, open_store
from streams import intake as intake_module
from streams.closer import Closer
from streams.fields import FIELD
from streams.intake import Intake
from streams.partial import decode
from tests.factories import at, call, complaint, premium
from tests.streams.stages import Stages, dump

TOPIC = "qualmon.events"
READINGS = 13 * 7 * 21  # slices × readings per slice × closed hours, see the first test
HOUR = 3600
T0 = 1_772_380_800  # tests.factories.at(0): Monday 2 March 2026 00:00 Shanghai
ORGS = {0: "00/44/4403", 1: "00/44/4404"}  # partition -> org (the topic is keyed by org)


class FrozenClock:
    """Stands in for the ``time`` module inside streams.intake: wall time only moves when the
    test says so, which makes the idle-partition rule deterministic. It starts a year after the
    first events of these tests: the intake refuses events dated ahead of its clock."""

    perf_counter = staticmethod(time.perf_counter)  # bucket-close timing stays real
    monotonic = staticmethod(time.monotonic)  # so does the pacing of state pickles

    def __init__(self, now: float = T0 + 365 * 86400) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr(intake_module, "time", frozen)
    return frozen


@dataclass
class Record:
    partition: int
    offset: int
    value: bytes
    events: int


def hour_events(partition: int, hour: int, answered: int = 19, calls: int = 20) -> list[dict]:
    org = ORGS[partition]
    tag = f"p{partition}-h{hour}"
    out = [
        call(f"{tag}-c{i}", at(hour + i / (calls + 1)), i < answered, org_path=org)
        for i in range(calls)
    ]
    out += [premium(f"{tag}-m{i}", at(hour + 0.5 + i / 10), org_path=org) for i in (0, 1)]
    return out


def records(plan: list[tuple[int, int, int]]) -> list[Record]:
    """One record (a JSON array) per (partition, hour, answered); offsets count per partition."""
    offsets = {0: 0, 1: 0}
    out = []
    for partition, hour, answered in plan:
        events = hour_events(partition, hour, answered)
        out.append(Record(partition, offsets[partition], orjson.dumps(events), len(events)))
        offsets[partition] += 1
    return out


def lockstep_plan() -> list[tuple[int, int, int]]:
    """Hours 0–20 on both partitions in turn; at 20:00 org 4403 answers 2 calls of 20; one
    closing record per partition at 21:00."""
    plan = []
    for hour in range(21):
        plan += [(0, hour, 2 if hour == 20 else 19), (1, hour, 19)]
    return [*plan, (0, 21, 19), (1, 21, 19)]


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, bucket_seconds=3600, allowed_lateness_seconds=0)


def new_pipeline(
    store: Store, tmp_path: Path, partitions: int = 2
) -> tuple[Stages, CollectorRegistry]:
    registry = CollectorRegistry()
    return Stages(settings(tmp_path), Metrics(registry), store, partitions), registry


def feed(pipeline: Stages, batch: list[Record]) -> list[dict]:
    dead = []
    for r in batch:
        dead += pipeline.handle(r.value, TOPIC, r.partition, r.offset)
    return dead


def events_counted(registry: CollectorRegistry, event_type: str, outcome: str) -> float | None:
    return registry.get_sample_value(
        "qualmon_events_total", {"event_type": event_type, "outcome": outcome}
    )


def checkpoint(pipeline: Stages) -> None:
    pipeline.checkpoint()


def merge(pipeline: Stages) -> None:
    """The intake's checkpoint and the closer's merge, without the closer's checkpoint."""
    pipeline.intake.save(pipeline.intake.take_flush())
    pipeline.closer.poll()


@pytest.fixture
def store_at(tmp_path: Path) -> Iterator:
    opened: list[Store] = []

    def make(name: str) -> tuple[Store, Path]:
        db = tmp_path / name / "q.db"
        store = open_store(f"sqlite:///{db}")
        opened.append(store)
        return store, db

    yield make
    for store in opened:
        store.close()


def uninterrupted(store_at, tmp_path: Path, plan: list[Record]) -> tuple[list, list]:
    store, db = store_at("reference")
    pipeline, _ = new_pipeline(store, tmp_path)
    assert feed(pipeline, plan) == []
    checkpoint(pipeline)
    assert store.count("late_events") == 0  # uninterrupted, the slowest partition holds back
    return dump(db)


def test_records_in_readings_and_anomalies_out(store_at, tmp_path: Path, clock) -> None:
    store, _ = store_at("one")
    pipeline, registry = new_pipeline(store, tmp_path)
    plan = records(lockstep_plan())
    assert feed(pipeline, plan) == []
    checkpoint(pipeline)

    # 13 slices: total, 00, 44, life, AGENCY (shared), and per org the org and its three
    # configured combinations (4 × 2). Each has calls and premium: 7 readings (premium income,
    # answer rate, 20-second rate; surrender rate and the three complaint rates per 100 million
    # yuan, all 0 — none surrendered or complained of that premium). Hours 0–20 closed (21:00
    # is still open): 13 × 7 × 21 = 1911.
    assert store.count("indicator_values") == READINGS
    anomalies, total = store.anomalies(limit=100)
    # Hour 20: org 4403 answered 2 of 20, so every slice holding its calls fell: its own four
    # (2 of 20) and the five shared ones (21 of 40). Org 4404's four slices stayed at 19 of 20.
    # Every answered call waited 5 s, so the 20-second rate fell with it on the same 9 slices.
    assert total == 18
    assert {a["indicator"] for a in anomalies} == {"hotline_answer_rate", "hotline_answer_20s_rate"}
    anomalies = [a for a in anomalies if a["indicator"] == "hotline_answer_rate"]
    assert {a["bucket_start"] for a in anomalies} == {"2026-03-02T12:00:00+00:00"}  # 20:00 +08
    assert sorted((a["org"], a["product_line"], a["channel"], a["value"]) for a in anomalies) == [
        ("*", "*", "*", 21 / 40), ("*", "*", "AGENCY", 21 / 40), ("*", "life", "*", 21 / 40),
        ("00", "*", "*", 21 / 40), ("44", "*", "*", 21 / 40),
        ("4403", "*", "*", 0.1), ("4403", "*", "AGENCY", 0.1), ("4403", "life", "*", 0.1),
        ("4403", "life", "AGENCY", 0.1),
    ]  # fmt: skip
    assert {a["severity"] for a in anomalies} == {"critical"}

    latest = store.latest_readings(indicator="hotline_answer_rate", org="4404")
    assert [(r["value"], r["k"], r["n"], r["bucket_start"]) for r in latest] == [
        (0.95, 19.0, 20.0, T0 + 20 * HOUR)
    ] * 4
    premium_total = store.latest_readings(indicator="premium_income", org="*", channel="*")
    assert [(r["product_line"], r["value"]) for r in premium_total] == [
        ("*", 4000.0), ("life", 4000.0)  # two orgs × two receipts × 1,000 yuan
    ]  # fmt: skip

    events = sum(r.events for r in plan)  # 2 partitions × 22 hours × 22 events = 968
    assert events == 968
    assert events_counted(registry, "call.completed", "accepted") == 880  # 2 × 22 × 20
    assert events_counted(registry, "premium.received", "accepted") == 88  # 2 × 22 × 2
    sample = registry.get_sample_value
    assert sample("qualmon_buckets_closed_total") == 21
    worst = {"indicator": "hotline_answer_rate", "severity": "critical"}
    assert sample("qualmon_anomalies_total", worst) == 9
    org_4403 = {"org": "4403", "product_line": "*", "channel": "*"}
    assert sample("qualmon_indicator_hotline_answer_ratio", org_4403) == 0.1
    # Both partitions end with the 20th call of hour 21, at 21 h + 19/21 h.
    watermark = sample("qualmon_watermark_timestamp_seconds")
    assert watermark == pytest.approx(T0 + (21 + 19 / 21) * HOUR)


def test_nothing_is_stored_before_the_checkpoint(store_at, tmp_path: Path, clock) -> None:
    store, _ = store_at("one")
    pipeline, _ = new_pipeline(store, tmp_path)
    feed(pipeline, records(lockstep_plan()))
    assert store.count("indicator_values") == 0
    assert store.count("seen_events") == 0
    checkpoint(pipeline)
    assert store.count("seen_events") == 968  # retention is a week: every id is remembered
    # A second checkpoint with nothing new changes nothing.
    checkpoint(pipeline)
    assert store.count("indicator_values") == READINGS


def test_closing_pauses_after_each_bucket_and_ends_like_one_poll(
    store_at, tmp_path: Path, clock
) -> None:
    # A replay closes many buckets in one checkpoint: the event loop is handed back after each.
    reference = uninterrupted(store_at, tmp_path, records(lockstep_plan()))
    store, db = store_at("paced")
    pipeline, _ = new_pipeline(store, tmp_path)
    feed(pipeline, records(lockstep_plan()))
    pipeline.intake.save(pipeline.intake.take_flush())
    closer, paused = pipeline.closer, 0
    for _ in closer.polling():
        paused += 1
        assert len(closer.closed_at) == paused  # one bucket scored per pause, no more
    assert paused > 1
    closer.save(closer.take_flush())
    assert dump(db) == reference


@pytest.mark.parametrize("lost", [0, 5], ids=["crash-at-checkpoint", "crash-after-5-more"])
def test_restart_from_checkpoint_ends_like_an_uninterrupted_run(
    store_at, tmp_path: Path, clock, lost: int
) -> None:
    plan = records(lockstep_plan())
    reference = uninterrupted(store_at, tmp_path, plan)

    store, db = store_at("restarted")
    first, _ = new_pipeline(store, tmp_path)
    cut = 23  # mid-stream, partition 0 one hour ahead of partition 1
    feed(first, plan[:cut])
    checkpoint(first)
    feed(first, plan[cut : cut + lost])  # processed, never checkpointed: lost in the crash
    del first

    second, registry = new_pipeline(store, tmp_path)
    redelivered = plan[cut - 3 : cut]  # Kafka hands back what was not yet acknowledged
    assert feed(second, [*redelivered, *plan[cut:]]) == []
    checkpoint(second)

    assert dump(db) == reference
    # The redelivered records are known by their offsets: not counted again, and not taken
    # for re-sent events either (which the duplicate-surge check would count).
    after_cut = sum(r.events for r in plan[cut:])
    calls = events_counted(registry, "call.completed", "accepted")
    premiums = events_counted(registry, "premium.received", "accepted")
    assert calls + premiums == after_cut
    assert events_counted(registry, "call.completed", "duplicate") == 0
    assert events_counted(registry, "call.completed", "late") == 0


def test_a_re_sent_event_into_a_closed_bucket_after_restore_is_a_duplicate(
    store_at, tmp_path: Path, clock
) -> None:
    plan = records(lockstep_plan())
    store, _ = store_at("restarted")
    first, _ = new_pipeline(store, tmp_path)
    feed(first, plan[:30])  # hours 0–14 of both partitions: 0–13 closed
    checkpoint(first)
    second, registry = new_pipeline(store, tmp_path)
    # Hour 0 again, long closed: sent again by its producer, so in new records.
    resent = [Record(r.partition, 100 + r.offset, r.value, r.events) for r in plan[:2]]
    feed(second, resent)
    assert events_counted(registry, "call.completed", "duplicate") == 40  # 2 records × 20 calls
    assert events_counted(registry, "call.completed", "late") == 0
    feed(second, plan[:2])  # redelivered, same offsets: counted already, nothing happens
    assert events_counted(registry, "call.completed", "duplicate") == 40


def test_restart_longer_than_idle_seconds_ends_like_an_uninterrupted_run(
    store_at, tmp_path: Path, clock
) -> None:
    # Partition 1 runs three hours behind partition 0 (a slower producer). Uninterrupted, it
    # holds the watermark back and none of its events is late. A worker restarted after a minute
    # (longer than the clock's 30 s idle rule) must come to the same result: all partitions of
    # the restored clock were last heard before the restart, and the first record handled after
    # it must not alone decide the watermark.
    plan_list = [(0, 0, 19), (1, 0, 19), (0, 1, 19), (0, 2, 19), (0, 3, 19)]
    for hour in range(4, 22):
        plan_list += [(0, hour, 19), (1, hour - 3, 19)]
    plan_list += [(1, h, 19) for h in range(19, 22)]
    plan = records(plan_list)
    reference = uninterrupted(store_at, tmp_path, plan)

    store, db = store_at("restarted")
    first, _ = new_pipeline(store, tmp_path)
    cut = 21  # the first new record after the restart is partition 0's hour 12
    assert (plan[cut].partition, plan[cut - 1].partition) == (0, 1)
    feed(first, plan[:cut])
    checkpoint(first)
    clock.now += 60  # the restart takes a minute
    second, registry = new_pipeline(store, tmp_path)
    feed(second, plan[cut - 2 :])
    checkpoint(second)

    assert events_counted(registry, "call.completed", "late") == 0
    assert dump(db) == reference


def test_dead_letters_are_returned_and_counted(store_at, tmp_path: Path, clock) -> None:
    store, _ = store_at("one")
    pipeline, registry = new_pipeline(store, tmp_path)
    good = call("ok-1", at(1), True)
    bad = call("bad-1", at(1), True, channel="FAX")
    dead = pipeline.handle(orjson.dumps([good, bad, 7]), TOPIC, 1, 40)
    dead += pipeline.handle(b"\x00garbage", TOPIC, 0, 41)
    assert [(d["reason"], d["index"], d["source"]["offset"]) for d in dead] == [
        ("invalid_event", 1, 40), ("not_an_event", 2, 40), ("not_json", None, 41)
    ]  # fmt: skip
    sample = registry.get_sample_value
    assert sample("qualmon_dlq_messages_total", {"reason": "invalid_event"}) == 1
    assert sample("qualmon_dlq_messages_total", {"reason": "not_an_event"}) == 1
    assert sample("qualmon_dlq_messages_total", {"reason": "not_json"}) == 1
    # The invalid call is counted under its type; what has no type is 'unknown'.
    assert events_counted(registry, "call.completed", "invalid") == 1
    assert events_counted(registry, "unknown", "invalid") == 2
    assert events_counted(registry, "call.completed", "accepted") == 1


def test_an_event_from_the_future_is_a_dead_letter_and_moves_no_watermark(
    store_at, tmp_path: Path, clock
) -> None:
    # An event dated 2099 once closed the current bucket and made every real event after it
    # late. Dated more than the allowed lateness (here 0 s, so the 60 s floor) ahead of the
    # worker's clock, it is refused, naming event_time; one within the floor still counts.
    store, _ = store_at("one")
    pipeline, registry = new_pipeline(store, tmp_path, partitions=1)
    clock.now = T0 + 2 * HOUR  # 02:00 on the events' day
    future = call("future", "2099-01-01T00:00:00+08:00", True)
    skewed = call("skewed", at(2 + 59 / 3600), True)  # 59 s ahead: clock skew, accepted
    ahead = call("ahead", at(2 + 61 / 3600), True)
    dead = pipeline.handle(orjson.dumps([call("a", at(1.5), True), future, skewed, ahead]),
                           TOPIC, 0, 0)  # fmt: skip
    assert [(d["reason"], d["index"]) for d in dead] == [("invalid_event", 1), ("invalid_event", 3)]
    [error] = dead[0]["errors"]
    assert (error["field"], error["value"]) == ("event_time", "2099-01-01T00:00:00+08:00")
    assert "at most 60 s after the receiving clock (2026-03-01T18:00:00+00:00)" in error["expected"]
    checkpoint(pipeline)
    clock.now = T0 + 3 * HOUR
    pipeline.handle(orjson.dumps([call("b", at(2.5), True)]), TOPIC, 0, 1)  # 02:00 is still open
    checkpoint(pipeline)
    assert events_counted(registry, "call.completed", "late") == 0
    assert events_counted(registry, "call.completed", "accepted") == 3
    assert events_counted(registry, "call.completed", "invalid") == 2


def test_late_events_are_kept_in_the_store(store_at, tmp_path: Path, clock) -> None:
    store, _ = store_at("one")
    pipeline, registry = new_pipeline(store, tmp_path, partitions=1)
    pipeline.handle(orjson.dumps([call("a", at(1.5), True)]), TOPIC, 0, 0)
    pipeline.handle(orjson.dumps([call("b", at(3.5), True)]), TOPIC, 0, 1)
    checkpoint(pipeline)  # closes 01:00
    pipeline.handle(orjson.dumps([call("c", at(1.9), True)]), TOPIC, 0, 2)  # late for 01:00
    checkpoint(pipeline)
    assert events_counted(registry, "call.completed", "late") == 1
    assert store.count("late_events") == 1
    with sqlite3.connect(tmp_path / "one" / "q.db") as conn:
        event_id, start, body = conn.execute(
            "SELECT event_id, bucket_start, body FROM late_events"
        ).fetchone()
    assert (event_id, start) == ("c", T0 + HOUR)
    assert orjson.loads(body)["event_id"] == "c"


@pytest.mark.parametrize("behind", [True, False], ids=["backlog", "caught-up"])
def test_a_backlogged_partition_is_not_idle(store_at, tmp_path: Path, clock, behind) -> None:
    # Replaying a backlog, the consumer may read one partition for longer than the idle rule
    # (30 s) before it gets to the other. The other is behind, not silent: none of it is late.
    store, _ = store_at("one")
    pipeline, registry = new_pipeline(store, tmp_path)
    first, second = records([(0, 0, 19), (1, 0, 19)])
    pipeline.handle(first.value, TOPIC, 0, 0, behind=True)
    pipeline.handle(second.value, TOPIC, 1, 0, behind=behind)
    checkpoint(pipeline)
    clock.now += 60
    for offset, (_, hour, answered) in enumerate([(0, h, 19) for h in range(1, 6)], start=1):
        (record,) = records([(0, hour, answered)])
        pipeline.handle(record.value, TOPIC, 0, offset, behind=True)
    checkpoint(pipeline)  # partition 1 was last heard a minute ago: idle unless behind
    (late_hour,) = records([(1, 1, 19)])
    pipeline.handle(late_hour.value, TOPIC, 1, 1, behind=False)
    late = events_counted(registry, "call.completed", "late")
    assert late == (0 if behind else 20)


def test_band_detector_time_and_close_delay_are_exported(store_at, tmp_path: Path, clock) -> None:
    store, _ = store_at("one")
    pipeline, registry = new_pipeline(store, tmp_path)
    feed(pipeline, records(lockstep_plan()))
    merge(pipeline)
    sample = registry.get_sample_value
    assert sample("qualmon_detector_seconds_count") == 21  # one per closed bucket
    # Closed but not yet published and stored: no close delay is known yet.
    assert sample("qualmon_bucket_close_seconds_count") == 0
    checkpoint(pipeline)
    assert sample("qualmon_bucket_close_seconds_count") == 21

    (anomaly,) = store.anomalies(indicator="hotline_answer_rate", org="4403", product_line="*",
                                 channel="*", limit=100)[0]  # fmt: skip
    org_4403 = {"org": "4403", "product_line": "*", "channel": "*"}
    band = {
        bound: sample("qualmon_indicator_band_hotline_answer_ratio", {**org_4403, "bound": bound})
        for bound in ("lower", "expected", "upper")
    }
    assert band == {"lower": anomaly["lower"], "expected": anomaly["expected"],
                    "upper": anomaly["upper"]}  # fmt: skip
    assert band["lower"] < band["expected"] < band["upper"]
    assert band["lower"] > 0.1  # the reading of 2 of 20 lies below its band


# ---- feedback and open-case timers through the pipeline ----------------------------------------


def outage_plan(outages: dict[int, int], hours: int) -> list[Record]:
    """Both orgs answer 19 of 20 calls an hour, but org 4403 ``outages[hour]`` in those hours."""
    plan = []
    for hour in range(hours):
        plan += [(0, hour, outages.get(hour, 19)), (1, hour, 19)]
    return records(plan)


def series_anomalies(store: Store, org: str = "4403") -> list[str]:
    rows, _ = store.anomalies(indicator="hotline_answer_rate", org=org, product_line="*",
                              channel="*", limit=100)  # fmt: skip
    return sorted(r["bucket_start"] for r in rows)


def test_a_series_marked_expected_stops_alarming_on_the_same_pattern(
    store_at, tmp_path: Path, clock
) -> None:
    store, _ = store_at("feedback")
    pipeline, _ = new_pipeline(store, tmp_path)
    # 4403 answers 2 of 20 at 20:00 and again at 25:00, then none at 28:00 (worse).
    plan = outage_plan({20: 2, 25: 2, 28: 0}, 30)
    first = plan[:42]  # hours 0-20 of both partitions
    assert feed(pipeline, first + plan[42:44]) == []  # hour 21 closes hour 20
    checkpoint(pipeline)
    [marked] = series_anomalies(store)
    assert marked == "2026-03-02T12:00:00+00:00"  # 20:00 Shanghai
    [row] = store.anomalies(indicator="hotline_answer_rate", org="4403", product_line="*",
                            channel="*")[0]  # fmt: skip
    store.add_feedback(row["anomaly_id"], "expected", "planned switch-over")

    assert feed(pipeline, plan[44:]) == []
    checkpoint(pipeline)
    # 25:00 (same pattern, 2 of 20) is no longer raised for this series; 28:00 (0 of 20, a
    # larger deviation) is. Hour 29 is still open.
    assert series_anomalies(store) == [marked, "2026-03-02T20:00:00+00:00"]  # 04:00 Shanghai
    # The org's other series were not marked: its 20-second rate alarms at 25:00 as before.
    twenty, _ = store.anomalies(indicator="hotline_answer_20s_rate", org="4403",
                                product_line="*", channel="*")  # fmt: skip
    assert "2026-03-02T17:00:00+00:00" in {r["bucket_start"] for r in twenty}  # 01:00 Shanghai
    assert pipeline.closer.watch.feedback.cursor == 1  # applied once, remembered in the state


def test_a_complaint_open_past_60_days_breaches_before_it_closes_across_a_restart(
    store_at, tmp_path: Path, clock
) -> None:
    store, _ = store_at("timers")
    pipeline, _ = new_pipeline(store, tmp_path, partitions=1)
    received = complaint("c-open", at(1.0))
    received["payload"]["complaint_id"] = "C-LATE"
    settled = complaint("c-fast", at(1.5))
    closed = {
        **settled,
        "event_id": "c-fast-close",
        "event_type": "complaint.closed",
        "event_time": at(30.0),
        "payload": {"complaint_id": "c-c-fast", "received_at": at(1.5), "outcome": "UPHELD"},
    }
    day = 24
    feed(pipeline, [Record(0, 0, orjson.dumps([received, settled, closed]), 3)])
    checkpoint(pipeline)
    # A restart in between: the open case must survive in the checkpoint.
    pipeline, _ = new_pipeline(store, tmp_path, partitions=1)
    later = [call(f"k-{d}", at(d * day + 2.0), True) for d in (59, 61, 62)]
    feed(pipeline, [Record(0, 1, orjson.dumps(later), 3)])
    checkpoint(pipeline)
    breaches, _ = store.anomalies(indicator="complaint_sla_breach")
    # Received 2 March 01:00, so 60 days are up on 1 May 01:00. Cases are aged at the end of
    # each closing bucket: 30 April 02:00-03:00 (day 59) is too early; the next to close is
    # 2 May 02:00-03:00 (day 61), closed by the call of day 62 — no close event needed.
    assert [(b["org"], b["product_line"], b["channel"]) for b in breaches] == [
        ("4403", "life", "AGENCY")
    ]
    detail = orjson.loads(breaches[0]["detail"])
    assert detail == {"limit_days": 60, "cases": ["C-LATE"], "count": 1}
    assert breaches[0]["category"] == "business"
    assert breaches[0]["bucket_start"] == "2026-05-01T18:00:00+00:00"  # 2 May 02:00 Shanghai


def test_state_is_pickled_at_most_once_per_ten_pickling_times_unless_forced(
    store_at, tmp_path: Path, clock
) -> None:
    store, _ = store_at("pacing")
    pipeline, _ = new_pipeline(store, tmp_path)
    plan = records(lockstep_plan())
    closer = pipeline.closer
    feed(pipeline, plan[:10])  # hours 0-4: four buckets closed
    merge(pipeline)
    first = closer.take_flush(force=False)
    assert first is not None  # never pickled before: taken
    closer._pickle_seconds = 3600.0  # as if pickling took an hour
    feed(pipeline, plan[10:12])  # another bucket closes: the state changed
    merge(pipeline)
    assert closer.take_flush(force=False) is None  # too soon: nothing taken, nothing reset
    assert closer.readings  # the closed bucket's readings wait for the next checkpoint
    forced = closer.take_flush()
    assert forced is not None and forced.readings
    closer.save(forced)
    feed(pipeline, plan[12:13])  # no bucket closes: the cached state is reused, no pickling
    merge(pipeline)
    assert closer.take_flush(force=False) is not None


# ---- scale-out: several workers' intakes, one closer ------------------------------------------


def worker(store: Store, tmp_path: Path, partitions: list[int]) -> tuple[Intake, CollectorRegistry]:
    registry = CollectorRegistry()
    intake = Intake.create(settings(tmp_path), Metrics(registry), store)
    intake.assigned(partitions)
    return intake, registry


def test_two_workers_give_what_one_gives_even_when_a_partition_moves(
    store_at, tmp_path: Path, clock
) -> None:
    plan = records(lockstep_plan())
    reference = uninterrupted(store_at, tmp_path, plan)

    store, db = store_at("two-workers")
    a, _ = worker(store, tmp_path, [0, 1])  # worker A starts alone, with both partitions
    b, b_registry = worker(store, tmp_path, [])
    closer_registry = CollectorRegistry()
    closer = Closer.create(settings(tmp_path), Metrics(closer_registry), store, 2)

    def close() -> None:
        closer.poll()
        flush = closer.take_flush()
        assert flush is not None
        closer.save(flush)
        a.heard_of_close(flush.closed_through)

    cut = 17
    for r in plan[:cut]:
        a.handle(r.value, TOPIC, r.partition, r.offset)
    a.save(a.take_flush())
    close()
    # Worker B joins: partition 1 moves to it. A's records of partition 1 after its last
    # checkpoint were never acknowledged, so Kafka hands them to B again.
    unacknowledged = [r for r in plan[cut : cut + 4] if r.partition == 1]
    for r in plan[cut : cut + 4]:
        if r.partition == 0:
            a.handle(r.value, TOPIC, r.partition, r.offset)
    a.save(a.take_flush())
    a.assigned([0])  # partition 1 moves to B
    b.assigned([1])
    for r in [*unacknowledged, *plan[cut + 4 :]]:
        (a if r.partition == 0 else b).handle(r.value, TOPIC, r.partition, r.offset)
        if r.offset % 3 == 0:  # the workers checkpoint on their own beats
            (a if r.partition == 0 else b).save((a if r.partition == 0 else b).take_flush())
        if r.offset % 5 == 0:
            close()
    a.save(a.take_flush())
    b.save(b.take_flush())
    close()

    assert dump(db) == reference
    assert store.count("partials") == 0  # every partial merged, and deleted with the merge
    assert events_counted(b_registry, "call.completed", "duplicate") == 0  # B had none yet
    assert closer_registry.get_sample_value("qualmon_partial_events_late_total") == 0


def test_events_summed_before_their_worker_heard_of_the_close_are_kept_not_added(
    store_at, tmp_path: Path, clock
) -> None:
    store, db = store_at("race")
    a, _ = worker(store, tmp_path, [0])
    b, _ = worker(store, tmp_path, [1])
    registry = CollectorRegistry()
    closer = Closer.create(settings(tmp_path), Metrics(registry), store, 2)
    a.handle(orjson.dumps([call("a1", at(1.5), True, org_path=ORGS[0])]), TOPIC, 0, 0)
    b.handle(orjson.dumps([call("b1", at(1.6), True, org_path=ORGS[1])]), TOPIC, 1, 0)
    a.handle(orjson.dumps([call("a2", at(3.5), True, org_path=ORGS[0])]), TOPIC, 0, 1)
    b.handle(orjson.dumps([call("b2", at(3.5), True, org_path=ORGS[1])]), TOPIC, 1, 1)
    a.save(a.take_flush())
    b.save(b.take_flush())
    closer.poll()  # the watermark is 03:30: 01:00 closes
    closer.save(closer.take_flush())
    # B has not checkpointed since, so it does not know: an out-of-order event for 01:00 is
    # summed into its next partial, and the closer finds its bucket closed.
    b.closed_through = float("-inf")
    b.handle(orjson.dumps([call("b3", at(1.7), True, org_path=ORGS[1])]), TOPIC, 1, 2)
    b.save(b.take_flush())
    closer.poll()
    closer.save(closer.take_flush())
    assert registry.get_sample_value("qualmon_partial_events_late_total") == 1
    with sqlite3.connect(db) as conn:
        [(event_id, start, body)] = conn.execute(
            "SELECT event_id, bucket_start, body FROM late_events"
        )
        calls = conn.execute(
            "SELECT n FROM indicator_values WHERE indicator = 'hotline_answer_rate' AND org = '*' "
            "AND product_line = '*' AND channel = '*' AND bucket_start = ?",
            (T0 + HOUR,),
        ).fetchone()
    assert (event_id, start) == ("partial/1/2/" + str(T0 + HOUR), T0 + HOUR)
    [kept] = decode(body).cells[T0 + HOUR].values()  # the sums are kept, not lost
    assert kept[FIELD["calls"]] == 1.0
    assert calls == (2.0,)  # a1 and b1: the closed bucket was not changed
    assert store.count("partials") == 0


def test_a_closer_that_was_taken_over_writes_nothing(store_at, tmp_path: Path, clock) -> None:
    # A worker paused past its session loses partition 0; the new owner starts closing. When
    # the old one wakes up, its checkpoint must not overwrite the new one's.
    store, _ = store_at("fenced")
    old, _ = new_pipeline(store, tmp_path)
    feed(old, records(lockstep_plan())[:10])
    old.intake.save(old.intake.take_flush())
    new = Closer.create(settings(tmp_path), Metrics(CollectorRegistry()), store, 2)
    old.closer.poll()
    with pytest.raises(ClosingTakenOver, match="another worker closes buckets now"):
        old.closer.save(old.closer.take_flush())
    assert store.count("indicator_values") == 0 and store.count("partials") == 2
    new.poll()
    new.save(new.take_flush())
    assert store.count("indicator_values") > 0 and store.count("partials") == 0


def test_a_record_of_a_partition_not_owned_is_left_to_its_owner(
    store_at, tmp_path: Path, clock
) -> None:
    store, _ = store_at("unowned")
    a, registry = worker(store, tmp_path, [0])
    assert a.handle(orjson.dumps([call("x", at(1), True)]), TOPIC, 1, 0) is None
    assert a.acks == [] and events_counted(registry, "call.completed", "accepted") == 0


def test_two_owners_of_one_partition_fail_the_checkpoint_rather_than_lose_a_partial(
    store_at, tmp_path: Path, clock
) -> None:
    store, _ = store_at("two-owners")
    a, _ = worker(store, tmp_path, [0])
    b, _ = worker(store, tmp_path, [0])  # a mistake: both resumed partition 0 at partial 0
    a.handle(orjson.dumps([call("x", at(1), True)]), TOPIC, 0, 0)
    b.handle(orjson.dumps([call("y", at(1), True)]), TOPIC, 0, 0)
    a.save(a.take_flush())
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        b.save(b.take_flush())
    assert store.count("partials") == 1 and store.count("seen_events") == 1


def test_a_worker_that_lost_its_partition_unawares_cannot_write_for_it(
    store_at, tmp_path: Path, clock
) -> None:
    # Worker A was paused past its session: partition 0 went to B, which checkpointed it. A
    # wakes up with events still in hand; its checkpoint must not roll the partition back.
    store, _ = store_at("zombie")
    a, _ = worker(store, tmp_path, [0])
    a.handle(orjson.dumps([call("x", at(1), True)]), TOPIC, 0, 0)
    a.save(a.take_flush())
    b, _ = worker(store, tmp_path, [0])
    b.handle(orjson.dumps([call("y", at(1.1), True)]), TOPIC, 0, 1)
    b.save(b.take_flush())
    a.handle(orjson.dumps([call("z", at(1.2), True)]), TOPIC, 0, 2)
    with pytest.raises(PartitionTakenOver, match="partition 0"):
        a.save(a.take_flush())
    assert [(p, seq) for p, seq, _ in store.pending_partials({})] == [(0, 1), (0, 2)]  # A's, B's


def test_a_closer_taking_over_exports_the_last_readings_at_once(
    store_at, tmp_path: Path, clock
) -> None:
    store, _ = store_at("takeover")
    first, _ = new_pipeline(store, tmp_path)
    feed(first, records(lockstep_plan()))
    checkpoint(first)
    registry = CollectorRegistry()
    Closer.create(settings(tmp_path), Metrics(registry), store, 2)  # on another worker
    org_4403 = {"org": "4403", "product_line": "*", "channel": "*"}
    sample = registry.get_sample_value
    assert sample("qualmon_indicator_hotline_answer_ratio", org_4403) == 0.1  # hour 20's
    assert sample("qualmon_anomaly_score", {"indicator": "hotline_answer_rate", **org_4403}) > 0.5
    assert sample("qualmon_window_hotline_answer_ratio", {"window": "day", **org_4403}) > 0.1
    assert sample("qualmon_watermark_timestamp_seconds") > T0


def test_gauges_stop_at_the_configured_depth_of_the_org_tree(
    store_at, tmp_path: Path, clock
) -> None:
    store, _ = store_at("depth")
    registry = CollectorRegistry()
    pipeline = Stages(settings(tmp_path), Metrics(registry, orgs_depth=2), store, 2)
    feed(pipeline, records(lockstep_plan()))
    checkpoint(pipeline)
    later = CollectorRegistry()  # a closer taking over exports the same, at once
    Closer.create(settings(tmp_path), Metrics(later, orgs_depth=2), store, 2)
    for sample in (registry.get_sample_value, later.get_sample_value):
        # 00 is the head office (depth 1), 44 a province (2), 4403 a branch (3).
        for org, exported in (("*", True), ("00", True), ("44", True), ("4403", False)):
            labels = {"org": org, "product_line": "*", "channel": "*"}
            value = sample("qualmon_indicator_hotline_answer_ratio", labels)
            assert (value is not None) == exported, org
            window = sample("qualmon_window_hotline_answer_ratio", {"window": "day", **labels})
            assert (window is not None) == exported, org
        combination = {"org": "4403", "product_line": "life", "channel": "AGENCY"}
        assert sample("qualmon_anomaly_score", {"indicator": "hotline_answer_rate",
                                                **combination}) is None  # fmt: skip
        by_line = {"org": "*", "product_line": "life", "channel": "*"}
        assert sample("qualmon_indicator_hotline_answer_ratio", by_line) is not None
        # Left out by configuration, not for want of room.
        assert sample("qualmon_metric_series_not_exported_total") == 0
    # The history keeps every series.
    assert store.latest_readings(indicator="hotline_answer_rate", org="4403")


def test_a_checkpoint_with_the_detectors_inside_the_state_still_loads(
    store_at, tmp_path: Path, clock
) -> None:
    # How the worker wrote its checkpoint before the detectors had a row of their own.
    store, _ = store_at("old-format")
    first, _ = new_pipeline(store, tmp_path)
    feed(first, records(lockstep_plan())[:20])
    checkpoint(first)
    agg, watch = first.closer.aggregator, first.closer.watch
    with store.db.transaction() as tx:
        tx.execute("DELETE FROM checkpoints WHERE name LIKE '%/detectors'")
    store.save_checkpoint(settings(tmp_path).app_id, pickle.dumps((agg, pickle.dumps(watch))))
    resumed = Closer.create(settings(tmp_path), Metrics(CollectorRegistry()), store, 2)
    assert resumed.aggregator.buckets.keys() == agg.buckets.keys()
    assert resumed.watch.bank.series.keys() == watch.bank.series.keys()


def test_a_topic_recreated_after_a_broker_lost_its_data_is_counted_from_offset_zero(
    store_at, tmp_path: Path, clock
) -> None:
    store, _ = store_at("recreated")
    a, registry = worker(store, tmp_path, [0])
    for offset in range(5):
        a.handle(orjson.dumps([call(f"old-{offset}", at(1), True)]), TOPIC, 0, offset)
    a.save(a.take_flush())
    b, registry = worker(store, tmp_path, [0])  # restarted against the new, empty topic
    assert b.handle(orjson.dumps([call("new-0", at(2), True)]), TOPIC, 0, 0) == []
    assert b.handle(orjson.dumps([call("old-1", at(1), True)]), TOPIC, 0, 1) == []  # re-sent
    assert events_counted(registry, "call.completed", "accepted") == 1
    assert events_counted(registry, "call.completed", "duplicate") == 0  # taken as redelivered
