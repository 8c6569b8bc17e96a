"""The decision: which strategy to pick under the user's constraints, and why, from measured numbers.

1. Strategies that did not run, or break a constraint, are excluded, each with the number that
   excluded it. Forgetting is a measured figure with an interval: a strategy is excluded when the
   interval's lower bound is above the limit, and flagged "may exceed" when the interval straddles it.
2. The Pareto front is computed over the rest: score (higher), total cost over the horizon, p50
   latency and forgetting (lower).
3. The leader is the best by weighted utility (each figure scaled 0..1 over the candidates; by
   default only the score counts).
4. Ties mean equivalence, never mere absence of evidence: a candidate is tied with the leader only
   when a paired two one-sided test shows their score difference lies within the margin (default 2
   points). Ranking by score, the cheapest of the leader and the candidates tied with it wins. A
   difference that is neither significant nor shown equivalent is underpowered: the leader keeps the
   pick and the card says how small a difference the run could detect and how many items would
   settle it.
5. The pick lies on the Pareto front; the rationale names the front.

Costs use the `work` basis by default (FLOPs at the machine's measured throughput: does not move with
the load), wall time when the records have no work figures. Same records and constraints give the
same pick and the same words: no randomness but seeded statistics, and every ordering is explicit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from harness.decide.analysis import Analysis, StrategySummary
from harness.decide.constraints import Constraints, Criterion, merge_constraints, parse_weights
from harness.decide.cost import Cost, fmt_usd, strategy_cost
from harness.decide.options import Option, Verdicts
from harness.decide.rationale import power_line, rationale, warnings

__all__ = ["Constraints", "Decision", "Option", "merge_constraints", "pareto", "parse_weights", "recommend",
           "utilities"]


@dataclass(frozen=True)
class Decision:
    pick: str | None
    rationale: tuple[str, ...]
    options: tuple[Option, ...]
    """Every strategy, candidates first (best utility first), then the excluded ones."""
    constraints: Constraints
    tied: tuple[str, ...] = ()
    """Candidates shown equivalent to the leader on score (within the margin)."""
    underpowered: tuple[str, ...] = ()
    """Candidates neither significantly different from the leader nor shown equivalent."""
    warnings: tuple[str, ...] = ()
    """What limits how far the pick can be trusted (shown on the card, above the reasons)."""
    power: str = ""
    """How many items and seeds the decision rests on, and the smallest difference it could detect."""
    front: tuple[str, ...] = ()
    """The Pareto front of the candidates."""


def _forgetting_check(s: StrategySummary, limit: float) -> tuple[str | None, str | None]:
    """(exclusion, flag) for the forgetting limit: excluded when the interval's lower bound is above it,
    flagged when the interval straddles it."""
    f = s.forgetting.accuracy_pt if s.forgetting else None
    if f is None:
        return "forgetting not measured (run with retention)", None
    if math.isnan(f.low):  # old records: the mean alone
        return (f"forgetting {f.mean:.1f} pt > {limit:.1f} pt limit", None) if f.mean > limit else (None, None)
    span = f"forgetting {f.mean:.1f} pt [95% CI {f.low:.1f}, {f.high:.1f}]"
    if f.low > limit:
        return f"{span}: above the {limit:.1f} pt limit", None
    if f.high > limit:
        return None, f"{span} may exceed the {limit:.1f} pt limit"
    return None, None


def _violations(s: StrategySummary, cost: Cost, tco: float, c: Constraints) -> tuple[str | None, tuple[str, ...]]:
    """Why a strategy cannot be picked (None when it can), and flags that do not exclude it."""
    if s.status != "ok":
        return (f"{s.status}: {s.reason}" if s.reason else s.status), ()
    if math.isnan(s.score.mean):
        return "no scored test items", ()
    if c.max_forgetting_pt is not None:
        excluded, flag = _forgetting_check(s, c.max_forgetting_pt)
        if excluded:
            return excluded, ()
    flags = (flag,) if c.max_forgetting_pt is not None and flag else ()
    checks = [
        (c.max_latency_ms, s.p50_ms, lambda v, lim: f"p50 latency {v:.0f} ms > {lim:.0f} ms limit",
         "latency not measured"),
        (c.max_memory_gb, s.peak_mem_gb, lambda v, lim: f"peak memory {v:.2f} GB > {lim:.2f} GB limit",
         "memory not measured"),
        (c.budget_usd, tco, lambda v, lim: f"total cost {fmt_usd(v)} > {fmt_usd(lim)} budget", ""),
    ]
    for limit, value, says, missing in checks:
        if limit is not None and value is None:
            return missing, flags
        if limit is not None and value is not None and value > limit:
            return says(value, limit), flags
    if c.updates_per_month and cost.update_usd is None:
        return "no measured knowledge-update cost (run it with update_docs)", flags
    return None, flags


def total_cost(cost: Cost, c: Constraints) -> float:
    """Adaptation, serving the horizon's queries, and its knowledge updates."""
    updates = c.updates_per_month * c.months * (cost.update_usd or 0.0)
    return cost.total(c.queries()) + updates


