"""Selective fine-tuning: a chosen few of a copy's weights train, through the same loop, data and
budget as every weight strategy (harness.strategy.train_weights).

- `ia3`: peft IA3, learned scaling vectors on keys, values and the MLP output;
- `layer-freeze`: full fine-tuning of the top N transformer layers (and the final norm) only;
- `norm-bias`: BitFit-style, bias and normalization parameters only. Llama-family models (the
  default SmolLM2 among them) have no bias parameters, so there it tunes the RMSNorm weights alone
  and says so in the record.
"""

from __future__ import annotations

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
    Unsupported,
    merged_for_eval,
    prompts_as_trained,
    save_trainable,
    search,
    train_weights,
)


def frozen_copy(base: ModelRuntime) -> Any:
    """A copy of the base model with every parameter frozen."""
    model = copy.deepcopy(base.model)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class Ia3Options(TrainOptions):
    learning_rate: float = Field(3e-3, gt=0, le=1.0, description="IA3 vectors start at 1 and need a larger rate "
                                 "(the IA3 paper's 3e-3).")
    cpu_learning_rate: float | None = Field(5e-3, gt=0, le=1.0, description="Under the CPU step cap.")
    target_modules: list[str] = Field(["k_proj", "v_proj", "down_proj"], min_length=1)
    feedforward_modules: list[str] = Field(["down_proj"], description="Targets scaled on their input.")


class Ia3:
    name: ClassVar[str] = "ia3"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = "IA3 (peft): learned scaling vectors on keys, values and the MLP output."
    Options: ClassVar[type[Ia3Options]] = Ia3Options

    def __init__(self, options: Ia3Options):
        self.options = options

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return train_weights(self, run, suite, serve=merged_for_eval)  # peft saves the IA3 vectors itself

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {**search.learning_rate(trial, 1e-3, 3e-2), **search.budget(trial)}

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        from peft import IA3Config, get_peft_model

        o = self.options
        config = IA3Config(task_type="CAUSAL_LM", target_modules=list(o.target_modules),
                           feedforward_modules=list(o.feedforward_modules))
        return get_peft_model(copy.deepcopy(base.model), config)


class LayerFreezeOptions(TrainOptions):
    learning_rate: float = Field(2e-5, gt=0, le=1.0, description="As full fine-tuning.")
    cpu_learning_rate: float | None = Field(1e-4, gt=0, le=1.0, description="Under the CPU step cap.")
    top_layers: int = Field(4, ge=1, description="Transformer layers trained, counted from the top (at most all).")


class LayerFreeze:
    name: ClassVar[str] = "layer-freeze"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = "Full fine-tuning of the top N layers and the final norm; the rest frozen."
    Options: ClassVar[type[LayerFreezeOptions]] = LayerFreezeOptions

    def __init__(self, options: LayerFreezeOptions):
        self.options = options

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return train_weights(self, run, suite, save=save_trainable)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {**search.learning_rate(trial, 1e-5, 3e-4),
                "top_layers": trial.suggest_categorical("top_layers", [2, 4, 8]), **search.budget(trial)}

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        model = frozen_copy(base)
        layers = model.model.layers
        for layer in layers[max(0, len(layers) - self.options.top_layers):]:  # at most every layer
            layer.requires_grad_(True)
        model.model.norm.requires_grad_(True)
        return model


class NormBiasOptions(TrainOptions):
    learning_rate: float = Field(5e-4, gt=0, le=1.0, description="BitFit's range (1e-4 to 1e-3).")
    cpu_learning_rate: float | None = Field(1e-3, gt=0, le=1.0, description="Under the CPU step cap.")


class NormBias:
    name: ClassVar[str] = "norm-bias"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = ("BitFit-style: only bias and normalization parameters train (Llama has no "
                                  "biases: norms only).")
    Options: ClassVar[type[NormBiasOptions]] = NormBiasOptions

    def __init__(self, options: NormBiasOptions):
        self.options = options

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return train_weights(self, run, suite, save=save_trainable)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {**search.learning_rate(trial, 1e-4, 1e-2), **search.budget(trial)}

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        model = frozen_copy(base)
        chosen = [p for n, p in model.named_parameters() if n.endswith(".bias") or "norm" in n.split(".")[-2]]
        if not chosen:
            raise Unsupported("the model has neither bias nor normalization parameters")
        for p in chosen:
            p.requires_grad_(True)
        return model
