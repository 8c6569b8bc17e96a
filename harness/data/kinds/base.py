"""What a task kind is: one object that says everything the harness does with tasks of that kind.

A `TaskKind` holds the schema of a JSONL line, how a line becomes an `Example`, how an example is
shown to the model, how predictions are made and scored (and which metric heads the score), what
the hygiene checks compare, and whether train items become supervised training rows. Adding a kind
is one new `TaskKind` object, registered in `harness.data.kinds` (or by a plugin through the
`harness.kinds` entry-point group); no other module names a kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from harness.core.records import Example, Prediction, Prompt

if TYPE_CHECKING:
    from harness.model.runtime import ModelRuntime

Evaluator = Callable[["ModelRuntime", Any, Sequence[Example], Sequence[Prompt], "int | None"], list[Prediction]]
"""(runtime, task, examples, prompts, batch size) -> one prediction per example, scored."""
AnswerScorer = Callable[[Any, Example, str], "tuple[str, dict[str, float]] | None"]
"""(task, example, an answer given as free text) -> (the output to record, per-item scores), or None
when the text is not a valid answer (for choice kinds: not one of the choices)."""


class Item(BaseModel):
    """Base schema of a JSONL line: a non-empty `id`; any other field is kept as metadata."""

    model_config = ConfigDict(extra="allow", strict=True)
    id: str = Field(min_length=1)


def item_meta(item: BaseModel) -> dict[str, Any]:
    """The fields of a line beyond its kind's schema (doc_id, evidence, coverage...)."""
    return dict(item.model_extra or {})


def shown_as_is(example: Example) -> str:
    return example.input


def no_extra_fields(example: Example) -> dict[str, str]:
    return {}


def no_balance(labels: Sequence[str], items: Sequence[Example]) -> tuple[tuple[str, int], ...] | None:
    return None


@dataclass(frozen=True)
class TaskKind:
    """One kind of task (see the module docstring). Functions are plain module-level callables, so a
    kind pickles (Ray workers receive suites)."""

    name: str
    """kebab-case, as written in suite.toml (`kind = "short-answer"`)."""
    item: type[Item]
    """Schema of one JSONL line (pydantic, strict; extra fields become `Example.meta`)."""
    to_example: Callable[[str, Any, tuple[str, ...]], Example]
    """(task name, validated item, the task's labels) -> Example."""
    fields: tuple[str, str]
    """JSONL names of the input and the target ("" when there is none), for messages and hygiene."""
    metrics: tuple[str, ...]
    """Metrics a task of this kind may declare; the default set when suite.toml names none."""
    headline: tuple[str, ...]
    """Per-item metrics a task may name as its `main_metric` (the score it is judged by), the default
    first (for choice kinds: the default for `normalize = "none"`, then for "bytes"); empty: the kind
    never counts in the score."""
    instruction: str
    """Default instruction when suite.toml gives none."""
    evaluate: Evaluator
    show: Callable[[Example], str] = shown_as_is
    """The example's body as the user turn shows it (after the task's instruction)."""
    query: bool = True
    """Items are questions a user would ask: they count for latency, serving cost and the score."""
    trains: bool = True
    """Train items become supervised (prompt, answer) rows for weight strategies and shots for few-shot."""
    needs_labels: bool = False
    """suite.toml must list the task's `labels`."""
    ranks_choices: bool = False
    """Scored by ranking candidate continuations by log-likelihood: a task may set `normalize`."""
    measures_text: bool = False
    """Scores a text itself (its cross-entropy), not an answer to it."""
    default_normalize: str = "none"
    """`normalize` when suite.toml sets none (choice kinds: see harness.data.kinds.choice)."""
    answer_is_content: bool = True
    """A question and its answer found together in a corpus document is a leak (not for labels)."""
    identity: Callable[[Example], str] = shown_as_is
    """The text that makes two items "the same question" (hygiene: duplicates and overlaps)."""
    extra_fields: Callable[[Example], dict[str, str]] = no_extra_fields
    """Named fields checked for being empty or too long, beyond the input, target and aliases."""
    balance: Callable[[Sequence[str], Sequence[Example]], tuple[tuple[str, int], ...] | None] = no_balance
    """(task labels, items) -> counts per label or answer position; None when it does not apply."""
    score_answer: AnswerScorer | None = None
    """How a free-text answer is scored when an evaluation generates a reply and parses the answer out
    of it (chain of thought: harness.data.evaluation.evaluate_reasoned), whatever the kind's own way of
    predicting; None: the kind is never answered in free text (it keeps its own evaluation)."""

    def main_metric(self, metrics: Sequence[str]) -> str | None:
        """The per-item metric a task reporting `metrics` is judged by when its record does not name
        one (records written before tasks declared `main_metric`)."""
        return next((m for m in self.headline if m in metrics), None)

    def default_main_metric(self, normalize: str) -> str | None:
        """The metric a task is judged by unless suite.toml declares another: for choice kinds, accuracy
        of the choice picked by summed (`none`) or per-byte (`bytes`) log-likelihood."""
        if not self.headline:
            return None
        return self.headline[1] if self.ranks_choices and normalize == "bytes" else self.headline[0]

    def answer(self, example: Example) -> str:
        """The assistant turn a perfect model would write (shots and training rows)."""
        return example.target


def label_counts(labels: Sequence[str], items: Sequence[Example]) -> tuple[tuple[str, int], ...]:
    counts = Counter(ex.target for ex in items)
    return tuple((label, counts[label]) for label in labels)


def prediction_meta(example: Example, prompt: Prompt) -> dict[str, Any]:
    """Example fields kept with a prediction for breakdowns, plus what the strategy attached to the prompt."""
    kept: dict[str, Any] = {k: example.meta[k] for k in ("coverage", "doc_id", "evidence_spans") if k in example.meta}
    return {**kept, **prompt.meta}
