"""The plumbing of a weight strategy, as one function any strategy calls: `train_weights`.

A weight strategy (built-in or plugin) says how to build its trainable model from the base
(`trainable_model`) and calls `train_weights(self, run, suite)` from its `adapt`. The helper does
the rest, identically for every strategy, so comparisons stay fair:

- a copy-safe start: the global RNG seeded from the cell (peft draws adapter init from it);
- the knowledge-update hold-out: train items of the last `update_docs` corpus documents are kept
  out, then learned after the main training and timed (`KnowledgeUpdate`);
- the training itself (`train`, default `supervised`: the suite's task rows through
  harness.strategy.training.sft_train, in one process or several);
- the artifact a deployment stores (`save`, default `save_pretrained`), its size, and with
  `keep_weights = false` in the options its sha256 instead of the file;
- the `AdaptReport`: trainable and total parameters, train tokens, steps, early stopping, best dev
  loss, the curve, train items, plus whatever the training function reports (`TrainResult.extras`
  and `notes`);
- the runtime to evaluate (`serve`, default: the trained model in the shared runtime;
  `merged_for_eval`: peft adapters folded into the weights, for LoRA, DoRA and IA3).

    class MyMethod:
        name = "my-method"; family = "weights"; description = "..."; Options = MyOptions  # a TrainOptions

        def __init__(self, options): self.options = options
        def trainable_model(self, run, base): ...              # a copy of base.model, some parameters trainable
        def adapt(self, run, suite): return train_weights(self, run, suite)
        def prompts(self, run, task, examples): return prompts_as_trained(self.options, task, examples)

Worker processes of a multi-process training rebuild the model with the same `trainable_model`
(harness.strategy.distributed), so it must depend only on the options, the run and the base.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from harness.core.errors import Unsupported
from harness.core.records import AdaptReport, Example, KnowledgeUpdate, Prompt
from harness.data.prompts import zero_shot_prompt
from harness.data.suites import Suite, Task
from harness.model.runtime import ModelRuntime
from harness.model.training import TrainResult
from harness.strategy.distributed import Launch, launch_for
from harness.strategy.protocol import Adapted, RunContext, count_params
from harness.strategy.training import TrainOptions, sft_train, split_by_documents


class Trainable(Protocol):
    """What `train_weights` needs of a strategy: its options and how to build the trainable model."""

    options: Any
    """A TrainOptions (subclass): the training budget every weight strategy shares."""

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        """A copy of `base.model` with the parameters to train made trainable (never the base itself)."""
        ...


@dataclass(frozen=True)
class TrainCall:
    """One training, as a `train` function receives it."""

    run: RunContext
    model: Any
    """Trained in place."""
    runtime: ModelRuntime
    """The model behind the base's tokenizer: renders and encodes the rows."""
    suite: Suite
    """The suite to learn from (the main training: without the update documents' items)."""
    out: Path
    """This training's folder (checkpoints, curve)."""
    options: TrainOptions
    optimizer: str | None
    """The optimizer to use on this device (None: the trainer's default AdamW)."""
    launch: Launch | None
    """How to train in several processes, when the options ask for them."""
    phase: Literal["train", "update"]


TrainFn = Callable[[TrainCall], TrainResult]


def supervised(call: TrainCall) -> TrainResult:
    """The default training: the suite's task rows, supervised (harness.strategy.training.sft_train)."""
    return sft_train(call.model, call.runtime, call.suite, call.options, call.out, call.run.seed, call.run.device,
                     call.optimizer, launch=call.launch)


def save_pretrained(model: Any, folder: Path) -> None:
    """What a deployment stores: the adapter (peft) or the whole model, as safetensors."""
    model.save_pretrained(folder)


