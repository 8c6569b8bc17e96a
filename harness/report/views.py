"""What the decision report shows, computed from records: the decision card, the per-strategy
summary, pairwise verdicts, costs and break-evens, coverage breakdown, the item browser and the
charts. Plain data for the templates; the templates only lay it out (and escape it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.core.inference import Comparison, Estimate, holm
from harness.core.records import CellRecord, TrainingBudget
from harness.decide.analysis import Analysis, StrategySummary, cell_item_scores, task_metric
from harness.decide.cost import Cost, break_even, break_evens, fmt_count, fmt_usd, strategy_cost
from harness.decide.decision import Constraints, Decision
from harness.decide.rationale import comparison_text
from harness.report import charts

BROWSER_TEXT = 80
"""Characters of each output shown in the item browser (the records keep all of it)."""


@dataclass(frozen=True)
class SummaryRow:
    s: StrategySummary
    cost: Cost
    tco_usd: float
    front: bool
    picked: bool


def summary_rows(analysis: Analysis, decision: Decision) -> list[SummaryRow]:
    opts = {o.strategy: o for o in decision.options}
    rows = []
    for s in analysis.summaries:
        o = opts[s.strategy]
        rows.append(SummaryRow(s, o.cost, o.tco_usd, o.front, s.strategy == decision.pick))
    return rows


@dataclass(frozen=True)
class ModelGrid:
    """Strategy (rows) x model (columns) of a several-model run: each pair's summary row, None where
    the pair did not run."""

    models: tuple[str, ...]
    rows: tuple[tuple[str, tuple[SummaryRow | None, ...]], ...]


def model_grid(saved: list[CellRecord], rows: list[SummaryRow]) -> ModelGrid | None:
    """The model x strategy grid; None for a one-model run."""
    from harness.decide.arms import arm, model_label, models_of

    models = models_of(saved)
    if len(models) < 2:
        return None
    by_arm = {r.s.strategy: r for r in rows}
    strategies = list(dict.fromkeys(r.strategy for r in saved))
    cells = {(r.model, r.strategy): by_arm.get(arm(r, True)) for r in saved}
    return ModelGrid(tuple(model_label(m) for m in models),
                     tuple((s, tuple(cells.get((m, s)) for m in models)) for s in strategies))


def break_point_rows(points: list[Any]) -> list[dict[str, str]]:
    """The decision's break points (harness.decide.sweeps) in words: the constraint, where the pick
    changes, from what to what, and why."""
    from harness.decide.sweeps import DIMENSIONS

    label = {d.name: d for d in DIMENSIONS}
    rows = []
    for p in points:
        d = label[p.dimension]
        at = f"{p.value:.0f}" if d.integer else (fmt_count(p.value) if d.name == "queries_per_month"
                                                 else f"{p.value:.3g}")
        rows.append({"constraint": d.label, "at": at, "before": p.before or "nothing qualifies",
                     "after": p.after or "nothing qualifies", "reason": p.reason})
    return rows


def budget_text(budget: TrainingBudget | None) -> str:
    """'24/312 steps (CPU cap)', '40 steps (early stop)', '3 epochs (120 steps)'; '–' when nothing trained."""
    if budget is None:
        return "–"
    how = {"cpu_max_steps": f"{budget.steps}/{budget.planned_steps} steps (CPU cap)",
           "early_stopping": f"{budget.steps}/{budget.planned_steps} steps (early stop)",
           "max_steps": f"{budget.steps} steps (max_steps)"}
    text = how.get(budget.stopped_by, f"{budget.epochs:.3g} epochs ({budget.steps} steps)")
    return f"{text}, {budget.precision}, lr {budget.learning_rate:.2g}"


def _span(e: Estimate | None, scale: float = 1.0, unit: str = "", digits: int = 1) -> str:
    if e is None:
        return "–"
    if math.isnan(e.low):
        return f"{e.mean * scale:+.{digits}f}{unit}"
    return f"{e.mean * scale:+.{digits}f}{unit} [{e.low * scale:+.{digits}f}, {e.high * scale:+.{digits}f}]"


def _share(e: Estimate | None) -> str:
    return "–" if e is None else f"{100 * e.mean:.1f}% [{100 * e.low:.1f}, {100 * e.high:.1f}]"


def forgetting_rows(analysis: Analysis) -> list[dict[str, str]]:
    """Per strategy: retention accuracy lost (points, 95% CI), knowledge lost and gained, cross-entropy
    change; context strategies share the base's weights (zero by construction)."""
    rows = []
    for s in analysis.summaries:
        f = s.forgetting
        if s.status != "ok" or f is None:
            continue
        rows.append({"strategy": s.strategy, "accuracy": _span(f.accuracy_pt, unit=" pt"), "lost": _share(f.lost),
                     "gained": _share(f.gained), "ce": _span(f.ce_delta, digits=3),
                     "how": "shared weights (zero by construction)" if f.shared_weights else "measured"})
    return rows


