"""Building blocks of the metric detector's evidence: robust location and scale, a running-average
test calibrated by its own history, and the novelty of a transition between value bands.

Plain floats and small lists, so a watched series stays a few kilobytes when pickled.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from streams.detectors.tails import normal_upper_tail

_MAD_TO_SD = 1.4826  # MAD of a normal sample × this = its standard deviation
_MIN_VARIANCE = 1e-4  # floor of a running average's variance (averages live in [0, 1])


def median(values: list[float]) -> float:
    """The upper median (no averaging of the two middle values: cheaper, and as robust).

    >>> median([3.0, 1.0, 2.0]), median([4.0, 1.0, 3.0, 2.0])
    (2.0, 3.0)
    """
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def centre_and_scale(window: Iterable[float]) -> tuple[float, float]:
    """Median and robust standard deviation (1.4826 × MAD) of a window.

    >>> centre_and_scale([1.0, 2.0, 3.0, 4.0, 100.0])    # the outlier moves neither
    (3.0, 1.4826)
    """
    values = list(window)
    centre = median(values)
    return centre, _MAD_TO_SD * median([abs(v - centre) for v in values])


class RunningAverageTest:
    """Is the mean of the last ``length`` evidence values (each in [0, 1]) unusually high for
    this series? Compared with the running mean and variance that average has had (forgetting
    at rate ``alpha``) under a normal tail — the idea of HTM's anomaly likelihood. A lasting
    change shows here when no single value is extreme enough.

    >>> test = RunningAverageTest(length=3, alpha=0.01)
    >>> for e in [0.1, 0.2] * 100:
    ...     test.learn(e)
    >>> test.p(0.15) > 0.3, test.p(0.9) < 1e-4
    (True, True)
    """

    __slots__ = ("_mean", "_recent", "_seen", "_var", "alpha", "length")

    def __init__(self, length: int, alpha: float) -> None:
        self.length = length
        self.alpha = alpha
        self._recent: deque[float] = deque(maxlen=max(length - 1, 1))
        self._mean = 0.0
        self._var = 0.0
        self._seen = 0

    def average(self, evidence: float) -> float:
        """The mean the test judges: of the last ``length - 1`` values learnt and ``evidence``."""
        if self.length <= 1:
            return evidence
        return (sum(self._recent) + evidence) / (len(self._recent) + 1)

    def p(self, evidence: float) -> float:
        sd = math.sqrt(max(self._var, _MIN_VARIANCE))
        return normal_upper_tail((self.average(evidence) - self._mean) / sd)

    def learn(self, evidence: float) -> None:
        average = self.average(evidence)
        self._recent.append(evidence)
        self._seen += 1
        a = max(self.alpha, 1.0 / self._seen)
        d = average - self._mean
        self._mean += a * d
        self._var = (1.0 - a) * (self._var + a * d * d)


class Transitions:
    """How new is the step from the previous value's band to this one's? Bands are ``width``
    robust standard deviations wide around the window's median (``bands`` of them, the outer
    ones open-ended); transition counts fade at rate ``decay``. The evidence is
    ``-log10 P(band | previous band) / 3`` in [0, 1]: a shape the series has not made before
    (an oscillation where it used to be flat, a wave that skips its peak) scores high even when
    no value is out of range.

    >>> t = Transitions()
    >>> for i in range(200):
    ...     t.learn(0.0 if i % 2 else 2.0, centre=1.0, scale=1.0)
    >>> t.evidence(2.0, 1.0, 1.0) < 0.1 < t.evidence(0.0, 1.0, 1.0)  # after a 0, a 2 comes
    True
    """

    __slots__ = ("_counts", "_previous", "bands", "decay", "width")

    def __init__(self, bands: int = 16, width: float = 1.5, decay: float = 0.002) -> None:
        self.bands = bands
        self.width = width
        self.decay = decay
        self._counts = [0.0] * (bands * bands)
        self._previous: int | None = None

    def _band(self, value: float, centre: float, scale: float) -> int:
        if scale <= 0.0:  # a flat window: bands a hundredth of its level wide
            scale = max(abs(centre) * 0.01, 1e-9)
        steps = (value - centre) / (scale * self.width)
        steps = max(-self.bands, min(self.bands, steps))  # keeps floor() finite
        return max(0, min(self.bands - 1, math.floor(steps) + self.bands // 2))

    def evidence(self, value: float, centre: float, scale: float) -> float | None:
        if self._previous is None:
            return None
        row = self._previous * self.bands
        counts = self._counts[row : row + self.bands]
        band = self._band(value, centre, scale)
        p = (counts[band] + 0.1) / (sum(counts) + 0.1 * self.bands)
        return min(1.0, -math.log10(p) / 3.0)

    def learn(self, value: float, centre: float, scale: float) -> None:
        band = self._band(value, centre, scale)
        if self._previous is not None:
            row = self._previous * self.bands
            keep = 1.0 - self.decay
            for j in range(row, row + self.bands):
                self._counts[j] *= keep
            self._counts[row + band] += 1.0
        self._previous = band
