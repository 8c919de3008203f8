"""The partial's wire format: what one version writes, another reads."""

from __future__ import annotations

import orjson

from streams.fields import FIELD, FIELDS
from streams.partial import Partial, decode, encode


def test_a_partial_from_another_field_layout_reads_by_name() -> None:
    p = Partial(partition=2, seq=5, latest=7200.0, holding=False)
    p.cells[3600] = {("00/44", "life", "TELE"): [float(i) for i in range(len(FIELDS))]}
    p.counted[3600] = 4
    wire = orjson.loads(encode(p))
    # An older version: its fields in another order, one this version lacks, one it gained.
    older = [*reversed(FIELDS[1:]), "retired_field"]
    [[*_, sums]] = wire["buckets"][0]["cells"]
    by_name = dict(zip(FIELDS, sums, strict=True))
    wire["fields"] = older
    wire["buckets"][0]["cells"] = [["00/44", "life", "TELE",
                                    [by_name.get(f, 99.0) for f in older]]]  # fmt: skip
    [cell] = decode(orjson.dumps(wire)).cells[3600].values()
    assert cell[FIELD["calls"]] == float(FIELD["calls"])
    assert cell[0] == 0.0  # the field the older version did not have
    assert 99.0 not in cell  # the retired one is dropped
    assert decode(encode(p)).cells == p.cells and decode(encode(p)).holding is False
