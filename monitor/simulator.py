"""``qualmon simulate``: a seeded, realistic stream of insurance events, sent over HTTP or Kafka.

:func:`generate` turns a :class:`SimConfig` into one list of event dicts per simulated hour
(Asia/Shanghai), each list sorted by ``event_time``. Every dict is JSON-ready and validates with
:func:`streams.schema.parse_event`, and the same config gives the same events on every machine:
all randomness comes from one ``random.Random(seed)``. The world, its rhythm (business hours,
weekends at ~40%, the month-end premium push, Poisson noise) and its incidents live in
:mod:`monitor.scenarios`; defaults give about 3,000 events on a weekday. Claims, complaints, calls
and surveys carry the selling org, line and channel of their policy, and every slice gets a premium
``target.set`` when a month starts. Events before an incident starts are the same as without it.

:mod:`monitor.simulate` delivers the hours over HTTP or Kafka and is the command.

>>> cfg = SimConfig(seed=1, branches=2, product_lines=1, channels=1, days=1, start=date(2026, 3, 2))
>>> hours = list(generate(cfg))
>>> len(hours), hours[0][0]["event_type"], hours[0][0]["org_path"]
(24, 'target.set', '00/44/4401')
>>> busy = hours[10][0]
>>> busy["event_id"].startswith("sim-1-"), busy["event_time"][:14], busy["product_code"][:7]
(True, '2026-03-02T10:', 'P-life-')
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import random
from calendar import monthrange
from collections import defaultdict, deque
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from monitor import scenarios as sc
from monitor.scenarios import Slice, poisson
from streams.schema import CHANNELS, PRODUCT_LINES

TZ = ZoneInfo("Asia/Shanghai")
Event = dict[str, Any]
Timed = tuple[datetime, Event]
#: Median premium of a new policy (yuan) and sum assured as a multiple of it, per product line.
PREMIUM = {
    "life": (8000, 20),
    "health": (2500, 100),
    "accident": (300, 1000),
    "annuity": (40000, 1),
    "universal": (25000, 1.5),
    "motor": (4000, 50),
    "property": (1500, 300),
}
CLAIM_MEDIAN = {"life": 80000, "annuity": 20000, "universal": 50000, "accident": 4000}
ANSWER_RATE = 0.95
RECORD_EVENTS = 200  # events of one org per Kafka record, as the API packs them


@dataclasses.dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    branches: int = 12
    product_lines: int = 5
    channels: int = 6
    days: int = 60
    start: date | None = None  # None: today in Asia/Shanghai minus ``days``
    scenarios: tuple[str, ...] = ()
    volume: float = 1.0  # multiplies every rate; incident factors stay relative to it
    #: Public holidays: business drops to HOLIDAY_FACTOR of a weekday (QUALMON_HOLIDAYS).
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        most = {"branches": 990, "product_lines": len(PRODUCT_LINES), "channels": len(CHANNELS)}
        for name, top in (most | {"days": 3660}).items():
            value = getattr(self, name)
            if not (isinstance(value, int) and 1 <= value <= top):
                raise ValueError(f"SimConfig {name}={value!r}; expected an integer from 1 to {top}")
        if not 0 < self.volume <= 1000:
            raise ValueError(f"SimConfig volume={self.volume!r}; expected a factor above 0, e.g. 1")
        sc.check_names(self.scenarios)

    def first_day(self) -> date:
        return self.start or datetime.now(TZ).date() - timedelta(days=self.days)


class Policy(NamedTuple):
    no: str
    customer: str
    product: str
    agent: str | None  # the selling agent, for the agency and telesales channels only


def generate(cfg: SimConfig) -> Iterator[list[Event]]:
    """One list of events per simulated hour, sorted by time; a bad config raises at once."""
    return _Simulator(cfg).hours()


class _Simulator:
    """One run's state: the world, counters, recently sold policies and scheduled closures."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg, self.rng = cfg, random.Random(cfg.seed)
        lines, channels = PRODUCT_LINES[: cfg.product_lines], CHANNELS[: cfg.channels]
        self.world = sc.build_world(self.rng, cfg.branches, lines, channels, cfg.days)
        codes = list(dict.fromkeys(s.branch.code for s in self.world))
        self.incidents = sc.resolve(cfg.scenarios, codes, lines, channels, cfg.days)
        self.base = {
            etype: [s.weight * sc.PROPENSITY.get(etype, {}).get(s.line, 1.0) for s in self.world]
            for etype in sc.DAILY_RATE
        }
        self.seq = itertools.count(1)
        self.closures: list[tuple[datetime, int, Event]] = []  # a heap, by due time
        self.sold: dict[int, deque[tuple[datetime, Policy, float]]] = defaultdict(
            lambda: deque(maxlen=50)  # enough to cover a slice's 15-day cooling-off period
        )
        self.boost: dict[tuple[str, int], float] = {}
        self.answer: dict[str | None, float] = {}
        self.active: list[sc.Scenario] = []

    def hours(self) -> Iterator[list[Event]]:
        first, ids, rng = self.cfg.first_day(), itertools.count(1), self.rng
        slots = range(len(self.world))
        for day in range(self.cfg.days):
            today = first + timedelta(days=day)
            factor, cum = self._plan(day, today)
            for hour in range(24):
                start = datetime(today.year, today.month, today.day, hour, tzinfo=TZ)
                timed = self._targets(start) if hour == 0 and (day == 0 or today.day == 1) else []
                for etype, rate in sc.DAILY_RATE.items():
                    lam = rate * self.cfg.volume * cum[etype][-1] * factor[etype]
                    k = poisson(rng, lam * sc.HOUR_SHARE[hour])
                    build = getattr(self, "_" + etype.replace(".", "_"))  # e.g. _claim_reported
                    for i in rng.choices(slots, cum_weights=cum[etype], k=k):
                        timed += build(
                            i, self.world[i], start + timedelta(seconds=rng.randrange(3600))
                        )
                while self.closures and self.closures[0][0] < start + timedelta(hours=1):
                    due, _, event = heapq.heappop(self.closures)
                    timed.append((due, event))
                timed.sort(key=lambda pair: pair[0])
                for _, event in timed:  # numbered once sorted, so ids rise with time
                    event["event_id"] = f"sim-{self.cfg.seed}-{next(ids)}"
                yield self._feed_faults([event for _, event in timed])

    def _day(self, today: date) -> tuple[float, float]:
        """(business of the day against a working day's, its month-end push)."""
        weekday = 1.0 if today.weekday() < 5 else sc.WEEKEND_FACTOR
        if today in self.cfg.holidays:
            weekday = sc.HOLIDAY_FACTOR
        left = ((today.replace(day=28) + timedelta(days=4)).replace(day=1) - today).days
        return weekday, sc.MONTH_END_PUSH[left - 1] if left <= len(sc.MONTH_END_PUSH) else 1.0

    def _plan(self, day: int, today: date) -> tuple[dict[str, float], dict[str, list[float]]]:
        """Each event type's factor for the day and its cumulative slice weights, incidents in."""
        weekday, push = self._day(today)
        factor = {t: weekday * (push if t in sc.MONTH_END_TYPES else 1.0) for t in sc.DAILY_RATE}
        active = self.active = [x for x in self.incidents if x.active(day)]
        self.answer = {x.org_code: x.answer_rate for x in active if x.answer_rate is not None}
        self.boost, cum = {}, {}
        for etype, base in self.base.items():
            weights = list(base)
            for x in active:
                for i, s in enumerate(self.world):
                    if etype in x.factors and x.covers(s):
                        weights[i] *= x.factors[etype]
                        self.boost[etype, i] = weights[i] / base[i]
            cum[etype] = list(itertools.accumulate(weights))
        return factor, cum

    def _feed_faults(self, events: list[Event]) -> list[Event]:
        """What broken feeds do to the events of the hour: lose them or get their unit wrong."""
        faults = [x for x in self.active if x.drop or x.amount_scale != 1.0 or x.resend_share]
        if not faults:
            return events
        out = []
        for event in events:
            hit = [x for x in faults if x.covers_event(event)]
            if any(x.drop for x in hit):
                continue
            for x in hit:
                sc.scale_amounts(event, x.amount_scale)
            out.append(event)
            share = max((x.resend_share for x in hit), default=0.0)
            # Every n-th event again, so the draw of the other events stays as it was.
            if share and int(event["event_id"].rsplit("-", 1)[1]) % round(1 / share) == 0:
                out.append(dict(event))
        return out

    # ---- what each event looks like ------------------------------------------------------------

    def _event(
        self,
        etype: str,
        at: datetime,
        s: Slice,
        policy: Policy | None,
        payload: dict[str, Any],
        amount: float | None = None,
    ) -> Timed:
        event: Event = {
            "event_id": "",
            "event_type": etype,
            "event_time": at.isoformat(timespec="seconds"),
            "org_code": s.branch.code,
            "org_path": s.branch.path,
            "product_code": policy.product if policy else f"P-{s.line}-01",
            "product_line": s.line,
            "channel": s.channel,
        }
        if policy is not None:
            if policy.agent:
                event["agent_id"] = policy.agent
            event["policy_no"], event["customer_id"] = policy.no, policy.customer
        if amount is not None:
            event["amount"] = f"{amount:.2f}"
        event["payload"] = payload
        return at, event

    def _policy(self, s: Slice, new: bool = False) -> Policy:
        """A new policy, or one from the branch's in-force book (numbers never collide)."""
        rng, code = self.rng, s.branch.code
        no = f"P{code}N{next(self.seq):07d}" if new else f"P{code}B{rng.randrange(10**7):07d}"
        agent = f"A{code}-{rng.randint(1, s.branch.agents):03d}"
        return Policy(
            no,
            f"C{rng.randrange(10**10):010d}",
            f"P-{s.line}-0{rng.choice('1112')}",
            agent if s.channel in ("AGENCY", "TELE") else None,
        )

    def _premium(self, s: Slice, sigma: float = 0.6) -> float:
        median = PREMIUM.get(s.line, (2000, 50))[0]
        return round(self.rng.lognormvariate(math.log(median), sigma), -1) or 10.0

    def _targets(self, at: datetime) -> list[Timed]:
        # A month of expected first-year and renewal premium, with some ambition on top: its
        # working days, weekends, holidays and month-end push (a National Day October's target
        # is a smaller month's, as a planning department sets it).
        rates = sc.DAILY_RATE["policy.issued"] * 1.6 + sc.DAILY_RATE["premium.received"]
        first = at.date().replace(day=1)
        month = (first + timedelta(days=i) for i in range(monthrange(first.year, first.month)[1]))
        days = sum(w * p for w, p in map(self._day, month))
        out = []
        for s in self.world:
            expected = days * self.cfg.volume * s.weight * PREMIUM.get(s.line, (2000,))[0] * rates
            target = round(expected * self.rng.uniform(1.2, 1.4), -3) or 1000.0
            payload = {"period": at.strftime("%Y-%m"), "target_premium": f"{target:.2f}"}
            out.append(self._event("target.set", at, s, None, payload, target))
        return out

    def _policy_issued(self, i: int, s: Slice, at: datetime) -> list[Timed]:
        rng, policy = self.rng, self._policy(s, new=True)
        single_share = 0.6 if s.line in ("annuity", "universal") else 0.15
        single = rng.random() < single_share + (0.25 if s.channel == "BANCA" else 0.0)
        premium = self._premium(s) * (3 if single else 1)
        self.sold[i].append((at, policy, premium))
        sum_assured = premium * PREMIUM.get(s.line, (2000, 50))[1]
        issued = {
            "premium": f"{premium:.2f}",
            "pay_mode": "SINGLE" if single else "REGULAR",
            "sum_assured": f"{sum_assured:.2f}",
        }
        first = {"premium": f"{premium:.2f}", "premium_type": "FIRST", "period_no": 1}
        paid_at = at + timedelta(seconds=rng.randrange(1, 300))
        return [
            self._event("policy.issued", at, s, policy, issued, premium),
            self._event("premium.received", paid_at, s, policy, first, premium),
        ]

    def _premium_received(self, i: int, s: Slice, at: datetime) -> list[Timed]:
        premium, period = self._premium(s, sigma=0.5), 2 + int(self.rng.expovariate(1 / 4))
        payload = {"premium": f"{premium:.2f}", "premium_type": "RENEWAL", "period_no": period}
        return [self._event("premium.received", at, s, self._policy(s), payload, premium)]

    def _policy_cooling_off_cancel(self, i: int, s: Slice, at: datetime) -> list[Timed]:
        # Cancel a policy this slice really sold within the 15-day cooling-off period, if any.
        recent = [sale for sale in self.sold[i] if (at.date() - sale[0].date()).days <= 15]
        if recent:
            sale = self.rng.choice(recent)
            self.sold[i].remove(sale)
            sold_at, policy, refund = sale
            days = (at.date() - sold_at.date()).days
        else:
            policy, refund, days = self._policy(s), self._premium(s), self.rng.randint(1, 15)
        payload = {"refund": f"{refund:.2f}", "days_since_effective": days}
        return [self._event("policy.cooling_off_cancel", at, s, policy, payload, refund)]

    def _policy_surrendered(self, i: int, s: Slice, at: datetime) -> list[Timed]:
        year = min(30, 1 + int(self.rng.expovariate(1 / 4)))
        value = self._premium(s) * year * self.rng.uniform(0.5, 0.9)
        payload = {"surrender_amount": f"{value:.2f}", "policy_year": year}
        return [self._event("policy.surrendered", at, s, self._policy(s), payload, value)]

    def _claim_reported(self, i: int, s: Slice, at: datetime) -> list[Timed]:
        rng, policy, org = self.rng, self._policy(s), s.branch.code
        claimed = round(rng.lognormvariate(math.log(CLAIM_MEDIAN.get(s.line, 3000)), 1.0), 2)
        claim_id = f"CL{org}{next(self.seq):07d}"
        payload = {
            "claim_id": claim_id,
            "claimed_amount": f"{claimed:.2f}",
            "handling_org_code": org,
        }
        reported = self._event("claim.reported", at, s, policy, payload, claimed)
        decision = rng.choices(("PAID", "PARTIAL", "DECLINED"), (85, 10, 5))[0]
        paid = claimed * {"PAID": 1.0, "PARTIAL": rng.uniform(0.3, 0.9), "DECLINED": 0.0}[decision]
        closed = {
            "claim_id": claim_id,
            "decision": decision,
            "paid_amount": f"{paid:.2f}",
            "reported_at": reported[1]["event_time"],
            "handling_org_code": org,
        }
        closure = self._event("claim.closed", at, s, policy, closed, paid)
        delay = sum(x.close_delay_days for x in self.active if x.covers(s))
        self._close_later(at, rng.gammavariate(2.0, 2.0) + delay, closure)
        return [reported]

    def _complaint_received(self, i: int, s: Slice, at: datetime) -> list[Timed]:
        rng, policy, org = self.rng, self._policy(s), s.branch.code
        boost = self.boost.get(("complaint.received", i), 1.0)
        categories = ("SALES", "CLAIM", "SURRENDER", "SERVICE", "OTHER")
        # What an incident adds on top of the usual complaints is all about the sale.
        extra = rng.random() < (boost - 1) / boost
        category = "SALES" if extra else rng.choices(categories, (25, 25, 15, 25, 10))[0]
        complaint_id = f"CP{org}{next(self.seq):07d}"
        source = "REGULATOR" if rng.random() < 0.15 else "OWN"
        payload = {
            "complaint_id": complaint_id,
            "source": source,
            "category": category,
            "handling_org_code": org,
        }
        received = self._event("complaint.received", at, s, policy, payload)
        outcomes = ("UPHELD", "PARTLY_UPHELD", "REJECTED", "WITHDRAWN")
        closed = {
            "complaint_id": complaint_id,
            "received_at": received[1]["event_time"],
            "outcome": rng.choices(outcomes, (35, 25, 30, 10))[0],
            "handling_org_code": org,
        }
        # Many are settled on the spot; the rest mostly within the 15-day limit, with a tail past
        # 30 days for the timeliness checks.
        days = rng.uniform(0.1, 1.0) if rng.random() < 0.3 else rng.gammavariate(1.5, 5.0)
        self._close_later(at, days, self._event("complaint.closed", at, s, policy, closed))
        return [received]

    def _close_later(self, opened: datetime, days: float, closure: Timed) -> None:
        """Hold ``closure`` back until ``days`` after ``opened``, moved into office hours."""
        due = opened + timedelta(days=max(days, 0.05))
        if not 9 <= due.hour < 18:
            day = due.date() + timedelta(days=1 if due.hour >= 18 else 0)
            due = datetime(day.year, day.month, day.day, 9, tzinfo=TZ)
            due += timedelta(seconds=self.rng.randrange(9 * 3600))
        if due.weekday() >= 5:  # back-offices close on weekends: Monday
            due += timedelta(days=7 - due.weekday())
        closure[1]["event_time"] = due.isoformat(timespec="seconds")
        heapq.heappush(self.closures, (due, next(self.seq), closure[1]))

    def _call_completed(self, i: int, s: Slice, at: datetime) -> list[Timed]:
        rng = self.rng
        rate = self.answer.get(s.branch.code, ANSWER_RATE)
        answered = rng.random() < rate
        # An outage shows as long queues as well as lost calls.
        mean_wait = 12.0 if rate >= ANSWER_RATE else 90.0
        wait = rng.expovariate(1 / mean_wait) if answered else rng.uniform(20, 240)
        queue = rng.choices(("CS-GENERAL", "CS-CLAIM", "CS-POLICY"), (6, 2, 2))[0]
        payload = {
            "queue": queue,
            "answered": answered,
            "abandoned": not answered,
            "wait_seconds": round(min(wait, 3600.0), 1),
        }
        return [self._event("call.completed", at, s, self._policy(s), payload)]

    def _survey_response(self, i: int, s: Slice, at: datetime) -> list[Timed]:
        rng = self.rng
        touchpoint = rng.choice(("NEW_POLICY", "CLAIM", "HOTLINE", "RENEWAL"))
        payload: dict[str, Any] = {"touchpoint": touchpoint}
        kind = rng.random()  # 60% CSAT only, 25% both, 15% NPS only
        if kind < 0.85:
            payload["csat_1_5"] = rng.choices(range(1, 6), (3, 5, 12, 35, 45))[0]
        if kind >= 0.6:
            payload["nps_0_10"] = rng.choices(range(11), (2, 1, 1, 2, 2, 5, 6, 12, 20, 24, 25))[0]
        return [self._event("survey.response", at, s, self._policy(s), payload)]

    def _inspection_sample(self, i: int, s: Slice, at: datetime) -> list[Timed]:
        rng = self.rng
        compliant = rng.random() < 0.97
        codes = ("DOC_MISSING", "DUAL_RECORDING", "SIGNATURE", "SUITABILITY", "DISCLOSURE")
        found = [] if compliant else rng.sample(codes, rng.choice((1, 1, 2)))
        findings = [
            {"code": c, "severity": rng.choices(("LOW", "MEDIUM", "HIGH"), (5, 3, 1))[0]}
            for c in found
        ]
        object_type = rng.choice(("POLICY", "CLAIM", "SALES_RECORDING", "SURRENDER"))
        payload = {"object_type": object_type, "compliant": compliant, "findings": findings}
        return [self._event("inspection.sample", at, s, self._policy(s), payload)]
