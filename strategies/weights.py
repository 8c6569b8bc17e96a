"""Weight strategies: LoRA, DoRA, QLoRA and full fine-tuning. Same data, same training loop
(harness.model.training.sft_train), same evaluation; they differ only in how the model is prepared."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from harness.strategy.distributed import launch_for
from harness.core.errors import Unsupported
from harness.model.load import local_weights
from harness.data.prompts import zero_shot_prompt
from harness.core.records import AdaptReport, Example, KnowledgeUpdate, Prompt
from harness.model.runtime import ModelRuntime
from harness.strategy.protocol import Adapted, RunContext, count_params
from harness.data.suites import Suite, Task
from harness.model.training import Launch, TrainOptions, TrainResult, sft_train, split_by_documents


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def drop_weights(folder: Path) -> str:
    """Delete the safetensors files of `folder` (configs stay), returning the sha256 of their bytes."""
    import hashlib

    digest = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")):
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        f.unlink()
    return digest.hexdigest()


class _Trained:
    """Shared adapt/prompts of weight strategies; subclasses say how to build the trainable model."""

    family: ClassVar[str] = "weights"
    cuda_optimizer: ClassVar[str | None] = None
    options: Any

    def __init__(self, options: Any):
        self.options = options

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        raise NotImplementedError

    def save_artifact(self, model: Any, folder: Path) -> None:
        """What a deployment stores: the adapter (peft) or the whole model, as safetensors."""
        model.save_pretrained(folder)

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        from transformers import set_seed

        base = run.load_base()
        set_seed(run.seed)  # adapter init (peft draws from the global RNG) must not depend on earlier cells
        model = self.trainable_model(run, base)
        rt = ModelRuntime(model, base.tokenizer, base.spec, base.device)
        docs = sorted(d.id for d in suite.corpus)
        new_docs = set(docs[len(docs) - min(self.options.update_docs, len(docs)) :]) if docs else set()
        first, update_suite = split_by_documents(suite, new_docs)
        model.train()
        result = self._train(run, model, rt, first, "train")
        update = self._absorb(run, model, rt, update_suite, suite, new_docs) if new_docs else None
        model.eval()
        artifact = run.work_dir / "artifact"
        self.save_artifact(model, artifact)
        report = replace(self._report(model, result, folder_bytes(artifact)), update=update)
        train_items = sum(len(t.train) for t in first.tasks if t.kind != "language-modeling")
        report = replace(report, extras={**report.extras, "train_items": float(train_items)})
        if not getattr(self.options, "keep_weights", True):
            report = replace(report, artifact_sha256=drop_weights(artifact))
        return Adapted(rt, report)

    def _train(self, run: RunContext, model: Any, rt: ModelRuntime, suite: Suite, folder: str) -> TrainResult:
        optim = self.cuda_optimizer if run.device.startswith("cuda") else None
        return sft_train(model, rt, suite, self.options, run.work_dir / folder, run.seed, run.device, optim,
                         launch=self.launch(run))

    def launch(self, run: RunContext) -> Launch | None:
        """How worker processes rebuild this strategy's model, when it trains in several (option `processes`)."""
        processes = self.options.process_count(run.device)
        return launch_for(self, self.options, run, processes) if processes > 1 else None

    def _absorb(self, run: RunContext, model: Any, rt: ModelRuntime, update_suite: Suite, suite: Suite,
                new_docs: set[str]) -> KnowledgeUpdate:
        """Further training on the held-out documents' train items: the cost of new knowledge."""
        t0 = time.perf_counter()
        self._train(run, model, rt, update_suite, "update")
        items = sum(1 for t in suite.tasks for e in t.test if e.meta.get("doc_id") in new_docs)
        return KnowledgeUpdate(len(new_docs), time.perf_counter() - t0, "continued-training", items)

    def _report(self, model: Any, result: TrainResult, artifact_bytes: int) -> AdaptReport:
        trainable, total = count_params(model)
        extras = {"train_steps": float(result.steps), "stopped_early": float(result.stopped_early)}
        if result.best_dev_loss is not None:
            extras["best_dev_loss"] = result.best_dev_loss
        return AdaptReport(trainable_params=trainable, total_params=total, artifact_bytes=artifact_bytes,
                           train_tokens=result.train_tokens, extras=extras, curve=result.curve)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        """The prompt it was trained on: zero-shot, with the training system prompt."""
        return [zero_shot_prompt(task, ex, self.options.system) for ex in examples]


