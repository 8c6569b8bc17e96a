"""What trials are scored on: the suite's dev view, and a cell's dev figure."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Literal

from harness.core.cache import stable_hash
from harness.core.errors import HarnessError, Unsupported
from harness.core.records import CellRecord
from harness.data.suites import Suite

METRICS: dict[str, Literal["maximize", "minimize"]] = {"dev-accuracy": "maximize", "dev-loss": "minimize"}

def dev_view(suite: Suite) -> Suite:
    """The suite with every task's test split replaced by its dev split (and its own identity): what
    trials run on, so test items stay unseen. Train and dev are unchanged, so training data is the
    compare's; a task without dev items is trained on and not scored."""
    scored = [t.name for t in suite.tasks if t.dev and t.spec.query]
    if not scored:
        raise HarnessError(f"suite {suite.name!r} has no dev items: tuning scores trials on the dev split")
    tasks = tuple(replace(t, test=t.dev) for t in suite.tasks)
    return replace(suite, tasks=tasks, data_hash=stable_hash([suite.data_hash, "dev-as-test"]))

def cell_score(rec: CellRecord) -> float:
    """A cell's headline score: mean over tasks of the mean main per-item metric (harness.decide.analysis's
    definition for one seed). On a trial's record, whose items are dev items, it is dev-accuracy."""
    from harness.decide.analysis import cell_item_scores

    by_task: dict[str, list[float]] = {}
    for (task, _), v in cell_item_scores(rec).items():
        by_task.setdefault(task, []).append(v)
    return sum(sum(v) / len(v) for v in by_task.values()) / len(by_task) if by_task else math.nan

def trial_value(rec: CellRecord, metric: str) -> float:
    if metric == "dev-loss":
        loss = rec.adapt.extras.get("best_dev_loss")
        if loss is None:
            raise Unsupported(f"{rec.strategy} reports no dev loss of its final model (it does not train, or "
                              "trains in phases without one); use --metric dev-accuracy")
        return float(loss)
    return cell_score(rec)
