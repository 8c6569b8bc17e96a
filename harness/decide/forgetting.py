"""Forgetting: what adapting cost on the retention suite, against the untouched base model on the same
items and byte-identical requests (harness.run.retention), with intervals.

- accuracy change, in points lost (positive: forgot), base minus adapted, with a paired 95% interval
  (items drawn once for both, the adapted model's seeds drawn on their own);
- knowledge lost: of the items the base model answers correctly, the share the adapted model now gets
  wrong; knowledge gained: of those it got wrong, the share now right; both with intervals;
- general-text cross-entropy change (nats per token; positive: worse), with a paired interval.

A strategy that changes only the prompt shares the base's weights: all of these are exactly zero.
Records written before per-item retention was kept give the accuracy change alone, without an interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.core.inference import Estimate, Scores, compare, estimate
from harness.core.records import CellRecord, Retention

CHOICE_METRICS = ("accuracy_norm", "accuracy")
TEXT_METRIC = "cross_entropy"


@dataclass(frozen=True)
class Forgetting:
    accuracy_pt: Estimate | None
    """Retention accuracy lost against the base, in points (positive: forgot)."""
    lost: Estimate | None
    """Share of the items the base answers correctly that the adapted model now gets wrong."""
    gained: Estimate | None
    """Share of the items the base gets wrong that the adapted model now answers correctly."""
    ce_delta: Estimate | None
    """Change of general-text cross-entropy, nats per token (positive: worse)."""
    shared_weights: bool = False
    """The strategy does not change the weights: zero by construction."""


def _zero(n_items: int, n_seeds: int) -> Estimate:
    return Estimate(0.0, 0.0, 0.0, n_items, n_seeds)


def _tasks(ret: Retention, metrics: Sequence[str]) -> list[str]:
    return [t.task for t in ret.base if t.main_metric in metrics and t.task in ret.items]


def _matrix(cells: Sequence[Retention], tasks: list[str], base: bool = False) -> Scores:
    """task -> (seeds, items) scores of the adapted models (or the base, one row)."""
    if base:
        return {t: np.asarray([cells[0].base_items[t]], dtype=float) for t in tasks}
    return {t: np.asarray([r.items[t] for r in cells], dtype=float) for t in tasks}


def _known(base: Scores, adapted: Scores, known: bool) -> Scores:
    """Per task, the adapted scores on the items the base answered right (`known`) or wrong, as the
    share now wrong (known) or now right (not known)."""
    out = {}
    for t, b in base.items():
        mask = b[0] == 1.0 if known else b[0] == 0.0
        if mask.any():
            out[t] = 1.0 - adapted[t][:, mask] if known else adapted[t][:, mask]
    return out


def _scaled(e: Estimate, factor: float) -> Estimate:
    lo, hi = sorted((e.low * factor, e.high * factor))
    return Estimate(e.mean * factor, lo, hi, e.n_items, e.n_seeds)


def _shift(a: Scores, b: Scores, seed: int) -> Estimate | None:
    """a - b with its paired 95% interval."""
    if not a:
        return None
    c = compare("a", a, "b", b, margin=0.0, seed=seed)
    return Estimate(c.diff, c.low, c.high, c.n_items, c.n_seeds)


def _legacy(cells: Sequence[CellRecord]) -> Forgetting:
    """Old records: the mean accuracy change, no interval."""
    deltas = []
    for rec in cells:
        assert rec.retention is not None
        base = {t.task: t.metrics for t in rec.retention.base}
        deltas += [100 * (base[t.task][m] - t.metrics[m]) for t in rec.retention.tasks for m in CHOICE_METRICS
                   if m in t.metrics and m in base.get(t.task, {})][:1]
    if not deltas:
        return Forgetting(None, None, None, None)
    mean = float(np.mean(deltas))
    return Forgetting(Estimate(mean, math.nan, math.nan, 0, len(deltas)), None, None, None)


def forgetting(cells: Sequence[CellRecord], seed: int = 0) -> Forgetting | None:
    """The forgetting of one strategy's cells (its seeds); None when retention was not measured."""
    rets = [c.retention for c in cells if c.retention is not None]
    if not rets:
        return None
    if not rets[0].items:
        return _legacy([c for c in cells if c.retention is not None])
    choice, text = _tasks(rets[0], CHOICE_METRICS), _tasks(rets[0], (TEXT_METRIC,))
    n_items = sum(len(rets[0].items[t]) for t in choice)
    if all(r.shared_weights for r in rets):
        zero = _zero(n_items, len(rets))
        return Forgetting(zero, zero, zero, _zero(sum(len(rets[0].items[t]) for t in text), len(rets)), True)
    base, adapted = _matrix(rets, choice, base=True), _matrix(rets, choice)
    accuracy = _shift(base, adapted, seed)
    lost, gained = _known(base, adapted, True), _known(base, adapted, False)
    return Forgetting(
        accuracy_pt=_scaled(accuracy, 100.0) if accuracy else None,
        lost=estimate(lost, seed) if lost else None, gained=estimate(gained, seed) if gained else None,
        ce_delta=_shift(_matrix(rets, text), _matrix(rets, text, base=True), seed),
    )
