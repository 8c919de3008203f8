"""Effect evaluation: did the measure move its indicator, beyond what comparable orgs did?

Computed from the stored indicator history (``indicator_values``), never typed in:

1. **Windows.** ``W`` buckets before the measure took effect and ``W`` buckets from then on
   (``QUALMON_EVALUATION_WINDOW_BUCKETS``, 28 daily buckets = four whole weeks by default, so both
   windows hold every weekday equally often).
2. **Controls.** Orgs at the same depth of the org tree as the measured org, outside its branch
   of the tree, with readings of the same indicator, product line and channel in at least 80 % of
   the buckets of both windows — unaffected peers that share the company's seasons and shocks.
3. **Seasonality.** Per bucket, the difference ``d_t = treated_t − mean(controls_t)``: weekday,
   month-end and company-wide effects hit treated and controls alike and cancel in ``d_t``.
4. **Difference in differences.** ``effect = mean(d_after) − mean(d_before)``.
5. **Significance.** A one-sided permutation test of that difference in means (the before/after
   labels of the ``d_t`` shuffled, 9,999 resamples, fixed seed): no normality assumption, fit for
   a few dozen buckets. Autocorrelated ``d_t`` make it optimistic; see ``docs/alerting.md``.

Verdict: *effective* when the effect goes the right way (down for an indicator whose high values
are the problem, up for the others), ``p < QUALMON_EVALUATION_ALPHA``, and the treated org's
after-window mean meets the measure's target; otherwise *not effective*.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from monitor.errors import InsufficientData
from monitor.store import Store
from streams.indicators import INDICATORS
from streams.windows import iso

COVERAGE = 0.8
RESAMPLES = 9999


@dataclass(frozen=True)
class Effect:
    verdict: str  # effective | not_effective
    effect: float
    p_value: float
    direction: str  # decrease | increase: what counts as better
    treated_before: float
    treated_after: float
    controls_before: float
    controls_after: float
    target: float
    target_met: bool
    buckets_before: int
    buckets_after: int
    controls: list[str]
    window_start: int
    effective_from: int
    window_end: int
    method: str
    statement: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    store: Store,
    measure: dict[str, Any],
    org_paths: dict[str, str],
    *,
    bucket_seconds: int,
    window_buckets: int,
    alpha: float,
) -> Effect:
    indicator, org = measure["indicator"], measure["org"]
    line, channel, target = measure["product_line"], measure["channel"], measure["target"]
    if measure["effective_from"] is None:
        raise InsufficientData(
            f"measure {measure['measure_id']} has no effective_from; set it (PATCH the measure) "
            "to the time the measure took effect"
        )
    t0 = int(measure["effective_from"])
    start, end = t0 - window_buckets * bucket_seconds, t0 + window_buckets * bucket_seconds
    rows = store.history(indicator, line, channel, start, end)
    series: dict[str, dict[int, float]] = defaultdict(dict)
    for r in rows:
        series[r["org"]][int(r["bucket_start"])] = float(r["value"])
    treated = series.get(org, {})
    need = COVERAGE * window_buckets
    before_t = [t for t in treated if t < t0]
    after_t = [t for t in treated if t >= t0]
    if len(before_t) < need or len(after_t) < need:
        raise InsufficientData(
            _too_few(
                store,
                measure,
                len(before_t),
                len(after_t),
                need,
                window_buckets,
                end,
                bucket_seconds,
            )
        )
    controls = _controls(series, org, org_paths, t0, need)
    if not controls:
        raise InsufficientData(
            f"no control org at the depth of {org} has {indicator} ({line}/{channel}) in at "
            f"least {need:.0f} buckets of both windows"
        )
    d_before: list[float] = []
    d_after: list[float] = []
    c_before: list[float] = []
    c_after: list[float] = []
    for t in sorted(treated):
        peers = [series[c][t] for c in controls if t in series[c]]
        if not peers:
            continue
        peer = float(np.mean(peers))
        (d_before if t < t0 else d_after).append(treated[t] - peer)
        (c_before if t < t0 else c_after).append(peer)
    direction = "increase" if INDICATORS[indicator].direction == "low" else "decrease"
    if INDICATORS[indicator].direction == "both":
        before_level = float(np.mean([treated[t] for t in before_t]))
        direction = "increase" if target > before_level else "decrease"
    effect = float(np.mean(d_after) - np.mean(d_before))
    test = stats.permutation_test(
        (np.array(d_before), np.array(d_after)),
        _mean_difference,
        permutation_type="independent",
        vectorized=True,
        n_resamples=RESAMPLES,
        alternative="less" if direction == "decrease" else "greater",
        random_state=np.random.default_rng(20260301),
    )
    p_value = float(test.pvalue)
    after_level = float(np.mean([treated[t] for t in after_t]))
    target_met = after_level <= target if direction == "decrease" else after_level >= target
    right_way = effect < 0 if direction == "decrease" else effect > 0
    effective = right_way and p_value < alpha and target_met
    statement = (
        f"Against {len(controls)} control org(s), {indicator} in org {org} moved by "
        f"{effect:+.4g} relative to controls ({len(d_before)} buckets before, {len(d_after)} "
        f"after); one-sided permutation test p = {p_value:.4f} "
        f"({'significant' if p_value < alpha else 'not significant'} at α = {alpha}). "
        f"After-window mean {after_level:.4g} {'meets' if target_met else 'misses'} the target "
        f"{target:.4g}."
    )
    return Effect(
        verdict="effective" if effective else "not_effective",
        effect=effect,
        p_value=p_value,
        direction=direction,
        treated_before=float(np.mean([treated[t] for t in before_t])),
        treated_after=after_level,
        controls_before=float(np.mean(c_before)),
        controls_after=float(np.mean(c_after)),
        target=float(target),
        target_met=bool(target_met),
        buckets_before=len(d_before),
        buckets_after=len(d_after),
        controls=controls,
        window_start=start,
        effective_from=t0,
        window_end=end,
        method="difference-in-differences, one-sided permutation test",
        statement=statement,
    )


def _too_few(
    store: Store, measure: dict[str, Any], before: int, after: int, need: float, window: int,
    end: int, bucket_seconds: int,
) -> str:  # fmt: skip
    """Why the windows cannot be compared, and whether waiting would help."""
    indicator, org = measure["indicator"], measure["org"]
    line, channel = measure["product_line"], measure["channel"]
    span = store.reading_span(indicator, org, line, channel)
    if span is None:
        return (
            f"{indicator} has no reading at all for org {org}, product line {line}, channel "
            f"{channel} — not one bucket, so there is nothing to compare. qualmon computes the "
            "total, each org, product line and channel, and the combinations of "
            "QUALMON_SLICE_COMBINATIONS with a selling org; a slice outside these never has "
            "readings: add a measure whose expected effect is on a slice GET /v1/indicators lists"
        )
    why = []
    # Waiting helps only while the service has not closed the window's last bucket yet: a
    # slice whose readings stopped long ago has gaps no wait will fill.
    closed = store.latest_bucket(indicator) or span[1]
    open_window = closed < end - bucket_seconds
    if after < need and open_window:
        why.append(f"evaluate once the after-window has passed ({iso(end)})")
    if before < need:
        why.append(
            f"before the measure the slice has too few readings (its first is of "
            f"{iso(span[0])}), which waiting will not change"
        )
    elif after < need and not open_window:
        why.append("the after-window has passed with gaps in the slice's readings")
    return (
        f"{indicator} of org {org} ({line}/{channel}) has {before} buckets before and {after} "
        f"after {iso(measure['effective_from'])}; at least {need:.0f} of {window} are needed "
        f"on each side — {'; '.join(why)}"
    )


def _mean_difference(before: np.ndarray, after: np.ndarray, axis: int) -> np.ndarray:
    return np.mean(after, axis=axis) - np.mean(before, axis=axis)


def _controls(
    series: dict[str, dict[int, float]], org: str, paths: dict[str, str], t0: int, need: float
) -> list[str]:
    path = paths.get(org, org)
    depth = path.count("/")
    out = []
    for other, values in series.items():
        if other in (org, "*"):
            continue
        other_path = paths.get(other, other)
        same_branch = other_path.startswith(path + "/") or path.startswith(other_path + "/")
        if other_path.count("/") != depth or same_branch:
            continue
        before = sum(t < t0 for t in values)
        if before >= need and len(values) - before >= need:
            out.append(other)
    return sorted(out)
