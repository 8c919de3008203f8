"""NAB scoring: tiny files worked out by hand, the exact threshold sweep against brute force,
and — when the NAB folder is present — NAB's own per-row and per-file scores reproduced."""

from __future__ import annotations

import csv
import json
import math
import os
import random
from pathlib import Path

import pytest

from bench.nab import corpus
from bench.nab.scoring import (
    PROFILES,
    best_threshold,
    label_rows,
    normalise,
    probation_rows,
    scaled_sigmoid,
    score_corpus,
    score_file,
)

STANDARD, LOW_FP, LOW_FN = (PROFILES[n] for n in PROFILES)
MAX_TP = 0.9866142981514305  # σ(-1) = 2 / (1 + e^-5) - 1


def detections(n: int, rows: list[int]) -> list[float]:
    return [1.0 if i in rows else 0.0 for i in range(n)]


# One file of 40 rows: probation floor(0.15 × 40) = 6 rows, one window over rows 20..29 (10 rows).
FILE = label_rows(40, [(20, 29)])


def test_probation_is_fifteen_percent_capped_at_750_rows() -> None:
    assert [probation_rows(n) for n in (40, 1127, 4032, 5000, 5001, 117_236)] == [
        6, 169, 604, 750, 750, 750,
    ]  # fmt: skip


def test_scaled_sigmoid_by_hand() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(MAX_TP)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.8482836)  # 2 / (1 + e^-2.5) - 1
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-MAX_TP)
    assert scaled_sigmoid(3.0) == pytest.approx(-1.0, abs=1e-6) and scaled_sigmoid(3.01) == -1.0


@pytest.mark.parametrize(
    ("hits", "score", "counts"),
    [
        # Left edge: position -(29 - 20 + 1) / 10 = -1, weight σ(-1) / σ(-1) = 1.
        ([20], 1.0, (1, 0, 0)),
        # Middle: position -(29 - 25 + 1) / 10 = -0.5, 0.8482836 / 0.9866143 = 0.8597926.
        ([25], 0.8597926, (1, 0, 0)),
        # Only the earliest of two counts: position -0.8, (2 / (1 + e^-4) - 1) / σ(-1) = 0.9771068.
        ([27, 22], 0.9771068, (1, 0, 0)),
        # Missed window: -fn.
        ([], -1.0, (0, 0, 1)),
        # In probation (row 3): not scored at all.
        ([3], -1.0, (0, 0, 1)),
        # Before any window: the full -fp; plus the missed window.
        ([10], -1.11, (0, 1, 1)),
        # Just past the window: position (31 - 29) / (10 - 1) = 0.2222, σ = -0.5046724, × 0.11.
        ([20, 31], 1.0 - 0.0555140, (1, 1, 0)),
        # Far past it: (39 - 29) / 9 = 1.111, σ = -0.9922979, × 0.11 = -0.1091528.
        ([20, 39], 1.0 - 0.1091528, (1, 1, 0)),
    ],
)
def test_one_file_by_hand(hits: list[int], score: float, counts: tuple[int, int, int]) -> None:
    result = score_file(FILE, detections(40, hits), 0.5, STANDARD)
    assert result.score == pytest.approx(score, abs=1e-6)
    assert (result.tp, result.fp, result.fn) == counts
    # NAB's S(t) column: the window's outcome at its first row, false positives at their own.
    false_positives = {h for h in hits if 6 <= h < 20 or h > 29}
    assert {i for i, m in enumerate(result.marks) if m} == {20} | false_positives
    assert math.fsum(result.marks) == pytest.approx(result.score)


def test_profiles_weigh_misses_and_false_alarms() -> None:
    scores = detections(40, [10])  # one false positive before the window, the window missed
    assert score_file(FILE, scores, 0.5, STANDARD).score == pytest.approx(-1.11)
    assert score_file(FILE, scores, 0.5, LOW_FP).score == pytest.approx(-1.22)
    assert score_file(FILE, scores, 0.5, LOW_FN).score == pytest.approx(-2.11)


def test_threshold_decides_what_is_a_detection() -> None:
    scores = [0.0] * 40
    scores[25] = 0.5
    assert score_file(FILE, scores, 0.5, STANDARD).tp == 1  # at the threshold counts
    assert score_file(FILE, scores, 0.5000001, STANDARD).tp == 0


def test_normalisation_by_hand() -> None:
    # 4 windows: null = -4, perfect = 4; raw 0 → 50. Low-FN profile: null = -8, 100 × 8 / 12.
    assert normalise(0.0, 4, STANDARD) == 50.0
    assert normalise(0.0, 4, LOW_FN) == pytest.approx(66.666667)
    assert normalise(-4.0, 4, STANDARD) == 0.0 and normalise(4.0, 4, STANDARD) == 100.0


