"""Elastic weight consolidation (Kirkpatrick et al. 2017): LoRA or full fine-tuning whose training loss
carries a penalty for moving the weights that matter to general text,

    L = L_task + (lambda / 2) * sum_i F_i * (theta_i - theta*_i)^2,

with F the diagonal (empirical) Fisher information of the base model on general text: the mean over
paragraphs of the squared gradient of each paragraph's log-likelihood (its summed next-token loss: a
paragraph is one sample of the data distribution, so a longer one is not down-weighted). The paragraphs are the
replay corpus (suites/general/replay.jsonl, as `rehearsal` uses; never the retention test split),
drawn seeded. theta* are the base's weights.

- `method = "full-ft"`: theta is every weight, anchored at the base's value.
- `method = "lora"`: the adapters' own parameters have no base value to return to (A starts random,
  B at zero), and their Fisher is not the model's. What EWC protects is the effective weight
  W0 + s B A of each adapted matrix, so the penalty is sum F_W * (s B A)^2 with F_W the base's
  Fisher of W0: moving the adapter away from its initial (zero-change) value costs in proportion
  to how much general text relies on the entries it changes.

The penalty enters through the shared loop's `penalty` hook (harness.model.training.LossPenalty): the
data, budget, dev loss (the task's loss alone), early stopping and artifact are those of `lora` /
`full-ft`, so `ewc` against the same method isolates the penalty. It trains in one process.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from harness_strategies.rehearsal import draw_replay, read_replay, replay_source
from harness_strategies.weights import LoraOptions, lora_or_full, method_rates
from pydantic import Field

from harness.strategy import (
    Adapted,
    Example,
    ModelRuntime,
    Prompt,
    RunContext,
    Suite,
    Task,
    TrainCall,
    TrainResult,
    merged_for_eval,
    one_process,
    prompts_as_trained,
    sft_train,
    text_rows,
    train_weights,
)


class EwcOptions(LoraOptions):
    method: Literal["lora", "full-ft"] = Field("lora", description="What trains: LoRA adapters (the LoRA "
                                                "options apply) or every weight of a copy.")
    learning_rate: float | None = Field(None, gt=0, le=1.0, description="None: the method's default "
                                        "(lora 2e-4, full-ft 2e-5).")
    cpu_learning_rate: float | None = Field(None, gt=0, le=1.0, description="Under the CPU step cap; None: the "
                                            "method's default (lora 1e-3, full-ft 1e-4).")
    ewc_lambda: float = Field(1.5, ge=0, description="Penalty strength (0: the plain method). Scale: the sum "
                              "F (change)^2 of lora's 24-step legal-qa adapter measured 1.0e-4 with per-token "
                              "mean losses; times 82^2 (the replay paragraphs' mean squared length in tokens) "
                              "that is about 0.7, so 1.5 charges it about 0.5 nats against a task loss near 2.4.")
    fisher_samples: int = Field(16, ge=1, le=10000, description="General-text paragraphs the Fisher is "
                                "estimated on (drawn seeded from the replay corpus; one backward pass each).")
    fisher_max_tokens: int = Field(256, ge=8, le=32768, description="Tokens per paragraph, at most.")
    replay_path: str | None = Field(None, description="JSONL of {id, text} paragraphs; None: replay.jsonl of "
                                    "the suite's retention suite (else of `general`).")


def lora_layers(model: Any) -> list[tuple[str, Any]]:
    """The peft LoRA layers of `model` (name, module): each has a base weight and a delta."""
    return [(n, m) for n, m in model.named_modules() if hasattr(m, "get_delta_weight") and hasattr(m, "base_layer")
            and "default" in getattr(m, "lora_A", {})]


def anchored(model: Any, method: str) -> dict[str, Any]:
    """name -> the tensor whose Fisher is estimated: every trainable weight (full-ft), or the base
    weight W0 of every LoRA layer (lora)."""
    if method == "full-ft":
        return {n: p for n, p in model.named_parameters() if p.requires_grad}
    return {n: m.base_layer.weight for n, m in lora_layers(model)}


def diagonal_fisher(model: Any, rows: Sequence[dict[str, list[int]]], method: str, device: str) -> dict[str, Any]:
    """Mean over rows of the squared gradient of each row's log-likelihood (summed next-token loss), per
    entry of the anchored tensors; the model in eval mode (no dropout), its gradients cleared after."""
    import torch

    targets = anchored(model, method)
    grads_were = {n: t.requires_grad for n, t in targets.items()}
    for t in targets.values():
        t.requires_grad_(True)
    fisher = {n: torch.zeros_like(t, dtype=torch.float32) for n, t in targets.items()}
    was_training = model.training
    model.eval()
    for row in rows:
        ids = torch.tensor([row["input_ids"]], device=device)
        model.zero_grad(set_to_none=True)
        predicted = max(1, ids.shape[1] - 1)  # the model's loss is the mean over the shifted positions
        (model(input_ids=ids, labels=ids).loss * predicted).backward()
        for n, t in targets.items():
            if t.grad is not None:
                fisher[n] += t.grad.detach().float() ** 2
    model.zero_grad(set_to_none=True)
    for n, t in targets.items():
        t.requires_grad_(grads_were[n])
    model.train(was_training)
    return {n: f / max(1, len(rows)) for n, f in fisher.items()}


def ewc_penalty(model: Any, fisher: dict[str, Any], method: str, strength: float) -> Any:
    """The penalty as a function of the current weights: (lambda / 2) sum F (change)^2, the change
    being theta - theta* (full-ft) or the LoRA delta s B A of each adapted matrix (lora)."""
    import torch

    half = strength / 2
    if method == "full-ft":
        params = {n: p for n, p in model.named_parameters() if n in fisher}
        anchors = {n: p.detach().clone() for n, p in params.items()}

        def full() -> Any:
            return half * sum((fisher[n] * (p - anchors[n]) ** 2).sum() for n, p in params.items())

        return full
    layers = [(n, m) for n, m in lora_layers(model) if n in fisher]

    def lora() -> Any:
        total = torch.zeros((), device=fisher[layers[0][0]].device) if layers else torch.zeros(())
        for n, m in layers:
            total = total + (fisher[n] * m.get_delta_weight("default").float() ** 2).sum()
        return half * total

    return lora


class Ewc:
    """`lora` or `full-ft` with an elastic weight consolidation penalty toward the base."""

    name: ClassVar[str] = "ewc"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = ("LoRA or full fine-tuning with an elastic weight consolidation penalty (diagonal "
                                  "Fisher on general text), against forgetting.")
    Options: ClassVar[type[EwcOptions]] = EwcOptions

    def __init__(self, options: EwcOptions):
        self.options = options
        self._penalty: Any = None
        self._fisher: dict[str, float] = {}
        self._note = ""

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        return lora_or_full(base, self.options)

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        one_process(self, run, "the penalty holds this process's Fisher and anchor tensors")
        return train_weights(self, run, suite, train=self._train, serve=merged_for_eval)  # served as lora is

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)

    def _prepare(self, call: TrainCall) -> None:
        """The Fisher and the penalty, once per cell (a knowledge update keeps the base as anchor)."""
        o = self.options
        source = replay_source(call.suite, o.replay_path)
        texts = draw_replay(read_replay(source), o.fisher_samples, call.run.rng("ewc", "fisher"))
        rows = text_rows(call.runtime, texts, o.fisher_max_tokens)
        t0 = time.perf_counter()
        fisher = diagonal_fisher(call.model, rows, o.method, call.run.device)
        self._penalty = ewc_penalty(call.model, fisher, o.method, o.ewc_lambda)
        entries = sum(f.numel() for f in fisher.values())
        total = float(sum(f.sum() for f in fisher.values()))
        self._fisher = {"fisher_s": time.perf_counter() - t0, "fisher_rows": float(len(rows)),
                        "fisher_entries": float(entries), "fisher_mean": total / max(1, entries),
                        "ewc_lambda": o.ewc_lambda}
        what = "every weight" if o.method == "full-ft" else f"the {len(fisher)} LoRA-adapted matrices"
        self._note = (f"EWC: diagonal Fisher of {what} from {len(rows)} general-text paragraphs of {source.name} "
                      f"sha256 {_sha256(source)[:12]}; lambda {o.ewc_lambda:g}")

    def _train(self, call: TrainCall) -> TrainResult:
        if self._penalty is None:
            self._prepare(call)
        o = self.options
        budget = o.model_copy(update=method_rates(o))
        result = sft_train(call.model, call.runtime, call.suite, budget, call.out, call.run.seed, call.run.device,
                           call.optimizer, penalty=self._penalty)
        import torch

        with torch.no_grad():
            final = float(self._penalty())
        extras = {**self._fisher, "ewc_penalty_final": final}
        return replace(result, extras={**result.extras, **extras}, notes=self._note)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
