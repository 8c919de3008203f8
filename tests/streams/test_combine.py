"""Stage one per partition: what a partial carries, and when a partition holds the watermark."""

from __future__ import annotations

import math

from streams.combine import IDLE_SECONDS, TOP_N, UNHEARD_SECONDS, Combiner
from streams.fields import FIELD
from streams.partial import decode, encode
from streams.schema import parse_event
from tests.factories import at
from tests.streams.examples import example

HOUR = 3600
T0 = 1_772_380_800  # tests.factories.at(0)


def combiner(heard: float = 100.0) -> Combiner:
    return Combiner(partition=3, bucket_seconds=HOUR, dedup_retention_seconds=HOUR, heard=heard)


def epoch(hours: float) -> float:
    return T0 + hours * HOUR


def event(kind: str, event_id: str, hours: float, **envelope):
    return parse_event(example(kind, event_id, at(hours), **envelope))


def test_a_partial_carries_sums_cases_targets_and_contributors_through_its_wire_format() -> None:
    feed = combiner()
    feed.add(event("call.completed", "c-1", 10.2))
    feed.add(event("complaint.received", "k-1", 10.4, agent_id="A-7"))
    feed.add(event("target.set", "t-1", 10.5))
    feed.add(event("call.completed", "c-1", 10.2))  # re-sent into the open bucket
    p = decode(encode(feed.take(now=100.0)))
    assert (p.partition, p.seq, p.latest, p.holding) == (3, 1, epoch(10.5), True)
    [cell] = p.cells[T0 + 10 * HOUR].values()
    assert (cell[FIELD["calls"]], cell[FIELD["complaints"]]) == (1.0, 1.0)
    assert p.counted == {T0 + 10 * HOUR: 3}
    assert p.duplicates == {T0 + 10 * HOUR: {"4403": 1}}
    [(op, case_id, opened, _leaf)] = p.cases
    assert (op, case_id, opened) == ("open_complaint", "C-1", epoch(10.4))
    assert [t[1:3] for t in p.targets] == [["2026-03", 1_000_000.0]]
    [counts] = p.contributors[T0 + 10 * HOUR].values()
    assert counts["agent:A-7"] == 1
    assert feed.take(now=100.0) is None  # nothing new: no partial
    assert feed.new_ids == [(i, T0 + 10 * HOUR, 3) for i in ("c-1", "k-1", "t-1")]


def test_partials_are_numbered_per_partition_from_where_the_last_owner_stopped() -> None:
    feed = Combiner(partition=0, bucket_seconds=HOUR, dedup_retention_seconds=HOUR, seq=41)
    feed.add(event("call.completed", "c-1", 10.2))
    assert feed.take(now=0.0).seq == 42


def test_an_idle_partition_stops_holding_after_idle_seconds() -> None:
    feed = combiner(heard=100.0)
    feed.add(event("call.completed", "c-1", 10.2))
    assert feed.holding(100.0 + IDLE_SECONDS) is True
    assert feed.holding(100.5 + IDLE_SECONDS) is False
    feed.take(now=100.0)
    # Turning idle is news: the closer must hear it, or the watermark would wait for it.
    p = feed.take(now=100.5 + IDLE_SECONDS)
    assert p is not None and p.holding is False and p.empty


def test_a_partition_with_a_backlog_is_never_idle() -> None:
    feed = combiner(heard=100.0)
    feed.add(event("call.completed", "c-1", 10.2))
    feed.behind = True  # the last record read had more after it: a replay, not a silent feed
    assert feed.holding(100.0 + 10 * IDLE_SECONDS) is True


def test_an_assigned_partition_never_heard_from_stops_holding_after_a_moment() -> None:
    feed = combiner(heard=100.0)
    assert feed.latest == -math.inf
    assert feed.holding(100.0 + UNHEARD_SECONDS) is True
    assert feed.holding(100.5 + UNHEARD_SECONDS) is False


def test_late_events_are_not_summed_but_their_timers_still_run() -> None:
    feed = combiner()
    closed_through = T0 + 11 * HOUR
    assert feed.add(event("complaint.closed", "k-2", 10.5), closed_through) == "late"
    p = feed.take(now=100.0)
    assert p.cells == {} and [c[0] for c in p.cases] == ["close_complaint"]


def test_ids_are_forgotten_past_the_retention() -> None:
    feed = combiner()
    feed.add(event("call.completed", "c-1", 10.2))
    feed.add(event("call.completed", "c-2", 12.2))
    feed.forget_before(T0 + 11 * HOUR)
    assert set(feed.seen) == {"c-2"}


def test_contributors_keep_a_bounded_top() -> None:
    feed = combiner()
    for i in range(5 * TOP_N):
        feed.add(event("complaint.received", f"k-{i}", 10.1, agent_id=f"A-{i}"))
    [counts] = feed.pending.contributors[T0 + 10 * HOUR].values()
    assert sum(1 for k in counts if k.startswith("agent:")) <= 2 * TOP_N
