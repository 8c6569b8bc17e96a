"""Reinforcement learning strategies on TRL: `grpo` (verifiable rewards: the task's own metric against
gold) and `rlhf` (a reward model trained on preference pairs, then RLOO against it). Both sample
completions of the train items' prompts, rendered exactly as evaluation renders them, and share the
budget, data and plumbing of strategies/preference.py.

Rewards (`task_reward`): a task whose items have choices (classification labels, multiple-choice
options) pays 1 when the reply names the gold choice (its answer line is that choice, case and
punctuation aside, else the choice it names first) and 0 otherwise; a free-text answer is scored by
`reward_metric` against the gold answer and its aliases: token F1 by default, a graded reward, since
exact and key match stay at 0 for nearly every sample of a 135M model and give GRPO no signal (every
completion of a group then has the same reward). `format_weight` adds a reward for a well-formed reply
(one short line).

rlhf's policy optimizer is RLOO: TRL 1.16 has no PPO (its experimental PPOTrainer shipped up to 1.12
and was removed in 1.13), and RLOO (REINFORCE leave-one-out) is stable there and needs no value model.
"""

from __future__ import annotations

import copy
import gc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from harness_strategies.preference import (
    PairSource,
    PreferenceOptions,
    combine,
    curve_rows,
    fit,
    kl_items,
    kl_to_base,
    last,
    logged,
    master_weights,
    plan_steps,
    prompt_text,
    rated,
    trl_config,
)
from harness_strategies.weights import default_rates, lora_or_full
from pydantic import Field, model_validator

from harness.core import metrics as M
from harness.data.kinds.short_answer import extract_answer
from harness.data.overlap import normalize
from harness.data.pairs import preference_tasks
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
    train_weights,
)

METRICS: dict[str, Callable[[str, Sequence[str]], float]] = {
    "f1": M.token_f1, "exact_match": M.exact_match, "key_match": M.key_match, "answer_in_output": M.answer_in_output}
FORMAT_MAX_WORDS = 12


def parse_choice(text: str, choices: Sequence[str]) -> str | None:
    """The choice a generated reply gives: its answer line when that is a choice (case, punctuation and
    spacing aside: "Governing law." is `governing-law`), else the choice named first in the reply;
    None when it names none."""
    line = normalize(extract_answer(text))
    for c in choices:
        if normalize(c) == line:
            return c
    padded = f" {normalize(text)} "
    found = [(padded.find(f" {normalize(c)} "), c) for c in choices]
    named = [(at, c) for at, c in found if at >= 0 and normalize(c)]
    return min(named)[1] if named else None


def item_reward(text: str, targets: Sequence[str], choices: Sequence[str], metric: str) -> float:
    """One completion's reward: 1/0 gold choice named for choice items, else `metric` of its answer line."""
    if choices:
        return 1.0 if parse_choice(text, choices) == targets[0] else 0.0
    return float(METRICS[metric](extract_answer(text), tuple(targets)))


def well_formed(text: str) -> bool:
    """One non-empty line of at most FORMAT_MAX_WORDS words: the reply format the prompts ask for."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return len(lines) == 1 and 0 < len(extract_answer(text).split()) <= FORMAT_MAX_WORDS


def task_reward(metrics: dict[str, str]) -> Callable[..., list[float]]:
    """TRL's reward function (`fn(prompts, completions, completion_ids, **columns)`) paying each
    completion its task's reward; `metrics`: task -> the free-text metric (see item_reward)."""

    def task_metric(prompts: list[Any], completions: list[Any], completion_ids: Any = None, task: Sequence[str] = (),
                    targets: Sequence[Sequence[str]] = (), choices: Sequence[Sequence[str]] = (),
                    **_: Any) -> list[float]:
        return [item_reward(_text(c), tg, ch, metrics[tk]) for c, tk, tg, ch in zip(completions, task, targets, choices,
                                                                                    strict=True)]

    return task_metric


def format_reward(prompts: list[Any], completions: list[Any], completion_ids: Any = None, **_: Any) -> list[float]:
    """1 for a well-formed reply, else 0."""
    return [1.0 if well_formed(_text(c)) else 0.0 for c in completions]


def _text(completion: Any) -> str:
    return completion if isinstance(completion, str) else str(completion[0]["content"])


def reward_metrics(suite: Suite, metric: str) -> dict[str, str]:
    """task -> the free-text reward metric: `metric`, or with "main" the task's main metric when it is one."""
    def pick(task: Task) -> str:
        if metric != "main":
            return metric
        return task.main_metric if task.main_metric in METRICS else "f1"

    return {t.name: pick(t) for t in suite.tasks}


def prompt_rows(rt: ModelRuntime, suite: Suite, system: str) -> list[dict[str, Any]]:
    """One row per train item of the preference tasks: the prompt as evaluation renders it, and what the
    reward needs (task, gold answer and aliases, choices)."""
    return [{"prompt": prompt_text(rt, t, ex, system), "task": t.name, "targets": [ex.target, *ex.aliases],
             "choices": list(ex.choices)} for t in preference_tasks(suite) for ex in t.train]


