"""From cell records to one summary per strategy: the measured figures a decision rests on.

The headline score of a strategy is the mean over the suite's tasks of each task's main per-item
metric (declared per task: key_match for factual short answers, accuracy for choices), so every task
weighs the same. Intervals and paired comparisons count both sources of noise: they draw training
seeds and test items (harness.core.inference); with one seed, items only. Reads records only: no
model, no strategy code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.core.inference import Comparison, Estimate, Scores, compare, estimate
from harness.core.records import AdaptReport, CellRecord, TaskResult, TrainingBudget
from harness.data.kinds import main_metric
from harness.decide.baselines import TaskBaseline, baselines, dominant_answer
from harness.decide.forgetting import Forgetting, forgetting

ItemKey = tuple[str, str]
"""(task, example id)."""
DEFAULT_MARGIN = 0.02
"""Two score points: differences within it count as equivalent when shown to be (see Comparison)."""


def task_metric(t: TaskResult) -> str | None:
    """The per-item metric task result `t` is judged by (declared in the record; for older records, its
    kind's default among the metrics it reports)."""
    return main_metric(t.kind, list(t.metrics), t.main_metric)


def _adapt_s(a: AdaptReport) -> float:
    """What adapting cost in seconds: its wall time, plus work a cache saved it, less measuring time."""
    return a.wall_s + a.cached.get("reused_s", 0.0) - a.extras.get("measure_s", 0.0)


def cell_item_scores(rec: CellRecord) -> dict[ItemKey, float]:
    metric = {t.task: task_metric(t) for t in rec.tasks}
    return {(p.task, p.example_id): p.scores[m] for p in rec.predictions
            if (m := metric.get(p.task)) is not None and m in p.scores}


@dataclass(frozen=True)
class StrategySummary:
    """Every figure of one strategy, over its seeds. None where the records do not have it."""

    strategy: str
    status: str
    """ok when at least one seed ran; else the status of its cells (skipped, failed)."""
    reason: str | None
    seeds: tuple[int, ...]
    score: Estimate
    """Headline score with its 95% interval (seeds and items drawn)."""
    seed_scores: tuple[float, ...]
    """Headline score of each seed, in seed order: the spread across seeds."""
    tasks: dict[str, Estimate] = field(default_factory=dict)
    forgetting: Forgetting | None = None
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
    budget: TrainingBudget | None = None
    """The training budget of the first seed (weight strategies)."""
    family: str = ""
    """context, weights or hybrid (from the records: context strategies share the base's weights)."""
    device: str = "cpu"
    accelerator: str | None = None
    work: dict[str, float] = field(default_factory=dict)
    """Work measured per cell, averaged over seeds: cpu_s, flops (see harness.decide.cost)."""

    @property
    def forgetting_pt(self) -> float | None:
        f = self.forgetting
        return None if f is None or f.accuracy_pt is None else f.accuracy_pt.mean

    @property
    def ce_delta(self) -> float | None:
        f = self.forgetting
        return None if f is None or f.ce_delta is None else f.ce_delta.mean

    @property
    def seed_spread(self) -> float | None:
        """Standard deviation of the headline score across seeds (None with one seed)."""
        return float(np.std(self.seed_scores, ddof=1)) if len(self.seed_scores) > 1 else None

    @property
    def needs_more_seeds(self) -> bool:
        """The score moves more from seed to seed than its item interval is wide: more seeds would say
        more than more items."""
        spread = self.seed_spread
        return spread is not None and spread > (self.score.high - self.score.low) / 2


@dataclass(frozen=True)
class Analysis:
    summaries: tuple[StrategySummary, ...]
    per_seed: dict[str, tuple[dict[ItemKey, float], ...]]
    """strategy -> its seeds' per-item main-metric scores."""
    seed: int = 0
    task_metrics: dict[str, str] = field(default_factory=dict)
    """task -> the per-item metric its score uses (declared in the records)."""
    baselines: dict[str, TaskBaseline] = field(default_factory=dict)
    """task -> majority-class and chance accuracy (classification and multiple choice)."""
    dominant: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    """(strategy, choice task) -> the answer its first seed gave most often, and that answer's share."""
    _compared: dict[tuple[str, str, float], Comparison] = field(default_factory=dict, compare=False, repr=False)

    def get(self, strategy: str) -> StrategySummary:
        return next(s for s in self.summaries if s.strategy == strategy)

    @property
    def items(self) -> dict[str, dict[ItemKey, float]]:
        """strategy -> (task, item id) -> main-metric score averaged over seeds."""
        return {name: _seed_average(seeds) for name, seeds in self.per_seed.items()}

    def compare(self, a: str, b: str, margin: float = DEFAULT_MARGIN) -> Comparison:
        """a against b on the items both answered (each with its own seeds); computed once per pair."""
        first, second = sorted((a, b))
        key = (first, second, margin)
        if key not in self._compared:
            x, y = aligned(self.per_seed[first], self.per_seed[second])
            self._compared[key] = compare(first, x, second, y, margin, seed=self.seed)
        c = self._compared[key]
        if first == a:
            return c
        return Comparison(a, b, -c.diff, -c.high, -c.low, -c.high90, -c.low90, c.p_value, c.margin, c.n_items,
                          c.n_seeds)

    @property
    def n_items(self) -> int:
        """Test items the decision rests on (the largest count among the strategies that ran)."""
        return max((s.score.n_items for s in self.summaries if s.status == "ok"), default=0)

    @property
    def n_seeds(self) -> int:
        return max((len(s.seeds) for s in self.summaries if s.status == "ok"), default=0)


def aligned(a: Sequence[dict[ItemKey, float]], b: Sequence[dict[ItemKey, float]]) -> tuple[Scores, Scores]:
    """The two strategies' (seeds x items) arrays per task, on the items every seed of both answered."""
    keys = set.intersection(*(set(s) for s in [*a, *b])) if a and b else set()
    return _scores(a, keys), _scores(b, keys)


def _scores(seeds: Sequence[dict[ItemKey, float]], keys: set[ItemKey]) -> Scores:
    out: dict[str, list[ItemKey]] = {}
    for key in sorted(keys):
        out.setdefault(key[0], []).append(key)
    return {task: np.asarray([[s[k] for k in ks] for s in seeds], dtype=float) for task, ks in out.items()}


def _seed_average(per_seed: Sequence[dict[ItemKey, float]]) -> dict[ItemKey, float]:
    keys = sorted(set().union(*per_seed)) if per_seed else []
    return {k: float(np.mean([s[k] for s in per_seed if k in s])) for k in keys}


def _macro(items: dict[ItemKey, float]) -> float:
    groups: dict[str, list[float]] = {}
    for (task, _), v in items.items():
        groups.setdefault(task, []).append(v)
    return float(np.mean([np.mean(v) for v in groups.values()])) if groups else math.nan


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _costs(ok: Sequence[CellRecord]) -> dict[str, Any]:
    lat = [c.latency for c in ok if c.latency is not None]
    updates = [c.adapt.update.wall_s for c in ok if c.adapt.update is not None]
    prov = next((c.provenance for c in ok if c.provenance is not None), None)
    work_keys = sorted({k for c in ok for k in c.work})
    return dict(
        p50_ms=_mean([x.p50_s * 1000 for x in lat]), p95_ms=_mean([x.p95_s * 1000 for x in lat]),
        query_s=_mean([1 / x.items_per_s for x in lat if x.items_per_s > 0]),
        prompt_tokens=_mean([x.prompt_tokens_mean for x in lat]),
        adapt_s=float(np.mean([_adapt_s(c.adapt) for c in ok])),
        update_s=_mean(updates),
        peak_mem_gb=max(max(c.adapt.peak_mem_bytes, c.eval_peak_mem_bytes) for c in ok) / 1e9,
        trainable_params=ok[0].adapt.trainable_params, total_params=ok[0].adapt.total_params,
        artifact_bytes=ok[0].adapt.artifact_bytes, budget=ok[0].adapt.budget,
        device=prov.device if prov else "cpu", accelerator=prov.accelerator if prov else None,
        work={k: float(np.mean([c.work[k] for c in ok if k in c.work])) for k in work_keys},
    )


def _family(ok: Sequence[CellRecord]) -> str:
    """The recorded family; for older records, inferred (trainable parameters mean weights)."""
    if ok[0].family:
        return ok[0].family
    return "weights" if ok[0].adapt.trainable_params else "context"


def summarize(strategy: str, cells: Sequence[CellRecord], seed: int = 0
              ) -> tuple[StrategySummary, tuple[dict[ItemKey, float], ...]]:
    """One strategy's summary and its seeds' per-item scores."""
    cells = sorted(cells, key=lambda c: c.seed)
    ok = [c for c in cells if c.status == "ok"]
    seeds = tuple(c.seed for c in (ok or cells))
    if not ok:
        nan = Estimate(math.nan, math.nan, math.nan, 0, 0)
        return StrategySummary(strategy, cells[0].status, cells[0].error, seeds, nan, ()), ()
    per_seed = tuple(cell_item_scores(c) for c in ok)
    scores = _scores(per_seed, set.intersection(*(set(s) for s in per_seed)))
    summary = StrategySummary(
        strategy=strategy, status="ok", reason=None, seeds=seeds, score=estimate(scores, seed),
        seed_scores=tuple(_macro(s) for s in per_seed),
        tasks={t: estimate({t: a}, seed) for t, a in scores.items()},
        forgetting=forgetting(ok, seed), family=_family(ok), **_costs(ok),
    )
    return summary, per_seed


def analyze(records: Sequence[CellRecord], seed: int = 0) -> Analysis:
    """Summaries of every strategy in `records`, in first-seen order."""
    by_strategy: dict[str, list[CellRecord]] = {}
    for rec in records:
        by_strategy.setdefault(rec.strategy, []).append(rec)
    summaries, per_seed = [], {}
    for name, cells in by_strategy.items():
        s, items = summarize(name, cells, seed)
        summaries.append(s)
        per_seed[name] = items
    metrics = {t.task: m for r in records if r.status == "ok" for t in r.tasks if (m := task_metric(t))}
    return Analysis(tuple(summaries), per_seed, seed, metrics, baselines(records), _dominant(records))


def _dominant(records: Sequence[CellRecord]) -> dict[tuple[str, str], tuple[str, float]]:
    out: dict[tuple[str, str], tuple[str, float]] = {}
    for rec in sorted(records, key=lambda r: r.seed):
        for t in rec.tasks if rec.status == "ok" else ():
            if (rec.strategy, t.task) not in out and (d := dominant_answer(rec, t.task)) is not None:
                out[(rec.strategy, t.task)] = d
    return out
