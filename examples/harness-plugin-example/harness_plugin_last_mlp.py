"""A complete weight-strategy plugin: fine-tune only the MLP of the model's last transformer layer.

It writes no training code: `train_weights` (harness's public helper) gives it the same data, budget,
loop, checkpoints, knowledge update, artifact and report fields as the built-in `lora`."""

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field

from harness.strategy import (
    Adapted,
    Example,
    ModelRuntime,
    Prompt,
    RunContext,
    Suite,
    Task,
    TrainOptions,
    prompts_as_trained,
    save_trainable,
    train_weights,
)


class LastMlp:
    name: ClassVar[str] = "last-mlp"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = "Fine-tunes the MLP of the last transformer layer only; the rest frozen."

    class Options(TrainOptions):
        learning_rate: float = Field(1e-4, gt=0, le=1.0)

    def __init__(self, options: Options):
        self.options = options

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-3, log=True)}

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        model = copy.deepcopy(base.model)  # never train the shared base
        model.requires_grad_(False)
        model.model.layers[-1].mlp.requires_grad_(True)
        return model

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return train_weights(self, run, suite, save=save_trainable)  # stores the trained tensors only

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)
