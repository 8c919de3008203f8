"""Data quality: silent feeds, duplicate surges and unit jumps, and what they withhold."""

from __future__ import annotations

import pickle

from streams.fields import FIELD, new_accumulator
from streams.quality import QualityWatch
from streams.scoring import anomaly_id

LEAVES = {"4403": "00/44/4403", "3101": "00/31/3101"}


def bucket(events: dict[str, float], premium: dict[str, tuple[float, float]] | None = None):
    """Org slices and their roll-ups: events per org, (receipts, yuan) per org."""
    slices = {}
    total = new_accumulator()
    for org, n in events.items():
        acc = new_accumulator()
        acc[FIELD["calls"]] = n  # a feed's events: the sum of its per-type counts
        receipts, yuan = (premium or {}).get(org, (0.0, 0.0))
        acc[FIELD["premium_receipts"]], acc[FIELD["premium_received_yuan"]] = receipts, yuan
        slices[(org, "*", "*")] = acc
        for i, v in enumerate(acc):
            total[i] += v
    slices[("*", "*", "*")] = total
    slices[("44", "*", "*")] = slices.get(("4403", "*", "*"), new_accumulator())
    slices[("4403", "life", "BANCA")] = new_accumulator()
    return slices


def warm(watch: QualityWatch, days: int = 14, month: tuple[int, int] = (0, 0)) -> None:
    for _ in range(days):
        day = bucket({"4403": 100.0, "3101": 3.0}, {"4403": (20.0, 20_000.0)})
        found = watch.check(day, {}, LEAVES, day, month=month)
        assert found.found == []


def test_a_silent_feed_is_found_where_events_are_expected_only() -> None:
    watch = QualityWatch()
    warm(watch)
    # 4403 sends nothing where ~100 are usual; 3101 sends nothing where 3 are usual: noise.
    day = bucket({"3101": 0.0})
    result = watch.check(day, {}, LEAVES, day)
    silent = [(f.check, f.slice, f.value) for f in result.found if f.detail.get("org")]
    assert silent == [("feed_silence", ("4403", "*", "*"), 0.0)]
    # Every slice of the bucket holding 4403 is withheld — its parents, its combinations, the
    # total — and 3101's own slice is not.
    assert result.withheld == {
        ("44", "*", "*"): "all", ("4403", "life", "BANCA"): "all", ("*", "*", "*"): "all",
    }  # fmt: skip


def test_each_event_type_gone_silent_is_a_finding_of_its_own() -> None:
    watch = QualityWatch()
    for _ in range(14):
        day = bucket({"4403": 100.0, "3101": 3.0})
        day[("*", "*", "*")][FIELD["premium_receipts"]] = 50.0
        watch.check(day, {}, LEAVES, day)
    # Calls and premium receipts both stop company-wide: two feeds lost, not one.
    quiet = bucket({"4403": 0.0, "3101": 0.0})
    found = watch.check(quiet, {}, LEAVES, quiet).found
    by_type = {f.part: f.detail for f in found if f.detail.get("scope") == "type"}
    assert by_type == {
        "call.completed": {"scope": "type", "event_type": "call.completed"},
        "premium.received": {"scope": "type", "event_type": "premium.received"},
    }
    ids = {anomaly_id(f.check, f.slice, 0, part=f.part) for f in found}
    assert len(ids) == len(found)


def test_a_feed_at_half_its_usual_events_is_a_slow_day_not_a_silent_feed() -> None:
    # The first working days after a long holiday: few claims were reported during it, so few
    # close (46 % of a working day's closures was once reported as a silent claim.closed feed).
    watch = QualityWatch()
    warm(watch)
    receipts = {"4403": (20.0, 20_000.0)}
    day = bucket({"4403": 46.0, "3101": 3.0}, receipts)
    assert watch.check(day, {}, LEAVES, day).found == []
    lost = bucket({"4403": 5.0, "3101": 3.0}, receipts)  # its calls feed is all but gone
    assert [f.slice for f in watch.check(lost, {}, LEAVES, lost).found] == [
        ("4403", "*", "*"), ("*", "*", "*")
    ]  # fmt: skip


def test_a_feed_silent_every_weekend_is_learnt_however_busy_its_weekdays() -> None:
    # A large company's claims back office closes at weekends: about 900 closures a weekday,
    # none on Saturday and Sunday. A weekday's share of the level kept a weekend's expectation
    # at 45 closures, and every weekend was reported as a silent feed.
    watch = QualityWatch()
    found = []
    for d in range(8 * 7):
        n = 0.0 if d % 7 >= 5 else 900.0
        day = bucket({"4403": n, "3101": n})
        found += watch.check(day, {}, LEAVES, day, season=d % 7).found
    assert found == []