def save_trainable(model: Any, folder: Path) -> None:
    """Only the tensors that trained (the rest is the base model): safetensors plus their names."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(tensors, str(folder / "trainable.safetensors"))


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def drop_weights(folder: Path) -> str:
    """Delete the safetensors files of `folder` (configs stay), returning the sha256 of their bytes."""
    digest = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")):
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        f.unlink()
    return digest.hexdigest()


def merged_for_eval(model: Any, rt: ModelRuntime) -> ModelRuntime:
    """A peft model's adapters folded into its weights for evaluation (`merge_adapter`): one matmul per
    adapted layer instead of the base's plus the adapter's. The adapter modules stay (unmerge_adapter
    undoes it; the trained parameters are still there to count and inspect). Only for fp32 weights,
    where the merged model gives the same outputs (tests/test_weights.py checks log-probs and greedy
    text); in bf16 the rounding of the merged sum would change them, so there the adapters stay
    separate. The artifact is saved before this, as the adapter alone."""
    import torch

    if hasattr(model, "merge_adapter") and next(model.parameters()).dtype == torch.float32:
        model.merge_adapter()
    return rt


def prompts_as_trained(options: Any, task: Task, examples: Sequence[Example]) -> list[Prompt]:
    """The prompts a weight strategy is trained on: zero-shot, with the training system prompt."""
    return [zero_shot_prompt(task, ex, options.system) for ex in examples]


def update_documents(suite: Suite, n: int) -> set[str]:
    """The corpus documents a knowledge update holds out: the last `n` by id."""
    docs = sorted(d.id for d in suite.corpus)
    return set(docs[len(docs) - min(n, len(docs)) :]) if docs and n else set()


def one_process(strategy: Any, run: RunContext, why: str) -> None:
    """For a weight strategy whose training runs in this process only: several training processes asked
    for (`processes`) is said, not silently ignored (adapt times would not compare with lora's DDP)."""
    if strategy.options.process_count(run.device) > 1:
        raise Unsupported(f"{strategy.name}: trains in one process ({why}); set processes = 1")


def launch_of(strategy: Trainable, run: RunContext) -> Launch | None:
    """How worker processes rebuild the strategy's model, when its options ask for several."""
    processes = strategy.options.process_count(run.device)
    return launch_for(strategy, strategy.options, run, processes) if processes > 1 else None


def train_weights(strategy: Trainable, run: RunContext, suite: Suite, *, train: TrainFn = supervised,
                  save: Callable[[Any, Path], None] = save_pretrained,
                  serve: Callable[[Any, ModelRuntime], ModelRuntime] | None = None,
                  optimizer: str | None = None) -> Adapted:
    """Build, train (and update), save and report a weight strategy's model (see the module docstring).
    `optimizer` is used on CUDA only (e.g. QLoRA's paged 8-bit AdamW)."""
    from transformers import set_seed

    base = run.load_base()
    set_seed(run.seed)  # adapter init (peft draws from the global RNG) must not depend on earlier cells
    model = strategy.trainable_model(run, base)
    rt = ModelRuntime(model, base.tokenizer, base.spec, base.device, base.compute_dtype)
    new_docs = update_documents(suite, strategy.options.update_docs)
    first, update_suite = split_by_documents(suite, new_docs)
    call = TrainCall(run, model, rt, first, run.work_dir / "train", strategy.options,
                     optimizer if run.device.startswith("cuda") else None, launch_of(strategy, run), "train")
    model.train()
    result = train(call)
    update = _absorb(train, call, update_suite, suite, new_docs) if new_docs else None
    model.eval()
    artifact = run.work_dir / "artifact"
    save(model, artifact)
    report = replace(_report(model, result, folder_bytes(artifact), first), update=update)
    if not getattr(strategy.options, "keep_weights", True):
        report = replace(report, artifact_sha256=drop_weights(artifact))
    return Adapted(serve(model, rt) if serve else rt, report)


def _absorb(train: TrainFn, call: TrainCall, update_suite: Suite, suite: Suite, new_docs: set[str]) -> KnowledgeUpdate:
    """Further training on the held-out documents' train items: the cost of new knowledge."""
    t0 = time.perf_counter()
    train(replace(call, suite=update_suite, out=call.run.work_dir / "update", phase="update"))
    items = sum(1 for t in suite.tasks for e in t.test if e.meta.get("doc_id") in new_docs)
    return KnowledgeUpdate(len(new_docs), time.perf_counter() - t0, "continued-training", items)


def _report(model: Any, result: TrainResult, artifact_bytes: int, trained_on: Suite) -> AdaptReport:
    trainable, total = count_params(model)
    extras = {"train_steps": float(result.steps), "stopped_early": float(result.stopped_early)}
    if result.best_dev_loss is not None:
        extras["best_dev_loss"] = result.best_dev_loss
    if result.logit_positions is not None:  # the work basis counts the output head there only
        extras |= {"logit_positions": float(result.logit_positions), "head_trained": float(result.head_trained)}
    train_items = sum(len(t.train) for t in trained_on.tasks if t.spec.trains)
    extras = {**extras, **result.extras, "train_items": float(train_items)}
    return AdaptReport(trainable_params=trainable, total_params=total, artifact_bytes=artifact_bytes,
                       train_tokens=result.train_tokens, notes=result.notes, extras=extras, curve=result.curve,
                       budget=result.budget)