class RlOptions(PreferenceOptions):
    epochs: float = Field(1.0, gt=0, le=100, description="Passes over the train prompts, each sampled "
                          "num_generations times (one pass already trains on num_generations x the SFT rows).")
    num_generations: int = Field(4, ge=2, le=64, description="Group size: completions sampled per prompt "
                                 "(batch_size must be a multiple).")
    max_completion_length: int = Field(16, ge=1, le=2048, description="Tokens sampled per completion.")
    temperature: float = Field(1.0, gt=0, le=4)
    beta: float = Field(0.04, ge=0, le=10, description="KL coefficient against the starting model (0: no "
                        "reference model, no KL logged). With method = full-ft TRL reloads the base from disk as "
                        "the reference (a second full model), so a knowledge update is anchored to the base.")

    @model_validator(mode="after")
    def _groups_fill_batches(self) -> RlOptions:
        if self.batch_size % self.num_generations:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of num_generations "
                             f"({self.num_generations}): a batch holds whole groups")
        return self


class GrpoOptions(RlOptions):
    reward_metric: Literal["f1", "exact_match", "key_match", "answer_in_output", "main"] = Field(
        "f1", description="Free-text reward against gold: token F1 by default (graded; exact and key match stay "
        "0 for a small model); main: each task's main metric. Choice items always pay 1/0 for the gold choice.")
    format_weight: float = Field(0.0, ge=0, le=10, description="Weight of a reward for a well-formed reply "
                                 "(one line of at most 12 words); 0: none.")


