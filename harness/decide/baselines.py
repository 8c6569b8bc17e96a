"""What a task's score means without any model skill: for tasks that pick among labels or choices, the
accuracy of always answering the most frequent gold answer (majority class) and of guessing (chance),
from the records' test items; and how degenerate a strategy's answers are (the share of one answer)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness.core.records import CellRecord


@dataclass(frozen=True)
class TaskBaseline:
    task: str
    majority_label: str
    majority: float
    """Accuracy of always answering `majority_label` (the most frequent gold answer of the test items)."""
    chance: float
    """Expected accuracy of a uniform guess among each item's choices."""
    targets: tuple[str, ...]
    """The gold answer of each test item, by item id order, for paired tests against the majority."""
    ids: tuple[str, ...]


def _choice_task(rec: CellRecord, task: str) -> bool:
    return all(p.choice_logprobs for p in rec.predictions if p.task == task)


def baselines(records: Sequence[CellRecord]) -> dict[str, TaskBaseline]:
    """Per choice task (one whose predictions ranked choices), from the first record that ran it."""
    out: dict[str, TaskBaseline] = {}
    for rec in records:
        if rec.status != "ok":
            continue
        for t in rec.tasks:
            if t.task in out or not _choice_task(rec, t.task):
                continue
            preds = sorted((p for p in rec.predictions if p.task == t.task), key=lambda p: p.example_id)
            if not preds:
                continue
            label, count = Counter(p.target for p in preds).most_common(1)[0]
            chance = sum(1 / len(p.choice_logprobs) for p in preds) / len(preds)
            out[t.task] = TaskBaseline(t.task, label, count / len(preds), chance, tuple(p.target for p in preds),
                                       tuple(p.example_id for p in preds))
    return out


def dominant_answer(rec: CellRecord, task: str) -> tuple[str, float] | None:
    """The answer a cell gave most often on a choice task, and its share of the task's items."""
    outputs = [p.output for p in rec.predictions if p.task == task]
    if not outputs or not _choice_task(rec, task):
        return None
    label, count = Counter(outputs).most_common(1)[0]
    return label, count / len(outputs)
