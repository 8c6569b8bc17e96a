"""The decision in words: the reasons for the pick, the cautions on the card, and the power line. Every
sentence quotes measured numbers; the same inputs give the same words."""

from __future__ import annotations

from collections.abc import Sequence

from harness.core.inference import Z80_POWER, Z95, Comparison
from harness.decide.analysis import Analysis
from harness.decide.constraints import Constraints
from harness.decide.cost import fmt_count, fmt_usd
from harness.decide.options import Option, Verdicts

SMALL_SAMPLE = 30
"""Fewer test items than this in any task: indicative only."""
DOMINANT = 0.8
"""A pick answering one label for more than this share of a task's items is flagged."""


def pt(x: float) -> str:
    return f"{100 * x:+.1f} pt"


def comparison_text(c: Comparison) -> str:
    """'lora vs few-shot: +4.2 pt [95% CI -3.1, +11.5], underpowered (...)', in plain words."""
    span = f"{pt(c.diff)} [95% CI {pt(c.low)}, {pt(c.high)}]"
    if c.verdict == "different":
        return f"{c.a} vs {c.b}: {span}, significantly different (p={c.p_value:.2g})"
    if c.verdict == "equivalent":
        return f"{c.a} vs {c.b}: {span}, equivalent within ±{100 * c.margin:.1f} pt (TOST)"
    needed = c.items_to_separate()
    more = f"; about {needed:,} items would separate them" if needed else ""
    return (f"{c.a} vs {c.b}: {span}, underpowered: neither different nor shown equivalent (smallest "
            f"detectable difference {100 * c.mde:.1f} pt at n={c.n_items}{more})")


def _profile(o: Option, c: Constraints) -> str:
    basis = " (work basis)" if o.cost.basis == "work" else " (wall time)"
    parts = [f"{fmt_usd(o.cost.adapt_usd)} to adapt", f"{fmt_usd(o.cost.usd_per_1k_queries)} per 1,000 queries{basis}"]
    if c.queries_per_month or c.updates_per_month:
        parts.append(f"{fmt_usd(o.tco_usd)} {c.horizon()}")
    if o.p50_ms is not None:
        parts.append(f"p50 {o.p50_ms:.0f} ms")
    if o.forgetting_pt is not None:
        parts.append(_retention_change(o.forgetting_pt))
    return ", ".join(parts)


def _retention_change(pt: float) -> str:
    if round(pt, 1) == 0:
        return "no change on the retention suite"
    return f"{'loses' if pt > 0 else 'gains'} {abs(pt):.1f} pt on the retention suite"


def _by(c: Constraints) -> str:
    if not c.weights:
        return "score"
    return "weighted utility (" + ", ".join(f"{k}={v:g}" for k, v in sorted(c.weights.items())) + ")"


def _why(pick: Option, leader: Option, ranked: list[Option], v: Verdicts, analysis: Analysis,
         c: Constraints) -> str:
    if pick is not leader and pick not in v.tied:  # the leader and its ties are off the Pareto front
        return (f"{leader.strategy} leads on {_by(c)} but is not on the Pareto front (another scores as well "
                f"at no more cost, latency or forgetting); {pick.strategy} is the cheapest on the front.")
    if pick is not leader:
        test = analysis.compare(pick.strategy, leader.strategy, c.margin)
        return (f"{leader.strategy} leads on {_by(c)}, but {pick.strategy} is shown equivalent to it "
                f"({comparison_text(test)}) and is cheaper on {c.horizon()}: {fmt_usd(pick.tco_usd)} vs "
                f"{fmt_usd(leader.tco_usd)}.")
    if len(ranked) == 1:
        return "The only strategy that ran and meets the constraints."
    if v.tied:
        return (f"Best on {_by(c)}; equivalent within ±{c.margin_pt:g} pt to {', '.join(o.strategy for o in v.tied)}, "
                f"none of them cheaper on {c.horizon()}.")
    if c.by_score() and not v.underpowered:
        return f"Best on {_by(c)} among {len(ranked)} candidates; every other scores significantly lower."
    return f"Best on {_by(c)} among {len(ranked)} candidates."


