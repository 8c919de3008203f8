"""Counting and merging: dedup by id, the slices an event counts in, lateness, id retention —
through both stages (a combiner per partition, partials merged by the aggregator)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from streams.aggregate import Aggregator
from streams.fields import new_accumulator
from streams.indicators import FIELD
from streams.partial import Partial
from streams.schema import parse_event
from streams.slices import ALL, OTHER_ORG, TOTAL, Slicer
from tests.factories import at
from tests.streams.examples import example
from tests.streams.stages import Local

HOUR = 3600
T0 = 1_772_380_800  # Monday 2 March 2026 00:00 Shanghai, the start of tests.factories.at(0)
COMBINATIONS = (("org", "product_line"), ("org", "channel"), ("org", "product_line", "channel"))


def h(hours: int) -> int:
    return T0 + hours * HOUR


def at_epoch(hours: float) -> float:
    return T0 + hours * HOUR


def call(event_id: str, hours: float, **envelope: Any):
    return parse_event(example("call.completed", event_id, at(hours), **envelope))


def aggregator(retention: int = 7 * 86400, max_orgs: int = 100, combos=COMBINATIONS) -> Local:
    return Local(HOUR, 0, retention, Slicer(combos, max_orgs))


def calls_by_slice(agg: Local, start: int) -> dict[tuple[str, str, str], float]:
    return {key: acc[FIELD["calls"]] for key, acc in agg.slices_of(start).items()}


def test_a_resent_event_counts_once() -> None:
    agg = aggregator()
    assert agg.add(call("e-1", 10.2)) == "accepted"
    assert agg.add(call("e-1", 10.2)) == "duplicate"
    # Same id with different content is still the same event (the id is the dedup key).
    assert agg.add(call("e-1", 10.4, channel="TELE")) == "duplicate"
    assert calls_by_slice(agg, h(10))[TOTAL] == 1.0
    assert agg.new_ids == [("e-1", h(10), 0)]


def test_slices_an_event_lands_in() -> None:
    agg = aggregator()
    agg.add(call("e-1", 10.2, org_path="00/44/4403", product_line="health", channel="BANCA"))
    assert calls_by_slice(agg, h(10)) == {
        ("*", "*", "*"): 1.0,  # total
        ("00", "*", "*"): 1.0,  # head office (roll-up)
        ("44", "*", "*"): 1.0,  # province
        ("4403", "*", "*"): 1.0,  # the selling org
        ("*", "health", "*"): 1.0,  # product line
        ("*", "*", "BANCA"): 1.0,  # channel
        ("4403", "health", "*"): 1.0,  # configured combinations, on the leaf org
        ("4403", "*", "BANCA"): 1.0,
        ("4403", "health", "BANCA"): 1.0,
    }


def test_event_without_org_path_counts_in_its_org() -> None:
    agg = aggregator(combos=(("org", "channel"),))
    data = example("call.completed", "e-1", at(10.2), channel="TELE")
    del data["org_path"]  # org_code 4403 alone
    agg.add(parse_event(data))
    assert set(agg.slices_of(h(10))) == {
        TOTAL, ("4403", ALL, ALL), (ALL, "life", ALL), (ALL, ALL, "TELE"), ("4403", ALL, "TELE")
    }  # fmt: skip


def test_roll_up_sums_along_org_path() -> None:
    agg = aggregator(combos=())
    agg.add(call("a", 10.1, org_path="00/44/4403"))
    agg.add(call("b", 10.2, org_path="00/44/4403"))
    agg.add(call("c", 10.3, org_path="00/44/4404"))
    agg.add(call("d", 10.4, org_path="00/45/4501"))
    calls = calls_by_slice(agg, h(10))
    # head office: all 4; province 44: a, b, c; 45: d; leaves 2, 1, 1
    assert [calls[(org, ALL, ALL)] for org in ("00", "44", "45", "4403", "4404", "4501")] == [
        4.0, 3.0, 1.0, 2.0, 1.0, 1.0
    ]  # fmt: skip
    assert calls[TOTAL] == 4.0
    assert calls[(ALL, "life", ALL)] == 4.0


def test_orgs_past_max_orgs_fold_into_other() -> None:
    agg = aggregator(max_orgs=4)
    agg.add(call("a", 10.1, org_path="00/44/4403"))  # registers 00, 44, 4403
    agg.add(call("b", 10.2, org_path="00/44/4404"))  # registers 4404: four orgs, the limit
    agg.add(call("c", 10.3, org_path="00/45/4501"))  # 45 and 4501 are past it
    agg.add(call("d", 10.4, org_path="00/46/4601"))
    calls = calls_by_slice(agg, h(10))
    assert agg.slicer.depth == {"00": 1, "44": 2, "4403": 3, "4404": 3}
    assert calls[(OTHER_ORG, ALL, ALL)] == 2.0  # c and d
    assert calls[(OTHER_ORG, "life", "AGENCY")] == 2.0  # combinations use the folded leaf
    assert calls[("00", ALL, ALL)] == 4.0
    orgs = {key[0] for key in calls}
    assert orgs == {ALL, "00", "44", "4403", "4404", OTHER_ORG}  # bounded: max_orgs + '*' + other


def test_a_target_counts_as_an_event_and_is_kept_per_leaf_and_period() -> None:
    agg = aggregator()
    assert agg.add(parse_event(example("target.set", "t-1", at(10.5)))) == "accepted"
    assert agg.slices_of(h(10))[TOTAL][FIELD["targets_set"]] == 1.0
    assert agg.targets.month_targets(2026, 3) == {("00/44/4403", "life", "AGENCY"): 1_000_000.0}


def test_late_events_are_counted_late_and_not_added() -> None:
    agg = aggregator()
    assert agg.add(call("a", 10.2)) == "accepted"
    assert agg.add(call("b", 11.1)) == "accepted"
    [closed] = agg.close_due()  # watermark 11:06 (lateness 0) closes 10:00
    assert closed.start == h(10)
    assert closed.slices[TOTAL][FIELD["calls"]] == 1.0
    assert h(10) not in agg.buckets  # closed buckets leave memory

    assert agg.add(call("c", 10.9)) == "late"
    assert h(10) not in agg.buckets  # nothing re-created for the closed hour
    assert calls_by_slice(agg, h(11))[TOTAL] == 1.0  # and nothing added elsewhere
    assert agg.add(call("c", 10.9)) == "duplicate"  # a late event is remembered too
    assert agg.close_due() == []


def test_forgotten_ids_come_back_late_never_counted_twice() -> None:
    agg = aggregator(retention=HOUR)
    assert agg.add(call("e-1", 10.2)) == "accepted"
    assert agg.add(call("e-2", 11.2)) == "accepted"
    assert [b.start for b in agg.close_due()] == [h(10)]
    # closed through 11:00; ids of buckets before 11:00 − 1 h = 10:00 are forgotten: none yet.
    assert agg.dedup_horizon == h(10)
    assert agg.add(call("e-1", 10.2)) == "duplicate"

    assert agg.add(call("e-3", 12.2)) == "accepted"
    assert [b.start for b in agg.close_due()] == [h(11)]
    # closed through 12:00; horizon 11:00: e-1 (bucket 10:00) is forgotten, e-2 (11:00) kept.
    assert agg.dedup_horizon == h(11)
    assert "e-1" not in agg.seen
    assert agg.seen["e-2"] == h(11)
    # Re-sent after being forgotten: its bucket is closed, so it is late, not counted again.
    assert agg.add(call("e-1", 10.2)) == "late"
    assert agg.add(call("e-2", 11.2)) == "duplicate"
    assert calls_by_slice(agg, h(12))[TOTAL] == 1.0


@pytest.mark.parametrize("retention", [0, HOUR, 7 * 86400])
def test_no_event_is_counted_twice_whatever_the_retention(retention: int) -> None:
    agg = aggregator(retention=retention)
    counted = 0.0
    for hour in range(12):
        # every hour: one new call, and a re-send of every call so far
        for i in range(hour + 1):
            agg.add(call(f"e-{i}", 10 + i + 0.5))
        for bucket in agg.close_due():
            counted += bucket.slices.get(TOTAL, [0.0] * len(FIELD))[FIELD["calls"]]
    counted += sum(agg.slices_of(start)[TOTAL][FIELD["calls"]] for start in agg.buckets)
    assert counted == 12.0


def test_a_partition_whose_events_are_late_still_holds_the_watermark() -> None:
    # Partition 0 starts first and races ahead; partition 1's first event is late (nobody knew of
    # it). From then on partition 1 is an active, slower partition and, as EventClock promises,
    # "a partition racing ahead must not make the others' events late".
    agg = aggregator()
    for hours in (0.5, 1.5, 2.5):
        assert agg.add(call(f"p0-{hours}", hours), partition=0) == "accepted"
        agg.close_due()
    assert agg.clock.closed_through == h(2)  # 00:00 and 01:00 closed, watermark 02:30
    assert agg.add(call("p1-a", 0.6), partition=1) == "late"  # unavoidable
    assert agg.add(call("p0-b", 5.5), partition=0) == "accepted"
    agg.close_due()
    # Partition 1 (at 00:36) is the slowest active partition: the watermark stays at 02:30 and
    # 02:00 stays open for its next event.
    assert agg.clock.watermark == at_epoch(2.5)
    assert agg.add(call("p1-b", 2.7), partition=1) == "accepted"


def test_a_steady_top_contributor_survives_any_cutting_of_the_partials() -> None:
    # One agent behind one complaint in sixteen, each partial also full of one-off agents:
    # in no single partial is it large, over the bucket it is the top contributor.
    agg = aggregator()
    agg.aggregator.clock.expect([0])
    key = ("complaints", "4403", "life", "AGENCY")
    for seq in range(1, 301):
        p = Partial(partition=0, seq=seq, latest=at_epoch(10.5), holding=True)
        one_offs = {f"agent:once-{seq}-{i}": 1 for i in range(15)}
        p.contributors[h(10)] = {key: {"agent:steady": 1, **one_offs}}
        p.cells[h(10)] = {}
        agg.aggregator.merge(p)
    counts = agg.aggregator.contributors[h(10)][key]
    assert len(counts) <= 16 and max(counts, key=counts.__getitem__) == "agent:steady"


def test_a_checkpoint_of_the_single_stage_worker_resumes() -> None:
    # What the worker pickled before it had two stages: ids inside, a clock of its own.
    agg = Aggregator(HOUR, 0, 86400, Slicer((), 100))
    agg.buckets[h(10)] = {("00/44/4403", "life", "AGENCY"): new_accumulator()}
    agg.clock.open_buckets.add(h(10))
    old = {k: v for k, v in agg.__dict__.items() if k != "merged"}
    agg.__dict__ = {**old, "seen": {"e-1": h(10)}, "new_ids": []}
    clock = {k: v for k, v in agg.clock.__dict__.items() if k != "sources"}
    agg.clock.__dict__ = {**clock, "_latest": {0: at_epoch(10.5)}, "_heard": {0: 1.0},
                          "idle_seconds": 30.0}  # fmt: skip
    resumed = pickle.loads(pickle.dumps(agg))
    assert resumed.merged == {} and not hasattr(resumed, "seen")
    assert resumed.clock.sources == {0: (at_epoch(10.5), True)}
    resumed.clock.expect([0, 1])
    p = Partial(partition=1, seq=1, latest=at_epoch(11.5), holding=True)
    p.cells[h(11)] = {}
    resumed.merge(p)
    resumed.clock.report(0, at_epoch(11.6), holding=True)
    assert [b.start for b in resumed.close_due()] == [h(10)]
