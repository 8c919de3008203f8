"""The two baselines the production detector is compared with, scored before they learn each row.

- **Rolling z-score** over the last 250 values, turned into a score on the service's own scale:
  ``score_from_p(two-sided normal tail of z)``, so its fixed threshold 0.5 means |z| ≥ 3.89
  (p ≤ 1e-4), the same promise the service's threshold makes. A window with no spread scores 0.
- **River HalfSpaceTrees** (10 trees, height 8, window 250, seed 42) after an online min-max
  scaler; its fixed threshold is 0.5, the middle of its [0, 1] score (it has no calibration).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from river import anomaly, compose, preprocessing, stats, utils

from streams.detectors import score_from_p

ZSCORE_WINDOW = 250


def zscore_scores(values: Sequence[float], window: int = ZSCORE_WINDOW) -> list[float]:
    """Calibrated rolling z-score per value, each from the ``window`` values before it.

    >>> scores = zscore_scores([1.0, 2.0] * 20 + [30.0])
    >>> max(scores[:-1]) < 0.5 < scores[-1]
    True
    """
    var: Any = utils.Rolling(stats.Var, window_size=window)  # typed as its wrapped Var
    out = []
    for v in values:
        n = len(var.window)
        if n < 2:
            out.append(0.0)
        else:
            sd = math.sqrt(max(var.get(), 0.0))
            deviation = abs(v - var.obj.mean.get())
            # A flat window has no spread to measure by: no evidence either way.
            out.append(score_from_p(math.erfc(deviation / sd / math.sqrt(2.0))) if sd else 0.0)
        var.update(v)
    return out


def hst_scores(values: Sequence[float], seed: int = 42) -> list[float]:
    """HalfSpaceTrees score per value after min-max scaling, both learnt online."""
    model = compose.Pipeline(
        preprocessing.MinMaxScaler(),
        anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=250, seed=seed),
    )
    out = []
    for v in values:
        x = {"value": v}
        out.append(float(model.score_one(x)))
        model.learn_one(x)
    return out