def rationale(pick: Option, ranked: list[Option], v: Verdicts, excluded: Sequence[Option], analysis: Analysis,
              c: Constraints) -> tuple[str, ...]:
    leader = ranked[0]
    lines = [f"Pick {pick.strategy}: score {pick.score:.3f} [95% CI {pick.low:.3f}, {pick.high:.3f}]; "
             f"{_profile(pick, c)}.", _why(pick, leader, ranked, v, analysis, c)]
    front = [o.strategy for o in ranked if o.front]
    lines.append(f"Pareto front (score, total cost, p50 latency, forgetting): {', '.join(front)}.")
    if v.underpowered:
        lines += [f"Underpowered: {comparison_text(v.comparisons[o.strategy])}." for o in v.underpowered]
    runner = next((o for o in ranked if o is not pick), None)
    if runner is not None and runner not in v.underpowered:
        t = analysis.compare(runner.strategy, pick.strategy, c.margin)
        lines.append(f"Runner-up {comparison_text(t)}; {_profile(runner, c)}.")
    lines += [f"Caution for {o.strategy}: {flag}." for o in ranked for flag in o.flags]
    if excluded:
        lines.append("Excluded: " + "; ".join(f"{o.strategy} ({o.excluded})" for o in excluded) + ".")
    return tuple(lines)


def power_line(analysis: Analysis, ranked: list[Option], v: Verdicts) -> str:
    """How much evidence the decision rests on, in one line."""
    items, seeds = analysis.n_items, analysis.n_seeds
    if len(ranked) > 1:
        mde = v.comparisons[ranked[1].strategy].mde
    else:
        s = analysis.get(ranked[0].strategy).score
        mde = (Z95 + Z80_POWER) * (s.high - s.low) / (2 * Z95) * 2 ** 0.5
    return (f"The decision rests on {items:,} test items and {seeds} seed{'s' if seeds != 1 else ''}; the smallest "
            f"score difference it could detect is about {100 * mde:.1f} pt (80% power, 5% level).")


def _capped(analysis: Analysis) -> list[str]:
    capped = [s for s in analysis.summaries if s.status == "ok" and s.budget is not None and s.budget.capped]
    if not capped:
        return []
    steps = ", ".join(f"{s.strategy} {s.budget.steps} of {s.budget.planned_steps}" for s in capped if s.budget)
    return [f"Trained {steps} planned steps (CPU cap): not converged fine-tunes; run on a GPU or raise "
            "cpu_max_steps before trusting how the weight strategies rank."]


def _small(analysis: Analysis) -> list[str]:
    sizes = [(t, e.n_items) for s in analysis.summaries if s.status == "ok" for t, e in s.tasks.items()]
    small = sorted({t for t, n in sizes if n < SMALL_SAMPLE})
    if not small:
        return []
    return [f"Small sample: fewer than {SMALL_SAMPLE} test items in {', '.join(small)} (a --limit run?): "
            "indicative only."]


def _pick_checks(analysis: Analysis, pick: Option, c: Constraints) -> list[str]:
    """The pick answering one label for most items, or not beating always-the-majority-answer."""
    out = []
    for task, base in sorted(analysis.baselines.items()):
        dominant = analysis.dominant.get((pick.strategy, task))
        if dominant is not None and dominant[1] > DOMINANT:
            out.append(f"{pick.strategy} answers {dominant[0]!r} for {100 * dominant[1]:.0f}% of {task}'s items.")
        est = analysis.get(pick.strategy).tasks.get(task)
        if est is not None and est.low <= base.majority:
            out.append(f"{pick.strategy} does not beat the majority-class baseline on {task} significantly: "
                       f"{est.mean:.3f} [95% CI {est.low:.3f}, {est.high:.3f}] vs {base.majority:.3f} "
                       f"(always {base.majority_label!r}; chance {base.chance:.3f}).")
    return out


def warnings(analysis: Analysis, pick: Option | None, underpowered: Sequence[Option], c: Constraints
             ) -> tuple[str, ...]:
    """Cautions of the run the decision rests on, in measured numbers."""
    out = _capped(analysis) + _small(analysis)
    if pick is not None:
        out += _pick_checks(analysis, pick, c)
        if underpowered:
            out.append(f"The pick is not shown better than {', '.join(o.strategy for o in underpowered)}: more "
                       "test items or seeds would settle it (see the reasons).")
        seeds = [s.strategy for s in analysis.summaries if s.status == "ok" and s.needs_more_seeds]
        if seeds:
            out.append(f"Seed spread exceeds the item interval for {', '.join(seeds)}: run more seeds.")
    if c.queries_per_month and pick is not None and pick.cost.basis == "wall":
        out.append("Costs are wall time (the records have no work figures): they move with the machine's load.")
    return tuple(out)


def break_even_text(a: str, b: str, queries: float) -> str:
    return f"{a} becomes cheaper than {b} after {fmt_count(queries)} queries"
