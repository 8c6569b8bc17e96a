"""Selective fine-tuning: a chosen few of a copy's weights train, through the same loop, data and
budget as every weight strategy (harness.model.training.sft_train).

- `ia3`: peft IA3, learned scaling vectors on keys, values and the MLP output;
- `layer-freeze`: full fine-tuning of the top N transformer layers (and the final norm) only;
- `norm-bias`: BitFit-style, bias and normalization parameters only. Llama-family models (the
  default SmolLM2 among them) have no bias parameters, so there it tunes the RMSNorm weights alone
  and says so in the record.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar

from harness_strategies.weights import _Trained
from pydantic import Field

from harness.core.errors import Unsupported
from harness.model.runtime import ModelRuntime
from harness.strategy.protocol import RunContext
from harness.model.training import TrainOptions


def frozen_copy(base: ModelRuntime) -> Any:
    """A copy of the base model with every parameter frozen."""
    model = copy.deepcopy(base.model)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def save_trainable(model: Any, folder: Path) -> None:
    """Only the tensors that trained (the rest is the base model): safetensors plus their names."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(tensors, str(folder / "trainable.safetensors"))


class Ia3Options(TrainOptions):
    learning_rate: float = Field(5e-3, gt=0, le=1.0, description="IA3 vectors start at 1 and need a larger rate.")
    target_modules: list[str] = Field(["k_proj", "v_proj", "down_proj"], min_length=1)
    feedforward_modules: list[str] = Field(["down_proj"], description="Targets scaled on their input.")


class Ia3(_Trained):
    name: ClassVar[str] = "ia3"
    description: ClassVar[str] = "IA3 (peft): learned scaling vectors on keys, values and the MLP output."
    Options: ClassVar[type[Ia3Options]] = Ia3Options

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        from peft import IA3Config, get_peft_model

        o = self.options
        config = IA3Config(task_type="CAUSAL_LM", target_modules=list(o.target_modules),
                           feedforward_modules=list(o.feedforward_modules))
        return get_peft_model(copy.deepcopy(base.model), config)


class LayerFreezeOptions(TrainOptions):
    learning_rate: float = Field(1e-4, gt=0, le=1.0)
    top_layers: int = Field(4, ge=1, description="Transformer layers trained, counted from the top (at most all).")


class LayerFreeze(_Trained):
    name: ClassVar[str] = "layer-freeze"
    description: ClassVar[str] = "Full fine-tuning of the top N layers and the final norm; the rest frozen."
    Options: ClassVar[type[LayerFreezeOptions]] = LayerFreezeOptions

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        model = frozen_copy(base)
        layers = model.model.layers
        for layer in layers[max(0, len(layers) - self.options.top_layers):]:  # at most every layer
            layer.requires_grad_(True)
        model.model.norm.requires_grad_(True)
        return model

    def save_artifact(self, model: Any, folder: Path) -> None:
        save_trainable(model, folder)


class NormBiasOptions(TrainOptions):
    learning_rate: float = Field(1e-3, gt=0, le=1.0)


class NormBias(_Trained):
    name: ClassVar[str] = "norm-bias"
    description: ClassVar[str] = ("BitFit-style: only bias and normalization parameters train (Llama has no "
                                  "biases: norms only).")
    Options: ClassVar[type[NormBiasOptions]] = NormBiasOptions

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        model = frozen_copy(base)
        chosen = [p for n, p in model.named_parameters() if n.endswith(".bias") or "norm" in n.split(".")[-2]]
        if not chosen:
            raise Unsupported("the model has neither bias nor normalization parameters")
        for p in chosen:
            p.requires_grad_(True)
        return model

    def save_artifact(self, model: Any, folder: Path) -> None:
        save_trainable(model, folder)
