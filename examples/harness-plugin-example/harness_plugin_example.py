"""A complete harness strategy plugin: zero-shot with an expert persona as the system prompt."""

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from harness.strategy import (
    Adapted,
    Example,
    Prompt,
    RunContext,
    StrategyOptions,
    Suite,
    Task,
    unchanged_weights,
    zero_shot_prompt,
)


class Persona:
    name: ClassVar[str] = "persona"
    family: ClassVar[str] = "context"
    description: ClassVar[str] = "Zero-shot with an expert persona as the system prompt."

    class Options(StrategyOptions):
        persona: str = Field("You are a careful legal analyst. Answer briefly.", min_length=1)

    def __init__(self, options: Options):
        self.options = options

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return unchanged_weights(run)  # nothing to train: the shared base model, its cost measured

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return [zero_shot_prompt(task, ex, self.options.persona) for ex in examples]
