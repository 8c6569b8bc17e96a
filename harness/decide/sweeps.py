"""When would the answer change: the pick as a function of one constraint at a time, everything else as
the user set it, re-decided from the same analysis (no model runs). Each change of pick is located by
bisection and paired with the figure that explains it, computed independently: for volumes, horizons
and update rates the crossing of the two strategies' total-cost lines (the cost model's break-even);
for limits, the measured figure the limit crosses (a p50 latency, a peak memory, a forgetting bound).
tests/test_sweeps.py checks that the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from harness.decide.analysis import Analysis
from harness.decide.decision import Constraints, Decision, Option, recommend, total_cost


@dataclass(frozen=True)
class Dimension:
    name: str
    """A Constraints field."""
    label: str
    low: float
    high: float
    log: bool
    integer: bool = False


DIMENSIONS = (
    Dimension("queries_per_month", "queries/month", 0.0, 1e8, True),
    Dimension("months", "months", 1, 120, False, integer=True),
    Dimension("updates_per_month", "knowledge updates/month", 0.0, 1000.0, True),
    Dimension("max_latency_ms", "p50 latency limit (ms)", 1.0, 1e5, True),
    Dimension("max_memory_gb", "peak memory limit (GB)", 0.01, 1e3, True),
    Dimension("max_forgetting_pt", "forgetting limit (pt)", 0.0, 100.0, False),
    Dimension("budget_usd", "budget (USD)", 1e-6, 1e7, True),
)


@dataclass(frozen=True)
class BreakPoint:
    dimension: str
    value: float
    """The constraint value at which the pick changes (located by bisection)."""
    before: str | None
    """The pick just below `value` (None: nothing meets the constraints)."""
    after: str | None
    explained: float | None
    """The value the cost model or the measurements give for this change; None when no single figure
    explains it (several things change at once)."""
    reason: str


def grid(d: Dimension, n: int = 41) -> list[float]:
    if d.log:  # a range from 0: 0, then from a billionth of the top
        lo = d.low if d.low > 0 else d.high * 1e-9
        points = [0.0] if d.low == 0 else []
        return points + [float(v) for v in np.geomspace(lo, d.high, n)]
    values = [float(v) for v in np.linspace(d.low, d.high, n)]
    return sorted({float(round(v)) for v in values}) if d.integer else values


def _pick_at(analysis: Analysis, base: Constraints, d: Dimension) -> Callable[[float], Decision]:
    def decide(value: float) -> Decision:
        v = round(value) if d.integer else value
        return recommend(analysis, base.model_copy(update={d.name: v}))
    return decide


def _bisect(decide: Callable[[float], Decision], lo: float, hi: float, d: Dimension
            ) -> tuple[float, Decision, Decision]:
    """The smallest value (within 1e-9 relative, or 1 for integers) whose pick is the pick at `hi`."""
    a, b = decide(lo), decide(hi)
    for _ in range(200):
        if (d.integer and hi - lo <= 1) or (not d.integer and hi - lo <= 1e-9 * max(abs(hi), 1e-12)):
            break
        mid = (lo + hi) / 2 if not d.log or lo <= 0 else math.sqrt(lo * hi)
        if d.integer:
            mid = math.floor(mid)
            mid = mid + 1 if mid <= lo else mid
        m = decide(mid)
        if m.pick == a.pick:
            lo, a = mid, m
        else:
            hi, b = mid, m
    return hi, a, b


def break_points(analysis: Analysis, base: Constraints, d: Dimension) -> list[BreakPoint]:
    """Every change of pick along `d` within its range, in increasing order."""
    decide = _pick_at(analysis, base, d)
    values = grid(d)
    picks = [decide(v) for v in values]
    out = []
    for (lo, p), (hi, q) in zip(zip(values, picks, strict=True), zip(values[1:], picks[1:], strict=True),
                                strict=False):
        if p.pick != q.pick:
            out += _changes_between(decide, lo, hi, q.pick, d, base)
    return out


def _changes_between(decide: Callable[[float], Decision], lo: float, hi: float, last: str | None, d: Dimension,
                     base: Constraints) -> list[BreakPoint]:
    """Every change of pick between two grid values (several when measured figures lie close together),
    up to `last`, the pick at `hi`."""
    out: list[BreakPoint] = []
    for _ in range(50):
        at, before, after = _bisect(decide, lo, hi, d)
        from_zero = d.low == 0 and at <= d.high * 1e-9  # any value above 0 changes it: say 0, not 1e-21
        point = _explain(d, 0.0 if from_zero else at, before, after, base)
        out.append(replace(point, reason=f"any value above 0: {point.reason}") if from_zero else point)
        if after.pick == last or at >= hi:
            break
        lo = at
    return out


def _option(decision: Decision, name: str | None) -> Option | None:
    return next((o for o in decision.options if o.strategy == name), None)


def _excluded(decision: Decision, name: str) -> bool:
    o = _option(decision, name)
    return o is not None and o.excluded is not None


def _explain(d: Dimension, at: float, before: Decision, after: Decision, base: Constraints) -> BreakPoint:
    a, b = _option(before, before.pick), _option(after, after.pick)
    if after.pick is None:
        gone = _option(after, before.pick)
        why = f"{before.pick} is excluded: {gone.excluded}" if gone and gone.excluded else "nothing qualifies"
        return BreakPoint(d.name, at, before.pick, None, None, f"nothing qualifies from here ({why})")
    if d.name in ("queries_per_month", "months", "updates_per_month"):
        value = crossing(a, b, base, d.name) if a and b else None
        why = f"{after.pick} becomes cheaper in total than {before.pick}"
        return BreakPoint(d.name, at, before.pick, after.pick, value, why)
    admitted = [o for o in after.options if o.excluded is None and _excluded(before, o.strategy)]
    figure = LIMIT_FIGURES.get(d.name)
    if len(admitted) != 1 or figure is None:
        return BreakPoint(d.name, at, before.pick, after.pick, None, "several strategies change at once")
    o = admitted[0]
    what, unit, get = figure
    v = get(o)
    shown = "not measured" if v is None else f"{v:.4g} {unit}"
    return BreakPoint(d.name, at, before.pick, after.pick, v,
                      f"{o.strategy}'s {what} ({shown}) is within the limit from here up")


LIMIT_FIGURES: dict[str, tuple[str, str, Callable[[Option], float | None]]] = {
    "max_latency_ms": ("p50 latency", "ms", lambda o: o.p50_ms),
    "max_memory_gb": ("peak memory", "GB", lambda o: o.peak_mem_gb),
    "budget_usd": ("total cost", "USD", lambda o: o.tco_usd),
    "max_forgetting_pt": ("forgetting interval's lower end", "pt", lambda o: o.forgetting_low),
}
"""For each limit: the figure of a strategy that the limit admits once it reaches it."""


def crossing(a: Option, b: Option, c: Constraints, field: str) -> float | None:
    """The value of `field` at which a's and b's total costs are equal (each is linear in it)."""
    def tco(o: Option, value: float) -> float:
        return total_cost(o.cost, c.model_copy(update={field: value}))

    at0, at1 = tco(a, 1.0) - tco(b, 1.0), tco(a, 2.0) - tco(b, 2.0)
    slope = at1 - at0
    if slope == 0:
        return None
    return 1.0 - at0 / slope


def all_break_points(analysis: Analysis, base: Constraints) -> list[BreakPoint]:
    """Break points along every dimension, each swept with the others as the user set them."""
    return [bp for d in DIMENSIONS for bp in break_points(analysis, base, d)]
