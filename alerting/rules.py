"""Pure rules: an alert's severity, its group, scopes on the org tree, and silence matching.

Severity starts from the detector's score (minor, major, critical at p ≤ 1e-4, 1e-6, 1e-8), moves
one step up for a key indicator, one step up when the slice is wide (the company, the head office
or a whole product line or channel across the company) and one step down when the bucket rests on
little evidence (fewer than ``SMALL_EVIDENCE`` counts) — a statistical judgement's evidence, not a
fact's: an SLA breach of one case is a breach all the same. What a reading rests on is its count
when it is above its expectation and its ``n`` when below — a proportion's trials, a silent
feed's expected count, a count's expected count: a hotline outage answering 0 of 300 calls, a
feed gone silent where 40 events were expected, or a branch's premium receipts falling from 30 a
day to none, is no thin evidence.

>>> evidence(value=0.0, expected=0.95, k=0, n=300), evidence(value=30.0, expected=2.0, k=3, n=4000)
(300, 3)
>>> evidence(value=0.0, expected=450_000.0, k=0, n=0, expected_count=30.0)
30.0

>>> severity("minor", "complaint_rate_per_10k_policies", ("4403", "life", "BANCA"), 3,
...          k=12, key_indicators=("complaint_rate_per_10k_policies",))
'major'
>>> severity("major", "premium_income", ("*", "*", "*"), 0, k=900, key_indicators=())
'critical'
>>> severity("major", "loss_ratio", ("4403", "*", "*"), 3, k=4, key_indicators=())
'minor'
>>> severity("major", "claim_sla_breach", ("4403", "life", "BANCA"), 3, k=1, key_indicators=())
'major'

Child slices of an org group under the org: one alert per indicator and org.

>>> group_key("cooling_off_cancel_rate", ("4403", "life", "BANCA"))
'cooling_off_cancel_rate|4403'

Two scopes overlap when their orgs lie on one path of the org tree and each other dimension is
equal or ``*`` on one side — an open inspection on one absorbs alerts on the other, when they are
about the same matter (see :func:`concerns`):

>>> overlaps(("00/44/4403", "life", "BANCA"), ("00/44", "*", "BANCA"))
True
>>> overlaps(("00/44/4403", "life", "BANCA"), ("00/44/4401", "life", "BANCA"))
False

An alert's problem sits in its narrowest member slices: a member covering another is its
roll-up, and one overlapping a narrower member is a cross-cut of it (the company's BANCA channel
beside a branch's universal line); neither says where the problem is. What is left are disjoint
slices (:func:`problem_slices`). The alert is named after the narrowest of them, widened over
those of the same org — a branch's health line and its life line name the branch — to a line or
channel only where they agree. It never widens beyond one org, nor over the company's slices:
a new problem elsewhere is another alert, not a reason to name this one after the company. The
name depends on the members only, not on the order they arrived in:

>>> def named(*members): return alert_scope(problem_slices(members))
>>> named(("00/44/4403", "life", "BANCA"), ("00/44", "*", "*"), ("*", "*", "BANCA"))
('00/44/4403', 'life', 'BANCA')
>>> named(("00/31/3101", "health", "AGENCY"), ("00/31/3101", "life", "*"),
...       ("00/31/3101", "*", "BANCA"), ("*", "life", "*"))
('00/31/3101', '*', '*')
>>> named(("00/31/3101", "health", "*"), ("*", "life", "*"))
('00/31/3101', 'health', '*')
>>> named(("*", "life", "*"), ("*", "health", "*"))
('*', 'life', '*')

An inspection takes an alert only when it is about the same matter — the indicators' family
(complaints, claims, mis-selling, ...), or anything in its scope when it names no indicator or
covers a product launch — and never a data-quality alert:

>>> concerns({"indicator": "complaints_concentration", "rule": "complaint_concentration"},
...          "complaint_rate_per_10k_policies")
True
>>> concerns({"indicator": "loss_ratio", "rule": "manual"}, "complaints_concentration")
False
>>> concerns({"indicator": "*", "rule": "manual"}, "hotline_answer_rate")
True
>>> business("amount_unit_jump")
False
>>> silenced_by([{"matchers": '{"org": "4403"}'}], {"org": "4403", "severity": "major"})
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import reduce
from typing import Any

import orjson

from streams.indicators import SIGNALS, family_of
from streams.slices import path_depth

SEVERITIES = ("minor", "major", "critical")
RANK = {s: i for i, s in enumerate(SEVERITIES)}
#: Below this many counts a bucket is thin evidence, whatever its p-value.
SMALL_EVIDENCE = 5.0
#: Labels a silence may match on.
MATCHABLE = ("kind", "indicator", "org", "product_line", "channel", "severity", "alert_id")


def severity(
    detector_severity: str,
    indicator: str,
    slice_key: tuple[str, str, str],
    depth: int,
    *,
    k: float,
    key_indicators: Iterable[str],
) -> str:
    """Severity of an alert from the anomaly's score band, importance, slice breadth and, for a
    statistical judgement, the evidence it rests on."""
    rank = RANK[detector_severity]
    if indicator in key_indicators:
        rank += 1
    org = slice_key[0]
    if org == "*" or depth == 1:
        rank += 1
    if k < SMALL_EVIDENCE and not is_fact(indicator):
        rank -= 1
    return SEVERITIES[max(0, min(rank, len(SEVERITIES) - 1))]


def evidence(
    value: float, expected: float, k: float, n: float, expected_count: float = 0.0
) -> float:
    """The counts a reading of ``k`` of ``n`` rests on (see the module's docstring);
    ``expected_count`` is what a count's detector expected, where the value is not a count."""
    return k if value >= expected else max(k, n, expected_count)


def expected_count(anomaly: Mapping[str, Any]) -> float:
    """The count a count indicator's detector expected (in the anomaly's ``detail``), else 0."""
    detail = anomaly.get("detail") or {}
    if isinstance(detail, (str, bytes)):
        detail = orjson.loads(detail)
    return float(detail.get("expected_count", 0.0))


def is_fact(indicator: str) -> bool:
    """Whether anomalies of ``indicator`` are facts (a hard limit passed), not probabilities."""
    signal = SIGNALS.get(indicator)
    return signal is not None and signal.fact


def business(indicator: str) -> bool:
    """Whether alerts on ``indicator`` are about the business rather than the data feeding the
    monitor: only those are matter for a special inspection. A broken feed is the operators'
    to fix; a branch that did nothing wrong is not to be inspected for it."""
    return family_of(indicator) != "data_quality"


def concerns(inspection: Mapping[str, Any], indicator: str) -> bool:
    """Whether an inspection (its ``indicator`` and ``rule``) is about the matter of an alert on
    ``indicator``: the same indicator or family, or any business indicator when the inspection
    names none (``*``) or covers a product launch (everything about the launch is its matter)."""
    if not business(indicator):
        return False
    theirs = inspection["indicator"]
    if theirs in ("*", indicator) or inspection["rule"] == "new_product":
        return True
    family = family_of(indicator)
    return family is not None and family == family_of(theirs)


def group_key(indicator: str, slice_key: tuple[str, str, str]) -> str:
    return f"{indicator}|{slice_key[0]}"


def specificity(slice_key: tuple[str, str, str], depth: int) -> tuple[int, int]:
    """How narrow a slice is: named dimensions first, then depth in the org tree."""
    return (sum(part != "*" for part in slice_key), depth)


def org_covers(outer: str, inner: str) -> bool:
    """Whether org path ``outer`` is ``inner`` or one of its ancestors (``*`` covers all)."""
    return outer == "*" or inner == outer or inner.startswith(outer + "/")


def overlaps(a: tuple[str, str, str], b: tuple[str, str, str]) -> bool:
    """Scopes as (org path, product line, channel)."""
    if not (org_covers(a[0], b[0]) or org_covers(b[0], a[0])):
        return False
    return all(x == y or "*" in (x, y) for x, y in zip(a[1:], b[1:], strict=True))


def covers(outer: tuple[str, str, str], inner: tuple[str, str, str]) -> bool:
    """Whether scope ``outer`` contains all of scope ``inner``.

    >>> covers(("*", "life", "*"), ("00/44/4403", "life", "BANCA"))
    True
    >>> covers(("*", "life", "*"), ("00/44/4403", "*", "BANCA"))
    False
    """
    return org_covers(outer[0], inner[0]) and all(
        x in ("*", y) for x, y in zip(outer[1:], inner[1:], strict=True)
    )


def problem_slices(
    members: Iterable[tuple[str, str, str]],
    broad: Collection[tuple[str, str, str]] = (),
    seen: Mapping[tuple[str, str, str], int] | None = None,
) -> list[tuple[str, str, str]]:
    """The members an alert's problem sits in, narrowest first (see the module's docstring);
    of equally narrow ones, the most recently anomalous first (``seen``: slice -> its latest
    bucket), so that the name goes where the problem is now. A ``broad`` member — a company
    slice anomalous beyond any one region (:mod:`alerting.breadth`) — is where the problem
    sits itself, not a roll-up: it comes first and the members it covers are dropped.

    >>> members = [("00/44/4403", "universal", "*"), ("*", "universal", "*"), ("*", "*", "*")]
    >>> problem_slices(members), problem_slices(members, broad=[("*", "universal", "*")])
    ([('00/44/4403', 'universal', '*')], [('*', 'universal', '*')])
    """
    seen = seen or {}
    kept: list[tuple[str, str, str]] = []
    ordered = sorted(
        set(members) | set(broad),
        key=lambda s: (s in broad, *_path_specificity(s), seen.get(s, 0), s),
        reverse=True,
    )
    for s in ordered:
        if not any(overlaps(s, k) for k in kept):
            kept.append(s)
    return kept


def part_of(scope: tuple[str, str, str], problems: Iterable[tuple[str, str, str]]) -> bool:
    """Whether a slice is part of the problem of an alert whose problem sits in ``problems``
    (:func:`problem_slices`): it overlaps one of them, or lies in the same org (not the
    company's), as an org's slices group under one alert.

    >>> problems = problem_slices([("00/31/3101", "health", "*"), ("*", "health", "*")])
    >>> part_of(("00/31", "*", "*"), problems), part_of(("00/31/3101", "life", "*"), problems)
    (True, True)
    >>> part_of(("*", "life", "*"), problems)
    False
    """
    return any(overlaps(scope, p) or p[0] == scope[0] != "*" for p in problems)


def alert_scope(problems: Sequence[tuple[str, str, str]]) -> tuple[str, str, str]:
    """The scope an alert names, from where its problem sits (:func:`problem_slices`; see the
    module's docstring)."""
    first, *rest = problems
    if first[0] == "*":
        return first
    return reduce(common_scope, (s for s in rest if s[0] == first[0]), first)


def common_scope(a: tuple[str, str, str], b: tuple[str, str, str]) -> tuple[str, str, str]:
    """The narrowest scope covering two scopes of one org (the same org path): each line or
    channel where they agree, else ``*``.

    >>> common_scope(("00/31/3101", "health", "AGENCY"), ("00/31/3101", "life", "AGENCY"))
    ('00/31/3101', '*', 'AGENCY')
    """
    assert a[0] == b[0], (a, b)
    return (a[0], a[1] if a[1] == b[1] else "*", a[2] if a[2] == b[2] else "*")


def _path_specificity(scope: tuple[str, str, str]) -> tuple[int, int]:
    return specificity(scope, path_depth(scope[0]))


def summary(indicator: str, key: tuple[str, str, str]) -> str:
    """What an alert on ``indicator`` in slice ``key`` (org, product line, channel) is about."""
    org, line, channel = key
    where = ", ".join(
        part
        for part in (
            "the whole company" if org == "*" else f"org {org}",
            None if line == "*" else f"product line {line}",
            None if channel == "*" else f"channel {channel}",
        )
        if part
    )
    return f"{indicator} is anomalous in {where}"


def silenced_by(silences: Iterable[Mapping[str, Any]], labels: Mapping[str, Any]) -> bool:
    """True when some silence's matchers (label -> exact value) all equal the alert's labels."""
    for silence in silences:
        matchers = silence["matchers"]
        if isinstance(matchers, (str, bytes)):
            matchers = orjson.loads(matchers)
        if all(str(labels.get(name)) == str(value) for name, value in matchers.items()):
            return True
    return False


def inspection_id_for(alert_id: str) -> str:
    """The id of the inspection an alert opens (deterministic, so a replay opens no twin)."""
    return hashlib.sha256(f"alert:{alert_id}".encode()).hexdigest()[:16]
