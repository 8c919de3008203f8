"""Which alert an anomaly joins, and what an alert is named after.

An alert's members are the slices anomalous in its current episode; where its problem sits, and
so its name, follows from them by the rules of :mod:`alerting.rules` (``problem_slices``,
``alert_scope``, ``part_of``) and, for a company slice, its verdict on breadth
(:mod:`alerting.breadth`). Members are read once per ingest and kept up to date as slices join
(:class:`Members`): a wave over hundreds of branches joining one company-wide
alert costs each branch a glance, not a read and a sort of every member.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alerting.orgs import OrgTree
from alerting.rules import (
    alert_scope,
    covers,
    group_key,
    overlaps,
    part_of,
    problem_slices,
    summary,
)
from monitor.store import Store, Transaction
from streams.slices import org_code

Slice = tuple[str, str, str]


class Members:
    """An alert episode's member slices (org path, product line, channel), whether each is
    broad by its latest verdict, and where the problem sits (:func:`problem_slices`), kept up
    to date as slices join (see the module's docstring). A slice's anomaly not judged for
    breadth (``broad`` None: not a company slice's, or no branch readings at hand) leaves its
    verdict as it was; an older bucket's verdict does not replace a newer one.

    >>> m = Members([(("*", "life", "*"), True, 10, 10)])
    >>> m.add(("00/44/4403", "life", "BANCA"), None, 11); m.problems
    [('*', 'life', '*')]
    >>> m.add(("*", "life", "*"), None, 11); m.problems  # not judged: still company-wide
    [('*', 'life', '*')]
    >>> m.add(("*", "life", "*"), False, 12); m.problems  # the company's line is a roll-up now
    [('00/44/4403', 'life', 'BANCA')]
    """

    def __init__(self, rows: Iterable[tuple[Slice, bool | None, int, int]] = ()) -> None:
        #: member slice -> broad
        self.slices: dict[Slice, bool] = {}
        self._judged: dict[Slice, int] = {}  # slice -> bucket of its verdict
        self._seen: dict[Slice, int] = {}  # slice -> its latest bucket
        for scope, broad, judged, seen in rows:
            self.slices[scope] = bool(broad)
            if broad is not None:
                self._judged[scope] = judged
            self._seen[scope] = seen
        self.problems = problem_slices(self.slices, self.broad, self._seen)

    @property
    def broad(self) -> set[Slice]:
        return {s for s, broad in self.slices.items() if broad}

    def add(self, scope: Slice, broad: bool | None, bucket: int) -> None:
        """Count in an anomaly of slice ``scope`` in ``bucket`` with its verdict ``broad``."""
        before, seen = self.slices.get(scope), self._seen.get(scope)
        self._seen[scope] = max(bucket, seen or bucket)
        if broad is not None and bucket >= self._judged.get(scope, bucket):
            self.slices[scope], self._judged[scope] = broad, bucket
        now = self.slices.setdefault(scope, False)
        if not before and not now and any(self.slices[p] and overlaps(scope, p)
                                           for p in self.problems):  # fmt: skip
            return  # under a broad slice, which is where the problem sits still
        if before == now and seen == self._seen[scope]:
            return
        self.problems = problem_slices(self.slices, self.broad, self._seen)


class Grouping:
    def __init__(self, store: Store, orgs: OrgTree) -> None:
        self.store, self.orgs = store, orgs
        #: The members of each alert episode (alert id, flaps) read or written by the ingest
        #: in progress.
        self._known: dict[tuple[str, int], Members] = {}

    def start(self) -> None:
        """A new ingest (a new transaction): members are read again."""
        self._known = {}

    def opened(self, alert: dict[str, Any], scope: Slice, broad: bool | None, bucket: int) -> None:
        """A new alert's first member."""
        self._known[(alert["alert_id"], 0)] = Members([(scope, broad, bucket, bucket)])

    def target(
        self,
        tx: Transaction,
        indicator: str,
        scope: Slice,
        broad: bool,
        latest: dict[str, Any] | None,
    ) -> tuple[dict[str, Any], Members, bool] | None:
        """The firing alert an anomaly of slice ``scope`` (org path, product line, channel)
        joins, with its members and whether the slice's verdict on breadth stands.

        A company-wide incident takes every slice it covers, and a broad slice crossing it (the
        company's AGENCY channel beside its life line) as a cross-cut, not as a second name.
        Else the group's own alert (``latest``), then any other, takes a slice that is part of
        its problem (:func:`alerting.rules.part_of`): a roll-up (its org's parent, the company,
        the whole product line) joins the problem's alert instead of paging on its own. A broad
        slice takes over only an alert whose whole problem it covers, so that it does not hide
        a problem elsewhere under the company's name."""
        firing = [a for a in self.store.firing(tx, kind="anomaly") if a["indicator"] == indicator]
        members = self.members_of(tx, firing)
        for alert in firing:
            theirs = members[alert["alert_id"]]
            for p in theirs.problems:
                if theirs.slices[p] and (covers(p, scope) or (broad and overlaps(p, scope))):
                    return alert, theirs, not broad or p == scope
        if latest is not None:  # the group's own alert first
            firing.sort(key=lambda alert: alert["alert_id"] != latest["alert_id"])
        for alert in firing:
            theirs = members[alert["alert_id"]]
            if (
                all(covers(scope, p) for p in theirs.problems)
                if broad
                else part_of(scope, theirs.problems)
            ):
                return alert, theirs, True
        return None

    def absorb(
        self,
        tx: Transaction,
        alert: dict[str, Any],
        members: Members,
        a: dict[str, Any],
        joining: Slice,
        broad: bool | None,
        bucket: int,
    ) -> None:
        """Count anomaly ``a`` of slice ``joining`` (org path, line, channel; its verdict
        ``broad``) in ``alert`` and its ``members``, and name the alert after them all. A
        renamed alert's group is the org it names (the company's, for a company-wide
        incident), so that the problem coming back there within the cooldown fires it again."""
        alert["anomalies"] += 1
        alert["score"] = max(alert["score"], a["score"])
        key = (a["org"], a["product_line"], a["channel"])
        members.add(joining, broad, bucket)
        scope = alert_scope(members.problems)
        named = (org_code(scope[0]), scope[1], scope[2])
        renamed = named != (alert["org"], alert["product_line"], alert["channel"])
        # The reading shown is the latest of the slice the alert names: a roll-up joining in
        # the same or a later bucket does not put the company's value beside a branch's name.
        # A name that is no member's (disjoint slices widened it) keeps the reading shown.
        shown = a if key == named and (renamed or bucket >= alert["last_bucket"]) else None
        if shown is None and renamed:
            shown = self.store.member_reading(tx, alert, named)
        if shown is not None:
            alert.update(
                value=shown["value"], expected=shown["expected"], anomaly_id=shown["anomaly_id"]
            )
        alert["last_bucket"] = max(alert["last_bucket"], bucket)
        if renamed:  # its group is the org it names: a relapse there fires it again
            alert["group_key"] = group_key(alert["indicator"], named)
        alert.update(
            org=named[0],
            org_path=scope[0],
            product_line=named[1],
            channel=named[2],
            summary=summary(alert["indicator"], named),
        )

    def members(self, tx: Transaction, alert: dict[str, Any]) -> Members:
        """The members of the alert's current episode."""
        return self.members_of(tx, [alert])[alert["alert_id"]]

    def members_of(self, tx: Transaction, alerts: list[dict[str, Any]]) -> dict[str, Members]:
        """Each alert's members, read once per ingest."""
        missing = [a for a in alerts if (a["alert_id"], a["flaps"]) not in self._known]
        read = self.store.alert_members(tx, missing) if missing else {}
        for a in missing:
            rows = read.get(a["alert_id"], [])
            self._known[(a["alert_id"], a["flaps"])] = Members(
                ((self.orgs.path(m[0]), m[1], m[2]), broad, judged, seen)
                for m, broad, judged, seen in rows
            )
        return {a["alert_id"]: self._known[(a["alert_id"], a["flaps"])] for a in alerts}