def test_silence_detectors_of_an_older_checkpoint_judge_against_half_too() -> None:
    watch = QualityWatch()
    warm(watch)
    for f in watch.silence.values():
        f.detector.tolerance = 0.25  # what checkpoints written before the change hold
    restored = pickle.loads(pickle.dumps(watch))
    day = bucket({"4403": 46.0, "3101": 3.0}, {"4403": (20.0, 20_000.0)})
    assert restored.check(day, {}, LEAVES, day).found == []


def test_silence_and_units_wait_for_the_day_to_end() -> None:
    watch = QualityWatch()
    warm(watch)
    quiet = bucket({"3101": 0.0}, {})
    assert watch.check(quiet, {}, LEAVES).found == []  # an hour of a day: not judged


def test_a_unit_jump_is_found_and_withholds_only_amount_indicators() -> None:
    watch = QualityWatch()
    warm(watch)
    day = bucket({"4403": 100.0, "3101": 3.0}, {"4403": (20.0, 2_000_000.0)})
    result = watch.check(day, {}, LEAVES, day)
    [jump] = result.found
    assert (jump.check, jump.slice, jump.value, jump.expected) == (
        "amount_unit_jump", ("4403", "*", "*"), 100_000.0, 1_000.0
    )  # fmt: skip
    assert jump.detail == {"field": "premium_received_yuan", "factor": 100.0}
    assert jump.score == 1.0  # |log10 100| / 2
    assert set(result.withheld.values()) == {"amounts"}
    # ×3 is a big day, not a unit error.
    day = bucket({"4403": 100.0, "3101": 3.0}, {"4403": (20.0, 60_000.0)})
    calm = watch.check(day, {}, LEAVES, day)
    assert calm.found == []


def test_a_unit_jump_taints_month_to_date_sums_until_the_month_ends() -> None:
    watch = QualityWatch()
    warm(watch, month=(2026, 3))
    fen = bucket({"4403": 100.0, "3101": 3.0}, {"4403": (20.0, 2_000_000.0)})
    jumped = watch.check(fen, {}, LEAVES, fen, month=(2026, 3))
    touched = {("4403", "*", "*"), ("44", "*", "*"), ("4403", "life", "BANCA"), ("*", "*", "*")}
    assert jumped.withheld == dict.fromkeys(touched, "amounts")
    assert jumped.tainted == touched  # the month-to-date detectors learnt it: start afresh
    # The amounts are right again, but March's month-to-date sums still hold the fen day.
    day = bucket({"4403": 100.0, "3101": 3.0}, {"4403": (20.0, 20_000.0)})
    later = watch.check(day, {}, LEAVES, day, month=(2026, 3))
    assert (later.found, later.withheld, later.tainted) == (
        [],
        dict.fromkeys(touched, "month"),
        set(),
    )
    april = watch.check(day, {}, LEAVES, day, month=(2026, 4))
    assert (april.found, april.withheld) == ([], {})


def test_a_days_verdict_reaches_the_slices_of_the_whole_day_not_only_its_last_hour() -> None:
    watch = QualityWatch()
    warm(watch, month=(2026, 3))
    fen = bucket({"4403": 100.0, "3101": 3.0}, {"4403": (20.0, 2_000_000.0)})
    # The day's last hour sold only through 4403's agency channel; BANCA sold earlier that day.
    last_hour = {key: acc for key, acc in fen.items() if key != ("4403", "life", "BANCA")}
    last_hour[("4403", "life", "AGENCY")] = new_accumulator()
    jumped = watch.check(last_hour, {}, LEAVES, fen, month=(2026, 3))
    both = {("4403", "life", "BANCA"), ("4403", "life", "AGENCY")}
    assert both <= jumped.tainted  # the hours of both were learnt: start afresh
    assert {key: jumped.withheld[key] for key in both} == dict.fromkeys(both, "amounts")


def test_a_duplicate_surge_is_found_per_org() -> None:
    watch = QualityWatch()
    warm(watch)
    # Within the day (no day sums yet): duplicates are judged per bucket.
    result = watch.check(bucket({"4403": 100.0, "3101": 3.0}), {"4403": 60}, LEAVES)
    [surge] = [f for f in result.found if f.check == "duplicate_surge"]
    # 60 re-sent among 160 received: 0.375
    assert (surge.slice, surge.value, surge.k, surge.n) == (("4403", "*", "*"), 0.375, 60, 160)
    assert result.withheld == {}  # duplicates are dropped: the business figures are right
