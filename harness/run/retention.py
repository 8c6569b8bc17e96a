"""Forgetting, measured format-neutrally: the retention suite scored the way lm-evaluation-harness
scores ARC and HellaSwag. Plain text, no chat template and no system prompt: each question as
"Question: {question}\\nAnswer:", each choice as the continuation " {choice}", the choice with the
highest log-likelihood per byte wins (acc_norm); general text by its cross-entropy. The adapted and
the base model get byte-identical requests, so a fine-tune that only learned an answer format (short
answers in a chat turn) cannot look like it gained knowledge.

Per-item results of both models are kept in the record, so forgetting gets paired intervals, and the
items the base model knew and the adapted one lost can be counted. The base model's results are
computed once per model, retention suite and harness code, and cached. Strategies that change only
the prompt share the base model's weights: their retention is the base's by construction and is not
recomputed (`Retention.shared_weights`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.core import metrics as M
from harness.core.cache import atomic_write_text, stable_hash
from harness.core.digest import harness_code, library_versions
from harness.core.faults import kill_point
from harness.core.records import Example, Retention, TaskResult, from_json, to_json
from harness.data.kinds.choice import per_byte
from harness.data.suites import Suite, Task
from harness.model.load import base_dtype
from harness.model.runtime import ModelRuntime

METHOD = "plain text, no chat template; choices by log-likelihood per byte; text by cross-entropy"


def question(example: Example) -> str:
    return f"Question: {example.input}\nAnswer:"


def choice_correct(rt: ModelRuntime, examples: Sequence[Example], batch_size: int | None) -> list[float]:
    """1.0 where the choice with the highest log-likelihood per byte is the answer."""
    requests = [(question(ex), [f" {c}" for c in ex.choices]) for ex in examples]
    out = []
    for ex, scored in zip(examples, rt.loglikelihood_batch(requests, batch_size), strict=True):
        normed = per_byte(scored.logprobs, ex.choices)
        out.append(M.accuracy(ex.choices[max(range(len(normed)), key=normed.__getitem__)], ex.target))
    return out


def text_cross_entropy(rt: ModelRuntime, examples: Sequence[Example], batch_size: int | None) -> list[float]:
    """Cross-entropy of each text, nats per token."""
    return [s / n for s, n in rt.token_nll([ex.input for ex in examples], batch_size)]


def score_task(rt: ModelRuntime, task: Task, examples: Sequence[Example], batch_size: int | None
               ) -> tuple[TaskResult, tuple[float, ...]] | None:
    """The task's result and per-item scores (accuracy for choice tasks, cross-entropy for text);
    None for a kind retention does not measure (generation)."""
    if task.spec.ranks_choices:
        items, metric = choice_correct(rt, examples, batch_size), "accuracy_norm"
    elif task.spec.measures_text:
        items, metric = text_cross_entropy(rt, examples, batch_size), "cross_entropy"
    else:
        return None
    return TaskResult(task.name, task.kind, len(items), {metric: M.mean(items)}, metric), tuple(items)


def score_retention(rt: ModelRuntime, suite: Suite, limit: int | None, batch_size: int | None
                    ) -> tuple[tuple[TaskResult, ...], dict[str, tuple[float, ...]]]:
    results, items = [], {}
    for task in suite.tasks:
        scored = score_task(rt, task, task.test[:limit], batch_size)
        if scored is not None:
            results.append(scored[0])
            items[task.name] = scored[1]
    return tuple(results), items


def item_ids(suite: Suite, limit: int | None) -> dict[str, tuple[str, ...]]:
    return {t.name: tuple(ex.id for ex in t.test[:limit]) for t in suite.tasks
            if t.spec.ranks_choices or t.spec.measures_text}


class RetentionProbe:
    """Scores a model on the retention suite; the base model's scores are cached in `cache_dir`."""

    def __init__(self, suite: Suite, model_identity: str, cache_dir: Path, limit: int | None,
                 batch_size: int | None, device: str = "cpu"):
        self.suite = suite
        self.limit = limit
        self.batch_size = batch_size
        key = stable_hash({"model": model_identity, "suite": suite.data_hash, "limit": limit,
                           "device": device.split(":")[0], "dtype": base_dtype(device), "code": harness_code(),
                           "versions": library_versions()})
        self.base_path = cache_dir / f"{key}.json"

    def base(self, base_rt: ModelRuntime) -> Retention:
        """The base model's retention (cached)."""
        if self.base_path.is_file():
            return from_json(Retention, self.base_path.read_bytes())
        results, items = score_retention(base_rt, self.suite, self.limit, self.batch_size)
        kill_point("retention-base")
        base = Retention(self.suite.name, results, results, item_ids(self.suite, self.limit), items, items, METHOD)
        atomic_write_text(self.base_path, to_json(base))
        return base

    def measure(self, rt: ModelRuntime, base_rt: ModelRuntime) -> Retention:
        base = self.base(base_rt)
        results, items = score_retention(rt, self.suite, self.limit, self.batch_size)
        return Retention(self.suite.name, results, base.base, base.ids, items, base.base_items, METHOD)

    def shared(self, base_rt: ModelRuntime) -> Retention:
        """A strategy that does not change the weights: the base's retention, nothing recomputed."""
        base = self.base(base_rt)
        return Retention(self.suite.name, base.base, base.base, base.ids, base.base_items, base.base_items, METHOD,
                         shared_weights=True)
