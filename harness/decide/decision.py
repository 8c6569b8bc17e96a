"""The decision: which strategy to pick under the user's constraints, and why, from measured numbers.

1. Strategies that did not run, or break a constraint, are excluded, each with the number that
   excluded it.
2. The Pareto front is computed over the rest: score (higher), total cost over the horizon, p50
   latency and forgetting (lower).
3. The leader is the best by weighted utility (each figure scaled 0..1 over the candidates; by
   default only the score counts).
4. Ties: every candidate whose score is not significantly different from the leader's (paired test
   on the same items, p >= 0.05) is tied with it, and the cheapest tied one wins. The text says so.

Same records and constraints give the same pick and the same words: no randomness but seeded
statistics, and every ordering is explicit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.core.errors import HarnessError, validation_message
from harness.decide.analysis import Analysis, StrategySummary
from harness.decide.cost import DEFAULT_PRICES, Cost, fmt_count, fmt_usd, strategy_cost

Criterion = Literal["accuracy", "cost", "latency", "forgetting"]
ALPHA = 0.05


class Constraints(BaseModel):
    """What the user can live with. Every field is optional; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_latency_ms: float | None = Field(None, gt=0, description="Largest acceptable p50 latency per query.")
    max_forgetting_pt: float | None = Field(None, ge=0, description="Largest acceptable drop on the retention suite.")
    budget_usd: float | None = Field(None, ge=0, description="Largest total cost: adaptation plus serving over "
                                     "the horizon at queries_per_month.")
    max_memory_gb: float | None = Field(None, gt=0, description="Largest acceptable peak memory.")
    queries_per_month: float = Field(0, ge=0, description="Expected serving volume, for total cost.")
    months: int = Field(12, ge=1, le=120, description="Horizon of the total cost of ownership.")
    weights: dict[Criterion, float] = Field(default_factory=dict, description="Utility weights; default accuracy=1.")
    price_per_hour: float | None = Field(None, gt=0, description="USD per hour of the hardware used (overrides "
                                         "the price table).")
    prices: dict[str, float] = Field(default_factory=dict, description="Price table overrides: cpu, a100, h100...")

    @field_validator("weights", "prices")
    @classmethod
    def _finite_non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        for key, x in v.items():
            if not math.isfinite(x) or x < 0:
                raise ValueError(f"{key}: {x} must be a finite number >= 0")
        return v

    @field_validator("prices")
    @classmethod
    def _known_hardware(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(DEFAULT_PRICES))
        if unknown:
            raise ValueError(f"unknown hardware {', '.join(unknown)} (known: {', '.join(DEFAULT_PRICES)})")
        return v

    def queries(self) -> float:
        return self.queries_per_month * self.months

    def by_score(self) -> bool:
        """Ranking by score alone (no weights, or accuracy only): then ties go to the cheaper."""
        return not any(w for k, w in self.weights.items() if k != "accuracy")

    def cost_basis(self) -> str:
        if not self.queries_per_month:
            return "adaptation cost (no query volume given)"
        return f"total cost over {self.months} months at {fmt_count(self.queries_per_month)} queries/month"


def parse_weights(text: str | None) -> dict[str, float]:
    """'accuracy=1,cost=0.5' -> {'accuracy': 1.0, 'cost': 0.5}; the keys are checked by Constraints."""
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        try:
            out[key.strip()] = float(value) if sep else math.nan
        except ValueError:
            raise HarnessError(f"--weights: {part.strip()!r} is not name=number") from None
        if not math.isfinite(out[key.strip()]) or out[key.strip()] < 0:
            raise HarnessError(f"--weights: {part.strip()!r} needs a number >= 0")
    return out


def merge_constraints(base: Mapping[str, Any] | None = None, **flags: Any) -> dict[str, Any]:
    """`base` (a run.toml [decide] table or the constraints saved with a run) with the `flags` that
    were given (None: not given; `weights` may be "accuracy=1,cost=0.5"), validated; the fields that
    differ from the defaults, as plain JSON values."""
    from pydantic import ValidationError

    data = dict(base or {})
    if isinstance(flags.get("weights"), str):
        flags["weights"] = parse_weights(flags["weights"])
    data.update({k: v for k, v in flags.items() if v is not None})
    try:
        return Constraints.model_validate(data).model_dump(mode="json", exclude_defaults=True)
    except ValidationError as e:
        raise HarnessError(validation_message("constraints", e)) from None


@dataclass(frozen=True)
class Option:
    """One strategy as the decision saw it."""

    strategy: str
    score: float
    low: float
    high: float
    cost: Cost
    tco_usd: float
    p50_ms: float | None
    forgetting_pt: float | None
    peak_mem_gb: float
    excluded: str | None = None
    front: bool = False
    utility: float = 0.0


@dataclass(frozen=True)
class Decision:
    pick: str | None
    rationale: tuple[str, ...]
    options: tuple[Option, ...]
    """Every strategy, candidates first (best utility first), then the excluded ones."""
    constraints: Constraints
    tied: tuple[str, ...] = ()
    """Candidates statistically tied with the leader on score (the pick among them is the cheapest)."""


def _violations(s: StrategySummary, tco: float, c: Constraints) -> str | None:
    """Why a strategy cannot be picked, in measured numbers; None when it can."""
    if s.status != "ok":
        return f"{s.status}: {s.reason}" if s.reason else s.status
    if math.isnan(s.score.mean):
        return "no scored test items"
    checks = [
        (c.max_latency_ms, s.p50_ms, lambda v, lim: f"p50 latency {v:.0f} ms > {lim:.0f} ms limit",
         "latency not measured"),
        (c.max_forgetting_pt, s.forgetting_pt, lambda v, lim: f"forgetting {v:.1f} pt > {lim:.1f} pt limit",
         "forgetting not measured (run with retention)"),
        (c.max_memory_gb, s.peak_mem_gb, lambda v, lim: f"peak memory {v:.2f} GB > {lim:.2f} GB limit",
         "memory not measured"),
        (c.budget_usd, tco, lambda v, lim: f"total cost {fmt_usd(v)} > {fmt_usd(lim)} budget", ""),
    ]
    for limit, value, says, missing in checks:
        if limit is not None and value is None:
            return missing
        if limit is not None and value is not None and value > limit:
            return says(value, limit)
    return None


