"""Feedback on anomalies, and how it changes later decisions for the same series.

``POST /v1/anomalies/{id}/feedback`` stores a verdict; the worker reads new verdicts when a
bucket closes and applies them to the series the anomaly came from:

- ``expected`` — a known cause (a campaign, a planned migration): later deviations of the same
  direction up to 1.25× as large (in log ratio to the expected value) are not raised; a larger
  one still is. They are not learnt either: learning a known outage would widen the series'
  band for every other deviation, and the next real one would go unseen.
- ``false_positive`` — the same, because the quality department says such a value is no problem.
- ``true_positive`` — the incident is confirmed: while it lasts, the series does not drift into
  accepting it as the new normal (normally after seven anomalous buckets in a row); the first
  normal bucket ends the confirmation. Below a day, a confirmation is of the series it came
  from, the hour's or the day judged whole (``span``): an hour scoring normal says nothing of
  a day-long incident, which by its nature is normal hour by hour. A deviation that an earlier
  ``expected`` or ``false_positive`` would mute withdraws it: the latest word on a pattern counts.

>>> book = FeedbackBook()
>>> book.apply("complaint_rate_per_10k_policies", ("4403", "*", "*"), "expected", 30.0, 10.0)
>>> book.mutes("complaint_rate_per_10k_policies", ("4403", "*", "*"), 35.0, 10.0)  # ×3.5 ≤ ×3^1.25
True
>>> book.mutes("complaint_rate_per_10k_policies", ("4403", "*", "*"), 60.0, 10.0)  # ×6: larger
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from streams.slices import SliceKey

VERDICTS = ("true_positive", "false_positive", "expected")
SAME_PATTERN = 1.25  # how much more extreme than the marked deviation still counts as the same
#: A confirmed series: (indicator, slice), with the span of a day judged whole below a day.
Confirmation = tuple[str, SliceKey] | tuple[str, SliceKey, str]


def _log_ratio(value: float, expected: float) -> float:
    return math.log((abs(value) + 1e-9) / (abs(expected) + 1e-9))


@dataclass
class FeedbackBook:
    cursor: int = 0  # the last feedback row applied, so a restart does not apply it twice
    #: series -> log ratio (value / expected) of the deviation marked as no problem
    accepted: dict[tuple[str, SliceKey], float] = field(default_factory=dict)
    confirmed: set[Confirmation] = field(default_factory=set)

    def apply(
        self,
        indicator: str,
        key: SliceKey,
        verdict: str,
        value: float,
        expected: float,
        span: str = "",
    ) -> None:
        if verdict not in VERDICTS:
            raise ValueError(f"verdict {verdict!r} is unknown; expected one of {VERDICTS}")
        series = (indicator, key)
        if verdict == "true_positive":
            self.confirmed.add(_confirmation(indicator, key, span))
            if self.mutes(indicator, key, value, expected):
                del self.accepted[series]
            return
        ratio = _log_ratio(value, expected)
        known = self.accepted.get(series)
        if known is None or (known * ratio > 0 and abs(ratio) > abs(known)) or known * ratio < 0:
            self.accepted[series] = ratio

    def mutes(self, indicator: str, key: SliceKey, value: float, expected: float) -> bool:
        """True when this deviation is the same pattern as one marked expected / no problem."""
        known = self.accepted.get((indicator, key))
        if known is None:
            return False
        ratio = _log_ratio(value, expected)
        return ratio * known > 0 and abs(ratio) <= abs(known) * SAME_PATTERN

    def holds(self, indicator: str, key: SliceKey, span: str = "") -> bool:
        """A confirmed incident: the series must not learn it as normal yet."""
        return _confirmation(indicator, key, span) in self.confirmed

    def release(self, indicator: str, key: SliceKey, span: str = "") -> None:
        self.confirmed.discard(_confirmation(indicator, key, span))


def _confirmation(indicator: str, key: SliceKey, span: str) -> Confirmation:
    # The bucket's own series keep the key confirmations always had (checkpoints hold them).
    return (indicator, key, span) if span else (indicator, key)
