"""Online detectors, one per (indicator, slice) series, on River's anomaly-detector contract.

Contract (River's ``AnomalyDetector``): ``score_one(x) -> float`` in [0, 1], higher is more
anomalous, and it is always called *before* ``learn_one(x)`` for the same bucket. ``x`` is a dict
with ``value`` (the indicator), ``k`` (the count it rests on), ``n`` (exposure / sample size) and
``season`` (from :func:`streams.windows.season_of`), and optionally ``base``, the ordinary season
a special one is a variant of (:func:`streams.windows.base_of`), which count seasons start
from. Deciding is separate from scoring:
:class:`SeriesFilter` classifies a score against the one service threshold and keeps the detector
from learning anomalies.

Scores are calibrated: ``score = -log10(p) / 8`` clipped to [0, 1], where ``p`` is the tail
probability of the observation under the learned baseline. So :data:`ALERT_THRESHOLD` = 0.5 means
"p ≤ 1e-4" for every detector and series, and small counts cannot reach it: three complaints where
one was expected is not evidence, thirty where ten were expected is. A bucket that cannot be
evidence (NaN, infinities, k > n) is scored 0 and not learnt.

Modules: :mod:`~streams.detectors.tails` (tail probabilities, the score scale),
:mod:`~streams.detectors.baseline` (seasonal baseline, expectation band),
:mod:`~streams.detectors.counts` (count, proportion), :mod:`~streams.detectors.level`,
:mod:`~streams.detectors.metric` with :mod:`~streams.detectors.evidence` and
:mod:`~streams.detectors.reach` (raw metrics without counts; what ``qualmon detect`` runs),
:mod:`~streams.detectors.filter` (deciding).

>>> det = CountDetector()
>>> for _ in range(20):
...     det.learn_one({"k": 10.0, "season": 0})
>>> det.score_one({"k": 12.0, "season": 0}) < 0.1   # within noise
True
>>> det.score_one({"k": 40.0, "season": 0}) > ALERT_THRESHOLD
True
"""

from __future__ import annotations

from streams.detectors.baseline import Expectation, _Seasonal
from streams.detectors.counts import CountDetector, ProportionDetector
from streams.detectors.filter import SeriesFilter
from streams.detectors.level import LevelDetector
from streams.detectors.metric import MetricDetector
from streams.detectors.tails import (
    ALERT_THRESHOLD,
    binomial_tail,
    normal_upper_tail,
    poisson_lower_tail,
    poisson_upper_tail,
    score_from_p,
)

Detector = CountDetector | ProportionDetector | LevelDetector | MetricDetector

#: Detector class per indicator kind; ``metric`` is for raw metric streams without counts, and is
#: what ``qualmon detect`` runs.
DETECTORS: dict[str, type[Detector]] = {
    "count": CountDetector,
    "proportion": ProportionDetector,
    "level": LevelDetector,
    "metric": MetricDetector,
}

__all__ = [
    "ALERT_THRESHOLD",
    "DETECTORS",
    "CountDetector",
    "Detector",
    "Expectation",
    "LevelDetector",
    "MetricDetector",
    "ProportionDetector",
    "SeriesFilter",
    "_Seasonal",  # checkpoints written before the split pickled it under this package
    "binomial_tail",
    "normal_upper_tail",
    "poisson_lower_tail",
    "poisson_upper_tail",
    "score_from_p",
]
