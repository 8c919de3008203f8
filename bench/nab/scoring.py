"""The NAB scoring method: labelled windows, the scaled sigmoid, profiles and normalisation.

Each row of a file gets a *weight*, the score it would earn if it were a detection:

- inside a labelled window, ``tp × σ(-(end - i + 1) / length) / σ(-1)``: ≈ +1 at the window's
  left edge, falling to ≈ 0 at its right edge. Only the window's earliest detection counts (the
  earliest has the largest weight); a window without one costs ``-fn``;
- outside every window, ``fp × σ(|i - end| / (length - 1))`` measured from the closest window that
  ended before it (≈ 0 just after a window, the full ``-fp`` from about one window width on), or
  ``-fp`` before the first window;
- the first 15 % of the file, at most 750 rows, is probation and earns nothing.

``σ(x) = 2 / (1 + e^(5x)) - 1`` (−1 beyond 3). A file's raw score is the sum, and a corpus is
normalised as ``100 × (S - S_null) / (S_perfect - S_null)`` with ``S_null = -fn × windows`` (a
detector that never alerts) and ``S_perfect = tp × windows``.

>>> rows = label_rows(20, [(10, 14)])          # probation: floor(0.15 × 20) = 3 rows
>>> round(rows.weight[10], 4), round(rows.weight[14], 4)   # window's first and last rows
(1.0, 0.4684)
>>> result = score_file(rows, [0.0] * 12 + [1.0] + [0.0] * 7, 0.5, PROFILES["standard"])
>>> round(result.score, 4), (result.tp, result.fp, result.fn)   # detected at row 12 of 10..14
(0.9174, (1, 0, 0))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750  # 15 % of 5,000 rows
OUTSIDE = -1  # row index into windows for a row outside every window
PROBATION = -2  # and for a row in probation


@dataclass(frozen=True)
class Profile:
    """The weights of one application profile (NAB's cost matrix)."""

    name: str
    tp: float
    fn: float
    fp: float


PROFILES = {
    p.name: p
    for p in (
        Profile("standard", tp=1.0, fn=1.0, fp=0.11),
        Profile("reward_low_FP_rate", tp=1.0, fn=1.0, fp=0.22),
        Profile("reward_low_FN_rate", tp=1.0, fn=2.0, fp=0.11),
    )
}


def probation_rows(n: int) -> int:
    """Rows at the start of an ``n``-row file that are not scored.

    >>> probation_rows(4032), probation_rows(10_000), probation_rows(5)
    (604, 750, 0)
    """
    return min(math.floor(PROBATION_FRACTION * n), PROBATION_MAX_ROWS)


def scaled_sigmoid(position: float) -> float:
    """NAB's weight of a relative position: -1 is a window's left edge, 0 its right edge, and
    positive positions lie past it.

    >>> round(scaled_sigmoid(-1.0), 5), scaled_sigmoid(0.0), round(scaled_sigmoid(1.0), 5)
    (0.98661, 0.0, -0.98661)
    >>> scaled_sigmoid(3.5)
    -1.0
    """
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


_MAX_TP = scaled_sigmoid(-1.0)


@dataclass(frozen=True)
class LabelledRows:
    """One file's rows, each with its window (or :data:`OUTSIDE` / :data:`PROBATION`) and the
    unit weight it earns as a detection: divided by σ(-1) in a window, ``σ(...)`` outside one
    (multiplied by the profile's ``tp`` or ``fp`` when scored)."""

    window: tuple[int, ...]
    weight: tuple[float, ...]
    windows: tuple[tuple[int, int], ...]


def label_rows(n: int, windows: Sequence[tuple[int, int]]) -> LabelledRows:
    """Label ``n`` rows with ``windows`` given as (first row, last row), in time order."""
    ordered = sorted(windows)
    for (a, b), (c, _) in pairwise(ordered):
        if c <= b:
            raise ValueError(f"windows {a}..{b} and {c}.. overlap")
    window = [OUTSIDE] * n
    weight = [-1.0] * n
    for w, (first, last) in enumerate(ordered):
        if not 0 <= first <= last < n:
            raise ValueError(f"window {first}..{last} is outside rows 0..{n - 1}")
        length = last - first + 1
        for i in range(first, last + 1):
            window[i] = w
            weight[i] = scaled_sigmoid(-(last - i + 1) / length) / _MAX_TP
        following = ordered[w + 1][0] if w + 1 < len(ordered) else n
        for i in range(last + 1, following):
            # A one-row window has no width to measure distance by: treat what follows as far.
            weight[i] = scaled_sigmoid((i - last) / (length - 1)) if length > 1 else -1.0
    for i in range(min(probation_rows(n), n)):
        window[i] = PROBATION
    return LabelledRows(tuple(window), tuple(weight), tuple(ordered))


@dataclass(frozen=True)
class FileResult:
    """A file scored at one threshold; ``marks`` is NAB's per-row ``S(t)`` column (each window's
    outcome at its first row, each false positive at its own row)."""

    score: float
    tp: int
    fp: int
    fn: int
    marks: tuple[float, ...]


def score_file(
    rows: LabelledRows, scores: Sequence[float], threshold: float, profile: Profile
) -> FileResult:
    """Score one file's anomaly scores: a row at or above ``threshold`` is a detection."""
    if len(scores) != len(rows.window):
        raise ValueError(f"{len(scores)} scores for {len(rows.window)} rows")
    marks = [0.0] * len(scores)
    earliest: dict[int, int] = {}
    fp = 0
    for i, (w, s) in enumerate(zip(rows.window, scores, strict=True)):
        if w == PROBATION or not s >= threshold:
            continue
        if w == OUTSIDE:
            marks[i] = rows.weight[i] * profile.fp
            fp += 1
        else:
            earliest.setdefault(w, i)
    for w, (first, _) in enumerate(rows.windows):
        hit = earliest.get(w)
        marks[first] = -profile.fn if hit is None else rows.weight[hit] * profile.tp
    tp = len(earliest)
    return FileResult(math.fsum(marks), tp, fp, len(rows.windows) - tp, tuple(marks))


def normalise(raw: float, windows: int, profile: Profile) -> float:
    """NAB's normalised score: 0 for never alerting, 100 for every window at its left edge.

    >>> normalise(-4.0, 4, PROFILES["standard"]), normalise(4.0, 4, PROFILES["standard"])
    (0.0, 100.0)
    """
    null, perfect = -profile.fn * windows, profile.tp * windows
    return 100.0 * (raw - null) / (perfect - null)


def score_corpus(
    files: Sequence[tuple[LabelledRows, Sequence[float]]], threshold: float, profile: Profile
) -> float:
    """Normalised score of a corpus at one threshold, fixed in advance."""
    raw = math.fsum(score_file(rows, s, threshold, profile).score for rows, s in files)
    return normalise(raw, sum(len(rows.windows) for rows, _ in files), profile)


def best_threshold(
    files: Sequence[tuple[LabelledRows, Sequence[float]]], profile: Profile
) -> tuple[float, float]:
    """(threshold, normalised score) of the best threshold chosen after the fact.

    Exact, in one pass: rows are taken from the highest score down, each lowering the threshold
    to its own score; a false positive adds its cost, and a window's value rises to the weight of
    the earliest detection seen so far.
    """
    points: list[tuple[float, int, float]] = []  # (score, global window or OUTSIDE, weight)
    offset = 0
    for rows, scores in files:
        for w, weight, s in zip(rows.window, rows.weight, scores, strict=True):
            if w != PROBATION:
                points.append((s, OUTSIDE if w == OUTSIDE else offset + w, weight))
        offset += len(rows.windows)
    points.sort(key=lambda p: p[0], reverse=True)
    raw = -profile.fn * offset
    value: dict[int, float] = {}
    best = (math.inf, raw)
    for j, (s, w, weight) in enumerate(points):
        if w == OUTSIDE:
            raw += weight * profile.fp
        else:
            gain = weight * profile.tp
            previous = value.get(w, -profile.fn)
            if gain > previous:
                raw += gain - previous
                value[w] = gain
        last_of_level = j + 1 == len(points) or points[j + 1][0] != s
        if last_of_level and raw > best[1]:
            best = (s, raw)
    return best[0], normalise(best[1], offset, profile)
