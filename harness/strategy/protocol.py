"""The strategy contract. A strategy is a plugin class the registry finds by name.

A strategy has two concerns, kept apart so hybrids are cheap:
- weights (`adapt`): what it changes in the model (nothing, LoRA, full fine-tuning...);
- context (`prompts`): what the model sees for each example (zero-shot, k-shot, retrieved text).

Everything else (the runtime, scoring, measurement) is shared, so comparisons are fair.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from harness.core.options import StrategyOptions
from harness.core.records import AdaptReport, Example, Prompt

if TYPE_CHECKING:
    from harness.data.suites import Suite, Task
    from harness.model.runtime import ModelRuntime
    from harness.model.spec import ModelSpec

Family = Literal["context", "weights", "hybrid"]


@dataclass(frozen=True)
class RunContext:
    """The only way state reaches a strategy: seed, device, folders and the base model."""

    seed: int
    device: str
    work_dir: Path
    """This cell's own folder (artifacts, checkpoints)."""
    cache_dir: Path
    """Shared across cells and runs (converted models, indexes)."""
    model: ModelSpec
    load_base: Callable[[], ModelRuntime] = field(repr=False)
    """The base model, loaded once per process and shared: never modify its weights in place."""

    def rng(self, *keys: int | str) -> np.random.Generator:
        """A generator seeded from the cell seed and `keys`: same keys, same stream, any order."""
        import zlib

        words = [self.seed] + [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
        return np.random.default_rng(words)


@dataclass(frozen=True)
class Adapted:
    """What `adapt` returns: the model to evaluate and what adapting cost."""

    runtime: ModelRuntime
    report: AdaptReport


@runtime_checkable
class Strategy(Protocol):
    name: ClassVar[str]
    """kebab-case, the same as the entry-point name."""
    family: ClassVar[Family]
    description: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]]

    def __init__(self, options: StrategyOptions) -> None: ...

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        """Train or index; return the runtime to evaluate. Raise Unsupported if it cannot run here."""
        ...

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        """The prompt the model sees for each example."""
        ...


def count_params(model: object) -> tuple[int, int]:
    """(trainable, total) parameter counts of a torch module."""
    params = list(model.parameters())  # type: ignore[attr-defined]
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def unchanged_weights(run: RunContext) -> Adapted:
    """`adapt` for strategies that only change the prompt: the shared base model, nothing trained."""
    runtime = run.load_base()
    _, total = count_params(runtime.model)
    return Adapted(runtime, AdaptReport(trainable_params=0, total_params=total))
