"""The training loop every weight strategy shares: transformers' Trainer on token rows (input_ids
and labels, -100 where no loss is taken), right-padded batches, validation on dev rows every
`eval_every` steps, early stopping on dev loss with the best checkpoint kept, checkpoints that let a
killed training resume. What the rows contain (the suite's task rows, replay, a corpus) and how many
processes train is decided above, in harness.strategy.training.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.core.faults import kill_point
from harness.core.options import StrategyOptions
from harness.core.precision import compute_dtype, without_amp_wrapper
from harness.core.records import TrainingBudget
from harness.model.loss import KeptLogitsLoss, PadCollator, keeps_logits

Rows = list[dict[str, list[int]]]
"""Token rows: {"input_ids": [...], "labels": [...]} (labels -100 where no loss is taken)."""


CONTEXT_SEQ_LEN = 1024
"""The training rows' length limit of a hybrid whose weights train on its context prompts (retrieved
passages, shown examples make rows several times a zero-shot row's), unless max_seq_len is given."""


class LoopOptions(StrategyOptions):
    """The training loop's budget and optimizer (harness.strategy.training.TrainOptions adds the data
    and process options every weight strategy shares)."""

    learning_rate: float = Field(2e-4, gt=0, le=1.0)
    epochs: float = Field(2.0, gt=0, le=100)
    max_steps: int = Field(-1, ge=-1, description="Stop after this many optimizer steps (-1: use epochs).")
    cpu_max_steps: int = Field(24, ge=0, description="On CPU, at most this many steps (0: no cap): keeps a "
                               "default compare within minutes on a laptop-class CPU.")
    batch_size: int = Field(8, ge=1, le=1024)
    grad_accum: int = Field(1, ge=1, le=1024)
    max_seq_len: int = Field(384, ge=16, le=32768)
    weight_decay: float = Field(0.0, ge=0, le=1)
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_steps: int = Field(0, ge=0)
    eval_every: int = Field(10, ge=1, description="Optimizer steps between dev evaluations.")
    patience: int = Field(3, ge=1, description="Dev evaluations without improvement before stopping.")
    cpu_learning_rate: float | None = Field(None, gt=0, le=1.0, description="The rate on CPU while cpu_max_steps "
                                            "caps training to a few steps (None: learning_rate).")
    @model_validator(mode="before")
    @classmethod
    def _one_rate_when_given(cls, data: Any) -> Any:
        """A learning_rate given without a cpu_learning_rate is the rate everywhere (a CPU default must
        not silently replace the rate a user chose)."""
        if isinstance(data, dict) and "learning_rate" in data and "cpu_learning_rate" not in data:
            return {**data, "cpu_learning_rate": None}
        return data

    precision: Literal["auto", "fp32", "bf16-mixed"] = Field(
        "auto", description="bf16-mixed: trainable weights kept in fp32 (the optimizer's master copy) and compute "
        "autocast to bf16; auto: bf16-mixed where the device computes in bf16 (CUDA, a CPU with native bf16), "
        "else fp32.")


def step_budget(o: LoopOptions, device: str, rows: int | None = None) -> int:
    """Optimizer steps one training may take (-1: the epoch budget decides): `max_steps`, capped on
    CPU by `cpu_max_steps` (0: no cap). The cap only ever shortens: with `rows` known, a small train
    set whose epochs need fewer steps than the cap trains its epochs, not the cap."""
    if not device.startswith("cuda") and o.cpu_max_steps:
        cap = o.cpu_max_steps if o.max_steps < 0 else min(o.max_steps, o.cpu_max_steps)
        return cap if rows is None else min(cap, planned_steps(o, rows))
    return o.max_steps


def cpu_capped(o: LoopOptions, device: str) -> bool:
    """Whether the CPU step cap applies (a CPU run with cpu_max_steps set)."""
    return not device.startswith("cuda") and o.cpu_max_steps > 0


def learning_rate(o: LoopOptions, device: str) -> float:
    """The peak learning rate in effect: the CPU default under the CPU cap, else `learning_rate`."""
    return o.cpu_learning_rate if cpu_capped(o, device) and o.cpu_learning_rate else o.learning_rate


def precision(o: LoopOptions, device: str) -> str:
    """fp32 or bf16-mixed, `auto` resolved by the device's compute precision (harness.core.precision)."""
    if o.precision == "auto":
        return "bf16-mixed" if compute_dtype(device) == "bfloat16" else "fp32"
    return o.precision


