"""Multi-task schedules for `lora` and `full-ft` (option `schedule`), on any weight strategy's model:

- `joint` (the default, today's behaviour): every task's train rows at once (not handled here);
- `per-task`: one set of trained weights per task (LoRA: one adapter; full-ft: one copy of the
  weights), each trained from the same initial weights on its task alone. Evaluation routes each
  task's items to its own weights: the runtime returned has `for_task(name)`, which
  harness.data.evaluation.evaluate_task calls before a task's items run (so hybrids route too). The
  retention suite, which belongs to no task, is scored through the first task's weights;
- `sequential`: one model trained task after task in the suite's order; before the first stage and
  after every stage every task is scored on its dev split (test when it has none) with its main
  metric: the continual-learning forgetting matrix, kept in the record (`AdaptReport.continual`).

Fair budget: the stages share the step budget `joint` would get (max_steps, or the CPU cap, for all
the rows), split in proportion to each task's train rows (at least one step each); with an epoch
budget every stage runs its epochs over its own rows, which is the same number of passes. Stages
train in one process (the data-parallel workers rebuild one model, not a schedule).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from harness.core.records import ContinualMatrix
from harness.data.evaluation import evaluate_task
from harness.model.training import learning_rate, planned_steps, positions_of, spent, step_budget
from harness.strategy import (
    Adapted,
    ModelRuntime,
    RunContext,
    Suite,
    Task,
    TrainCall,
    TrainResult,
    Unsupported,
    one_process,
    prompts_as_trained,
    sft_train,
    train_weights,
)

Schedule = Literal["joint", "per-task", "sequential"]
SCHEDULE_HELP = ("joint: every task's rows at once; per-task: one adapter (full-ft: one copy) per task, each "
                 "task's items served by its own; sequential: task after task in the suite's order, every task "
                 "scored after every stage (the forgetting matrix in the record).")
STAGE_EVAL_BATCH = 8


def trained_tasks(suite: Suite) -> list[Task]:
    """The tasks that contribute train rows, in the suite's order."""
    return [t for t in suite.tasks if t.spec.trains and t.train]


def one_task(suite: Suite, task: Task) -> Suite:
    return replace(suite, tasks=(task,))


def split_steps(total: int, rows: Sequence[int]) -> list[int]:
    """`total` steps shared in proportion to `rows`, at least one each, adding up to `total` exactly
    (largest remainder); -1 (an epoch budget) for every stage when `total` is -1."""
    if total < 0:
        return [-1] * len(rows)
    if total < len(rows):
        raise Unsupported(f"a budget of {total} steps cannot give each of {len(rows)} tasks a stage (max_steps)")
    exact = [total * r / max(1, sum(rows)) for r in rows]
    shares = [max(1, int(x)) for x in exact]
    while sum(shares) != total:  # the most under-served gains a step, or the most over-served (above one) loses one
        gap = [s - x for s, x in zip(shares, exact, strict=True)]
        if sum(shares) < total:
            shares[gap.index(min(gap))] += 1
        else:
            shares[max((i for i in range(len(shares)) if shares[i] > 1), key=gap.__getitem__)] -= 1
    return shares


def stage_options(o: Any, steps: int, device: str) -> Any:
    """A stage's options: its share of the steps, already capped (no CPU cap again), at the rate in
    effect for the whole budget (the CPU default under the cap)."""
    if steps < 0:
        return o
    return o.model_copy(update={"max_steps": steps, "cpu_max_steps": 0, "cpu_learning_rate": None,
                                "learning_rate": learning_rate(o, device)})


def chain(results: Sequence[TrainResult], o: Any, device: str, rows: Sequence[int]) -> TrainResult:
    """The stages as one training: steps and tokens added, curves end to end, the budget of all rows
    (epochs: passes over all of them, each stage's passes weighted by its rows)."""
    curve: list[dict[str, float]] = []
    offset = 0.0
    for r in results:
        curve += [{**row, "step": row["step"] + offset} for row in r.curve]
        offset += r.steps
    steps = sum(r.steps for r in results)
    early = any(r.stopped_early for r in results)
    epochs = sum(r.budget.epochs * n for r, n in zip(results, rows, strict=True) if r.budget) / max(1, sum(rows))
    budget = spent(o, device, planned_steps(o, sum(rows)), steps, early, epochs)
    # no single dev loss: each stage's is on its own task only (tuning on dev loss is refused)
    return TrainResult(tuple(curve), sum(r.train_tokens for r in results), None, steps, early,
                       budget, {"stages": float(len(results))}, logit_positions=positions_of(results),
                       head_trained=any(r.head_trained for r in results))


def trainable_state(model: Any) -> dict[str, Any]:
    """A copy of the tensors that train (an adapter, or every weight), kept in host memory: a copy per task
    must not fill the accelerator."""
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: Any, state: dict[str, Any]) -> None:
    import torch

    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in state:
                p.copy_(state[n])


def _stages(call: TrainCall) -> tuple[list[Task], list[int], list[int]]:
    """The tasks trained, each one's steps and train rows."""
    tasks = trained_tasks(call.suite)
    rows = [len(t.train) for t in tasks]
    return tasks, split_steps(step_budget(call.options, call.run.device, sum(rows)), rows), rows


def _fit(call: TrainCall, task: Task, steps: int, folder: str) -> TrainResult:
    o, run = call.options, call.run
    return sft_train(call.model, call.runtime, one_task(call.suite, task), stage_options(o, steps, run.device),
                     call.out / folder, run.seed, run.device, call.optimizer)