class LoraOptions(TrainOptions):
    learning_rate: float = Field(1e-3, gt=0, le=1.0, description="High for the short default CPU budget "
                                 "(24 steps): at 2e-4 LoRA barely moved in 24 steps (dev loss 4.13 vs 2.41).")
    r: int = Field(8, ge=1, le=1024, description="Adapter rank.")
    alpha: int = Field(16, ge=1, description="Scaling numerator (alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(["q_proj", "v_proj"], min_length=1)


def _lora_config(o: LoraOptions, use_dora: bool = False) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=o.r, lora_alpha=o.alpha, lora_dropout=o.dropout, target_modules=list(o.target_modules),
                      task_type="CAUSAL_LM", use_dora=use_dora)


def lora_or_full(base: ModelRuntime, options: Any) -> Any:
    """A copy of the base model with LoRA adapters (`options.method` "lora", the LoRA options apply)
    or with every weight trainable ("full-ft"): the two methods rehearsal and continued pretraining offer."""
    model = copy.deepcopy(base.model)
    if options.method == "full-ft":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import get_peft_model

    return get_peft_model(model, _lora_config(options))


class Lora(_Trained):
    """Low-rank adapters on a copy of the base model; the base weights stay frozen."""

    name: ClassVar[str] = "lora"
    description: ClassVar[str] = "LoRA adapters (peft) trained on the train split; base frozen."
    Options: ClassVar[type[LoraOptions]] = LoraOptions
    use_dora: ClassVar[bool] = False

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        from peft import get_peft_model

        return get_peft_model(copy.deepcopy(base.model), _lora_config(self.options, self.use_dora))


class Dora(Lora):
    """Weight-decomposed LoRA: magnitude and direction trained separately."""

    name: ClassVar[str] = "dora"
    description: ClassVar[str] = "DoRA (peft use_dora): LoRA with a learned magnitude vector."
    use_dora: ClassVar[bool] = True


class Qlora(Lora):
    """LoRA on a 4-bit NF4 base (bitsandbytes, double quantization); paged optimizer on CUDA."""

    name: ClassVar[str] = "qlora"
    description: ClassVar[str] = "LoRA on a 4-bit NF4 quantized base (bitsandbytes)."
    cuda_optimizer: ClassVar[str | None] = "paged_adamw_8bit"

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        import torch
        from peft import get_peft_model, prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        try:
            import bitsandbytes  # noqa: F401
        except Exception as e:
            raise Unsupported(f"QLoRA needs bitsandbytes, which failed to import here: {e}") from None
        compute = torch.bfloat16 if run.device.startswith("cuda") else torch.float32
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=compute)
        try:
            model = AutoModelForCausalLM.from_pretrained(local_weights(run.model), quantization_config=quant,
                                                         dtype=compute, device_map={"": run.device})
        except (RuntimeError, ValueError, ImportError) as e:
            raise Unsupported(f"4-bit loading is not supported on {run.device} here: {e}") from None
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        return get_peft_model(model, _lora_config(self.options))


class FullOptions(TrainOptions):
    learning_rate: float = Field(1e-4, gt=0, le=1.0)
    keep_weights: bool = Field(True, description="Keep the fine-tuned weights (a full copy of the model) in the "
                               "cell folder; off: record their sha256 and size, then delete them.")


class FullFinetune(_Trained):
    """Every weight of a copy of the base model is trained."""

    name: ClassVar[str] = "full-ft"
    description: ClassVar[str] = "Full fine-tuning of every weight (a copy; the base stays untouched)."
    Options: ClassVar[type[FullOptions]] = FullOptions

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        model = copy.deepcopy(base.model)
        for p in model.parameters():
            p.requires_grad_(True)
        return model
