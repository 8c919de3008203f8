"""New-product watch windows: a launch's first days get tighter sensitivity.

``QUALMON_PRODUCT_WATCH`` lists launches (product line, first day, launching org). For
``QUALMON_PRODUCT_WATCH_DAYS`` after a launch, readings of the line in that org (and below it)
count as anomalous from ``QUALMON_PRODUCT_WATCH_SCORE`` (p ≤ 1e-3 by default) rather than 0.5
(p ≤ 1e-4), and any alert on them opens a special inspection of the launch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.settings import Settings
from streams.scoring import anomaly_id as reading_id
from streams.scoring import severity_of

THRESHOLD = 0.5  # the detectors' anomaly threshold (streams.detectors.SeriesFilter)
TZ = ZoneInfo("Asia/Shanghai")


class ProductWatch:
    def __init__(self, settings: Settings, path: Callable[[str], str]) -> None:
        self.settings, self.path = settings, path

    def watched(self, product_line: str, org_path: str, bucket: int) -> bool:
        day = datetime.fromtimestamp(bucket, TZ).date()
        return any(
            w.product_line == product_line
            and (w.org == "*" or w.org in org_path.split("/"))
            and w.launched <= day < w.launched + timedelta(days=self.settings.product_watch_days)
            for w in self.settings.product_watch
        )

    def threshold(self, alert: dict[str, Any]) -> float:
        if self.watched(alert["product_line"], alert["org_path"], alert["last_bucket"]):
            return self.settings.product_watch_score
        return THRESHOLD

    def anomalies(self, readings: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """Readings of watched lines between the watch threshold and the normal one."""
        if not self.settings.product_watch:
            return []
        out = []
        floor = self.settings.product_watch_score
        for r in readings:
            indicator, org, line, channel, start, value, k, n, score, expected = r[:10]
            if floor <= score < THRESHOLD and self.watched(line, self.path(org), start):
                out.append(
                    {
                        "anomaly_id": "watch-" + reading_id(indicator, (org, line, channel), start),
                        "indicator": indicator,
                        "org": org,
                        "product_line": line,
                        "channel": channel,
                        "bucket_start": start,
                        "value": value,
                        "expected": expected,
                        "score": score,
                        "k": k,
                        "n": n,
                        "severity": severity_of(score),
                    }
                )
        return out
