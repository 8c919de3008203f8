"""The simulated insurer of ``qualmon simulate``: its orgs, how busy it is, and its incidents.

:func:`build_world` lays out a head office ``00``, provinces and branches (``org_path`` like
``00/44/4403``) whose sizes differ by an order of magnitude, cut into slices of branch × product
line × channel. The rates and profiles here say how many events of each type a slice sees in an
hour; :mod:`monitor.simulator` draws them with :func:`poisson` and dresses them as events.

A :class:`Scenario` is an incident: for some simulated days, in one org (or every org), optionally
narrowed to a product line and a channel, some event types arrive ``factors[event_type]`` times as
often, the org's hotline may answer only ``answer_rate`` of its calls, its claims may take
``close_delay_days`` longer to close, its feed may go silent (``drop``), send amounts in the
wrong unit (``amount_scale``) or send some events twice (``resend_share``). Factories place
incidents a few days before the end of the period, so detectors first see weeks of normal
business:

>>> s = SCENARIOS["mis-selling"](("4401", "4403"), ("life", "health"), ("AGENCY", "BANCA"), 60)
>>> (s.org_code, s.product_line, s.channel, s.start_day, s.days)
('4403', 'life', 'BANCA', 52, 7)
>>> resolve(("nope",), ("4401",), ("life",), ("AGENCY",), 60)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: unknown scenario 'nope'; known: mis-selling, hotline-outage, claims-backlog, ...
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

PROVINCES = ("44", "31", "11", "32", "33", "51", "42", "37", "35", "50")
MAX_SIZE = 15.0  # the biggest branch sells about this many times what the smallest does
LINE_WEIGHT = {"life": 3, "health": 3, "accident": 1.5, "annuity": 1, "universal": 1.5}
CHANNEL_WEIGHT = {"AGENCY": 40, "BANCA": 25, "TELE": 10, "ONLINE": 10, "GROUP": 8, "BROKER": 7}
#: Events per day per unit of branch size on a weekday. First premiums come with each new policy
#: and closures are scheduled from reports, so neither has a rate of its own.
DAILY_RATE = {
    "policy.issued": 9.0,
    "premium.received": 10.0,
    "policy.cooling_off_cancel": 0.09,
    "policy.surrendered": 0.5,
    "claim.reported": 2.5,
    "complaint.received": 0.3,
    "call.completed": 12.0,
    "survey.response": 2.5,
    "inspection.sample": 1.2,
}
#: How much more (or less) often a product line sees an event type than its sales share says.
PROPENSITY = {
    "claim.reported": {"health": 2.2, "accident": 1.5, "life": 0.3, "annuity": 0.1, "motor": 2.5},
    "policy.surrendered": {"universal": 2.0, "annuity": 1.5, "accident": 0.2, "health": 0.5},
}
_HOURLY = (1, 1, 1, 1, 1, 1, 2, 4, 8, 12, 12, 11, 8, 10, 12, 12, 11, 9, 7, 6, 5, 4, 3, 2)
HOUR_SHARE = tuple(w / sum(_HOURLY) for w in _HOURLY)
WEEKEND_FACTOR = 0.4
HOLIDAY_FACTOR = 0.25
MONTH_END_PUSH = (3.0, 2.5, 2.0)  # last, second-to-last and third-to-last day of a month
MONTH_END_TYPES = ("policy.issued", "premium.received")
#: Where the default incidents play when the world has these branches. They get the largest
#: sizes, so that an incident stands on enough daily volume to be seen.
MIS_SELLING_ORG, HOTLINE_ORG = "4403", "3101"
#: Incidents that need no particular volume play in branches every world of 6+ branches has.
BACKLOG_ORG, FEED_LOSS_ORG, UNIT_ERROR_ORG, DUPLICATE_ORG = "4401", "3102", "4402", "3103"
#: The incidents whose branches get the largest sizes (the others keep the world unchanged).
SIZED = ("mis-selling", "hotline-outage")


def poisson(rng: random.Random, lam: float) -> int:
    """One Poisson(``lam``) draw: Knuth's product of uniforms for small ``lam``, normal above 30.

    >>> rng = random.Random(3)
    >>> [poisson(rng, 2.5) for _ in range(8)]
    [2, 2, 0, 2, 5, 5, 3, 6]
    >>> draws = [poisson(rng, 400.0) for _ in range(2000)]
    >>> 395 < sum(draws) / len(draws) < 405, poisson(rng, 0.0)
    (True, 0)
    """
    if lam <= 0:
        return 0
    if lam >= 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


class Branch(NamedTuple):
    code: str
    path: str
    size: float
    agents: int


class Slice(NamedTuple):
    branch: Branch
    line: str
    channel: str
    weight: float  # the slice's share of its branch's business, times the branch size


def build_world(
    rng: random.Random, branches: int, lines: Sequence[str], channels: Sequence[str], days: int
) -> list[Slice]:
    """Branches four to a province, sized by a shuffled log-uniform ladder from 1 to 15.

    >>> world = build_world(random.Random(1), 12, ("life",), ("AGENCY",), 60)
    >>> [s.branch.path for s in world][:5]
    ['00/44/4401', '00/44/4402', '00/44/4403', '00/44/4404', '00/31/3101']
    >>> sizes = sorted(s.branch.size for s in world)
    >>> sizes[-1] / sizes[0] > 5, max(world, key=lambda s: s.weight).branch.code
    (True, '4403')
    """
    per_province = math.ceil(branches / min(len(PROVINCES), math.ceil(branches / 4)))
    codes = [f"{PROVINCES[i // per_province]}{i % per_province + 1:02d}" for i in range(branches)]
    # Stratified rather than plain log-uniform, so the spread of sizes is the same for every seed.
    ladder = [MAX_SIZE ** ((i + rng.random()) / branches) for i in range(branches)]
    placed = resolve(SIZED, codes, lines, channels, days)
    focus = list(dict.fromkeys(s.org_code for s in placed if s.org_code is not None))
    rest = [c for c in codes if c not in focus]
    rng.shuffle(rest)
    size = dict(zip(focus + rest, sorted(ladder, reverse=True), strict=True))
    line_w = {x: LINE_WEIGHT.get(x, 1.0) for x in lines}
    chan_w = {x: CHANNEL_WEIGHT.get(x, 10) for x in channels}
    world = []
    for code in codes:
        branch = Branch(code, f"00/{code[:2]}/{code}", size[code], 2 + round(size[code]))
        for line, channel in itertools.product(lines, channels):
            share = line_w[line] / sum(line_w.values()) * chan_w[channel] / sum(chan_w.values())
            world.append(Slice(branch, line, channel, branch.size * share))
    return world


@dataclass(frozen=True)
class Scenario:
    name: str
    org_code: str | None  # None: every org
    product_line: str | None  # None: every product line of the org
    channel: str | None  # None: every channel of the org
    start_day: int  # index of the first simulated day it is active (0 = the first day)
    days: int
    factors: Mapping[str, float] = field(default_factory=dict)  # event_type -> rate multiplier
    answer_rate: float | None = None  # share of the org's hotline calls answered while active
    close_delay_days: float = 0.0  # claims reported while active close this much later
    drop: bool = False  # the org's feed sends nothing while active
    amount_scale: float = 1.0  # amounts sent multiplied by this (100: fen sent as yuan)
    resend_share: float = 0.0  # share of the org's events sent twice with the same event_id

    def active(self, day: int) -> bool:
        return self.start_day <= day < self.start_day + self.days

    def covers(self, s: Slice) -> bool:
        return (
            self.org_code in (None, s.branch.code)
            and self.product_line in (None, s.line)
            and self.channel in (None, s.channel)
        )

    def covers_event(self, event: Mapping[str, object]) -> bool:
        return (
            self.org_code in (None, event["org_code"])
            and self.product_line in (None, event["product_line"])
            and self.channel in (None, event["channel"])
        )


def _pick(preferred: str, available: Sequence[str]) -> str:
    return preferred if preferred in available else available[0]


def mis_selling(
    orgs: Sequence[str], lines: Sequence[str], channels: Sequence[str], days: int
) -> Scenario:
    """A bank seller pushes unsuitable life policies: sales complaints and cancellations pile up."""
    return Scenario(
        name="mis-selling",
        org_code=_pick(MIS_SELLING_ORG, orgs),
        product_line=_pick("life", lines),
        channel=_pick("BANCA", channels),
        start_day=max(0, days - 8),
        days=7,
        # A wave a quality department must catch: a few sales complaints a day where one a week
        # is usual, and one buyer in six cancelling within the cooling-off period.
        factors={"complaint.received": 20.0, "policy.cooling_off_cancel": 15.0},
    )


def hotline_outage(
    orgs: Sequence[str], lines: Sequence[str], channels: Sequence[str], days: int
) -> Scenario:
    """A day of broken call routing at one org: half the calls are lost and people call back."""
    others = [o for o in orgs if o != _pick(MIS_SELLING_ORG, orgs)] or list(orgs)
    return Scenario(
        name="hotline-outage",
        org_code=_pick(HOTLINE_ORG, others),
        product_line=None,
        channel=None,
        start_day=max(0, days - 3),
        days=1,
        factors={"call.completed": 1.3},
        answer_rate=0.5,
    )


def claims_backlog(
    orgs: Sequence[str], lines: Sequence[str], channels: Sequence[str], days: int
) -> Scenario:
    """The claims team of a branch is short-staffed: for nine days its new claims sit unsettled
    for six weeks, so they pass the 30-day limit while still open."""
    return Scenario(
        name="claims-backlog",
        org_code=_pick(BACKLOG_ORG, orgs),
        product_line=None,
        channel=None,
        start_day=max(0, days - 40),
        days=9,
        close_delay_days=42.0,
    )


def surrender_spike(
    orgs: Sequence[str], lines: Sequence[str], channels: Sequence[str], days: int
) -> Scenario:
    """The crediting rate of universal life is cut: policyholders of every branch surrender it."""
    return Scenario(
        name="surrender-spike",
        org_code=None,
        product_line=_pick("universal", lines),
        channel=None,
        start_day=max(0, days - 7),
        days=4,
        factors={"policy.surrendered": 8.0},
    )


def feed_loss(
    orgs: Sequence[str], lines: Sequence[str], channels: Sequence[str], days: int
) -> Scenario:
    """A branch's interface to the core system breaks: nothing arrives from it for a day."""
    return Scenario(
        name="feed-loss",
        org_code=_pick(FEED_LOSS_ORG, orgs),
        product_line=None,
        channel=None,
        start_day=max(0, days - 5),
        days=1,
        drop=True,
    )


