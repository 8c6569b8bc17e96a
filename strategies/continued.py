"""Continued pretraining: unsupervised next-token training on the suite's corpus (its documents cut
into token windows, every token a label), optionally followed by instruction tuning on the train
split. LoRA by default, or every weight (`method: full-ft`).

Fair budget: both phases share the step budget every weight strategy gets (max_steps, or
cpu_max_steps on CPU), `pretrain_share` of it for the corpus; with an epoch budget each phase runs
`epochs`. Both phases validate on the suite's dev split (answer-token loss) and keep their best
checkpoint, as every weight strategy does: the corpus phase is unsupervised, model selection is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal

from harness_strategies.weights import LoraOptions, lora_or_full, method_rates
from pydantic import Field

from harness.model.training import learning_rate, planned_steps, positions_of, spent, step_budget
from harness.strategy import (
    Adapted,
    Document,
    Example,
    ModelRuntime,
    Prompt,
    RunContext,
    Suite,
    Task,
    TrainCall,
    TrainResult,
    Unsupported,
    prompts_as_trained,
    sft_pairs,
    sft_train,
    train_weights,
)
from harness.strategy.training import end_ids
from harness.strategy.weights import update_documents


class ContinuedOptions(LoraOptions):
    method: Literal["lora", "full-ft"] = Field("lora", description="LoRA adapters (the LoRA options apply) "
                                                "or every weight of a copy.")
    learning_rate: float | None = Field(None, gt=0, le=1.0, description="None: lora 2e-4, full-ft 2e-5.")
    cpu_learning_rate: float | None = Field(None, gt=0, le=1.0, description="Under the CPU step cap; None: "
                                            "lora 1e-3, full-ft 1e-4.")
    then_instruct: bool = Field(True, description="After the corpus, instruction-tune on the train split.")
    pretrain_share: float = Field(0.5, gt=0, lt=1, description="Share of a step budget spent on the corpus "
                                  "when instruction tuning follows.")
    chunk_tokens: int = Field(256, ge=16, le=32768, description="Corpus window length in tokens (at most "
                              "max_seq_len).")


def split_budget(total: int, share: float, then_instruct: bool) -> tuple[int, int]:
    """(corpus steps, instruction steps); -1 means the epoch budget; each phase gets at least one."""
    if total < 0:
        return -1, (-1 if then_instruct else 0)
    if not then_instruct:
        return total, 0
    pretrain = min(max(1, round(total * share)), max(1, total - 1))
    return pretrain, max(1, total - pretrain)


def corpus_rows(rt: ModelRuntime, docs: list[Document], window: int) -> list[dict[str, list[int]]]:
    """Every document as consecutive token windows (the last one shorter), ending with end-of-sequence."""
    rows = []
    for doc in docs:
        ids = rt.encode(doc.text.strip()) + end_ids(rt)
        rows += [{"input_ids": ids[i : i + window], "labels": ids[i : i + window]} for i in range(0, len(ids), window)]
    return rows


def chain(first: TrainResult, second: TrainResult | None) -> TrainResult:
    """Both phases as one training: steps and tokens added, the second curve after the first."""
    if second is None:
        return first
    offset = float(first.steps)
    curve = first.curve + tuple({**r, "step": r["step"] + offset} for r in second.curve)
    return TrainResult(curve, first.train_tokens + second.train_tokens, second.best_dev_loss,
                       first.steps + second.steps, first.stopped_early or second.stopped_early,
                       logit_positions=positions_of([first, second]),
                       head_trained=first.head_trained or second.head_trained)


class ContinuedPretraining:
    """Next-token training on the corpus, then (optionally) the usual instruction tuning."""

    name: ClassVar[str] = "continued-pretraining"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = ("Next-token training on the suite's corpus (LoRA or full), then optionally "
                                  "instruction tuning.")
    Options: ClassVar[type[ContinuedOptions]] = ContinuedOptions

    def __init__(self, options: ContinuedOptions):
        self.options = options

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        return lora_or_full(base, self.options)

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        if not suite.corpus:
            raise Unsupported(f"suite {suite.name!r} has no corpus (suite.toml `corpus`) to pretrain on")
        return train_weights(self, run, suite, train=self._train)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)

    def _train(self, call: TrainCall) -> TrainResult:
        """The corpus phase (this training's documents: the held-out ones for an update), then the
        instruction phase, sharing one step budget."""
        o = self.options.model_copy(update=method_rates(self.options))
        hold = update_documents(call.suite, o.update_docs)
        docs = [d for d in call.suite.corpus if (d.id in hold) == (call.phase == "update")]
        pre_steps, inst_steps = split_budget(step_budget(o, call.run.device), o.pretrain_share, o.then_instruct)
        rows = corpus_rows(call.runtime, docs, min(o.chunk_tokens, o.max_seq_len))
        no_train = replace(call.suite, tasks=tuple(replace(t, train=()) for t in call.suite.tasks))
        run = call.run
        first = sft_train(call.model, call.runtime, no_train, self._phase(o, pre_steps, run.device),
                          call.out / "pretrain", run.seed, run.device, extra_train=rows, launch=call.launch)
        second = None
        if o.then_instruct:
            second = sft_train(call.model, call.runtime, call.suite, self._phase(o, inst_steps, run.device),
                               call.out / "instruct", run.seed, run.device, launch=call.launch)
        phases = {"pretrain_steps": float(first.steps), "pretrain_tokens": float(first.train_tokens),
                  "corpus_windows": float(len(rows)), "instruct_steps": float(second.steps if second else 0)}
        note = "corpus then instruction tuning" if o.then_instruct else "corpus only"
        both = chain(first, second)
        task_rows = len(sft_pairs(call.runtime, call.suite, "train", o.system)) if o.then_instruct else 0
        uncapped = o.model_copy(update={"max_steps": -1})  # the epoch plan of both phases, before any cap
        planned = planned_steps(uncapped, len(rows)) + (planned_steps(uncapped, task_rows) if task_rows else 0)
        if o.max_steps > 0:
            planned = o.max_steps
        epochs = sum(r.budget.epochs for r in (first, second) if r is not None and r.budget is not None)
        budget = spent(o, call.run.device, planned, both.steps, both.stopped_early, epochs)
        return replace(both, extras=phases, notes=f"continued pretraining: {note}", budget=budget)

    @staticmethod
    def _phase(o: ContinuedOptions, steps: int, device: str) -> Any:
        """This phase's options: its share of the steps, already capped (so no CPU cap again), at the
        rate in effect for the whole budget (the CPU default under the cap)."""
        if steps < 0:
            return o
        return o.model_copy(update={"max_steps": steps, "cpu_max_steps": 0, "cpu_learning_rate": None,
                                    "learning_rate": learning_rate(o, device)})
