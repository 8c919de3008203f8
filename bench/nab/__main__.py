"""``make eval``: the production detector and two baselines on the NAB subset, NAB-scored.

    python -m bench.nab [--nab-dir DIR] [--output DIR] [--per-file]

The production detector is run through ``qualmon detect`` itself (the CLI entry point, in this
process), one output CSV per data file under ``--output``; its fixed threshold is the service's
:data:`streams.detectors.ALERT_THRESHOLD`. Exit status 2 when the NAB folder is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.nab import baselines, corpus
from bench.nab.scoring import PROFILES, LabelledRows, best_threshold, score_corpus, score_file
from monitor import cli
from streams.detectors import ALERT_THRESHOLD

Scored = list[tuple[LabelledRows, Sequence[float]]]


def detect(files: list[corpus.DataFile], output: Path) -> Scored:
    """Scores of ``qualmon detect`` for every file, read back from the CSV it writes."""
    scored: Scored = []
    for f in files:
        target = output / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.redirect_stdout(io.StringIO()):
            status = cli.main(["detect", "--input", str(f.path), "--output", str(target)])
        if status != 0:
            raise RuntimeError(f"qualmon detect failed on {f.path} (exit status {status})")
        with target.open(newline="") as fin:
            scores = [float(r["anomaly_score"]) for r in csv.DictReader(fin)]
        scored.append((f.rows, scores))
    return scored


def offline(files: list[corpus.DataFile], scorer: Callable[[list[float]], list[float]]) -> Scored:
    out: Scored = []
    for f in files:
        _, raw = corpus.read_series(f.path)
        out.append((f.rows, scorer([float(v) for v in raw])))
    return out


def reference(folder: Path, files: list[corpus.DataFile], detector: str) -> Scored:
    """NAB's published scores of a reference detector, to rescore with this scorer."""
    out: Scored = []
    for f in files:
        category, name = f.name.split("/")
        path = folder / "reference_results" / detector / category / f"{detector}_{name}"
        with path.open(newline="") as fin:
            out.append((f.rows, [float(r["anomaly_score"]) for r in csv.DictReader(fin)]))
    return out


def table(results: list[tuple[str, str, Scored, float | None]]) -> list[str]:
    """One line per (detector, threshold): the three profiles' normalised scores."""
    names = list(PROFILES)
    lines = [
        f"{'detector':<34} {'threshold':<26} " + " ".join(f"{n:>20}" for n in names),
        "-" * (34 + 1 + 26 + 21 * len(names)),
    ]
    for label, kind, scored, fixed in results:
        cells = []
        for profile in PROFILES.values():
            if fixed is None:
                t, s = best_threshold(scored, profile)
                cells.append(f"{s:8.2f} (t={t:.4g})")
            else:
                cells.append(f"{score_corpus(scored, fixed, profile):8.2f}")
        lines.append(f"{label:<34} {kind:<26} " + " ".join(f"{c:>20}" for c in cells))
    return lines


def per_file(files: list[corpus.DataFile], scored: Scored, threshold: float) -> list[str]:
    profile = PROFILES["standard"]
    lines = [f"{'file':<56} {'windows':>7} {'tp':>3} {'fp':>4} {'fn':>3} {'raw':>8}"]
    for f, (rows, scores) in zip(files, scored, strict=True):
        r = score_file(rows, scores, threshold, profile)
        lines.append(f"{f.name:<56} {len(rows.windows):>7} {r.tp:>3} {r.fp:>4} {r.fn:>3} "
                     f"{r.score:8.3f}")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.nab", description=__doc__)
    p.add_argument(
        "--nab-dir",
        type=Path,
        default=None,
        help="the NAB subset folder (default: ../shared/nab beside the repository)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=Path(".qualmon/eval"),
        help="where qualmon detect writes its score CSVs",
    )
    p.add_argument(
        "--per-file",
        action="store_true",
        help="also list each file's outcome for qualmon at its fixed threshold",
    )
    args = p.parse_args(argv)  # fmt: skip
    try:
        folder = corpus.locate(args.nab_dir)
    except corpus.CorpusMissing as exc:
        print(f"make eval: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    files = corpus.load(folder)
    windows = sum(len(f.rows.windows) for f in files)
    ours = detect(files, args.output)
    zscore = offline(files, baselines.zscore_scores)
    hst = offline(files, baselines.hst_scores)
    thresholds = json.loads((folder / "reference_results" / "thresholds.json").read_text())
    print(f"NAB subset at {folder.resolve()}: {len(files)} files, {windows} windows; "
          "normalised scores, 0 = never alerting, 100 = perfect\n")  # fmt: skip
    rows: list[tuple[str, str, Scored, float | None]] = [
        ("qualmon detect", f"fixed {ALERT_THRESHOLD} (service)", ours, ALERT_THRESHOLD),
        ("qualmon detect", "best after the fact", ours, None),
        ("rolling z-score, 250 points", "fixed 0.5 (p ≤ 1e-4)", zscore, 0.5),
        ("rolling z-score, 250 points", "best after the fact", zscore, None),
        ("River HalfSpaceTrees, min-max", "fixed 0.5", hst, 0.5),
        ("River HalfSpaceTrees, min-max", "best after the fact", hst, None),
    ]
    for name in ("numenta", "windowedGaussian"):
        if name in thresholds:
            fixed = thresholds[name]["standard"]["threshold"]
            rows.append((f"NAB reference: {name}", f"NAB's full-corpus {fixed:.4g}",
                         reference(folder, files, name), fixed))  # fmt: skip
            rows.append((f"NAB reference: {name}", "best after the fact",
                         reference(folder, files, name), None))  # fmt: skip
    print("\n".join(table(rows)))
    if args.per_file:
        print("\nqualmon detect per file, standard profile, fixed threshold:")
        print("\n".join(per_file(files, ours, ALERT_THRESHOLD)))
    print(f"\nscores of qualmon detect in {args.output}/; took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
