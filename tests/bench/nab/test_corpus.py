"""The NAB folder: where it is looked for, how windows map onto rows."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from bench.nab import corpus


def test_windows_cover_rows_between_their_ends_inclusive() -> None:
    times = [datetime(2014, 4, 1, 0, 5 * i) for i in range(10)]  # 00:00 .. 00:45
    limits = [["2014-04-01 00:10:00.000000", "2014-04-01 00:20:00.000000"],
              ["2014-04-01 00:31:00", "2014-04-01 00:44:59"]]  # fmt: skip
    assert corpus.window_rows(times, limits) == [(2, 4), (7, 8)]


def test_a_window_holding_no_row_is_named() -> None:
    times = [datetime(2014, 4, 1, 0, 0)]
    with pytest.raises(ValueError, match=r"window 2015-01-01 00:00:00 \.\. 2015-01-02 00:00:00"):
        corpus.window_rows(times, [["2015-01-01 00:00:00", "2015-01-02 00:00:00"]])


def test_missing_folder_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(corpus.CorpusMissing, match=f"no NAB data at {tmp_path}"):
        corpus.locate(tmp_path)


def test_default_is_beside_the_repository() -> None:
    root = corpus.repository_root()
    assert (root / "pyproject.toml").is_file()
    assert Path("..") / "shared" / "nab" == corpus.DEFAULT_RELATIVE


def test_load_labels_each_file(tmp_path: Path) -> None:
    (tmp_path / "data" / "cat").mkdir(parents=True)
    lines = ["timestamp,value"] + [f"2014-04-01 {h:02d}:00:00,{h}" for h in range(20)]
    (tmp_path / "data" / "cat" / "a.csv").write_text("\n".join(lines) + "\n")
    windows = {"cat/a.csv": [["2014-04-01 10:00:00.000000", "2014-04-01 12:00:00.000000"]]}
    (tmp_path / "combined_windows.json").write_text(json.dumps(windows))
    [f] = corpus.load(corpus.locate(tmp_path))
    assert f.name == "cat/a.csv" and len(f.timestamps) == 20
    assert f.rows.windows == ((10, 12),)
    assert f.rows.window[:3] == (corpus.label_rows(20, []).window[:3])  # probation: 3 rows