def master_weights(model: Any) -> None:
    """Every trainable parameter in fp32, the optimizer's master copy (bf16 weights would round away
    any update under about 0.4% of a weight: a norm weight at 1.0 would not move at lr 1e-3); frozen
    ones stay as loaded. With bf16-mixed, compute is then autocast to bf16."""
    import torch

    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()


def world_size() -> int:
    """Processes in this training (torchrun sets WORLD_SIZE in each worker); 1 outside one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def in_worker() -> bool:
    return world_size() > 1


@dataclass(frozen=True)
class TrainResult:
    curve: tuple[dict[str, float], ...]
    """One row per logging/eval step: step, and train_loss or dev_loss."""
    train_tokens: int
    best_dev_loss: float | None
    steps: int
    stopped_early: bool
    budget: TrainingBudget | None = None
    extras: dict[str, float] = field(default_factory=dict)
    """What the strategy's training function adds to the record's extras (e.g. replay rows)."""
    notes: str = ""
    """A sentence for the record's notes (e.g. where the replay rows came from)."""
    logit_positions: int | None = None
    """Positions whose logits the training steps computed (the output head ran there); None: every token."""
    head_trained: bool = False
    """The output head was among the trainable weights."""


def _curve(log_history: list[dict[str, Any]]) -> tuple[dict[str, float], ...]:
    rows = []
    for h in log_history:
        if "loss" in h:
            rows.append({"step": float(h["step"]), "train_loss": float(h["loss"])})
        elif "eval_loss" in h:
            rows.append({"step": float(h["step"]), "dev_loss": float(h["eval_loss"])})
    return tuple(rows)


def train_args(o: LoopOptions, out: Path, seed: int, device: str, has_dev: bool, optim: str | None = None,
               rows: int | None = None) -> Any:
    from transformers import TrainingArguments

    extra: dict[str, Any] = {"optim": optim} if optim else {}
    max_steps = step_budget(o, device, rows)
    # Checkpoints every eval_every steps, optimizer and RNG states included, so a killed training
    # resumes where it stopped (see sft_train); with a dev split, the best one is kept and loaded.
    eval_kw: dict[str, Any] = dict(save_strategy="steps", save_steps=o.eval_every, save_total_limit=1)
    if has_dev:
        eval_kw |= dict(eval_strategy="steps", eval_steps=o.eval_every, load_best_model_at_end=True,
                        metric_for_best_model="eval_loss", greater_is_better=False)
    if in_worker():  # one shard of each global batch per process; the same global batch as one process
        extra["ddp_backend"] = "nccl" if device.startswith("cuda") else "gloo"
    per_device = o.batch_size // world_size()
    return TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=per_device, per_device_eval_batch_size=per_device,
        gradient_accumulation_steps=o.grad_accum, learning_rate=learning_rate(o, device), num_train_epochs=o.epochs,
        max_steps=max_steps, weight_decay=o.weight_decay, lr_scheduler_type=o.scheduler,
        warmup_steps=o.warmup_steps, logging_steps=max(1, o.eval_every // 2), seed=seed, data_seed=seed,
        report_to="none", disable_tqdm=True, use_cpu=not device.startswith("cuda"),
        bf16=precision(o, device) == "bf16-mixed", dataloader_num_workers=0, train_sampling_strategy="group_by_length",
        include_num_input_tokens_seen="non_padding",
        auto_find_batch_size=device.startswith("cuda"),  # out of memory: the trainer halves the batch and retries
        **eval_kw, **extra,
    )