def baseline_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """Per choice task: majority-class and chance accuracy beside each strategy's, and how often each
    strategy gave its most frequent answer."""
    out = []
    for task, b in sorted(analysis.baselines.items()):
        per = []
        for s in analysis.summaries:
            est = s.tasks.get(task)
            dom = analysis.dominant.get((s.strategy, task))
            if est is not None:
                per.append({"strategy": s.strategy, "score": est.mean, "beats": est.low > b.majority,
                            "dominant": f"{dom[0]} ({100 * dom[1]:.0f}%)" if dom else "–"})
        out.append({"task": task, "majority": b.majority, "label": b.majority_label, "chance": b.chance,
                    "strategies": per})
    return out


def pairs(analysis: Analysis, margin: float) -> list[tuple[Comparison, float]]:
    """Every pair of strategies that ran, better-scoring first, each with its p-value adjusted for testing
    all the pairs at once (Holm)."""
    ok = sorted((s for s in analysis.summaries if s.status == "ok"), key=lambda s: (-s.score.mean, s.strategy))
    tests = [analysis.compare(a.strategy, b.strategy, margin) for i, a in enumerate(ok) for b in ok[i + 1 :]]
    return list(zip(tests, holm([c.p_value for c in tests]), strict=True))


def pair_verdicts(tested: list[tuple[Comparison, float]]) -> list[str]:
    """The pairs in plain words."""
    lines = []
    for c, q in tested:
        note = " (not significant once all pairs are counted)" if c.verdict == "different" and q >= 0.05 else ""
        lines.append(f"{comparison_text(c)}; Holm-adjusted p={q:.2g}{note}")
    return lines


def break_even_lines(rows: list[SummaryRow], decision: Decision) -> list[str]:
    """Break-even volumes between strategies on the Pareto front, shown only when stable: the same pair
    overtakes at a volume within a factor of 2 on both cost bases (work and wall time), so the line does
    not follow the machine's load."""
    front = [r for r in rows if r.s.status == "ok" and r.s.strategy in decision.front]
    c = decision.constraints
    other = "wall" if c.cost_basis == "work" else "work"
    alt = {r.s.strategy: strategy_cost(r.s, c.prices, c.price_per_hour, other) for r in front}
    lines = []
    for a, b, q in break_evens([r.cost for r in front]):
        q2 = break_even(alt[a.strategy], alt[b.strategy])
        if q2 is not None and 0.5 <= q2 / q <= 2:
            lines.append(f"{a.strategy} becomes cheaper than {b.strategy} after {fmt_count(q)} queries "
                         f"({fmt_count(q2)} on {other} time)")
    return lines


def coverage_table(records: list[CellRecord]) -> list[dict[str, Any]]:
    """Per task with a `coverage` tag (seen / unseen on legal-qa): each strategy's main metric by tag."""
    out: dict[tuple[str, str], dict[str, list[float]]] = {}
    for rec in records:
        if rec.status != "ok":
            continue
        scores = cell_item_scores(rec)
        for p in rec.predictions:
            tag = p.meta.get("coverage")
            if tag is not None and (p.task, p.example_id) in scores:
                out.setdefault((p.task, rec.strategy), {}).setdefault(str(tag), []).append(
                    scores[(p.task, p.example_id)])
    rows = []
    for (task, strategy), tags in out.items():
        rows.append({"task": task, "strategy": strategy,
                     "tags": {t: (sum(v) / len(v), len(v)) for t, v in sorted(tags.items())}})
    return rows


