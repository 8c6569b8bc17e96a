"""Supervised fine-tuning shared by every weight strategy: the suite's train split as chat
instruction/response pairs, loss on the response tokens only, validation on the dev split,
early stopping on dev loss and the best checkpoint kept. Uses transformers' Trainer.

Weight strategies differ only in how they prepare the model (LoRA, QLoRA, DoRA, full); the data,
the budget rules and the loop are the same for all, so comparisons are fair.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.core.faults import kill_point
from harness.data.prompts import DEFAULT_SYSTEM, answer_text, zero_shot_prompt
from harness.core.records import Example
from harness.model.runtime import ModelRuntime
from harness.strategy.protocol import StrategyOptions
from harness.data.suites import Suite


class TrainOptions(StrategyOptions):
    """Training budget and optimizer, the same fields for every weight strategy."""

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
    update_docs: int = Field(0, ge=0, description="Hold out train items of N documents; time learning them after.")
    system: str = Field(DEFAULT_SYSTEM, description="System prompt of the training conversations.")
    processes: int | Literal["auto"] = Field(
        "auto", description="Data-parallel training processes (torchrun + the trainer's DDP; gloo on CPU, nccl "
        "on CUDA), each taking batch_size / processes rows of every global batch, so the training is the same. "
        "auto: one per CUDA device when there are several, else 1.")

    @model_validator(mode="after")
    def _batch_splits(self) -> TrainOptions:
        if isinstance(self.processes, int) and (self.processes < 1 or self.batch_size % self.processes):
            raise ValueError(f"processes ({self.processes}) must be >= 1 and divide batch_size ({self.batch_size})")
        return self

    def process_count(self, device: str) -> int:
        """`processes`, with auto resolved: the most CUDA devices (up to all) that divide batch_size."""
        if self.processes != "auto":
            return int(self.processes)
        if not device.startswith("cuda"):
            return 1
        import torch

        devices = torch.cuda.device_count()
        return max(n for n in range(1, max(1, devices) + 1) if self.batch_size % n == 0)


def world_size() -> int:
    """Processes in this training (torchrun sets WORLD_SIZE in each worker); 1 outside one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def in_worker() -> bool:
    return world_size() > 1


@dataclass(frozen=True)
class Launch:
    """What a worker process needs to rebuild the same trainable model: the strategy class (import
    path, and its file for plugins loaded from a file), its options, the model and the cell's seed,
    device, cache folder. The weights themselves travel as safetensors (harness.strategy.distributed)."""

    strategy: str
    """module:qualname"""
    strategy_file: str | None
    options: dict[str, Any]
    model: dict[str, str]
    seed: int
    device: str
    cache_dir: str
    processes: int


@dataclass(frozen=True)
class TrainResult:
    curve: tuple[dict[str, float], ...]
    """One row per logging/eval step: step, and train_loss or dev_loss."""
    train_tokens: int
    best_dev_loss: float | None
    steps: int
    stopped_early: bool


def sft_pairs(rt: ModelRuntime, suite: Suite, split: Literal["train", "dev"], system: str) -> list[tuple[str, str]]:
    """(prompt text, response text) for every example of `split`, rendered as evaluation renders it."""
    out = []
    for task in suite.tasks:
        if task.kind == "language-modeling":
            continue
        examples: Sequence[Example] = task.train if split == "train" else task.dev
        for ex in examples:
            out.append((rt.render(zero_shot_prompt(task, ex, system)), answer_text(ex)))
    return out


def tokenize_pairs(rt: ModelRuntime, pairs: list[tuple[str, str]], max_len: int) -> list[dict[str, list[int]]]:
    """input_ids and labels (-100 on the prompt) for each pair; the response ends with end-of-turn."""
    eos = rt.tokenizer.eos_token or ""
    rows = []
    for prompt, response in pairs:
        p, r = rt.encode(prompt), rt.encode(response + eos)
        ids = (p + r)[-max_len:]
        labels = ([-100] * len(p) + r)[-max_len:]
        rows.append({"input_ids": ids, "labels": labels})
    return rows


