"""From cell records to one summary per strategy: the measured figures a decision rests on.

The headline score of a strategy is the mean over the suite's tasks of each task's main per-item
metric (token F1 for short answers, accuracy for classification and multiple choice), so every
task weighs the same. Each item's score is first averaged over the strategy's seeds; intervals and
paired tests resample items within tasks. Reads records only: no model, no strategy code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.core.records import CellRecord, TaskResult
from harness.core.stats import Interval, PairedTest, grouped_ci, grouped_paired_test

ItemKey = tuple[str, str]
"""(task, example id)."""


def main_metric(metrics: Sequence[str]) -> str | None:
    """The per-item metric a task is judged by: F1 (separates weak answers), else accuracy."""
    for name in ("f1", "accuracy", "exact_match"):
        if name in metrics:
            return name
    return None


@dataclass(frozen=True)
class StrategySummary:
    """Every figure of one strategy, over its seeds. None where the records do not have it."""

    strategy: str
    status: str
    """ok when at least one seed ran; else the status of its cells (skipped, failed)."""
    reason: str | None
    seeds: tuple[int, ...]
    score: Interval
    """Headline score (mean over tasks of the main metric) with its 95% bootstrap interval."""
    seed_scores: tuple[float, ...]
    """Headline score of each seed, in seed order: the spread across seeds."""
    tasks: dict[str, Interval] = field(default_factory=dict)
    forgetting_pt: float | None = None
    """Retention multiple-choice accuracy lost against the base model, in points (positive: forgot)."""
    ce_delta: float | None = None
    """Change of the retention text cross-entropy against the base model (nats/token; positive: worse)."""
    p50_ms: float | None = None
    p95_ms: float | None = None
    query_s: float | None = None
    """Evaluation wall time per query under batched serving (retrieval included)."""
    prompt_tokens: float | None = None
    adapt_s: float = 0.0
    update_s: float | None = None
    peak_mem_gb: float = 0.0
    trainable_params: int = 0
    total_params: int = 0
    artifact_bytes: int = 0
    device: str = "cpu"
    accelerator: str | None = None

    @property
    def seed_spread(self) -> float | None:
        """Standard deviation of the headline score across seeds (None with one seed)."""
        return float(np.std(self.seed_scores, ddof=1)) if len(self.seed_scores) > 1 else None


@dataclass(frozen=True)
class Analysis:
    summaries: tuple[StrategySummary, ...]
    items: dict[str, dict[ItemKey, float]]
    """strategy -> (task, item id) -> main-metric score averaged over seeds."""
    seed: int = 0
    _paired: dict[tuple[str, str], PairedTest] = field(default_factory=dict, compare=False, repr=False)

    def get(self, strategy: str) -> StrategySummary:
        return next(s for s in self.summaries if s.strategy == strategy)

    def paired(self, a: str, b: str) -> PairedTest:
        """a vs b on the items both answered, stratified by task. Computed once per unordered pair
        (b vs a is the same test with the sign flipped, so both orders give the same p-value)."""
        first, second = sorted((a, b))
        if (first, second) not in self._paired:
            self._paired[(first, second)] = grouped_paired_test(first, self.items[first], second,
                                                                self.items[second], seed=self.seed)
        t = self._paired[(first, second)]
        return t if first == a else PairedTest(a, b, -t.diff, t.p_value, t.n, t.method)


def cell_item_scores(rec: CellRecord) -> dict[ItemKey, float]:
    metric = {t.task: main_metric(list(t.metrics)) for t in rec.tasks}
    return {(p.task, p.example_id): p.scores[m] for p in rec.predictions
            if (m := metric.get(p.task)) is not None and m in p.scores}


def _seed_average(cells: Sequence[CellRecord]) -> dict[ItemKey, float]:
    per_cell = [cell_item_scores(c) for c in cells]
    keys = sorted(set().union(*per_cell)) if per_cell else []
    return {k: float(np.mean([s[k] for s in per_cell if k in s])) for k in keys}


def _by_task(items: dict[ItemKey, float]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for (task, _), v in sorted(items.items()):
        out.setdefault(task, []).append(v)
    return out


def _macro(items: dict[ItemKey, float]) -> float:
    groups = _by_task(items)
    return float(np.mean([np.mean(v) for v in groups.values()])) if groups else math.nan


def _retention_deltas(cells: Sequence[CellRecord]) -> tuple[float | None, float | None]:
    """(forgetting in points on multiple-choice accuracy, cross-entropy change), averaged over seeds."""
    acc, ce = [], []
    for rec in cells:
        if rec.retention is None:
            continue
        base = {t.task: t for t in rec.retention.base}
        for t in rec.retention.tasks:
            acc += _delta(t, base.get(t.task), "accuracy", -100.0)
            ce += _delta(t, base.get(t.task), "cross_entropy", 1.0)
    return (float(np.mean(acc)) if acc else None, float(np.mean(ce)) if ce else None)


def _delta(task: TaskResult, base: TaskResult | None, metric: str, sign: float) -> list[float]:
    if base is None or metric not in task.metrics or metric not in base.metrics:
        return []
    return [sign * (task.metrics[metric] - base.metrics[metric])]


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _costs(ok: Sequence[CellRecord]) -> dict[str, Any]:
    lat = [c.latency for c in ok if c.latency is not None]
    updates = [c.adapt.update.wall_s for c in ok if c.adapt.update is not None]
    prov = next((c.provenance for c in ok if c.provenance is not None), None)
    return dict(
        p50_ms=_mean([x.p50_s * 1000 for x in lat]), p95_ms=_mean([x.p95_s * 1000 for x in lat]),
        query_s=_mean([1 / x.items_per_s for x in lat if x.items_per_s > 0]),
        prompt_tokens=_mean([x.prompt_tokens_mean for x in lat]),
        adapt_s=float(np.mean([c.adapt.wall_s for c in ok])), update_s=_mean(updates),
        peak_mem_gb=max(max(c.adapt.peak_mem_bytes, c.eval_peak_mem_bytes) for c in ok) / 1e9,
        trainable_params=ok[0].adapt.trainable_params, total_params=ok[0].adapt.total_params,
        artifact_bytes=ok[0].adapt.artifact_bytes,
        device=prov.device if prov else "cpu", accelerator=prov.accelerator if prov else None,
    )


def summarize(strategy: str, cells: Sequence[CellRecord],
              seed: int = 0) -> tuple[StrategySummary, dict[ItemKey, float]]:
    """One strategy's summary and its seed-averaged item scores."""
    cells = sorted(cells, key=lambda c: c.seed)
    ok = [c for c in cells if c.status == "ok"]
    seeds = tuple(c.seed for c in (ok or cells))
    if not ok:
        nan = Interval(math.nan, math.nan, math.nan, 0)
        return StrategySummary(strategy, cells[0].status, cells[0].error, seeds, nan, ()), {}
    items = _seed_average(ok)
    groups = _by_task(items)
    forgetting, ce = _retention_deltas(ok)
    summary = StrategySummary(
        strategy=strategy, status="ok", reason=None, seeds=seeds,
        score=grouped_ci(list(groups.values()), seed=seed),
        seed_scores=tuple(_macro(cell_item_scores(c)) for c in ok),
        tasks={t: grouped_ci([v], seed=seed) for t, v in groups.items()},
        forgetting_pt=forgetting, ce_delta=ce, **_costs(ok),
    )
    return summary, items


def analyze(records: Sequence[CellRecord], seed: int = 0) -> Analysis:
    """Summaries of every strategy in `records`, in first-seen order."""
    by_strategy: dict[str, list[CellRecord]] = {}
    for rec in records:
        by_strategy.setdefault(rec.strategy, []).append(rec)
    summaries, items = [], {}
    for name, cells in by_strategy.items():
        s, i = summarize(name, cells, seed)
        summaries.append(s)
        items[name] = i
    return Analysis(tuple(summaries), items, seed)
