"""``qualmon detect``: the production level detector run offline over a ``timestamp,value`` CSV.

Each row is scored *before* the detector learns it — exactly what the service does per closed
bucket — and gets an ``anomaly_score`` in [0, 1]; a row at or above
:data:`streams.detectors.ALERT_THRESHOLD` is what the service would have alerted on. Rows are
treated as buckets of the series' own sampling step; the seasonal position comes from the
timestamp the same way it does in the service.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from streams.detectors import LevelDetector, SeriesFilter
from streams.windows import season_of

Row = tuple[str, str, float]


def _epoch(text: str, line: int) -> float:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(
            f"line {line}: timestamp {text!r} is not ISO-8601 (e.g. 2014-04-01 00:00:00)"
        ) from exc
    return when.timestamp() if when.tzinfo else when.replace(tzinfo=None).timestamp()


def score_series(rows: Iterable[tuple[str, str]]) -> Iterator[Row]:
    """(timestamp, value) pairs in, (timestamp, value, score) out, in order."""
    series = SeriesFilter(LevelDetector(direction="both"))
    step: float | None = None
    previous: float | None = None
    for line, (stamp, raw) in enumerate(rows, start=2):
        epoch = _epoch(stamp, line)
        if previous is not None and step is None and epoch > previous:
            step = epoch - previous
        previous = epoch
        try:
            value = float(raw)
        except ValueError as exc:
            raise ValueError(f"line {line}: value {raw!r} is not a number") from exc
        bucket = int(step) if step and step >= 60 else 86400
        x = {"value": value, "n": 1.0, "season": season_of(int(epoch), bucket)}
        score, _ = series.step(x)
        yield stamp, raw, score


def detect_file(source: Path, target: Path) -> int:
    """Score ``source`` into ``target``; returns the number of rows written."""
    with source.open(newline="") as fin:
        reader = csv.reader(fin)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["timestamp", "value"]:
            raise ValueError(f"{source}: first line must be 'timestamp,value', got {header!r}")
        pairs = ((r[0], r[1]) for r in reader if r)
        with target.open("w", newline="") as fout:
            writer = csv.writer(fout)
            writer.writerow(["timestamp", "value", "anomaly_score"])
            count = 0
            for stamp, raw, score in score_series(pairs):
                writer.writerow([stamp, raw, f"{score:.6f}"])
                count += 1
    return count