def last_checkpoint(out: Path) -> str | None:
    """The newest checkpoint a killed earlier attempt of this cell left in `out`, if any."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(out)) if out.is_dir() else None


def _kill_point_after_save() -> Any:
    """Crash tests: `HARNESS_KILL_AT=train-checkpoint[:n]` kills the process right after a checkpoint."""
    from transformers import TrainerCallback

    class KillPointAfterSave(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            kill_point("train-checkpoint")
            return control

    return KillPointAfterSave()


POSITIONS_FILE = "logit_positions.json"
"""In each checkpoint: the logit positions the training had computed when it was saved."""


def saved_positions(checkpoint: str | None) -> int | None:
    """The count a checkpoint holds (0 without a checkpoint; None: one saved without it, so unknown)."""
    if checkpoint is None:
        return 0
    path = Path(checkpoint) / POSITIONS_FILE
    return int(json.loads(path.read_text())["positions"]) if path.is_file() else None


def _positions_in_checkpoints(loss: KeptLogitsLoss) -> Any:
    """Writes the loss's position count into every checkpoint (before the crash tests' kill point)."""
    from transformers import TrainerCallback

    class PositionsInCheckpoints(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and folder.is_dir() and loss.positions is not None:
                (folder / POSITIONS_FILE).write_text(json.dumps({"positions": loss.positions}))
            return control

    return PositionsInCheckpoints()


DevEvalHook = Callable[[int, float], None]
"""Called with (optimizer step, dev loss) after each dev evaluation; may raise to stop training
(hyperparameter search prunes a trial this way, see harness.run.tune)."""
_dev_eval_hooks: ContextVar[tuple[DevEvalHook, ...]] = ContextVar("dev_eval_hooks", default=())


@contextmanager
def on_dev_eval(hook: DevEvalHook) -> Iterator[None]:
    """Call `hook` after every dev evaluation of trainings that start inside the block."""
    token = _dev_eval_hooks.set((*_dev_eval_hooks.get(), hook))
    try:
        yield
    finally:
        _dev_eval_hooks.reset(token)


StepHook = Callable[[int, int, float | None], None]
"""Called with (optimizer step, planned steps, latest training loss or None) after every step: the
progress display."""
_step_hooks: ContextVar[tuple[StepHook, ...]] = ContextVar("step_hooks", default=())


@contextmanager
def on_train_step(hook: StepHook) -> Iterator[None]:
    """Call `hook` after every optimizer step of trainings that start inside the block."""
    token = _step_hooks.set((*_step_hooks.get(), hook))
    try:
        yield
    finally:
        _step_hooks.reset(token)


def _step_callback(hooks: tuple[StepHook, ...]) -> Any:
    from transformers import TrainerCallback

    class StepHooks(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            loss = next((float(h["loss"]) for h in reversed(state.log_history) if "loss" in h), None)
            for hook in hooks:
                hook(int(state.global_step), int(state.max_steps), loss)
            return control

    return StepHooks()


def _dev_eval_callback(hooks: tuple[DevEvalHook, ...]) -> Any:
    from transformers import TrainerCallback

    class DevEvalHooks(TrainerCallback):
        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> Any:
            for hook in hooks:
                hook(int(state.global_step), float((metrics or {})["eval_loss"]))
            return control

    return DevEvalHooks()


LossPenalty = Callable[[], Any]
"""A term added to every training batch's loss (a scalar tensor computed from the trainable
parameters, e.g. elastic weight consolidation); never added to the dev loss, so early stopping and
the best checkpoint are judged on the task's loss, as for every other strategy."""


def _trainer_class(penalty: LossPenalty | None) -> Any:
    """transformers' Trainer, or with a `penalty` a subclass that adds it to the training loss."""
    from transformers import Trainer

    if penalty is None:
        return Trainer
    term: LossPenalty = penalty

    class PenalizedTrainer(Trainer):
        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                                 num_items_in_batch=num_items_in_batch)
            if model.training:  # once per optimizer step, also when the loss is normalized over the
                # accumulated micro-batches (the trainer then sums them instead of averaging)
                accepts = self.model_accepts_loss_kwargs or self.compute_loss_func is not None
                scaled = accepts and num_items_in_batch is not None
                loss = loss + term() / (self.current_gradient_accumulation_steps if scaled else 1)
            return (loss, outputs) if return_outputs else loss

    return PenalizedTrainer