# ------------------------------------------------------------------ per-task
@dataclass
class TaskWeights:
    """Each task's trained tensors, and the initial ones every task starts from."""

    weights: dict[str, dict[str, Any]] = field(default_factory=dict)
    initial: dict[str, Any] = field(default_factory=dict)

    def train(self, call: TrainCall) -> TrainResult:
        """Each task from the initial weights (an update: from the task's own), on its rows alone."""
        if not self.initial:
            self.initial = trainable_state(call.model)
        tasks, budgets, rows = _stages(call)
        results = []
        for i, (task, steps) in enumerate(zip(tasks, budgets, strict=True)):
            load_trainable(call.model, self.weights.get(task.name, self.initial))
            results.append(_fit(call, task, steps, f"{i}-{task.name}"))
            self.weights[task.name] = trainable_state(call.model)
        return chain(results, call.options, call.run.device, rows)

    def save(self, model: Any, folder: Path) -> None:
        """One safetensors file per task (what a deployment stores and routes between)."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        for name, state in self.weights.items():
            save_file({k: v.contiguous() for k, v in state.items()}, str(folder / f"{name}.safetensors"))

    def serve(self, model: Any, rt: ModelRuntime) -> ModelRuntime:
        first = next(iter(self.weights))
        return TaskRouted(rt, self, first, {"task": None})


class TaskRouted(ModelRuntime):
    """The runtime of a per-task model: every operation first loads the weights of its task (`for_task`
    gives the runtime of one task; this one, used for the retention suite, serves the first task's)."""

    def __init__(self, rt: ModelRuntime, store: TaskWeights, task: str, loaded: dict[str, str | None]):
        super().__init__(rt.model, rt.tokenizer, rt.spec, rt.device)
        self.store, self.task, self.loaded = store, task, loaded

    def for_task(self, name: str) -> TaskRouted:
        task = name if name in self.store.weights else next(iter(self.store.weights))
        return TaskRouted(self, self.store, task, self.loaded)

    def _use(self) -> None:
        if self.loaded["task"] != self.task:  # shared by every view: weights are swapped only on a change
            load_trainable(self.model, self.store.weights[self.task])
            self.loaded["task"] = self.task

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self._use()
        return super().generate(*args, **kwargs)

    def loglikelihood_batch(self, *args: Any, **kwargs: Any) -> Any:
        self._use()
        return super().loglikelihood_batch(*args, **kwargs)

    def token_nll(self, *args: Any, **kwargs: Any) -> Any:
        self._use()
        return super().token_nll(*args, **kwargs)


# ------------------------------------------------------------------ sequential
def score_columns(suite: Suite) -> list[Task]:
    """The tasks the forgetting matrix scores: queries with a main metric."""
    return [t for t in suite.tasks if t.spec.query and t.main_metric]


def stage_scores(call: TrainCall, columns: Sequence[Task]) -> list[tuple[float, ...]]:
    """Each column task's per-item main-metric scores on its dev split (test without one)."""
    call.model.eval()
    out = []
    for task in columns:
        examples = task.dev or task.test
        prompts = prompts_as_trained(call.options, task, examples)
        preds, _ = evaluate_task(call.runtime, task, examples, prompts, STAGE_EVAL_BATCH)
        out.append(tuple(float(p.scores[str(task.main_metric)]) for p in preds))
    call.model.train()
    return out


@dataclass
class Sequential:
    """Task after task; the forgetting matrix of the main training (an update trains on, unscored)."""

    matrix: ContinualMatrix | None = None

    def train(self, call: TrainCall) -> TrainResult:
        tasks, budgets, rows = _stages(call)
        columns = score_columns(call.suite)
        scoring = call.phase == "train"
        t0 = time.perf_counter()
        items = [stage_scores(call, columns)] if scoring else []
        eval_s = time.perf_counter() - t0
        results = []
        for i, (task, steps) in enumerate(zip(tasks, budgets, strict=True)):
            results.append(_fit(call, task, steps, f"{i}-{task.name}"))
            if scoring:
                t0 = time.perf_counter()
                items.append(stage_scores(call, columns))
                eval_s += time.perf_counter() - t0
        if scoring:
            self.matrix = ContinualMatrix(
                ("before", *(t.name for t in tasks)), tuple(t.name for t in columns),
                tuple(str(t.main_metric) for t in columns), tuple("dev" if t.dev else "test" for t in columns),
                tuple(tuple(sum(s) / max(1, len(s)) for s in row) for row in items), tuple(map(tuple, items)))
        result = chain(results, call.options, call.run.device, rows)
        return replace(result, extras={**result.extras, "stage_eval_s": eval_s, "measure_s": eval_s},
                       notes=f"sequential: {' then '.join(t.name for t in tasks)}")


def train_scheduled(strategy: Any, run: RunContext, suite: Suite) -> Adapted:
    """`train_weights` under the strategy's `schedule` (per-task or sequential; joint is plain
    train_weights): the same artifact, report and knowledge update, plus the schedule's own."""
    one_process(strategy, run, "one training per task or stage")
    if strategy.options.schedule == "per-task":
        store = TaskWeights()
        adapted = train_weights(strategy, run, suite, train=store.train, save=store.save, serve=store.serve)
        n = len(store.weights)
        report = replace(adapted.report, trainable_params=adapted.report.trainable_params * n,
                         extras={**adapted.report.extras, "task_weights": float(n)},
                         notes=f"per-task: {n} sets of trained weights ({', '.join(store.weights)}), each task's "
                               "items served by its own; retention through the first task's")
        return Adapted(adapted.runtime, report)
    seq = Sequential()
    adapted = train_weights(strategy, run, suite, train=seq.train)
    return Adapted(adapted.runtime, replace(adapted.report, continual=seq.matrix))
