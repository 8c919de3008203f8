"""``python -m bench.nab`` end to end on a small made-up corpus, and without one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.nab.__main__ import main


def make_corpus(folder: Path) -> None:
    (folder / "data" / "made").mkdir(parents=True)
    lines = ["timestamp,value"]
    for i in range(400):
        value = 50 + 10 * math.sin(i / 12 * math.pi) + (300 if i == 300 else 0)
        lines.append(f"2014-04-{1 + i // 24:02d} {i % 24:02d}:00:00,{value:.3f}")
    (folder / "data" / "made" / "spike.csv").write_text("\n".join(lines) + "\n")
    windows = {"made/spike.csv": [["2014-04-13 00:00:00.000000", "2014-04-13 23:00:00.000000"]]}
    (folder / "combined_windows.json").write_text(json.dumps(windows))
    (folder / "reference_results").mkdir()
    (folder / "reference_results" / "thresholds.json").write_text("{}")


def test_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_corpus(tmp_path / "nab")
    assert main(["--nab-dir", str(tmp_path / "nab"), "--output", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "1 files, 1 windows" in out
    rows = [line for line in out.splitlines() if line.startswith(("qualmon", "rolling", "River"))]
    assert len(rows) == 6
    # The window is 13 April, rows 288..311; the spike at row 300 is caught and nothing else:
    # weight σ(-(311 - 300 + 1) / 24) / σ(-1) = 0.8597926, normalised 100 × 1.8597926 / 2.
    assert rows[0].split()[-3:] == ["92.99", "92.99", "95.33"]  # low-FN: 100 × 2.8598 / 3
    assert (tmp_path / "out" / "made" / "spike.csv").is_file()  # what qualmon detect wrote


def test_missing_corpus_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nab-dir", str(tmp_path / "absent")]) == 2
    assert "no NAB data at" in capsys.readouterr().err
