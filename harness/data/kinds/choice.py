"""Kinds scored by ranked log-likelihood of each candidate after the prompt: `classification` (a
text and one of the task's labels) and `multiple-choice` (a question and its own choices)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from harness.core import metrics as M
from harness.core.records import Example, Prediction, Prompt
from harness.data.kinds.base import Item, TaskKind, item_meta, label_counts, prediction_meta

if TYPE_CHECKING:
    from harness.model.runtime import ModelRuntime


class ClassificationItem(Item):
    text: str = Field(min_length=1)
    label: str = Field(min_length=1)


class MultipleChoiceItem(Item):
    question: str = Field(min_length=1)
    choices: list[str] = Field(min_length=2)
    answer: str = Field(min_length=1)

    @model_validator(mode="after")
    def _answer_in_choices(self) -> MultipleChoiceItem:
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("choices must be distinct")
        if self.answer not in self.choices:
            raise ValueError(f"answer {self.answer!r} is not one of the choices")
        return self


def _classification(task: str, it: ClassificationItem, labels: tuple[str, ...]) -> Example:
    return Example(it.id, task, it.text, it.label, (), labels, item_meta(it))


def _multiple_choice(task: str, it: MultipleChoiceItem, _: tuple[str, ...]) -> Example:
    return Example(it.id, task, it.question, it.answer, (), tuple(it.choices), item_meta(it))


def per_byte(logprobs: Sequence[float], choices: Sequence[str]) -> list[float]:
    """Each choice's log-likelihood divided by its length in UTF-8 bytes (lm-eval's acc_norm): summed
    log-likelihoods favour short choices, one to four tokens apart on legal-qa's labels."""
    return [lp / max(1, len(c.encode("utf-8"))) for lp, c in zip(logprobs, choices, strict=True)]


def _best(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])


def ranked_choice(rt: ModelRuntime, task: Any, examples: Sequence[Example], prompts: Sequence[Prompt],
                  batch_size: int | None) -> list[Prediction]:
    """Both choices: the highest summed log-likelihood after the rendered prompt (`accuracy`) and the
    highest per byte (`accuracy_norm`); the output is the one the task's `normalize` names."""
    preds = []
    requests = [(rt.render(p) + rt.answer_prefix(), ex.choices) for ex, p in zip(examples, prompts, strict=True)]
    for ex, p, scored in zip(examples, prompts, rt.loglikelihood_batch(requests, batch_size), strict=True):
        summed = ex.choices[_best(scored.logprobs)]
        normed = ex.choices[_best(per_byte(scored.logprobs, ex.choices))]
        scores = {"accuracy": M.accuracy(summed, ex.target), "accuracy_norm": M.accuracy(normed, ex.target)}
        output = normed if task.normalize == "bytes" else summed
        preds.append(Prediction(ex.id, task.name, output, ex.target, scores, scored.latency_s, scored.prompt_tokens,
                                0, scored.logprobs, {**prediction_meta(ex, p), "choice_sum": summed,
                                                     "choice_norm": normed}))
    return preds


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def choice_answer(task: Any, ex: Example, answer: str) -> tuple[str, dict[str, float]] | None:
    """A free-text answer that is one of the example's choices (case, punctuation and spacing aside:
    "Governing law." is `governing-law`), scored as that choice; None when it is none of them."""
    match = [c for c in ex.choices if _plain(c) == _plain(answer)]
    if len(match) != 1:
        return None
    correct = M.accuracy(match[0], ex.target)
    return match[0], {"accuracy": correct, "accuracy_norm": correct}


def _text_to_classify(example: Example) -> str:
    return f"Text: {example.input}"


def _question_and_options(example: Example) -> str:
    return "\n".join((example.input, *example.choices))


def _choice_fields(example: Example) -> dict[str, str]:
    return {f"choices[{i}]": c for i, c in enumerate(example.choices)}


def _answer_positions(labels: Sequence[str], items: Sequence[Example]) -> tuple[tuple[str, int], ...]:
    positions = Counter(chr(ord("A") + ex.choices.index(ex.target)) for ex in items)
    return tuple(sorted(positions.items()))


CLASSIFICATION = TaskKind(
    name="classification", item=ClassificationItem, to_example=_classification, fields=("text", "label"),
    metrics=("accuracy", "accuracy_norm", "balanced_accuracy"), headline=("accuracy", "accuracy_norm"),
    instruction="Classify the text. Answer with one label.", evaluate=ranked_choice,
    show=_text_to_classify, needs_labels=True, ranks_choices=True, answer_is_content=False, balance=label_counts,
    score_answer=choice_answer,
)
"""The candidates are not listed in the prompt: each is scored as the answer (measured on
SmolLM2-135M: listing them drops general multiple-choice accuracy from 0.72 to 0.30, the model
echoes the list instead of answering)."""

MULTIPLE_CHOICE = TaskKind(
    name="multiple-choice", item=MultipleChoiceItem, to_example=_multiple_choice, fields=("question", "answer"),
    metrics=("accuracy", "accuracy_norm"), headline=("accuracy", "accuracy_norm"), instruction="Answer the question.",
    evaluate=ranked_choice, ranks_choices=True, identity=_question_and_options, extra_fields=_choice_fields,
    balance=_answer_positions, score_answer=choice_answer,
)