def rl_phase(call: TrainCall, o: Any, rows: list[dict[str, Any]], steps: int, rewards: dict[str, Any]
             ) -> tuple[TrainResult, float]:
    """GRPO (`rewards["funcs"]` functions) or RLOO (a reward model) on `rows` for `steps` (-1: epochs)."""
    from datasets import Dataset

    if rewards.get("model") is None:
        from trl import GRPOConfig as Config
        from trl import GRPOTrainer as Trainer
    else:
        from trl import RLOOConfig as Config  # type: ignore[assignment]
        from trl import RLOOTrainer as Trainer  # type: ignore[assignment]
    master_weights(call.model)
    per_step = max(1, o.batch_size // o.num_generations)  # prompts per batch; TRL needs a whole batch of them
    rows = rows if len(rows) >= per_step else (rows * per_step)[:per_step]
    tok = copy.deepcopy(call.runtime.tokenizer)
    args = trl_config(Config, o, call.out / "rl", call.run.seed, call.run.device, steps,
                      num_generations=o.num_generations, max_completion_length=o.max_completion_length,
                      temperature=o.temperature, beta=o.beta, reward_weights=rewards.get("weights"))
    extra: dict[str, Any] = {"reward_processing_classes": [tok]} if rewards.get("model") is not None else {}
    trainer = Trainer(model=call.model, reward_funcs=rewards.get("funcs") or [rewards["model"]], args=args,
                      train_dataset=Dataset.from_list(rows), processing_class=tok, **extra)
    history = fit(trainer)
    from harness_strategies.preference import drop_reference

    drop_reference(call.model)
    curve = curve_rows(history, {"reward": "reward", "reward_std": "reward_std", "kl": "kl"})
    return TrainResult(curve, int(last(history, "num_tokens", 0.0)), None, trainer.state.global_step, False,
                       extras=reward_extras(history, o.num_generations)), float(trainer.state.epoch or 0.0)


def reward_extras(history: Sequence[dict[str, Any]], group: int) -> dict[str, float]:
    """Mean reward over the first and the last quarter of the logged steps, the last KL, the group size."""
    rewards = [v for _, v in logged(history, "reward")]
    q = max(1, len(rewards) // 4)
    out = {"rl_steps": float(len(rewards)), "rl_group_size": float(group)}
    if rewards:
        out |= {"rl_reward_start": sum(rewards[:q]) / q, "rl_reward_end": sum(rewards[-q:]) / q}
    if logged(history, "kl"):
        out["rl_kl_end"] = last(history, "kl")
    return out


class Grpo:
    """GRPO with verifiable rewards: the task's own metric against gold, per sampled completion."""

    name: ClassVar[str] = "grpo"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = ("GRPO (TRL): RL from verifiable rewards, the task's metric against gold (token F1 "
                                  "for short answers, 1/0 label match); LoRA or full.")
    Options: ClassVar[type[GrpoOptions]] = GrpoOptions

    def __init__(self, options: GrpoOptions):
        self.options = options

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        return lora_or_full(base, self.options)

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        one_process(self, run, "TRL's trainers run in this process")
        if not any(t.train for t in preference_tasks(suite)):
            raise Unsupported(f"suite {suite.name!r} has no train items to sample prompts from")
        return train_weights(self, run, suite, train=self._train)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)

    def _train(self, call: TrainCall) -> TrainResult:
        o = rated(self.options)
        rows = prompt_rows(call.runtime, call.suite, o.system)
        plan = plan_steps(o, call.run.device, 0, len(rows) * o.num_generations, 0.5)
        funcs: list[Any] = [task_reward(reward_metrics(call.suite, o.reward_metric))]
        weights = [1.0, o.format_weight] if o.format_weight else None
        if o.format_weight:
            funcs.append(format_reward)
        result = rl_phase(call, o, rows, plan.second, {"funcs": funcs, "weights": weights}) if rows else None
        extras: dict[str, float] = {"rl_prompts": float(len(rows)), "rl_beta": o.beta}
        if call.phase == "train" and o.kl_items:
            extras["kl_to_base"] = kl_to_base(call, kl_items(call.suite, o.kl_items), o.system)
        metrics = sorted(set(reward_metrics(call.suite, o.reward_metric).values()))
        notes = (f"grpo: {len(rows)} prompts x {o.num_generations} completions; reward: the gold choice (1/0) for "
                 f"choice items, {'/'.join(metrics)} of the answer line against gold otherwise"
                 + (f", plus {o.format_weight} x format" if o.format_weight else ""))
        return combine(o, call, plan, [result or (None, 0.0)], extras, notes)


class RlhfOptions(RlOptions):
    beta: float = Field(0.05, ge=0, le=10, description="RLOO's KL coefficient against the starting model.")
    reward_share: float = Field(0.5, gt=0, lt=1, description="Share of a step budget that trains the reward model.")
    reward_method: Literal["full-ft", "lora"] = Field("full-ft", description="How the reward model (a copy of the "
                                                      "base with a scalar head) trains.")
    reward_learning_rate: float | None = Field(None, gt=0, le=1.0, description="None: full-ft's rates (2e-5; 1e-4 "
                                               "under the CPU cap), lora's (2e-4; 1e-3) with reward_method lora.")
    heldout_share: float = Field(0.2, ge=0, lt=1, description="Share of the pairs held out to measure the reward "
                                 "model's pair accuracy (at least one pair when there are 5 or more).")


class Rlhf:
    """A reward model trained on preference pairs, then the policy optimized against it with RLOO."""

    name: ClassVar[str] = "rlhf"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = ("RLHF: a reward model (TRL RewardTrainer, copy of the base with a scalar head) on "
                                  "preference pairs, then RLOO against it; LoRA or full.")
    Options: ClassVar[type[RlhfOptions]] = RlhfOptions

    def __init__(self, options: RlhfOptions):
        self.options = options
        self.reward_model: Any = None

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        return lora_or_full(base, self.options)

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        one_process(self, run, "TRL's trainers run in this process")
        self.source = PairSource(run, suite, self.options.system)
        if not self.source.pairs:
            raise Unsupported(f"suite {suite.name!r} has no preference pairs and no train items to derive them from")
        adapted = train_weights(self, run, suite, train=self._train)  # the knowledge update runs inside
        self.reward_model = None  # serving needs the policy only: evaluation's memory is not the reward model's
        gc.collect()
        return adapted

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)

    def _train(self, call: TrainCall) -> TrainResult:
        from harness_strategies.reward import heldout_split, train_reward_model

        o = rated(self.options)
        rows = prompt_rows(call.runtime, call.suite, o.system)
        pairs = self.source.for_phase(call)
        fit_pairs, held = heldout_split(pairs, o.heldout_share, call.run.rng("rlhf-heldout"))
        first_rows = len(fit_pairs) if self.reward_model is None else 0  # an update reuses the reward model
        plan = plan_steps(o, call.run.device, first_rows, len(rows) * o.num_generations, o.reward_share)
        first: tuple[TrainResult | None, float] = (None, 0.0)
        if first_rows:
            rm_o = o.model_copy(update=self._reward_rates(o))
            self.reward_model, rm_result, rm_epochs = train_reward_model(call, rm_o, fit_pairs, held, plan.first)
            first = (rm_result, rm_epochs)
        result = rl_phase(call, o, rows, plan.second, {"model": self.reward_model}) if rows else None
        extras = {"pref_pairs": float(len(pairs)), "rl_prompts": float(len(rows)), "rl_beta": o.beta}
        if call.phase == "train" and o.kl_items:
            extras["kl_to_base"] = kl_to_base(call, kl_items(call.suite, o.kl_items), o.system)
        notes = (f"rlhf: reward model ({o.reward_method}, copy of the base with a scalar head) on "
                 f"{self.source.note(fit_pairs)}, held-out pair accuracy on {len(held)}; then RLOO (TRL 1.16 has no "
                 f"PPO; RLOO is stable and needs no value model), {o.num_generations} completions per prompt")
        return combine(o, call, plan, [first, result or (None, 0.0)], extras, notes)

    @staticmethod
    def _reward_rates(o: RlhfOptions) -> dict[str, float | None]:
        rates = default_rates(o.reward_method)
        if o.reward_learning_rate:
            return {"learning_rate": o.reward_learning_rate, "cpu_learning_rate": None}
        return dict(rates)