class PadCollator:
    """Right-pads a batch (no position-id trouble for any peft method); pads are masked and ignored."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = [r["input_ids"] + [self.pad_id] * (width - len(r["input_ids"])) for r in rows]
        labels = [r["labels"] + [-100] * (width - len(r["labels"])) for r in rows]
        mask = [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def _curve(log_history: list[dict[str, Any]]) -> tuple[dict[str, float], ...]:
    rows = []
    for h in log_history:
        if "loss" in h:
            rows.append({"step": float(h["step"]), "train_loss": float(h["loss"])})
        elif "eval_loss" in h:
            rows.append({"step": float(h["step"]), "dev_loss": float(h["eval_loss"])})
    return tuple(rows)


def train_args(o: TrainOptions, out: Path, seed: int, device: str, has_dev: bool, optim: str | None = None) -> Any:
    from transformers import TrainingArguments

    extra: dict[str, Any] = {"optim": optim} if optim else {}
    max_steps = o.max_steps
    if not device.startswith("cuda") and o.cpu_max_steps:
        max_steps = o.cpu_max_steps if max_steps < 0 else min(max_steps, o.cpu_max_steps)
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
        gradient_accumulation_steps=o.grad_accum, learning_rate=o.learning_rate, num_train_epochs=o.epochs,
        max_steps=max_steps, weight_decay=o.weight_decay, lr_scheduler_type=o.scheduler,
        warmup_steps=o.warmup_steps, logging_steps=max(1, o.eval_every // 2), seed=seed, data_seed=seed,
        report_to="none", disable_tqdm=True, use_cpu=not device.startswith("cuda"),
        bf16=device.startswith("cuda"), dataloader_num_workers=0, train_sampling_strategy="group_by_length",
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


def text_rows(rt: ModelRuntime, texts: Sequence[str], max_len: int) -> list[dict[str, list[int]]]:
    """Plain next-token-loss rows (every token is a label), each text ending with end-of-text:
    continued pretraining and general-text replay (see strategies/continued.py, rehearsal.py)."""
    eos = rt.tokenizer.eos_token or ""
    rows = []
    for text in texts:
        ids = rt.encode(text + eos)[:max_len]
        rows.append({"input_ids": ids, "labels": list(ids)})
    return rows


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


def _dev_eval_callback(hooks: tuple[DevEvalHook, ...]) -> Any:
    from transformers import TrainerCallback

    class DevEvalHooks(TrainerCallback):
        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> Any:
            for hook in hooks:
                hook(int(state.global_step), float((metrics or {})["eval_loss"]))
            return control

    return DevEvalHooks()


def sft_train(model: Any, rt: ModelRuntime, suite: Suite, o: TrainOptions, out: Path, seed: int,
              device: str, optim: str | None = None, extra_train: Sequence[dict[str, list[int]]] = (),
              extra_dev: Sequence[dict[str, list[int]]] = (), launch: Launch | None = None) -> TrainResult:
    """Fine-tune `model` in place on the suite's train split; keep the best checkpoint on dev loss.
    `extra_train`/`extra_dev` are further token rows (input_ids, labels) mixed into either split.
    With `launch` asking for several processes, training runs data-parallel in worker processes
    (harness.strategy.distributed) and the trained weights are loaded back into `model`."""
    train = tokenize_pairs(rt, sft_pairs(rt, suite, "train", o.system), o.max_seq_len) + list(extra_train)
    dev = tokenize_pairs(rt, sft_pairs(rt, suite, "dev", o.system), o.max_seq_len) + list(extra_dev)
    if not train:
        from harness.core.errors import Unsupported

        raise Unsupported(f"suite {suite.name!r} has no train examples to fine-tune on")
    if launch is not None and launch.processes > 1 and not in_worker():
        from harness.strategy.distributed import train_in_processes

        return train_in_processes(launch, model, train, dev, o, rt.tokenizer.pad_token_id, out, optim)
    return fit_rows(model, rt.tokenizer.pad_token_id, train, dev, o, out, seed, device, optim)


def fit_rows(model: Any, pad_id: int, train: list[dict[str, list[int]]], dev: list[dict[str, list[int]]],
             o: TrainOptions, out: Path, seed: int, device: str, optim: str | None = None) -> TrainResult:
    """The training loop itself (transformers' Trainer), on token rows; under torchrun it is the
    trainer's own data-parallel training (DDP), one shard of every global batch per process."""
    from datasets import Dataset
    from transformers import EarlyStoppingCallback, Trainer
    from transformers.trainer_callback import PrinterCallback

    callbacks: list[Any] = [EarlyStoppingCallback(early_stopping_patience=o.patience)] if dev else []
    trainer = Trainer(
        model=model, args=train_args(o, out, seed, device, bool(dev), optim),
        data_collator=PadCollator(pad_id), train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(dev) if dev else None, callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # the CLI shows progress; the curve is in the record
    trainer.add_callback(_kill_point_after_save())
    if _dev_eval_hooks.get():
        trainer.add_callback(_dev_eval_callback(_dev_eval_hooks.get()))
    t0 = time.perf_counter()
    state = trainer.train(resume_from_checkpoint=last_checkpoint(out)).global_step
    tokens = int(trainer.state.num_input_tokens_seen)  # non-padding tokens of every training batch
    curve = _curve(trainer.state.log_history)
    best = trainer.state.best_metric
    planned = trainer.state.max_steps
    if trainer.is_world_process_zero():
        (out / "curve.json").write_text(json.dumps({"curve": curve, "wall_s": time.perf_counter() - t0}))
        for checkpoint in out.glob("checkpoint-*"):  # the model now holds the weights kept; free the disk
            shutil.rmtree(checkpoint, ignore_errors=True)
    return TrainResult(curve, tokens, best, state, stopped_early=state < planned)


def split_by_documents(suite: Suite, doc_ids: set[str]) -> tuple[Suite, Suite]:
    """(suite without the train/dev items of `doc_ids`, suite with only those train items): the first
    trains the model, the second is the 'new knowledge' a knowledge update must absorb."""
    from dataclasses import replace

    def keep(examples: Sequence[Example], new: bool) -> tuple[Example, ...]:
        return tuple(e for e in examples if (e.meta.get("doc_id") in doc_ids) == new)

    old = tuple(replace(t, train=keep(t.train, False), dev=keep(t.dev, False)) for t in suite.tasks)
    new = tuple(replace(t, train=keep(t.train, True), dev=()) for t in suite.tasks)
    return replace(suite, tasks=old), replace(suite, tasks=new)
