"""The NAB data folder: its files, their rows and their labelled windows.

The folder holds ``data/<category>/<file>.csv`` (``timestamp,value``), ``combined_windows.json``
(each file's windows as ``[start, end]`` timestamps) and ``reference_results/``. A window covers
every row whose timestamp lies between its start and end, both included.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.nab.scoring import LabelledRows, label_rows

#: Where the folder is looked for by default, relative to the repository root.
DEFAULT_RELATIVE = Path("..") / "shared" / "nab"


class CorpusMissing(Exception):
    """The NAB folder is not where it was looked for."""


def repository_root() -> Path:
    return Path(__file__).resolve().parents[2]


def locate(folder: Path | None = None) -> Path:
    """The NAB folder: ``folder`` if given, else ``../shared/nab`` beside the repository."""
    path = folder if folder is not None else repository_root() / DEFAULT_RELATIVE
    if not (path / "combined_windows.json").is_file() or not (path / "data").is_dir():
        raise CorpusMissing(
            f"no NAB data at {path.resolve()} (expected combined_windows.json and data/); "
            "pass --nab-dir or set NAB_DIR to the folder holding the NAB subset"
        )
    return path


def parse_time(text: str) -> datetime:
    """NAB timestamps, with or without fractional seconds (``2014-04-10 07:15:00.000000``)."""
    return datetime.fromisoformat(text.strip())


@dataclass(frozen=True)
class DataFile:
    """One labelled series: ``name`` is ``<category>/<file>.csv``."""

    name: str
    path: Path
    timestamps: tuple[str, ...]
    rows: LabelledRows


def window_rows(times: list[datetime], limits: list[list[str]]) -> list[tuple[int, int]]:
    """Each window's (first row, last row) among ``times`` (sorted)."""
    out = []
    for start, end in limits:
        t1, t2 = parse_time(start), parse_time(end)
        inside = [i for i, t in enumerate(times) if t1 <= t <= t2]
        if not inside:
            raise ValueError(f"window {start} .. {end} holds no row")
        out.append((inside[0], inside[-1]))
    return out


def read_series(path: Path) -> tuple[list[str], list[str]]:
    """(timestamps, raw values) of a ``timestamp,value`` CSV."""
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise ValueError(f"{path}: first line must be 'timestamp,value', got {header!r}")
        rows = [r for r in reader if r]
    return [r[0] for r in rows], [r[1] for r in rows]


def load(folder: Path) -> list[DataFile]:
    """Every data file named in ``combined_windows.json``, in name order."""
    limits = json.loads((folder / "combined_windows.json").read_text())
    files = []
    for name in sorted(limits):
        path = folder / "data" / name
        stamps, _ = read_series(path)
        times = [parse_time(t) for t in stamps]
        rows = label_rows(len(stamps), window_rows(times, limits[name]))
        files.append(DataFile(name, path, tuple(stamps), rows))
    return files