def _option(s: StrategySummary, c: Constraints) -> Option:
    cost = strategy_cost(s, c.prices, c.price_per_hour, c.cost_basis)
    tco = total_cost(cost, c)
    excluded, flags = _violations(s, cost, tco, c)
    f = s.forgetting.accuracy_pt if s.forgetting else None
    return Option(s.strategy, s.score.mean, s.score.low, s.score.high, cost, tco, s.p50_ms, s.forgetting_pt,
                  s.peak_mem_gb, excluded=excluded, flags=flags,
                  forgetting_low=None if f is None or math.isnan(f.low) else f.low)


def _filled(values: Sequence[float | None]) -> list[float]:
    """A missing figure counts as the worst (largest) one present, never as the best."""
    present = [v for v in values if v is not None]
    worst = max(present) if present else 0.0
    return [worst if v is None else v for v in values]


def _axes(options: Sequence[Option]) -> dict[str, list[float]]:
    """Each criterion per option, oriented so that larger is better."""
    return {
        "accuracy": [o.score for o in options],
        "cost": [-o.tco_usd for o in options],
        "latency": [-v for v in _filled([o.p50_ms for o in options])],
        "forgetting": [-v for v in _filled([o.forgetting_pt for o in options])],
    }


def pareto(options: Sequence[Option]) -> set[str]:
    """Names of the options no other option dominates (at least as good on every axis, better on one)."""
    axes = _axes(options)
    objs = {o.strategy: tuple(axes[k][i] for k in axes) for i, o in enumerate(options)}

    def dominated(a: str) -> bool:
        return any(all(x >= y for x, y in zip(objs[b], objs[a], strict=True)) and objs[b] != objs[a]
                   for b in objs if b != a)

    return {name for name in objs if not dominated(name)}


def _scaled(values: Sequence[float]) -> list[float]:
    """0 for the worst, 1 for the best (larger is better); all 1 when they are equal."""
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12:
        return [1.0] * len(values)
    return [(v - lo) / (hi - lo) for v in values]


def utilities(options: Sequence[Option], weights: Mapping[Criterion, float]) -> list[float]:
    w: dict[str, float] = {str(k): v for k, v in weights.items()} or {"accuracy": 1.0}
    columns = {k: _scaled(v) for k, v in _axes(options).items()}
    total = sum(w.values()) or 1.0
    return [sum(w.get(k, 0.0) * col[i] for k, col in columns.items()) / total for i in range(len(options))]


def _rank(candidates: list[Option], c: Constraints) -> list[Option]:
    front = pareto(candidates)
    scored = [replace(o, front=o.strategy in front, utility=u)
              for o, u in zip(candidates, utilities(candidates, c.weights), strict=True)]
    return sorted(scored, key=lambda o: (-o.utility, -o.score, o.tco_usd, o.strategy))


def _verdicts(ranked: list[Option], analysis: Analysis, c: Constraints) -> Verdicts:
    leader = ranked[0]
    comparisons = {o.strategy: analysis.compare(o.strategy, leader.strategy, c.margin) for o in ranked[1:]}
    tied = [o for o in ranked[1:] if comparisons[o.strategy].verdict == "equivalent"]
    weak = [o for o in ranked[1:] if comparisons[o.strategy].verdict == "underpowered"]
    return Verdicts(comparisons, tied, weak)


def _choose(ranked: list[Option], v: Verdicts, c: Constraints) -> Option:
    """Ranking by score: the cheapest of the leader and the candidates shown equivalent to it, among
    those on the Pareto front. With other weights: the leader (the weights already price cost in)."""
    leader = ranked[0]
    group = [leader, *v.tied] if c.by_score() else [leader]
    on_front = [o for o in group if o.front] or [o for o in ranked if o.front] or group
    return min(on_front, key=lambda o: (round(o.tco_usd, 12), o.cost.usd_per_1k_queries, -o.utility, o.strategy))


def recommend(analysis: Analysis, c: Constraints) -> Decision:
    """Filter, rank, break ties toward the cheaper only when shown equivalent; explain with numbers."""
    options = [_option(s, c) for s in analysis.summaries]
    candidates = [o for o in options if o.excluded is None]
    excluded = sorted((o for o in options if o.excluded), key=lambda o: o.strategy)
    if not candidates:
        why = "; ".join(f"{o.strategy} ({o.excluded})" for o in excluded) or "no strategy ran"
        return Decision(None, (f"No strategy meets the constraints: {why}.",), tuple(excluded), c,
                        warnings=warnings(analysis, None, (), c))
    ranked = _rank(candidates, c)
    v = _verdicts(ranked, analysis, c)
    pick = _choose(ranked, v, c)
    front = tuple(o.strategy for o in ranked if o.front)
    return Decision(
        pick.strategy, rationale(pick, ranked, v, excluded, analysis, c), (*ranked, *excluded), c,
        tuple(o.strategy for o in v.tied), tuple(o.strategy for o in v.underpowered),
        warnings(analysis, pick, v.underpowered, c), power_line(analysis, ranked, v), front,
    )
