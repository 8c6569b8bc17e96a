"""Weight strategies: LoRA, DoRA, QLoRA and full fine-tuning. Same data, same training loop, same
plumbing (harness.strategy.train_weights), same evaluation; they differ only in how the model is
prepared."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

from harness_strategies.schedules import SCHEDULE_HELP, Schedule, train_scheduled
from pydantic import BaseModel, Field

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
    search,
    train_weights,
)


class LoraOptions(TrainOptions):
    learning_rate: float = Field(2e-4, gt=0, le=1.0, description="For a full schedule (the QLoRA paper's rate "
                                 "for small models).")
    cpu_learning_rate: float | None = Field(1e-3, gt=0, le=1.0, description="Under the CPU step cap (24 steps): "
                                            "at 2e-4 LoRA barely moved in 24 steps (dev loss 4.13 vs 2.41).")
    r: int = Field(8, ge=1, le=1024, description="Adapter rank.")
    alpha: int = Field(16, ge=1, description="Scaling numerator (alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(["q_proj", "v_proj"], min_length=1)


class ScheduledLoraOptions(LoraOptions):
    """`lora`'s (and `dora`'s) options: LoRA's, plus the multi-task schedule (strategies/schedules.py)."""

    schedule: Schedule = Field("joint", description=SCHEDULE_HELP)


class FullOptions(TrainOptions):
    learning_rate: float = Field(2e-5, gt=0, le=1.0, description="For a full schedule.")
    cpu_learning_rate: float | None = Field(1e-4, gt=0, le=1.0, description="Under the CPU step cap.")
    keep_weights: bool = Field(True, description="Keep the fine-tuned weights (a full copy of the model) in the "
                               "cell folder; off: record their sha256 and size, then delete them.")
    schedule: Schedule = Field("joint", description=SCHEDULE_HELP)


def default_rates(method: str) -> dict[str, float]:
    """The learning rates `lora` or `full-ft` train with by default, for a full schedule and under the
    CPU cap (rehearsal and continued pretraining use the same, so that without their addition they
    train exactly as those do)."""
    options: type[BaseModel] = LoraOptions if method == "lora" else FullOptions
    return {k: float(options.model_fields[k].default) for k in ("learning_rate", "cpu_learning_rate")}


def method_rates(o: Any) -> dict[str, float]:
    """The learning rates of options with a `method` (lora or full-ft): the ones set, a rate given
    applying on CPU too, else the method's defaults."""
    defaults = default_rates(o.method)
    cpu = o.cpu_learning_rate or o.learning_rate or defaults["cpu_learning_rate"]
    return {"learning_rate": o.learning_rate or defaults["learning_rate"], "cpu_learning_rate": cpu}


def _lora_config(o: LoraOptions, use_dora: bool = False) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=o.r, lora_alpha=o.alpha, lora_dropout=o.dropout, target_modules=list(o.target_modules),
                      task_type="CAUSAL_LM", use_dora=use_dora)


def all_trainable_copy(base: ModelRuntime) -> Any:
    """A copy of the base model with every weight trainable (full fine-tuning)."""
    model = copy.deepcopy(base.model)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def lora_or_full(base: ModelRuntime, options: Any) -> Any:
    """A copy of the base model with LoRA adapters (`options.method` "lora", the LoRA options apply)
    or with every weight trainable ("full-ft"): the two methods rehearsal and continued pretraining offer."""
    if options.method == "full-ft":
        return all_trainable_copy(base)
    from peft import get_peft_model

    return get_peft_model(copy.deepcopy(base.model), _lora_config(options))


def lora_space(trial: Any) -> dict[str, Any]:
    """LoRA's search space (DoRA's and QLoRA's too)."""
    return {**search.learning_rate(trial, 1e-4, 3e-3), "r": trial.suggest_categorical("r", [4, 8, 16, 32]),
            "alpha": trial.suggest_categorical("alpha", [8, 16, 32, 64]), **search.budget(trial)}


class Lora:
    """Low-rank adapters on a copy of the base model; the base weights stay frozen."""

    name: ClassVar[str] = "lora"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = "LoRA adapters (peft) trained on the train split; base frozen."
    Options: ClassVar[type[LoraOptions]] = ScheduledLoraOptions
    use_dora: ClassVar[bool] = False
    search_space = staticmethod(lora_space)

    def __init__(self, options: LoraOptions):
        self.options = options

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        from peft import get_peft_model

        return get_peft_model(copy.deepcopy(base.model), _lora_config(self.options, self.use_dora))

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        if getattr(self.options, "schedule", "joint") != "joint":
            return train_scheduled(self, run, suite)
        return train_weights(self, run, suite, serve=merged_for_eval)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)


class Dora(Lora):
    """Weight-decomposed LoRA: magnitude and direction trained separately."""

    name: ClassVar[str] = "dora"
    description: ClassVar[str] = "DoRA (peft use_dora): LoRA with a learned magnitude vector."
    use_dora: ClassVar[bool] = True


class Qlora(Lora):
    """LoRA on a 4-bit NF4 base (bitsandbytes, double quantization); paged optimizer on CUDA."""

    name: ClassVar[str] = "qlora"
    description: ClassVar[str] = "LoRA on a 4-bit NF4 quantized base (bitsandbytes)."
    Options: ClassVar[type[LoraOptions]] = LoraOptions  # joint training only

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        import torch
        from peft import get_peft_model, prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        from harness.model.load import local_weights

        try:
            import bitsandbytes  # noqa: F401
        except Exception as e:
            raise Unsupported(f"QLoRA needs bitsandbytes, which failed to import here: {e}") from None
        compute = getattr(torch, base.compute_dtype)  # bf16 where the device computes in it (harness.core.precision)
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=compute)
        try:
            model = AutoModelForCausalLM.from_pretrained(local_weights(run.model), quantization_config=quant,
                                                         dtype=compute, device_map={"": run.device})
        except (RuntimeError, ValueError, ImportError) as e:
            raise Unsupported(f"4-bit loading is not supported on {run.device} here: {e}") from None
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        return get_peft_model(model, _lora_config(self.options))

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return train_weights(self, run, suite, optimizer="paged_adamw_8bit")


class FullFinetune:
    """Every weight of a copy of the base model is trained."""

    name: ClassVar[str] = "full-ft"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = "Full fine-tuning of every weight (a copy; the base stays untouched)."
    Options: ClassVar[type[FullOptions]] = FullOptions

    def __init__(self, options: FullOptions):
        self.options = options

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {**search.learning_rate(trial, 1e-5, 3e-4), **search.budget(trial)}

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        return all_trainable_copy(base)

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        if self.options.schedule != "joint":
            return train_scheduled(self, run, suite)
        return train_weights(self, run, suite)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)
