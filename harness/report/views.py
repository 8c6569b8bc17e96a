"""What the decision report shows, computed from records: the decision card, the per-strategy
summary, pairwise verdicts, costs and break-evens, coverage breakdown, the item browser and the
charts. Plain data for the templates; the templates only lay it out (and escape it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.core.records import CellRecord
from harness.decide.analysis import Analysis, StrategySummary, cell_item_scores, main_metric
from harness.decide.cost import Cost, break_evens, fmt_count, fmt_usd
from harness.decide.decision import Constraints, Decision
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


def pair_verdicts(analysis: Analysis) -> list[str]:
    """Every pair of strategies that ran, better-scoring first, in plain words."""
    ok = sorted((s for s in analysis.summaries if s.status == "ok"), key=lambda s: (-s.score.mean, s.strategy))
    return [analysis.paired(a.strategy, b.strategy).verdict() for i, a in enumerate(ok) for b in ok[i + 1 :]]


def break_even_lines(rows: list[SummaryRow]) -> list[str]:
    costs = [r.cost for r in rows if r.s.status == "ok"]
    return [f"{a.strategy} becomes cheaper than {b.strategy} after {fmt_count(q)} queries"
            for a, b, q in break_evens(costs)]


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
        metric = {t.task: main_metric(list(t.metrics)) for t in rec.tasks}
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