def test_best_threshold_by_hand() -> None:
    scores = [0.0] * 40
    scores[10], scores[25], scores[35] = 0.9, 0.8, 0.7
    # t > 0.9: -1. t = 0.9: -1.11. t = 0.8: -0.11 + 0.8597926 = 0.7497926.
    # t = 0.7: adds (35 - 29) / 9 = 0.667 → 0.11 × σ = -0.1024221, 0.6473705. Best: 0.8,
    # normalised 100 × (0.7497926 + 1) / 2 = 87.48963.
    threshold, score = best_threshold([(FILE, scores)], STANDARD)
    assert threshold == 0.8
    assert score == pytest.approx(87.48963, abs=1e-4)
    assert score_corpus([(FILE, scores)], 0.8, STANDARD) == pytest.approx(score)


def test_never_alerting_is_zero_and_the_sweep_can_choose_it() -> None:
    scores = [0.0] * 40
    scores[10] = 0.9  # alerting on anything only costs
    assert best_threshold([(FILE, scores)], STANDARD) == (math.inf, 0.0)


def test_sweep_equals_brute_force_on_random_corpora() -> None:
    rng = random.Random(7)
    files = []
    for _ in range(5):
        n = rng.randint(60, 200)
        starts = sorted(rng.sample(range(n // 5, n - 10), 2))
        windows = [(starts[0], starts[0] + 4)] if starts[1] - starts[0] < 6 else [
            (starts[0], starts[0] + 4), (starts[1], min(n - 1, starts[1] + 8))]  # fmt: skip
        files.append((label_rows(n, windows), [round(rng.random(), 2) for _ in range(n)]))
    for profile in PROFILES.values():
        _, swept = best_threshold(files, profile)
        candidates = {s for _, scores in files for s in scores}
        brute = max(score_corpus(files, t, profile) for t in candidates)
        assert swept == pytest.approx(max(brute, 0.0), abs=1e-9)


@pytest.mark.parametrize(
    ("windows", "message"),
    [([(5, 9), (9, 12)], "overlap"), ([(35, 40)], "outside rows 0..39")],
)
def test_bad_windows_are_named(windows: list[tuple[int, int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        label_rows(40, windows)


def test_scores_must_cover_every_row() -> None:
    with pytest.raises(ValueError, match="39 scores for 40 rows"):
        score_file(FILE, [0.0] * 39, 0.5, STANDARD)


# ---- NAB's own outputs -------------------------------------------------------------------------


def nab_folder() -> Path:
    given = os.environ.get("NAB_DIR")
    try:
        return corpus.locate(Path(given) if given else None)
    except corpus.CorpusMissing as exc:
        pytest.skip(f"NAB subset not found, reference check skipped: {exc}")


@pytest.mark.parametrize("detector", ["numenta", "windowedGaussian"])
def test_reproduces_nab_reference_scores(detector: str) -> None:
    folder = nab_folder()
    thresholds = json.loads((folder / "reference_results" / "thresholds.json").read_text())
    checked = 0
    for f in corpus.load(folder):
        category, name = f.name.split("/")
        path = folder / "reference_results" / detector / category / f"{detector}_{name}"
        with path.open(newline="") as fin:
            rows = list(csv.DictReader(fin))
        assert [r["timestamp"] for r in rows] == list(f.timestamps)
        inside = [int(w >= 0) for w in f.rows.window[probation_rows(len(rows)) :]]
        assert inside == [int(r["label"]) for r in rows[probation_rows(len(rows)) :]]
        scores = [float(r["anomaly_score"]) for r in rows]
        for profile in PROFILES.values():
            result = score_file(f.rows, scores, thresholds[detector][profile.name]["threshold"],
                                profile)  # fmt: skip
            expected = [float(r[f"S(t)_{profile.name}"]) for r in rows]
            assert result.marks == pytest.approx(expected, abs=1e-9), (f.name, profile.name)
            assert result.score == pytest.approx(math.fsum(expected), abs=1e-9)
            checked += 1
    assert checked == 36 * 3


def test_reproduces_the_published_subset_table() -> None:
    # The folder's README: Numenta HTM 75.86 and Windowed Gaussian 41.42, standard profile,
    # best threshold per profile.
    folder = nab_folder()
    for detector, published in (("numenta", 75.86), ("windowedGaussian", 41.42)):
        files = []
        for f in corpus.load(folder):
            category, name = f.name.split("/")
            path = folder / "reference_results" / detector / category / f"{detector}_{name}"
            with path.open(newline="") as fin:
                files.append((f.rows, [float(r["anomaly_score"]) for r in csv.DictReader(fin)]))
        assert best_threshold(files, STANDARD)[1] == pytest.approx(published, abs=0.005)
