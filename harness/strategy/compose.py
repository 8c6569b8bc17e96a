"""Hybrids: one strategy's context on another strategy's weights, e.g. `rag+lora`.

`compose(context, weights)` builds the hybrid class from the two plugins; the registry does it for
any name `<context>+<weights>`. The weights side adapts first; the context side then adapts on
the adapted model (its `run.load_base()` returns that model) and builds every prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from pydantic import Field, create_model

from harness.core.errors import HarnessError
from harness.core.records import AdaptReport, Example, Prompt
from harness.data.suites import Suite, Task
from harness.strategy.protocol import Adapted, RunContext, Strategy, StrategyOptions
from harness.strategy.search import hybrid_space, space_of


def merge_reports(weights: AdaptReport, context: AdaptReport) -> AdaptReport:
    """Costs of both sides: the weights side's parameters, both sides' artifacts and extras."""
    return replace(
        weights,
        artifact_bytes=weights.artifact_bytes + context.artifact_bytes,
        extras={**weights.extras, **context.extras},
        update=context.update or weights.update,
        notes="; ".join(n for n in (weights.notes, context.notes) if n),
    )


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
        __base__=StrategyOptions,
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

        def adapt(self, run: RunContext, suite: Suite) -> Adapted:
            trained = self.weights.adapt(run, suite)
            on_trained = replace(run, load_base=lambda: trained.runtime)
            ctx = self.context.adapt(on_trained, suite)
            return Adapted(trained.runtime, merge_reports(trained.report, ctx.report))

        def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
            return self.context.prompts(run, task, examples)

    Hybrid.__name__ = Hybrid.__qualname__ = f"{context.__name__}Plus{weights.__name__}"
    return Hybrid  # type: ignore[return-value]
