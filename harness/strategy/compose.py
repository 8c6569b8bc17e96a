"""Hybrids: one strategy's context on another strategy's weights, e.g. `rag+lora`.

`compose(context, weights)` builds the hybrid class from the two plugins; the registry does it for
any name `<context>+<weights>`. The weights side trains first, on the prompts the context side builds
for the train and dev items (`train_on_context`, default on: retrieval-augmented fine-tuning, as in
RAFT, Zhang et al. 2024); the context side then adapts on the trained model (its `run.load_base()`
returns that model) and builds every evaluation prompt. Weights trained on zero-shot prompts and then
shown retrieved passages meet a prompt they never saw: measured on suites/scenarios/knowledge-and-style,
rag+lora trained that way copied the passages' source headers instead of answering (exact match 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from pydantic import Field, create_model, model_validator

from harness.core.errors import HarnessError
from harness.core.records import AdaptReport, Example, Prompt
from harness.data.suites import Suite, Task
from harness.model.training import CONTEXT_SEQ_LEN
from harness.strategy.protocol import Adapted, RunContext, Strategy, StrategyOptions
from harness.strategy.search import hybrid_space, space_of
from harness.strategy.training import training_prompts


def merge_reports(weights: AdaptReport, context: AdaptReport) -> AdaptReport:
    """Costs of both sides: the weights side's parameters, both sides' artifacts and extras."""
    return replace(
        weights,
        artifact_bytes=weights.artifact_bytes + context.artifact_bytes,
        extras={**weights.extras, **context.extras},
        update=context.update or weights.update,
        notes="; ".join(n for n in (weights.notes, context.notes) if n),
    )


class HybridOptions(StrategyOptions):
    """What every hybrid's options share (compose adds its `context` and `weights` sides)."""

    train_on_context: bool = Field(True, description="Train the weights on the context side's prompts of the "
                                   "train and dev items, as evaluation shows them (False: on zero-shot prompts); the "
                                   f"rows' limit is then the weights' max_seq_len if given, else {CONTEXT_SEQ_LEN}.")

    @model_validator(mode="before")
    @classmethod
    def _room_for_context(cls, data: Any) -> Any:
        """Training on context, a weights side whose max_seq_len is not given gets at least CONTEXT_SEQ_LEN
        (its zero-shot default would cut the passages off every row). Set here, in the options, so the
        value survives the runner's dump and re-validation and the plan reads it."""
        if not isinstance(data, dict) or not data.get("train_on_context", True):
            return data
        field = cls.model_fields.get("weights")
        fields: dict[str, Any] = getattr(field.annotation, "model_fields", {}) if field else {}
        weights = data.get("weights", {})
        if not isinstance(weights, dict) or "max_seq_len" in weights or "max_seq_len" not in fields:
            return data
        default = fields["max_seq_len"].default
        return {**data, "weights": {**weights, "max_seq_len": max(default, CONTEXT_SEQ_LEN)}}


def compose(context: type[Strategy], weights: type[Strategy]) -> type[Strategy]:
    """The hybrid strategy class `<context.name>+<weights.name>`."""
    if context.family != "context" or weights.family not in ("weights", "hybrid"):
        raise HarnessError(
            f"a hybrid is <context strategy>+<weights strategy>; {context.name!r} is {context.family} and "
            f"{weights.name!r} is {weights.family}"
        )
    space = hybrid_space(space_of(context), space_of(weights))
    options: Any = create_model(
        f"{context.__name__}{weights.__name__}Options",
        __base__=HybridOptions,
        context=(context.Options, Field(default_factory=context.Options, description=f"{context.name} options")),
        weights=(weights.Options, Field(default_factory=weights.Options, description=f"{weights.name} options")),
    )

    class Hybrid:
        name: ClassVar[str] = f"{context.name}+{weights.name}"
        family: ClassVar[str] = "hybrid"
        description: ClassVar[str] = f"{context.name}'s context on {weights.name}'s weights"
        Options: ClassVar[type[StrategyOptions]] = options
        search_space = staticmethod(space) if space else None
        sides: ClassVar[tuple[type[Strategy], type[Strategy]]] = (context, weights)
        """The two strategies it is made of (whose code determines its results)."""

        def __init__(self, opts: Any):
            self.context = context(opts.context)
            self.weights = weights(opts.weights)
            self.train_on_context = bool(opts.train_on_context)

        def adapt(self, run: RunContext, suite: Suite) -> Adapted:
            if self.train_on_context:  # the context side indexes on the base first, then builds training prompts
                self.context.adapt(run, suite)
                with training_prompts(lambda task, examples: self.context.prompts(run, task, examples)):
                    trained = self.weights.adapt(run, suite)
            else:
                trained = self.weights.adapt(run, suite)
            on_trained = replace(run, load_base=lambda: trained.runtime)
            ctx = self.context.adapt(on_trained, suite)
            return Adapted(trained.runtime, merge_reports(trained.report, ctx.report))

        def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
            return self.context.prompts(run, task, examples)

    Hybrid.__name__ = Hybrid.__qualname__ = f"{context.__name__}Plus{weights.__name__}"
    return Hybrid  # type: ignore[return-value]
