"""Prompt-only strategies: zero-shot and few-shot. They change the context, never the weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.strategy import (
    DEFAULT_SYSTEM,
    Adapted,
    Example,
    Prompt,
    RunContext,
    StrategyOptions,
    Suite,
    Task,
    Unsupported,
    shots_prompt,
    unchanged_weights,
    zero_shot_prompt,
)


class ZeroShot:
    """The task's instruction and the question, after a system prompt. The baseline."""

    name: ClassVar[str] = "zero-shot"
    family: ClassVar[str] = "context"
    description: ClassVar[str] = "Instruction and question only; the baseline every strategy is compared to."

    class Options(StrategyOptions):
        system: str = Field(DEFAULT_SYSTEM, description="System prompt; empty for none.")

    def __init__(self, options: Options):
        self.options = options

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return unchanged_weights(run)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return [zero_shot_prompt(task, ex, self.options.system) for ex in examples]


class FewShot:
    """k solved examples from the train split before the question, as earlier chat turns."""

    name: ClassVar[str] = "few-shot"
    family: ClassVar[str] = "context"
    description: ClassVar[str] = "k train examples as solved chat turns, picked at random or by similarity."

    class Options(StrategyOptions):
        k: int = Field(6, ge=1, le=32, description="Number of solved examples shown.")
        selection: Literal["random", "similar"] = Field(
            "similar", description="similar (nearest train examples by embedding) or random (seeded per example)."
        )
        embedder: str = Field("all-MiniLM-L6-v2", description="sentence-transformers model for 'similar'.")
        system: str = Field(DEFAULT_SYSTEM, description="System prompt; empty for none.")

    def __init__(self, options: Options):
        self.options = options
        self._train_vectors: dict[str, Any] = {}

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {"k": trial.suggest_int("k", 1, 8),
                "selection": trial.suggest_categorical("selection", ["similar", "random"])}

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        empty = [t.name for t in suite.tasks if not t.train and t.spec.trains]
        if empty:
            raise Unsupported(f"few-shot needs train examples; none in task(s) {', '.join(empty)}")
        if self.options.selection == "similar":
            from harness.model.embeddings import embed

            for t in (t for t in suite.tasks if t.train):
                self._train_vectors[t.name] = embed([e.input for e in t.train], self.options.embedder)
        return unchanged_weights(run)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        if not examples:  # e.g. a task without dev items when tuning on dev
            return []
        shots = self._similar(task, examples) if self.options.selection == "similar" else [
            self._random(run, task, ex) for ex in examples
        ]
        return [shots_prompt(task, ex, s, self.options.system) for ex, s in zip(examples, shots, strict=True)]

    def _random(self, run: RunContext, task: Task, example: Example) -> list[Example]:
        pool = [e for e in task.train if e.id != example.id]
        idx = run.rng("few-shot", example.id).choice(len(pool), size=min(self.options.k, len(pool)), replace=False)
        return [pool[i] for i in idx]

    def _similar(self, task: Task, examples: Sequence[Example]) -> list[list[Example]]:
        from harness.model.embeddings import embed

        query = embed([e.input for e in examples], self.options.embedder)
        sims = query @ self._train_vectors[task.name].T
        k = min(self.options.k, len(task.train))
        # most similar last, nearest to the question
        return [[task.train[i] for i in row.argsort()[::-1][:k][::-1]] for row in sims]
