"""`language-modeling`: general text scored by the model's cross-entropy (nats per token). Not a
query: it measures the model (forgetting), never answers a user, and never trains a task."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from harness.core.records import Example, Prediction, Prompt
from harness.data.kinds.base import Item, TaskKind, item_meta, prediction_meta

if TYPE_CHECKING:
    from harness.model.runtime import ModelRuntime


class TextItem(Item):
    text: str = Field(min_length=1)


def _example(task: str, it: TextItem, _: tuple[str, ...]) -> Example:
    return Example(it.id, task, it.text, "", (), (), item_meta(it))


def _evaluate(rt: ModelRuntime, task: Any, examples: Sequence[Example], prompts: Sequence[Prompt],
              batch_size: int | None) -> list[Prediction]:
    t0 = time.perf_counter()
    nll = rt.token_nll([ex.input for ex in examples], batch_size)
    per_item = (time.perf_counter() - t0) / max(1, len(examples))
    return [
        Prediction(ex.id, task.name, f"{s / n:.4f}", "", {"cross_entropy": s / n}, per_item, n, 0,
                   meta=prediction_meta(ex, p))
        for ex, p, (s, n) in zip(examples, prompts, nll, strict=True)
    ]


LANGUAGE_MODELING = TaskKind(
    name="language-modeling", item=TextItem, to_example=_example, fields=("text", ""),
    metrics=("cross_entropy",), headline=(), instruction="", evaluate=_evaluate,
    query=False, trains=False, answer_is_content=False, measures_text=True,
)
