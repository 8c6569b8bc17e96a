"""`short-answer`: a question answered by generated text, scored against the answer and its aliases by
normalized exact match, token F1, `key_match` (every number and name of the answer, no other number:
the default main metric, a correctness measure for factual answers) and `answer_in_output` (the
answer contained in a longer reply)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from harness.core import metrics as M
from harness.core.records import Example, Prediction, Prompt
from harness.data.kinds.base import Item, TaskKind, item_meta, prediction_meta

if TYPE_CHECKING:
    from harness.model.runtime import ModelRuntime


class ShortAnswerItem(Item):
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)


def _example(task: str, it: ShortAnswerItem, _: tuple[str, ...]) -> Example:
    return Example(it.id, task, it.question, it.answer, tuple(it.aliases), (), item_meta(it))


_LEAD_IN = re.compile(r"^(the\s+)?(short\s+)?(final\s+)?answer(\s+to\s+(this|the|your)\s+question)?(\s+is)?\s*[:\-]\s*",
                      re.IGNORECASE)


def extract_answer(text: str) -> str:
    """The answer in a generated reply: the first non-empty line that is not a bare lead-in ("The
    answer is:"), without an "Answer:" prefix, surrounding quotes or a final period. Applied the
    same way to every strategy."""
    for line in (ln.strip() for ln in text.splitlines()):
        if not line or line.endswith(":"):
            continue
        line = _LEAD_IN.sub("", line).strip().strip("\"'*").strip()
        return line[:-1] if line.endswith(".") else line
    return ""


def score_answer(task: Any, ex: Example, answer: str) -> tuple[str, dict[str, float]]:
    """The kind's per-item metrics of `answer` against the example's answer and aliases."""
    targets = (ex.target, *ex.aliases)
    return answer, {"exact_match": M.exact_match(answer, targets), "f1": M.token_f1(answer, targets),
                    "key_match": M.key_match(answer, targets), "answer_in_output": M.answer_in_output(answer, targets)}


def _evaluate(rt: ModelRuntime, task: Any, examples: Sequence[Example], prompts: Sequence[Prompt],
              batch_size: int | None) -> list[Prediction]:
    gens = rt.generate([rt.render(p) for p in prompts], task.max_new_tokens, batch_size)
    preds = []
    for ex, p, g in zip(examples, prompts, gens, strict=True):
        answer, scores = score_answer(task, ex, extract_answer(g.text))
        preds.append(Prediction(ex.id, task.name, answer, ex.target, scores, g.latency_s, g.prompt_tokens,
                                g.output_tokens, meta={**prediction_meta(ex, p), "raw_output": g.text}))
    return preds


SHORT_ANSWER = TaskKind(
    name="short-answer", item=ShortAnswerItem, to_example=_example, fields=("question", "answer"),
    metrics=("exact_match", "f1", "key_match", "answer_in_output"), headline=("key_match", "exact_match", "f1"),
    instruction="Answer the question with a short phrase.", evaluate=_evaluate, score_answer=score_answer,
)
