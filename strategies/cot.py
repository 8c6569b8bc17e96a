"""`cot`: zero-shot chain of thought (Kojima et al. 2022). The model reasons first, then writes its
answer on a fixed last line ("Answer: ..."); the answer is parsed from that line and scored by the
task kind's own metrics, for every kind, classification and multiple choice included (the candidates
are listed in the prompt, and a parsed answer that is none of them counts wrong). Replies without a
valid answer line are counted per task (`unparsed_answers` in the record's task metrics) and logged.

A context strategy cannot change how a kind scores, so its prompts ask for it: each prompt's meta
carries `reason` ({"answer_line", "max_new_tokens"}), and harness.data.evaluation.evaluate_task then
generates and parses instead of the kind's own evaluation. The cost shows where every strategy's
does: output tokens per query, latency and cost per 1,000 queries in the record and the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field

from harness.data.evaluation import REASON
from harness.data.prompts import user_text
from harness.strategy import (
    Adapted,
    Example,
    Message,
    Prompt,
    RunContext,
    StrategyOptions,
    Suite,
    Task,
    unchanged_weights,
)

SYSTEM = "You are a careful legal assistant. Think step by step before you answer."


class CotOptions(StrategyOptions):
    system: str = Field(SYSTEM, description="System prompt.")
    trigger: str = Field("Let's think step by step, briefly.", min_length=1,
                         description="Asks for reasoning (Kojima et al.'s zero-shot trigger).")
    answer_line: str = Field("Answer:", min_length=1, description="The last line's prefix the answer is read from.")
    max_new_tokens: int = Field(256, ge=8, le=8192, description="Reasoning and answer, in tokens.")


class Cot:
    """Reason, then answer on a fixed line: generated and parsed for every task kind."""

    name: ClassVar[str] = "cot"
    family: ClassVar[str] = "context"
    description: ClassVar[str] = ("Zero-shot chain of thought: reasoning, then the answer parsed from a final "
                                  "'Answer:' line; every task kind generated and scored from it.")
    Options: ClassVar[type[CotOptions]] = CotOptions

    def __init__(self, options: CotOptions):
        self.options = options

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {"max_new_tokens": trial.suggest_categorical("max_new_tokens", [128, 256, 512])}

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return unchanged_weights(run)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        o = self.options
        ask = {"answer_line": o.answer_line, "max_new_tokens": o.max_new_tokens}
        return [Prompt((*([Message("system", o.system)] if o.system else []), Message("user", self.user(task, ex))),
                       {REASON: ask}) for ex in examples]

    def user(self, task: Task, example: Example) -> str:
        o = self.options
        body = user_text(task, example)
        if example.choices:
            body += "\n\nThe answer must be exactly one of: " + "; ".join(example.choices) + "."
        return f"{body}\n\n{o.trigger} Then end with one last line: {o.answer_line} <your answer>"