def _option(s: StrategySummary, c: Constraints) -> Option:
    cost = strategy_cost(s, c.prices, c.price_per_hour)
    tco = cost.total(c.queries())
    return Option(s.strategy, s.score.mean, s.score.low, s.score.high, cost, tco, s.p50_ms, s.forgetting_pt,
                  s.peak_mem_gb, excluded=_violations(s, tco, c))


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
    from dataclasses import replace

    front = pareto(candidates)
    scored = [replace(o, front=o.strategy in front, utility=u)
              for o, u in zip(candidates, utilities(candidates, c.weights), strict=True)]
    return sorted(scored, key=lambda o: (-o.utility, -o.score, o.tco_usd, o.strategy))


def _tied(a: str, b: str, analysis: Analysis) -> bool:
    """No significant score difference on a non-empty set of shared items."""
    test = analysis.paired(a, b)
    return test.n > 0 and test.p_value >= ALPHA


def _cheapest_tied(ranked: list[Option], analysis: Analysis, c: Constraints) -> tuple[Option, list[Option]]:
    """With ranking by score, the cheapest of the leader and the candidates tied with it; with
    other weights, the leader (the weights already say how much cost counts)."""
    leader = ranked[0]
    if not c.by_score():
        return leader, []
    tied = [o for o in ranked[1:] if _tied(o.strategy, leader.strategy, analysis)]
    group = [leader, *tied]
    best = min(group, key=lambda o: (round(o.tco_usd, 12), o.cost.usd_per_1k_queries, -o.utility, o.strategy))
    return best, tied


def recommend(analysis: Analysis, c: Constraints) -> Decision:
    """Filter, rank, break ties toward the cheaper; explain with the measured numbers."""
    options = [_option(s, c) for s in analysis.summaries]
    candidates = [o for o in options if o.excluded is None]
    excluded = sorted((o for o in options if o.excluded), key=lambda o: o.strategy)
    if not candidates:
        why = "; ".join(f"{o.strategy} ({o.excluded})" for o in excluded) or "no strategy ran"
        return Decision(None, (f"No strategy meets the constraints: {why}.",), tuple(excluded), c)
    ranked = _rank(candidates, c)
    pick, tied = _cheapest_tied(ranked, analysis, c)
    text = _rationale(pick, ranked, tied, excluded, analysis, c)
    return Decision(pick.strategy, text, (*ranked, *excluded), c, tuple(o.strategy for o in tied))


def _pt(x: float) -> str:
    return f"{100 * x:+.1f} pt"


def _profile(o: Option, c: Constraints) -> str:
    parts = [f"{fmt_usd(o.cost.adapt_usd)} to adapt", f"{fmt_usd(o.cost.usd_per_1k_queries)} per 1,000 queries"]
    if c.queries_per_month:
        parts.append(f"{fmt_usd(o.tco_usd)} over {c.months} months at {fmt_count(c.queries_per_month)} queries/month")
    if o.p50_ms is not None:
        parts.append(f"p50 {o.p50_ms:.0f} ms")
    if o.forgetting_pt is not None:
        change = "loses" if o.forgetting_pt > 0 else "gains"
        parts.append(f"{change} {abs(o.forgetting_pt):.1f} pt on the retention suite")
    return ", ".join(parts)


def _rationale(pick: Option, ranked: list[Option], tied: list[Option], excluded: list[Option],
               analysis: Analysis, c: Constraints) -> tuple[str, ...]:
    leader = ranked[0]
    by = "score" if not c.weights else "weighted utility (" + ", ".join(f"{k}={v:g}" for k, v in
                                                                        sorted(c.weights.items())) + ")"
    lines = [f"Pick {pick.strategy}: score {pick.score:.3f} [95% CI {pick.low:.3f}, {pick.high:.3f}]; "
             f"{_profile(pick, c)}."]
    if pick is not leader:
        test = analysis.paired(pick.strategy, leader.strategy)
        lines.append(f"{leader.strategy} leads on {by} but is statistically tied with {pick.strategy} "
                     f"({test.verdict()}); the cheaper wins on {c.cost_basis()}: {pick.strategy} "
                     f"{fmt_usd(pick.tco_usd)} vs {fmt_usd(leader.tco_usd)}.")
    elif tied:
        names = ", ".join(o.strategy for o in tied)
        lines.append(f"Best on {by}; statistically tied on score with {names}, none of them cheaper on "
                     f"{c.cost_basis()}.")
    elif len(ranked) == 1:
        lines.append("The only strategy that ran and meets the constraints.")
    elif c.by_score():
        lines.append(f"Best on {by} among {len(ranked)} candidates; every other scores significantly lower.")
    else:
        lines.append(f"Best on {by} among {len(ranked)} candidates.")
    runner = next((o for o in ranked if o is not pick), None)
    if runner is not None:
        t = analysis.paired(runner.strategy, pick.strategy)
        lines.append(f"Runner-up {runner.strategy}: {_pt(t.diff)} vs {pick.strategy} (p={t.p_value:.2g}); "
                     f"{_profile(runner, c)}.")
    if excluded:
        lines.append("Excluded: " + "; ".join(f"{o.strategy} ({o.excluded})" for o in excluded) + ".")
    return tuple(lines)
