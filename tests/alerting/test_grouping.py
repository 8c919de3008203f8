"""Members kept up to date as slices join give the problem slices a full recount would."""

from __future__ import annotations

import random

from alerting.grouping import Members
from alerting.rules import problem_slices

ORGS = ("*", "00/44", "00/44/4403", "00/44/4401", "00/31/3101")
LINES = ("*", "life", "universal")
CHANNELS = ("*", "BANCA", "AGENCY")


def test_joining_one_by_one_gives_what_a_full_recount_gives() -> None:
    rng = random.Random(7)
    for _ in range(300):
        members = Members()
        verdicts: dict[tuple[str, str, str], tuple[int, bool]] = {}
        seen: dict[tuple[str, str, str], int] = {}
        for _ in range(rng.randint(1, 12)):
            scope = (rng.choice(ORGS), rng.choice(LINES), rng.choice(CHANNELS))
            bucket = rng.randint(1, 5)
            # Only company slices are judged for breadth; most anomalies are not judged.
            broad = rng.choice((None, None, True, False)) if scope[0] == "*" else None
            members.add(scope, broad, bucket)
            seen[scope] = max(bucket, seen.get(scope, bucket))
            if broad is not None and bucket >= verdicts.get(scope, (bucket, False))[0]:
                verdicts[scope] = (bucket, broad)
        wide = {s for s, (_, b) in verdicts.items() if b}
        assert members.broad == wide
        assert members.problems == problem_slices(seen, wide, seen)
