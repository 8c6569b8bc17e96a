"""Forgetting: the retention suite (general knowledge, general text) scored on the adapted model and
on the untouched base model, with the same neutral prompts. The base figures are computed once per
model and retention suite, and cached."""

from __future__ import annotations

from pathlib import Path

from harness.core.cache import atomic_write_text, stable_hash
from harness.core.faults import kill_point
from harness.core.records import Retention, TaskResult, from_json, to_json
from harness.data.evaluation import evaluate_task
from harness.data.prompts import zero_shot_prompt
from harness.data.suites import Suite
from harness.model.runtime import ModelRuntime


def score_retention(rt: ModelRuntime, suite: Suite, limit: int | None,
                    batch_size: int | None) -> tuple[TaskResult, ...]:
    """Metrics of every retention task; prompts carry no system text and no strategy context."""
    results = []
    for task in suite.tasks:
        examples = task.test[:limit]
        prompts = [zero_shot_prompt(task, ex, "") for ex in examples]
        _, result = evaluate_task(rt, task, examples, prompts, batch_size)
        results.append(result)
    return tuple(results)


class RetentionProbe:
    """Scores a model on the retention suite; the base model's scores are cached in `cache_dir`."""

    def __init__(self, suite: Suite, model_identity: str, cache_dir: Path, limit: int | None,
                 batch_size: int | None):
        self.suite = suite
        self.limit = limit
        self.batch_size = batch_size
        key = stable_hash({"model": model_identity, "suite": suite.data_hash, "limit": limit})
        self.base_path = cache_dir / f"{key}.json"

    def base(self, base_rt: ModelRuntime) -> tuple[TaskResult, ...]:
        if self.base_path.is_file():
            return from_json(Retention, self.base_path.read_bytes()).base
        scores = score_retention(base_rt, self.suite, self.limit, self.batch_size)
        kill_point("retention-base")
        atomic_write_text(self.base_path, to_json(Retention(self.suite.name, scores, scores)))
        return scores

    def measure(self, rt: ModelRuntime, base_rt: ModelRuntime) -> Retention:
        base = self.base(base_rt)
        tasks = score_retention(rt, self.suite, self.limit, self.batch_size)
        return Retention(self.suite.name, tasks, base)
