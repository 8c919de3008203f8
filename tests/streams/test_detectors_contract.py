"""One contract over every detector — each kind in ``DETECTORS`` and the one ``qualmon detect``
runs — as river's ``test_estimators``: defaults, docstring, pickling mid-stream, clone, scores in
[0, 1] on realistic and hostile input, score-before-learn, determinism, and small state."""

from __future__ import annotations

import inspect
import math
import pickle
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from river import base

from monitor.detect import DETECTOR
from streams.detectors import DETECTORS
from streams.windows import season_of
from tests.streams.test_detectors import stream

MONDAY = 1_772_380_800  # 2 March 2026 00:00 Shanghai
DAY = 86400
STATE_LIMIT = 16 * 1024  # bytes per watched series: 100,000 series in well under 2 GB

CLASSES: list[type] = list(dict.fromkeys([*DETECTORS.values(), DETECTOR]))


HOSTILE = [0.0, -1.0, 5.0, 1e-300, 1e300, -1e300, math.inf, -math.inf, math.nan]


def hostile(seed: int, length: int = 300) -> Iterator[dict[str, Any]]:
    """Impossible buckets (NaN, infinities, k > n, negative counts, extremes) among normal ones."""
    rng = random.Random(seed)
    for i in range(length):
        if i < 100 or rng.random() < 0.3:
            yield {"value": 10.0 + rng.random(), "k": 10.0, "n": 100.0, "season": i % 7}
        else:
            yield {"value": rng.choice(HOSTILE), "k": rng.choice(HOSTILE),
                   "n": rng.choice(HOSTILE), "season": rng.randrange(7)}  # fmt: skip


def run(detector: Any, xs: Any) -> list[float]:
    """Score, then learn, every bucket (the service's order)."""
    scores = []
    for x in xs:
        scores.append(detector.score_one(x))
        detector.learn_one(x)
    return scores


def check_defaults_construct(cls: type) -> None:
    detector = cls()
    assert isinstance(detector, base.AnomalyDetector)
    # Every __init__ parameter is stored under its own name, which clone() and repr rely on.
    params = inspect.signature(cls.__init__).parameters
    for name in list(params)[1:]:
        assert getattr(detector, name) == params[name].default


def check_docstring(cls: type) -> None:
    assert "__doc__" in cls.__dict__ and cls.__doc__ and cls.__doc__.strip()


def check_pickle_round_trip_mid_stream(cls: type) -> None:
    xs = list(stream(1, 400))
    detector = cls()
    run(detector, xs[:200])
    restored = pickle.loads(pickle.dumps(detector))
    after = run(detector, xs[200:])
    assert run(restored, xs[200:]) == after
    assert any(s > 0.0 for s in after)  # past every warm-up: the comparison means something


def check_clone_is_fresh(cls: type) -> None:
    params = {"direction": "both", "alpha": 0.2}
    detector = cls(**params)
    xs = list(stream(2, 400))
    run(detector, xs)
    clone = detector.clone()
    assert type(clone) is cls and clone is not detector
    assert clone._get_params() == detector._get_params()
    assert (clone.direction, clone.alpha) == ("both", 0.2)
    # Fresh: nothing learnt, exactly as a new instance with the same parameters.
    assert pickle.dumps(clone) == pickle.dumps(cls(**params))
    assert run(clone, xs) == run(cls(**params), xs)
    # And clone() of a default instance is the default instance.
    assert pickle.dumps(cls().clone()) == pickle.dumps(cls())


def check_scores_in_unit_interval(cls: type) -> None:
    for direction in ("high", "low", "both"):
        scores = run(cls(direction=direction), stream(3, 400))
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores), scores
        assert any(s > 0.0 for s in scores)  # the stream does test something


def check_hostile_input_is_never_a_nan(cls: type) -> None:
    for direction in ("high", "low", "both"):
        detector = cls(direction=direction)
        scores = run(detector, hostile(4))
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores), scores
        # The state is still sound: ordinary buckets afterwards get ordinary scores.
        tail = run(detector, [{"value": 10.5, "k": 10.0, "n": 100.0, "season": 1}] * 5)
        assert all(0.0 <= s <= 1.0 for s in tail)
        assert pickle.loads(pickle.dumps(detector)) is not None


def check_score_before_learn(cls: type) -> None:
    detector = cls()
    for x in stream(5, 400):
        before = pickle.dumps(detector)
        first = detector.score_one(x)
        assert detector.score_one(x) == first
        assert pickle.dumps(detector) == before  # scoring changed no state
        detector.learn_one(x)


def check_deterministic(cls: type) -> None:
    assert run(cls(), stream(6, 400)) == run(cls(), stream(6, 400))
    first, second = run(cls(), hostile(7)), run(cls(), hostile(7))
    assert first == second


def check_state_stays_small(cls: type) -> None:
    # 10,000 hourly buckets: every hour-of-week and month-end season seen many times.
    rng = random.Random(8)
    detector = cls()
    for i in range(10_000):
        n = float(rng.randint(50, 250))
        x = {"value": rng.lognormvariate(3, 1), "k": float(rng.randint(0, int(n))), "n": n,
             "season": season_of(MONDAY + i * 3600, 3600)}  # fmt: skip
        detector.score_one(x)
        detector.learn_one(x)
    assert len(pickle.dumps(detector)) < STATE_LIMIT


CHECKS: list[Callable[[type], None]] = [
    check_defaults_construct,
    check_docstring,
    check_pickle_round_trip_mid_stream,
    check_clone_is_fresh,
    check_scores_in_unit_interval,
    check_hostile_input_is_never_a_nan,
    check_score_before_learn,
    check_deterministic,
    check_state_stays_small,
]


@pytest.mark.parametrize(
    ("cls", "check"),
    [(cls, check) for cls in CLASSES for check in CHECKS],
    ids=[f"{cls.__name__}-{check.__name__}" for cls in CLASSES for check in CHECKS],
)
def test_detector_contract(cls: type, check: Callable[[type], None]) -> None:
    check(cls)


def test_the_contract_covers_what_qualmon_detect_runs() -> None:
    assert DETECTOR in CLASSES and set(DETECTORS.values()) <= set(CLASSES)
