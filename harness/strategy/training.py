"""Supervised fine-tuning shared by every weight strategy: the suite's train split as chat
instruction/response pairs (each task kind says which items train and what the answer is), loss on
the response tokens only, validation on the dev split, early stopping on dev loss and the best
checkpoint kept (the loop itself: harness.model.training), in one process or several
(harness.strategy.distributed).

Weight strategies differ only in how they prepare the model (LoRA, QLoRA, DoRA, full); the data,
the budget rules and the loop are the same for all, so comparisons are fair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.core.errors import Unsupported
from harness.core.records import Example, Prompt
from harness.data.prompts import DEFAULT_SYSTEM, answer_text, zero_shot_prompt
from harness.data.suites import Suite, Task
from harness.model.runtime import ModelRuntime
from harness.model.training import LoopOptions, LossPenalty, TrainResult, fit_rows, in_worker
from harness.strategy.distributed import Launch, train_in_processes


class TrainOptions(LoopOptions):
    """The training budget every weight strategy shares: the loop's, plus the system prompt of the
    training conversations, the knowledge-update hold-out and the number of training processes."""

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


PromptBuilder = Callable[[Task, Sequence[Example]], list[Prompt]]
"""Builds the prompts of a task's examples (a context strategy's `prompts`, bound to its run)."""
_train_prompts: ContextVar[PromptBuilder | None] = ContextVar("harness_train_prompts", default=None)


@contextmanager
def training_prompts(build: PromptBuilder) -> Iterator[None]:
    """Train and validate on the prompts `build` makes instead of zero-shot ones, inside the block: a
    hybrid trains its weights on its context strategy's prompts (retrieved passages, shown examples),
    the prompts its evaluation will show them (harness.strategy.compose)."""
    token = _train_prompts.set(build)
    try:
        yield
    finally:
        _train_prompts.reset(token)


def sft_pairs(rt: ModelRuntime, suite: Suite, split: Literal["train", "dev"], system: str) -> list[tuple[str, str]]:
    """(prompt text, response text) for every example of `split`, rendered as evaluation renders it:
    zero-shot prompts with `system`, or inside `training_prompts` the prompts it builds."""
    build = _train_prompts.get()
    out = []
    for task in suite.tasks:
        if not task.spec.trains:
            continue
        examples: Sequence[Example] = task.train if split == "train" else task.dev
        prompts = build(task, examples) if build else [zero_shot_prompt(task, ex, system) for ex in examples]
        out += [(rt.render(p), answer_text(task, ex)) for p, ex in zip(prompts, examples, strict=True)]
    return out


def end_ids(rt: ModelRuntime) -> list[int]:
    """What ends an answer or a text in training rows: the tokenizer's end-of-sequence token."""
    eos = rt.tokenizer.eos_token_id
    return [] if eos is None else [int(eos)]


def tokenize_pairs(rt: ModelRuntime, pairs: list[tuple[str, str]], max_len: int) -> list[dict[str, list[int]]]:
    """input_ids and labels (-100 on the prompt) for each (rendered prompt, answer): split exactly as
    scoring splits a prompt and its answer (ModelRuntime.encode_pair, after the runtime's answer
    prefix), so training and scoring see the same tokens; the answer ends with end-of-sequence."""
    rows = []
    for prompt, response in pairs:
        p, r = rt.encode_pair(prompt + rt.answer_prefix(), response)
        r = r + end_ids(rt)
        rows.append({"input_ids": (p + r)[-max_len:], "labels": ([-100] * len(p) + r)[-max_len:]})
    return rows


def text_rows(rt: ModelRuntime, texts: Sequence[str], max_len: int) -> list[dict[str, list[int]]]:
    """Plain next-token-loss rows (every token is a label), each text ending with end-of-sequence:
    continued pretraining and general-text replay (see strategies/continued.py, rehearsal.py)."""
    rows = []
    for text in texts:
        ids = (rt.encode(text) + end_ids(rt))[:max_len]
        rows.append({"input_ids": ids, "labels": list(ids)})
    return rows


def sft_train(model: Any, rt: ModelRuntime, suite: Suite, o: TrainOptions, out: Path, seed: int,
              device: str, optim: str | None = None, extra_train: Sequence[dict[str, list[int]]] = (),
              extra_dev: Sequence[dict[str, list[int]]] = (), launch: Launch | None = None,
              penalty: LossPenalty | None = None) -> TrainResult:
    """Fine-tune `model` in place on the suite's train split; keep the best checkpoint on dev loss.
    `extra_train`/`extra_dev` are further token rows (input_ids, labels) mixed into either split.
    With `launch` asking for several processes, training runs data-parallel in worker processes
    (harness.strategy.distributed) and the trained weights are loaded back into `model`.
    `penalty` is added to every training batch's loss (harness.model.training.LossPenalty); a training
    with one runs in this process (workers rebuild the model, and a penalty holds this one's tensors)."""
    train = tokenize_pairs(rt, sft_pairs(rt, suite, "train", o.system), o.max_seq_len) + list(extra_train)
    dev = tokenize_pairs(rt, sft_pairs(rt, suite, "dev", o.system), o.max_seq_len) + list(extra_dev)
    if not train:
        raise Unsupported(f"suite {suite.name!r} has no train examples to fine-tune on")
    if launch is not None and launch.processes > 1 and not in_worker() and penalty is None:
        return train_in_processes(launch, model, train, dev, o, rt.tokenizer.pad_token_id, out, optim)
    return fit_rows(model, rt.tokenizer.pad_token_id, train, dev, o, out, seed, device, optim, penalty)


def split_by_documents(suite: Suite, doc_ids: set[str]) -> tuple[Suite, Suite]:
    """(suite without the train/dev items of `doc_ids`, suite with only those train items): the first
    trains the model, the second is the 'new knowledge' a knowledge update must absorb."""
    from dataclasses import replace

    def keep(examples: Sequence[Example], new: bool) -> tuple[Example, ...]:
        return tuple(e for e in examples if (e.meta.get("doc_id") in doc_ids) == new)

    old = tuple(replace(t, train=keep(t.train, False), dev=keep(t.dev, False)) for t in suite.tasks)
    new = tuple(replace(t, train=keep(t.train, True), dev=()) for t in suite.tasks)
    return replace(suite, tasks=old), replace(suite, tasks=new)
