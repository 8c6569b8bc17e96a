"""Preference optimization: `dpo` (TRL's DPOTrainer on preference pairs, optionally after supervised
fine-tuning), and the plumbing the preference and reinforcement strategies share (`grpo` and `rlhf` in
strategies/rl.py, `rlaif` in strategies/rlaif.py):

- the training budget of every weight strategy (TrainOptions: max_steps, the CPU step cap, precision,
  learning rates, batch size) turned into TRL's config, one step budget shared by all phases;
- prompts rendered exactly as evaluation renders them (`ModelRuntime.render`, plain text, so it works
  with and without a chat template), and pairs tokenized as scoring splits an answer from its prompt
  (`ModelRuntime.encode_pair` after the answer prefix, the answer ending with end-of-sequence);
- LoRA adapters by default, or every weight of a copy (`method = "full-ft"`), through the public
  `train_weights`, so artifacts, knowledge updates, budget, curves and report fields are lora's;
- after training, the KL divergence of the trained model from the base, measured on gold answers.

Preference pairs come from each task's `pairs` split, or are derived from its train split
(harness.data.pairs); pairs with the same answers or a test item as prompt are never trained on.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from harness_strategies.continued import chain
from harness_strategies.weights import LoraOptions, lora_or_full, method_rates
from pydantic import Field

from harness.data.kinds.preference import PreferencePair
from harness.data.pairs import pair_example, sources, suite_pairs, usable_pairs
from harness.model.training import (
    _step_callback,
    _step_hooks,
    learning_rate,
    master_weights,
    planned_steps,
    precision,
    spent,
    step_budget,
)
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
    Unsupported,
    one_process,
    prompts_as_trained,
    sft_pairs,
    sft_train,
    train_weights,
    zero_shot_prompt,
)
from harness.strategy.training import end_ids

Rows = list[dict[str, Any]]


class PreferenceOptions(LoraOptions):
    """The options every preference and RL strategy shares: lora's (or full-ft's) training budget."""

    method: Literal["lora", "full-ft"] = Field("lora", description="LoRA adapters (the LoRA options apply) "
                                                "or every weight of a copy.")
    learning_rate: float | None = Field(None, gt=0, le=1.0, description="None: lora 2e-4, full-ft 2e-5.")
    cpu_learning_rate: float | None = Field(None, gt=0, le=1.0, description="Under the CPU step cap; None: "
                                            "lora 1e-3, full-ft 1e-4.")
    kl_items: int = Field(16, ge=0, le=4096, description="Train items whose gold answers measure the trained "
                          "model's KL divergence from the base after training (0: not measured).")


class DpoOptions(PreferenceOptions):
    beta: float = Field(0.1, gt=0, le=10, description="DPO's KL coefficient: how far from the reference "
                        "(the model after the SFT phase) the policy may move.")
    sft_first: bool = Field(True, description="Supervised fine-tuning on the train split first; both phases "
                            "share one step budget.")
    sft_share: float = Field(0.5, gt=0, lt=1, description="Share of a step budget the SFT phase takes.")


# ---------------------------------------------------------------- budget
@dataclass(frozen=True)
class Plan:
    """Optimizer steps of a two-phase training (-1: the phase's epoch budget; 0: no such phase)."""

    first: int
    second: int
    planned: int
    """Steps the budget asks for before any CPU cap (the record's planned steps)."""


def rated(o: Any) -> Any:
    """The options with the method's learning rates filled in (lora's or full-ft's defaults)."""
    return o.model_copy(update=method_rates(o))


def plan_steps(o: Any, device: str, first_rows: int, second_rows: int, share: float) -> Plan:
    """Split one step budget (max_steps, capped on CPU by cpu_max_steps) between an optional first phase
    (`first_rows` 0: none) and a second one; a phase whose epochs need fewer steps runs its epochs."""
    total = step_budget(o, device)
    epochs = o.model_copy(update={"max_steps": -1})
    planned = o.max_steps if o.max_steps > 0 else (
        (planned_steps(epochs, first_rows) if first_rows else 0) + planned_steps(epochs, second_rows))
    if total < 0:
        return Plan(-1 if first_rows else 0, -1, planned)
    if first_rows and total < 2:
        raise Unsupported(f"a budget of {total} step cannot hold two training phases (max_steps, cpu_max_steps)")
    first = min(max(1, round(total * share)), max(1, total - 1)) if first_rows else 0
    second = max(1, total - first)
    if o.max_steps <= 0:  # the CPU cap only ever shortens
        first = min(first, planned_steps(epochs, first_rows)) if first_rows else 0
        second = min(second, planned_steps(epochs, second_rows))
    return Plan(first, second, planned)


def phase_options(o: Any, steps: int, device: str) -> Any:
    """One phase's options: its share of the steps, already capped, at the rate of the whole budget."""
    if steps < 0:
        return o
    return o.model_copy(update={"max_steps": steps, "cpu_max_steps": 0, "cpu_learning_rate": None,
                                "learning_rate": learning_rate(o, device)})


def total_budget(o: Any, device: str, plan: Plan, result: TrainResult, epochs: float) -> Any:
    """The record's TrainingBudget of all phases together (harness.model.training.spent)."""
    return spent(o, device, plan.planned, result.steps, result.stopped_early, epochs)


# ---------------------------------------------------------------- TRL
def trl_config(config_cls: Any, o: Any, out: Path, seed: int, device: str, steps: int, **extra: Any) -> Any:
    """A TRL config with the harness's budget: batch, rate, schedule, steps (-1: epochs), precision;
    no checkpoints (a killed cell reruns the TRL phase from its start, with the same seed)."""
    return config_cls(
        output_dir=str(out), per_device_train_batch_size=o.batch_size, gradient_accumulation_steps=o.grad_accum,
        learning_rate=learning_rate(o, device), num_train_epochs=o.epochs, max_steps=steps,
        lr_scheduler_type=o.scheduler, warmup_steps=o.warmup_steps, weight_decay=o.weight_decay, logging_steps=1,
        seed=seed, data_seed=seed, report_to="none", disable_tqdm=True, use_cpu=not device.startswith("cuda"),
        bf16=precision(o, device) == "bf16-mixed", activation_checkpointing=False, save_strategy="no",
        dataloader_num_workers=0, **extra)


def fit(trainer: Any) -> list[dict[str, Any]]:
    """Run a TRL trainer quietly, with the harness's step progress; its log history."""
    from transformers.trainer_callback import PrinterCallback

    from harness.core.precision import without_amp_wrapper

    trainer.remove_callback(PrinterCallback)
    if _step_hooks.get():
        trainer.add_callback(_step_callback(_step_hooks.get()))
    trainer.train()
    without_amp_wrapper(trainer.model)  # evaluation applies the device's precision itself
    return list(trainer.state.log_history)


def is_peft(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def drop_reference(model: Any) -> None:
    """TRL adds a frozen `ref` adapter beside the trained one (a PeftModel trained in place): remove it,
    so that the artifact and the served model are the trained adapter alone."""
    if is_peft(model) and "ref" in model.peft_config:
        model.delete_adapter("ref")
        model.set_adapter("default")


def frozen_copy(model: Any) -> Any:
    """A frozen copy of a fully trained model: the reference of its next phase."""
    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    return ref


def logged(history: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """(step, value) of every log row that has `key`."""
    return [(float(h["step"]), float(h[key])) for h in history if key in h and "step" in h]


def last(history: Sequence[dict[str, Any]], key: str, default: float = float("nan")) -> float:
    values = logged(history, key)
    return values[-1][1] if values else default


def curve_rows(history: Sequence[dict[str, Any]], keys: dict[str, str]) -> tuple[dict[str, float], ...]:
    """One curve row per logged step: TRL's `keys` renamed (e.g. rewards/margins -> reward_margin)."""
    rows = []
    for h in history:
        row = {new: float(h[old]) for old, new in keys.items() if old in h and float(h[old]) == float(h[old])}
        if row and "step" in h:
            rows.append({"step": float(h["step"]), **row})
    return tuple(rows)


# ---------------------------------------------------------------- pairs
class PairSource:
    """The suite's preference pairs (split or derived) and which training phase may use each one."""

    def __init__(self, run: RunContext, suite: Suite, system: str):
        pairs = suite_pairs(suite, run.seed, run.load_base(), run.cache_dir, system)
        self.pairs, self.dropped = usable_pairs(suite, pairs)
        self.item_ids = {e.id for t in suite.tasks for e in (*t.train, *t.dev, *t.test)}
        self.tasks = {t.name: t for t in suite.tasks}

    def for_phase(self, call: TrainCall) -> list[tuple[Task, PreferencePair]]:
        """The pairs of this training's items (an update learns the held-out items' pairs)."""
        ids = {e.id for t in call.suite.tasks for e in t.train}
        main = call.phase == "train"
        return [(self.tasks[p.task], p) for p in self.pairs
                if p.prompt in ids or (main and p.prompt not in self.item_ids)]

    def note(self, used: Sequence[tuple[Task, PreferencePair]]) -> str:
        what = f"{len(used)} preference pairs ({sources([p for _, p in used]) or 'none'})"
        return f"{what}; {self.dropped}" if self.dropped else what


def prompt_text(rt: ModelRuntime, task: Task, ex: Example, system: str) -> str:
    """The prompt as evaluation renders it (chat template when the tokenizer has one, else plain text)."""
    return rt.render(zero_shot_prompt(task, ex, system))


def pair_rows(rt: ModelRuntime, pairs: Sequence[tuple[Task, PreferencePair]], system: str, max_len: int) -> Rows:
    """prompt_ids, chosen_ids, rejected_ids per pair, split as scoring splits them (encode_pair after the
    answer prefix), each answer ending with end-of-sequence; the prompt cut from the left to fit."""
    rows = []
    for task, pair in pairs:
        context = prompt_text(rt, task, pair_example(task, pair), system) + rt.answer_prefix()
        prompt, chosen = rt.encode_pair(context, pair.chosen)
        _, rejected = rt.encode_pair(context, pair.rejected)
        chosen, rejected = chosen + end_ids(rt), rejected + end_ids(rt)
        room = max(1, max_len - max(len(chosen), len(rejected)))
        rows.append({"prompt_ids": prompt[-room:], "chosen_ids": chosen[:max_len - 1],
                     "rejected_ids": rejected[:max_len - 1]})
    return rows


# ---------------------------------------------------------------- DPO
def _tokenized_dpo() -> Any:
    from trl import DPOTrainer

    class TokenizedDPOTrainer(DPOTrainer):
        """DPOTrainer on rows tokenized by the harness (pair_rows), not re-tokenized by TRL."""

        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
            return dataset

    return TokenizedDPOTrainer


def dpo_phase(call: TrainCall, o: Any, rows: Rows, steps: int, beta: float) -> tuple[TrainResult, float]:
    """DPO on `rows` (pair_rows) for `steps` (-1: epochs); the reference is the model as it starts (a
    copy of its adapter, or a frozen copy of a fully trained model). Returns the result and epochs."""
    from datasets import Dataset
    from trl import DPOConfig

    model = call.model
    master_weights(model)
    ref = None if is_peft(model) else frozen_copy(model)
    args = trl_config(DPOConfig, o, call.out / "dpo", call.run.seed, call.run.device, steps, beta=beta,
                      max_length=None)
    trainer = _tokenized_dpo()(model=model, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows),
                               processing_class=copy.deepcopy(call.runtime.tokenizer))
    history = fit(trainer)
    drop_reference(model)
    curve = curve_rows(history, {"loss": "dpo_loss", "rewards/margins": "reward_margin",
                                 "rewards/accuracies": "reward_accuracy"})
    extras = {"dpo_steps": float(trainer.state.global_step), "dpo_reward_accuracy": last(history, "rewards/accuracies"),
              "dpo_reward_margin": last(history, "rewards/margins")}
    result = TrainResult(curve, int(last(history, "num_tokens", 0.0)), None, trainer.state.global_step, False,
                         extras=extras)
    return result, float(trainer.state.epoch or 0.0)


def sft_then(call: TrainCall, o: Any, plan: Plan) -> tuple[TrainResult | None, float]:
    """The supervised phase (when the plan has one) on the training's suite, and its epochs."""
    if not plan.first:
        return None, 0.0
    run = call.run
    first = sft_train(call.model, call.runtime, call.suite, phase_options(o, plan.first, run.device), call.out / "sft",
                      run.seed, run.device, launch=call.launch)
    return first, first.budget.epochs if first.budget else 0.0


def combine(o: Any, call: TrainCall, plan: Plan, phases: Sequence[tuple[TrainResult | None, float]],
            extras: dict[str, float], notes: str) -> TrainResult:
    """The phases as one training: curves one after the other, steps and tokens added, one budget."""
    done = [r for r, _ in phases if r is not None] or [TrainResult((), 0, None, 0, False)]
    both = done[0]
    for r in done[1:]:
        both = chain(both, r)
    merged = {k: v for r in done for k, v in r.extras.items()}
    # no dev loss: an SFT phase's would describe the model before the preference phase, which has none
    # of its own (tuning on dev loss is then refused: tune --metric dev-accuracy)
    best = None
    budget = total_budget(o, call.run.device, plan, both, sum(e for _, e in phases))
    known = {k: v for k, v in {**merged, **extras}.items() if v == v}  # unknown (NaN) figures are left out
    return replace(both, best_dev_loss=best, extras=known, notes=notes, budget=budget)


def kl_to_base(call: TrainCall, items: Sequence[tuple[Task, Example]], system: str) -> float:
    """Mean per-token KL(trained || base) over the gold answers of `items` (teacher forced): how far the
    training moved the model's answer distribution from the base's."""
    import torch

    rt, base = call.runtime, call.run.load_base().model
    was_training = call.model.training
    call.model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for task, ex in items:
            prompt, answer = rt.encode_pair(prompt_text(rt, task, ex, system) + rt.answer_prefix(), ex.target)
            ids = torch.tensor([prompt + answer], device=rt.device)
            keep = len(answer) + 1
            p = torch.log_softmax(call.model(input_ids=ids, logits_to_keep=keep).logits[0, :-1].float(), -1)
            q = torch.log_softmax(base(input_ids=ids, logits_to_keep=keep).logits[0, :-1].float(), -1)
            total += float((p.exp() * (p - q)).sum())
            count += len(answer)
    call.model.train(was_training)
    return total / count if count else float("nan")


def kl_items(suite: Suite, n: int) -> list[tuple[Task, Example]]:
    """The first `n` train items (by task, then id) whose gold answers measure the KL to the base."""
    items = [(t, ex) for t in suite.tasks if t.spec.trains and t.main_metric
             for ex in sorted(t.train, key=lambda e: e.id)]
    step = max(1, len(items) // n) if n else 1
    return items[::step][:n]


class Dpo:
    """Direct preference optimization on the suite's preference pairs, after an SFT phase by default."""

    name: ClassVar[str] = "dpo"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = ("DPO (TRL) on preference pairs (the suite's, or derived from train), after SFT by "
                                  "default; LoRA or full.")
    Options: ClassVar[type[DpoOptions]] = DpoOptions

    def __init__(self, options: DpoOptions):
        self.options = options

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        return lora_or_full(base, self.options)

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        one_process(self, run, "TRL's trainers run in this process")
        self.source = PairSource(run, suite, self.options.system)
        if not self.source.pairs:
            raise Unsupported(f"suite {suite.name!r} has no preference pairs and no train items to derive them from")
        return train_weights(self, run, suite, train=self._train)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)

    def _train(self, call: TrainCall) -> TrainResult:
        o = rated(self.options)
        pairs = self.source.for_phase(call)
        sft_rows = len(sft_pairs(call.runtime, call.suite, "train", o.system)) if o.sft_first else 0
        plan = plan_steps(o, call.run.device, sft_rows, len(pairs), o.sft_share)
        first = sft_then(call, o, plan)
        second: tuple[TrainResult | None, float] = (None, 0.0)
        if pairs:
            second = dpo_phase(call, o, pair_rows(call.runtime, pairs, o.system, o.max_seq_len), plan.second, o.beta)
        extras = {"pref_pairs": float(len(pairs)), "pref_beta": o.beta}
        if call.phase == "train" and o.kl_items:
            extras["kl_to_base"] = kl_to_base(call, kl_items(call.suite, o.kl_items), o.system)
        notes = f"dpo: {'SFT then DPO' if plan.first else 'DPO only'} on {self.source.note(pairs)}"
        return combine(o, call, plan, [first, second], extras, notes)
