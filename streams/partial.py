"""A partial: what one input partition added since its previous partial — the contract between
the two stages of the worker.

Stage one (:mod:`streams.intake`, on every worker, per owned partition) de-duplicates events and
sums them per cell; every checkpoint it hands the sums on as a partial, numbered per partition.
Stage two (:mod:`streams.closer`, on the one worker that owns input partition 0) merges the
partials of every partition into its buckets and closes them. Merging is addition, so it does
not matter which worker counted which partition, nor how the partials were cut: several workers
give the same buckets as one.

A partial also says how far its partition has got (``latest`` event time) and whether it still
holds the watermark back (``holding``: it has a backlog or was heard from recently); only the
partition's owner can tell a quiet feed from a dead worker.

Sums travel as plain lists (orjson writes and reads them in C) under a header naming the fields,
so a partial written with another version's field layout still reads, by name (a rolling
upgrade has both versions running).

>>> p = Partial(partition=1, seq=7, latest=3600.0, holding=True)
>>> p.cells[0] = {("00/44", "life", "TELE"): [0.0] * len(FIELDS)}
>>> p.cells[0][("00/44", "life", "TELE")][FIELD["calls"]] = 3.0
>>> p.counted[0] = 3
>>> q = decode(encode(p))
>>> q.seq, q.latest, q.cells[0][("00/44", "life", "TELE")][FIELD["calls"]], q.counted
(7, 3600.0, 3.0, {0: 3})
>>> decode(encode(Partial(partition=0, seq=1, latest=-math.inf, holding=False))).latest
-inf
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.fields import FIELD, FIELDS, new_accumulator

#: (org_path, product_line, channel) of an event: the finest grain its sums are kept in.
Cell = tuple[str, str, str]
#: (kind, org_code, product_line, channel) whose top agents and products are counted.
ContributorKey = tuple[str, str, str, str]


@dataclass
class Partial:
    partition: int
    seq: int
    latest: float  # latest event time read from the partition so far; -inf before the first
    holding: bool  # whether the partition still holds the watermark back
    #: bucket start -> cell -> sums
    cells: dict[int, dict[Cell, list[float]]] = field(default_factory=dict)
    #: bucket start -> events summed into its cells (what a late merge reports)
    counted: dict[int, int] = field(default_factory=dict)
    #: bucket start -> (kind, org, line, channel) -> {"agent:<id>" / "product:<code>": count}
    contributors: dict[int, dict[ContributorKey, dict[str, int]]] = field(default_factory=dict)
    #: bucket start -> org_code -> events re-sent for the bucket
    duplicates: dict[int, dict[str, int]] = field(default_factory=dict)
    #: open-case timer operations in event order: [op, case_id, opened_at, leaf]
    cases: list[list[Any]] = field(default_factory=list)
    #: targets set, in event order: [leaf, period, target_yuan, set_at]
    targets: list[list[Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to merge but the partition's progress."""
        return not (self.cells or self.duplicates or self.cases or self.targets)


def encode(p: Partial) -> bytes:
    buckets = sorted({*p.cells, *p.duplicates, *p.contributors})
    return orjson.dumps(
        {
            "partition": p.partition,
            "seq": p.seq,
            "latest": p.latest if p.latest > -math.inf else None,
            "holding": p.holding,
            "fields": FIELDS,
            "buckets": [
                {
                    "start": start,
                    "counted": p.counted.get(start, 0),
                    "cells": [[*cell, sums] for cell, sums in p.cells.get(start, {}).items()],
                    "contributors": [
                        [*key, counts] for key, counts in p.contributors.get(start, {}).items()
                    ],
                    "duplicates": p.duplicates.get(start, {}),
                }
                for start in buckets
            ],
            "cases": p.cases,
            "targets": p.targets,
        }
    )


def decode(body: bytes) -> Partial:
    d = orjson.loads(body)
    latest = d["latest"]
    p = Partial(d["partition"], d["seq"], -math.inf if latest is None else latest, d["holding"])
    layout = None if tuple(d["fields"]) == FIELDS else _layout(d["fields"])
    for b in d["buckets"]:
        start = b["start"]
        if b["cells"] or b["counted"]:
            cells = p.cells[start] = {}
            for path, line, channel, sums in b["cells"]:
                if layout is not None:
                    acc = new_accumulator()
                    for i, value in zip(layout, sums, strict=True):
                        if i is not None:  # a field this version no longer has is dropped
                            acc[i] = value
                    sums = acc
                cells[path, line, channel] = sums
        if b["counted"]:
            p.counted[start] = b["counted"]
        if b["contributors"]:
            p.contributors[start] = {
                (kind, org, line, channel): counts
                for kind, org, line, channel, counts in b["contributors"]
            }
        if b["duplicates"]:
            p.duplicates[start] = b["duplicates"]
    p.cases = [[op, case_id, at, tuple(leaf)] for op, case_id, at, leaf in d["cases"]]
    p.targets = [[tuple(leaf), period, target, at] for leaf, period, target, at in d["targets"]]
    return p


def _layout(fields: list[str]) -> list[int | None]:
    """Where each field of another version's layout goes in this one's."""
    return [FIELD.get(name) for name in fields]