def item_browser(records: list[CellRecord]) -> list[dict[str, Any]]:
    """Per task: one row per test item, one column per strategy (its first seed), with the output
    (shortened) and whether it was right; rows where strategies differ in correctness are marked."""
    first: dict[str, CellRecord] = {}
    for rec in sorted(records, key=lambda r: r.seed):
        if rec.status == "ok":
            first.setdefault(rec.strategy, rec)
    strategies = list(first)
    tasks: dict[str, dict[str, dict[str, Any]]] = {}
    for name, rec in first.items():
        metric = {t.task: task_metric(t) for t in rec.tasks}
        for p in rec.predictions:
            m = metric.get(p.task)
            if m is None or m not in p.scores:
                continue
            item = tasks.setdefault(p.task, {}).setdefault(p.example_id, {"target": p.target, "cells": {}})
            item["cells"][name] = (_short(p.output), p.scores[m] >= 0.5)
    return [{"task": task, "strategies": strategies, "items": [
        {"id": iid, "target": _short(it["target"]), "cells": it["cells"],
         "disagree": len({ok for _, ok in it["cells"].values()}) > 1}
        for iid, it in items.items()]} for task, items in tasks.items()]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= BROWSER_TEXT else text[: BROWSER_TEXT - 1] + "…"


# ------------------------------------------------------------------ charts


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def chart_pareto(rows: list[SummaryRow], c: Constraints) -> str:
    ok = [r for r in rows if r.s.status == "ok" and _finite(r.s.score.mean)]
    points = [charts.Point(r.s.strategy, r.tco_usd, r.s.score.mean, r.s.score.low, r.s.score.high, r.front)
              for r in ok]
    positive = [p.x for p in points if p.x > 0]
    log = bool(positive) and (max(positive) / min(positive) > 100 or len(positive) < len(points))
    volume = f" + {fmt_count(c.queries())} queries" if c.queries() else ""
    return charts.scatter(points, "Score vs cost (Pareto front filled)", f"USD: adaptation{volume}",
                          "score (95% CI)", x_log=log)


def chart_forgetting(rows: list[SummaryRow]) -> str | None:
    bars = [charts.Bar(r.s.strategy, {"points lost": r.s.forgetting_pt}) for r in rows
            if r.s.forgetting_pt is not None]
    return charts.bars(bars, "Forgetting on the retention suite", "points of accuracy lost vs base") if bars else None


def chart_latency(rows: list[SummaryRow]) -> str | None:
    bars = [charts.Bar(r.s.strategy, {"p50": r.s.p50_ms, "p95": r.s.p95_ms}) for r in rows
            if r.s.p50_ms is not None and r.s.p95_ms is not None]
    return charts.bars(bars, "Latency per query", "ms", ["p50", "p95"]) if bars else None


def chart_training(records: list[CellRecord]) -> str | None:
    lines = []
    for rec in sorted(records, key=lambda r: (r.strategy, r.seed)):
        if rec.seed != min(r.seed for r in records if r.strategy == rec.strategy) or not rec.adapt.curve:
            continue
        for key, dashed in (("train_loss", False), ("dev_loss", True)):
            pts = tuple((row["step"], row[key]) for row in rec.adapt.curve if key in row)
            if pts:
                lines.append(charts.Line(f"{rec.strategy} {key.replace('_', ' ')}", pts, dashed))
    return charts.lines(lines, "Training curves", "optimizer step", "loss (nats/token)") if lines else None


def chart_retrieval(records: list[CellRecord]) -> str | None:
    bars = []
    for rec in records:
        for t in rec.tasks:
            found = {k: v for k, v in t.metrics.items() if is_recall_metric(k)}
            if found and rec.status == "ok":
                bars.append(charts.Bar(f"{rec.strategy} s{rec.seed} {t.task}", found))
    return charts.bars(bars, "Retrieval recall (gold document; gold evidence spans)",
                       "share, mean over questions") \
        if bars else None


def is_recall_metric(name: str) -> bool:
    """Retrieval metrics in a task's results: recall@k and MRR of the gold document, and recall or
    coverage of the gold evidence spans (harness.data.evaluation.evidence_metrics)."""
    return name.startswith(("recall@", "evidence_recall@", "evidence_covered@")) or name == "mrr"


def all_charts(rows: list[SummaryRow], records: list[CellRecord], c: Constraints) -> dict[str, str]:
    """name -> SVG document, only for charts that have data."""
    made = {"pareto": chart_pareto(rows, c), "forgetting": chart_forgetting(rows), "latency": chart_latency(rows),
            "training": chart_training(records), "retrieval": chart_retrieval(records)}
    return {k: v for k, v in made.items() if v is not None}


def usd(x: float | None) -> str:
    return "–" if x is None else fmt_usd(x)