def unit_error(
    orgs: Sequence[str], lines: Sequence[str], channels: Sequence[str], days: int
) -> Scenario:
    """A branch's new release sends amounts in fen where yuan are expected, for two days."""
    return Scenario(
        name="unit-error",
        org_code=_pick(UNIT_ERROR_ORG, orgs),
        product_line=None,
        channel=None,
        start_day=max(0, days - 12),
        days=2,
        amount_scale=100.0,
    )


def duplicate_surge(
    orgs: Sequence[str], lines: Sequence[str], channels: Sequence[str], days: int
) -> Scenario:
    """A branch's outbox replays after a failover: a third of a day's events arrive twice."""
    return Scenario(
        name="duplicate-surge",
        org_code=_pick(DUPLICATE_ORG, orgs),
        product_line=None,
        channel=None,
        start_day=max(0, days - 10),
        days=1,
        resend_share=1 / 3,
    )


SCENARIOS: dict[str, Callable[[Sequence[str], Sequence[str], Sequence[str], int], Scenario]] = {
    "mis-selling": mis_selling,
    "hotline-outage": hotline_outage,
    "claims-backlog": claims_backlog,
    "surrender-spike": surrender_spike,
    "feed-loss": feed_loss,
    "unit-error": unit_error,
    "duplicate-surge": duplicate_surge,
}


def check_names(names: Sequence[str]) -> None:
    for name in names:
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")


def resolve(
    names: Sequence[str],
    orgs: Sequence[str],
    lines: Sequence[str],
    channels: Sequence[str],
    days: int,
) -> tuple[Scenario, ...]:
    """The scenarios called ``names``, placed in this world; unknown names raise ``ValueError``."""
    check_names(names)
    return tuple(SCENARIOS[name](orgs, lines, channels, days) for name in dict.fromkeys(names))


_MONEY = ("premium", "sum_assured", "refund", "surrender_amount", "claimed_amount", "paid_amount",
          "target_premium")  # fmt: skip


def scale_amounts(event: dict[str, Any], factor: float) -> None:
    """Multiply every amount of ``event`` by ``factor`` (100: fen sent where yuan are due)."""
    if "amount" in event:
        event["amount"] = f"{float(event['amount']) * factor:.2f}"
    payload = event["payload"]
    for name in _MONEY:
        if name in payload:
            payload[name] = f"{float(payload[name]) * factor:.2f}"
