"""``qualmon detect``: the production metric detector run offline over a ``timestamp,value`` CSV.

Each row is scored *before* the detector learns it — exactly what the service does per closed
bucket — and gets an ``anomaly_score`` in [0, 1]; a row at or above
:data:`streams.detectors.ALERT_THRESHOLD` is what the service would have alerted on. The detector
is :class:`streams.detectors.MetricDetector` behind the service's :class:`SeriesFilter`: a raw
series carries no counts, so it is judged by its own history.

Rows are buckets of the series' own sampling step (the first gap between two timestamps).
Timestamps without an offset are read as Asia/Shanghai time, like the service's buckets. The
seasonal position is the half-hour of the day for a step below a day, and the service's
weekday / month-end position (:func:`streams.windows.season_of`) for a day or more.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from streams.detectors import MetricDetector, SeriesFilter
from streams.windows import SHANGHAI, season_of, shanghai

Row = tuple[str, str, float]

#: The detector ``qualmon detect`` runs on every series.
DETECTOR = MetricDetector

DAY = 86400
_SUB_DAILY_SEASON = 1800  # half an hour


def _epoch(text: str, line: int) -> float:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(
            f"line {line}: timestamp {text!r} is not ISO-8601 (e.g. 2014-04-01 00:00:00)"
        ) from exc
    return (when if when.tzinfo else when.replace(tzinfo=SHANGHAI)).timestamp()


def season(epoch: float, step: float | None) -> int:
    """Seasonal position of a row: half-hour of the Shanghai day below a daily step, else the
    service's daily season.

    >>> season(1_396_281_600.0, 300.0)          # 2014-04-01 00:00 +08:00, five-minute rows
    0
    >>> season(1_396_281_600.0 + 13.5 * 3600, 300.0)   # 13:30
    27
    >>> season(1_396_281_600.0, 86400.0)        # a Tuesday
    1
    """
    if step is not None and step < DAY:
        local = shanghai(epoch)
        return (local.hour * 3600 + local.minute * 60) // _SUB_DAILY_SEASON
    return season_of(int(epoch), DAY)


def score_series(rows: Iterable[tuple[int, str, str]]) -> Iterator[Row]:
    """(line, timestamp, value) in, (timestamp, value, score) out, in order. The rows must be
    in time order: the detector learns each one after judging it, so a row out of order would
    be judged against its own future."""
    series = SeriesFilter(DETECTOR(direction="both"))
    step: float | None = None
    previous: float | None = None
    for line, stamp, raw in rows:
        epoch = _epoch(stamp, line)
        if previous is not None and epoch < previous:
            raise ValueError(
                f"line {line}: timestamp {stamp!r} is earlier than the row before it; rows must "
                "be in time order"
            )
        if previous is not None and step is None and epoch > previous:
            step = epoch - previous
        previous = epoch
        try:
            value = float(raw)
        except ValueError as exc:
            raise ValueError(f"line {line}: value {raw!r} is not a number") from exc
        score, _ = series.step({"value": value, "n": 1.0, "season": season(epoch, step)})
        yield stamp, raw, score


def _rows(reader: Any) -> Iterator[tuple[int, str, str]]:
    """(line, timestamp, value) of each row of a ``csv.reader``; blank lines are skipped."""
    for row in reader:
        if not row:
            continue
        if len(row) < 2:
            raise ValueError(
                f"line {reader.line_num}: expected 'timestamp,value', got {','.join(row)!r}"
            )
        yield reader.line_num, row[0], row[1]


def detect_file(source: Path, target: Path) -> int:
    """Score ``source`` into ``target``; returns the number of rows written. ``target`` appears
    only once every row is scored: a refused file leaves no half-written output behind."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        with source.open(newline="") as fin, partial.open("w", newline="") as fout:
            reader = csv.reader(fin)
            header = next(reader, None)
            if header is None or [h.strip().lower() for h in header[:2]] != ["timestamp", "value"]:
                raise ValueError(f"{source}: first line must be 'timestamp,value', got {header!r}")
            writer = csv.writer(fout)
            writer.writerow(["timestamp", "value", "anomaly_score"])
            count = 0
            for stamp, raw, score in score_series(_rows(reader)):
                writer.writerow([stamp, raw, f"{score:.6f}"])
                count += 1
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return count
