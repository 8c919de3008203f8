"""``qualmon detect``: the production detector over a CSV, offline."""

from __future__ import annotations

import csv
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli import main
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
    assert scores[:14] == [0.0] * 14  # warm-up: nothing is judged before it is learnt


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,v\n2014-04-01 00:00:00,1\n", "first line must be 'timestamp,value'"),
        ("timestamp,value\nyesterday,1\n", "line 2: timestamp 'yesterday' is not ISO-8601"),
        ("timestamp,value\n2014-04-01 00:00:00,abc\n", "line 2: value 'abc' is not a number"),
    ],
)
def test_bad_input_is_named(tmp_path: Path, capsys, content: str, message: str) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(content)
    assert main(["detect", "--input", str(source), "--output", str(tmp_path / "o.csv")]) == 2
    assert message in capsys.readouterr().err
