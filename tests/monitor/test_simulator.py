"""The simulator: deterministic valid events, a realistic shape, incidents that show."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest

from monitor.simulator import SimConfig, generate
from streams.schema import EVENT_TYPES, parse_event

# Starts on a Friday: the run covers weekends, mid-March and the last three days of March, and
# the hotline outage (day 25) falls on Tuesday 31 March, a full working day.
FRIDAY_6_MARCH = date(2026, 3, 6)
MARCH = SimConfig(
    branches=6, days=28, start=FRIDAY_6_MARCH, scenarios=("mis-selling", "hotline-outage")
)
MIS_SELLING = ("4403", "life", "BANCA")
WAVE = range(20, 27)  # days of the mis-selling wave in MARCH


@functools.cache
def hours(cfg: SimConfig) -> tuple[tuple[dict, ...], ...]:
    return tuple(tuple(batch) for batch in generate(cfg))


def events(cfg: SimConfig) -> Iterator[tuple[int, dict]]:
    """(simulated day index, event) for every event of a run."""
    for n, batch in enumerate(hours(cfg)):
        for event in batch:
            yield n // 24, event


def test_same_seed_same_events_other_seed_other_events() -> None:
    cfg = SimConfig(seed=5, branches=3, product_lines=2, channels=3, days=2, start=date(2026, 3, 2))
    first = list(generate(cfg))
    assert first == list(generate(cfg))
    assert first != list(generate(dataclasses.replace(cfg, seed=6)))


def test_an_incident_leaves_the_days_before_it_alone() -> None:
    cfg = SimConfig(seed=5, branches=4, days=10, start=date(2026, 3, 2))
    calm, wave = hours(cfg), hours(dataclasses.replace(cfg, scenarios=("mis-selling",)))
    assert calm[: 2 * 24] == wave[: 2 * 24]  # the wave starts on day 10 - 8 = 2
    assert calm != wave


def test_every_event_is_valid_unique_and_in_order() -> None:
    cfg = SimConfig(seed=3, days=3, start=date(2026, 3, 10))
    ids: set[str] = set()
    types: Counter[str] = Counter()
    for batch in hours(cfg):
        times = [datetime.fromisoformat(e["event_time"]) for e in batch]
        assert times == sorted(times)
        for event in batch:
            assert json.loads(json.dumps(event)) == event
            parse_event(event)
            assert event["event_time"].endswith("+08:00")
            assert event["org_path"] == f"00/{event['org_code'][:2]}/{event['org_code']}"
            assert event.get("customer_id", "C0")[0] == "C"
            ids.add(event["event_id"])
            types[event["event_type"]] += 1
    assert len(ids) == sum(types.values())
    assert set(types) == set(EVENT_TYPES)
    assert 2_000 <= sum(types.values()) / cfg.days <= 5_000
    assert 0.005 < types["policy.cooling_off_cancel"] / types["policy.issued"] < 0.02


def test_closures_follow_their_reports() -> None:
    opened: dict[str, str] = {}
    for _, event in events(MARCH):
        payload = event["payload"]
        if event["event_type"] in ("claim.reported", "complaint.received"):
            opened[payload.get("claim_id") or payload["complaint_id"]] = event["event_time"]
        elif event["event_type"] == "claim.closed":
            assert opened[payload["claim_id"]] == payload["reported_at"] < event["event_time"]
        elif event["event_type"] == "complaint.closed":
            assert opened[payload["complaint_id"]] == payload["received_at"] < event["event_time"]


def test_volume_follows_weekdays_month_end_and_branch_size() -> None:
    per_day: Counter[int] = Counter()
    per_org: Counter[str] = Counter()
    premium: defaultdict[int, float] = defaultdict(float)
    for day, event in events(MARCH):
        per_day[day] += 1
        per_org[event["org_code"]] += 1
        if event["event_type"] == "premium.received":
            premium[day] += float(event["amount"])
    weekday = {d: (FRIDAY_6_MARCH + timedelta(days=d)).weekday() for d in range(MARCH.days)}
    month_end = (23, 24, 25)  # Sun 29 - Tue 31 March
    weekends = [n for d, n in per_day.items() if weekday[d] >= 5 and d not in month_end]
    workdays = [n for d, n in per_day.items() if weekday[d] < 5 and d not in month_end]
    assert max(weekends) < 0.6 * min(workdays)
    # Mon-Tue 30-31 March against Mon-Tue 16-17 March.
    assert premium[24] + premium[25] > 1.8 * (premium[10] + premium[11])
    assert max(per_org.values()) >= 5 * min(per_org.values())


def test_mis_selling_wave_stands_out_in_its_slice_only() -> None:
    target: Counter[int] = Counter()
    others: Counter[int] = Counter()
    for day, event in events(MARCH):
        if event["event_type"] in ("complaint.received", "policy.cooling_off_cancel"):
            in_slice = (event["org_code"], event["product_line"], event["channel"]) == MIS_SELLING
            (target if in_slice else others)[day] += 1
    before = range(WAVE.start)

    def daily(counts: Counter[int], days: range) -> float:
        return sum(counts[d] for d in days) / len(days)

    assert daily(target, WAVE) >= 4 * daily(target, before) > 0
    assert 0.7 < daily(others, WAVE) / daily(others, before) < 1.4


def test_hotline_outage_loses_calls_at_one_org_for_one_day() -> None:
    calls: defaultdict[tuple[bool, bool], list[bool]] = defaultdict(list)
    for day, event in events(MARCH):
        if event["event_type"] == "call.completed":
            calls[event["org_code"] == "3101", day == 25].append(event["payload"]["answered"])
    ratio = {key: sum(answered) / len(answered) for key, answered in calls.items()}
    assert len(calls[True, True]) > 50
    assert ratio[True, True] < 0.7
    assert min(ratio[True, False], ratio[False, True], ratio[False, False]) > 0.85


def test_unknown_scenario_is_named() -> None:
    with pytest.raises(
        ValueError, match="unknown scenario 'x'; known: mis-selling, hotline-outage"
    ):
        generate(SimConfig(scenarios=("x",)))


@pytest.mark.parametrize(
    "bad", [{"branches": 0}, {"days": 0}, {"volume": 0.0}, {"channels": 7}], ids=str
)
def test_bad_config_is_named(bad: dict) -> None:
    with pytest.raises(ValueError, match=f"SimConfig {next(iter(bad))}="):
        SimConfig(**bad)