def fit_rows(model: Any, pad_id: int, train: list[dict[str, list[int]]], dev: list[dict[str, list[int]]],
             o: LoopOptions, out: Path, seed: int, device: str, optim: str | None = None,
             penalty: LossPenalty | None = None) -> TrainResult:
    """The training loop itself (transformers' Trainer), on token rows; under torchrun it is the
    trainer's own data-parallel training (DDP), one shard of every global batch per process.
    `penalty`: a term added to each training batch's loss (see LossPenalty)."""
    from datasets import Dataset
    from transformers import EarlyStoppingCallback
    from transformers.trainer_callback import PrinterCallback

    master_weights(model)  # whatever the precision: a bf16 base's trainable copy trains in fp32
    callbacks: list[Any] = [EarlyStoppingCallback(early_stopping_patience=o.patience)] if dev else []
    loss = KeptLogitsLoss() if keeps_logits(model) else None
    trainer = _trainer_class(penalty)(
        model=model, args=train_args(o, out, seed, device, bool(dev), optim, len(train)),
        data_collator=PadCollator(pad_id, keep_logits=loss is not None), train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(dev) if dev else None, callbacks=callbacks, compute_loss_func=loss,
    )
    trainer.remove_callback(PrinterCallback)  # the CLI shows progress; the curve is in the record
    resume = last_checkpoint(out)
    if loss is not None:  # the count survives a killed training, as the trainer's own state does
        trainer.add_callback(_positions_in_checkpoints(loss))
        loss.positions = saved_positions(resume)
    trainer.add_callback(_kill_point_after_save())
    if _dev_eval_hooks.get():
        trainer.add_callback(_dev_eval_callback(_dev_eval_hooks.get()))
    if _step_hooks.get():
        trainer.add_callback(_step_callback(_step_hooks.get()))
    t0 = time.perf_counter()
    state = trainer.train(resume_from_checkpoint=resume).global_step
    tokens = int(trainer.state.num_input_tokens_seen)  # non-padding tokens of every training batch
    curve = _curve(trainer.state.log_history)
    best = trainer.state.best_metric
    limit = trainer.state.max_steps
    if trainer.is_world_process_zero():
        (out / "curve.json").write_text(json.dumps({"curve": curve, "wall_s": time.perf_counter() - t0}))
        for checkpoint in out.glob("checkpoint-*"):  # the model now holds the weights kept; free the disk
            shutil.rmtree(checkpoint, ignore_errors=True)
    check_tied(model)
    without_amp_wrapper(model)
    budget = spent(o, device, planned_steps(o, len(train)), state, state < limit, float(trainer.state.epoch or 0.0))
    positions = loss.positions if loss is not None and not in_worker() else None  # a worker sees its shard only
    return TrainResult(curve, tokens, best, state, stopped_early=state < limit, budget=budget,
                       logit_positions=positions, head_trained=head_trained(model))


def positions_of(results: Sequence[TrainResult]) -> int | None:
    """The logit positions of trainings run one after another: their sum, or None if any is unknown."""
    counted = [r.logit_positions for r in results]
    return None if any(n is None for n in counted) else sum(n for n in counted if n is not None)


def head_trained(model: Any) -> bool:
    """Whether the model's output head is among its trainable weights."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return bool(head is not None and head.weight.requires_grad)


def check_tied(model: Any) -> None:
    """A model that ties its output head to its input embedding still does after training (the Trainer
    reloads the best checkpoint, where the head is saved once, as the embedding)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config: Any = getattr(base, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    tied = getattr(text, "tie_word_embeddings", False)
    head = base.get_output_embeddings() if tied and hasattr(base, "get_output_embeddings") else None
    if head is not None and head.weight.data_ptr() != base.get_input_embeddings().weight.data_ptr():
        raise RuntimeError("the output head is no longer tied to the input embedding after training")


def planned_steps(o: LoopOptions, rows: int) -> int:
    """The steps the budget asks for before any CPU cap: max_steps, else epochs over the rows."""
    per_epoch = max(1, math.ceil(rows / (o.batch_size * o.grad_accum)))
    return o.max_steps if o.max_steps > 0 else math.ceil(o.epochs * per_epoch)


def spent(o: LoopOptions, device: str, planned: int, steps: int, early: bool, epochs: float) -> TrainingBudget:
    """The budget of a training that ran `steps` optimizer steps of `planned` (before any CPU cap), and
    what stopped it; `early`: early stopping ended it."""
    how: Literal["epochs", "max_steps", "cpu_max_steps", "early_stopping"]
    if early:
        how, why = "early_stopping", (f"stopped at step {steps} of {planned}: dev loss did not improve for "
                                      f"{o.patience} evaluations")
    elif cpu_capped(o, device) and o.cpu_max_steps < planned:
        how, why = "cpu_max_steps", (f"trained {steps} of {planned} planned steps (CPU cap, cpu_max_steps="
                                     f"{o.cpu_max_steps}): not a converged fine-tune")
    elif o.max_steps > 0:
        how, why = "max_steps", f"{steps} steps (max_steps)"
    else:
        how, why = "epochs", f"{epochs:.3g} epochs ({steps} steps)"
    return TrainingBudget(steps, planned, round(epochs, 4), how, why, precision(o, device),
                          o.batch_size * o.grad_accum, learning_rate(o, device))
