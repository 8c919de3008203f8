"""``qualmon detect``: the production detector over a CSV, offline."""

from __future__ import annotations

import csv
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.detect import _epoch, detect_file, season
from streams.detectors import ALERT_THRESHOLD


def _series(path: Path, spike_at: int) -> None:
    rng = random.Random(11)
    start = datetime(2014, 4, 1)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["timestamp", "value"])
        for i in range(600):
            hour = (start + timedelta(minutes=5 * i)).hour
            value = 50 + 10 * math.sin(hour / 24 * 2 * math.pi) + rng.gauss(0, 1.5)
            if i == spike_at:
                value *= 4
            out.writerow([(start + timedelta(minutes=5 * i)).isoformat(sep=" "), f"{value:.3f}"])


def test_one_score_per_row_and_the_spike_crosses_the_threshold(tmp_path: Path, capsys) -> None:
    source, target = tmp_path / "series.csv", tmp_path / "scores.csv"
    _series(source, spike_at=500)
    assert main(["detect", "--input", str(source), "--output", str(target)]) == 0
    assert "scored 600 rows" in capsys.readouterr().out
    with target.open() as f:
        rows = list(csv.DictReader(f))
    scores = [float(r["anomaly_score"]) for r in rows]
    assert len(scores) == 600 and all(0.0 <= s <= 1.0 for s in scores)
    assert scores[500] >= ALERT_THRESHOLD
    assert max(scores[:500]) < ALERT_THRESHOLD  # the daily wave itself never alarms
    # Warm-up: 10 values fill the window, then 150 residuals are learnt before any judgement.
    assert scores[:160] == [0.0] * 160


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,v\n2014-04-01 00:00:00,1\n", "first line must be 'timestamp,value'"),
        ("timestamp,value\nyesterday,1\n", "line 2: timestamp 'yesterday' is not ISO-8601"),
        ("timestamp,value\n2014-04-01 00:00:00,abc\n", "line 2: value 'abc' is not a number"),
        ("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,\n", "line 3: value ''"),
        (
            "timestamp,value\n\n2014-04-01 00:00:00,1\n\n2014-04-01 00:05:00,x\n",
            "line 5: value 'x'",
        ),
        ("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00\n", "line 3: expected"),
        (
            "timestamp,value\n2014-04-01 00:05:00,1\n2014-04-01 00:00:00,2\n",
            "line 3: timestamp '2014-04-01 00:00:00' is earlier than the row before it",
        ),
    ],
)
def test_bad_input_is_named_and_leaves_no_output(
    tmp_path: Path, capsys, content: str, message: str
) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(content)
    assert main(["detect", "--input", str(source), "--output", str(tmp_path / "o.csv")]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_a_level_shift_is_reported_once(tmp_path: Path) -> None:
    rng = random.Random(12)
    source, target = tmp_path / "shift.csv", tmp_path / "scores.csv"
    start = datetime(2014, 4, 1)
    lines = ["timestamp,value"]
    for i in range(800):
        value = (40.0 if i < 500 else 60.0) + rng.gauss(0, 2)
        lines.append(f"{(start + timedelta(minutes=5 * i)).isoformat(sep=' ')},{value:.3f}")
    source.write_text("\n".join(lines) + "\n")
    assert detect_file(source, target) == 800
    with target.open() as f:
        scores = [float(r["anomaly_score"]) for r in csv.DictReader(f)]
    assert [i for i, s in enumerate(scores) if s >= ALERT_THRESHOLD] == [500]


@pytest.mark.parametrize(
    ("stamp", "step", "expected"),
    [
        ("2014-04-01 00:00:00", 300.0, 0),  # naive: read as Shanghai midnight
        ("2014-04-01 13:45:00", 300.0, 27),  # 13:30–14:00 is the 28th half-hour
        ("2014-04-01 05:45:00+00:00", 300.0, 27),  # the same instant, with its offset
        ("2014-04-01 00:00:00", 86400.0, 1),  # daily rows: the service's season, a Tuesday
        ("2014-04-29 00:00:00", 86400.0, 8),  # a Tuesday in the month's last three days
    ],
)
def test_season_of_a_row(stamp: str, step: float, expected: int) -> None:
    assert season(_epoch(stamp, 2), step) == expected
