"""Running trials: the objective (sample options, run or reuse the cell on the dev view, report dev
losses to the pruner) and a worker's loop over it."""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.errors import Unsupported
from harness.core.records import CellRecord
from harness.run.tune.dev import METRICS, cell_score, dev_view, trial_value
from harness.run.tune.spaces import merge_options, search_space
from harness.run.tune.study import TrialFailed, TrialSpec, finite, open_study, trial_state
from harness.strategy.search import SearchSpace

if TYPE_CHECKING:
    from harness.run.runner import Runner
    from harness.strategy.registry import Registry

def trial_runner(spec: TrialSpec, registry: Registry | None = None) -> Runner:
    """A Runner over the dev view (no retention probe); its base model is loaded once for all trials."""
    from harness.data.catalog import load_suite
    from harness.model.spec import resolve_model
    from harness.run.plan import Plan
    from harness.run.runner import Runner
    from harness.strategy.registry import Registry

    if registry is None:
        registry = Registry.discover()
        for p in spec.plugins:
            registry.add_plugin_file(Path(p))
    plan = Plan(dev_view(load_suite(spec.suite)), resolve_model(spec.model), (), spec.limit, spec.batch_size, "tune")
    return Runner(plan, registry, Path(spec.cells_dir), device=spec.device, trust_remote_code=spec.trust_remote_code)

def _options(registry: Registry, spec: TrialSpec, sampled: dict[str, Any]) -> dict[str, Any]:
    from pydantic import ValidationError

    cls = registry.get(spec.strategy)
    try:
        return cls.Options.model_validate(merge_options(spec.base_options, sampled)).model_dump(mode="json")
    except ValidationError as e:
        raise TrialFailed(f"sampled options are invalid: {e.errors()[0]['msg']}") from None

def _run_trial_cell(runner: Runner, cell: Any, trial: Any, maximize: bool) -> CellRecord:
    """Run the cell, reporting each dev loss to the pruner; a pruned trial leaves no record or folder
    (the caller, Runner.reuse_or_run, saves the record of a trial that finished)."""
    import optuna

    from harness.model.training import on_dev_eval

    pruned: list[str] = []

    def report(step: int, loss: float) -> None:
        trial.report(-loss if maximize else loss, step)
        if trial.should_prune():
            pruned.append(f"pruned at step {step}: dev loss {loss:.4f} worse than the median of earlier trials")
            trial.set_user_attr("pruned", pruned[-1])
            raise optuna.TrialPruned(pruned[-1])

    with on_dev_eval(report):
        rec = runner.run_cell(cell)  # records the TrialPruned as a failure: undone below
    if pruned:
        shutil.rmtree(runner.cells_dir / cell.cell_id, ignore_errors=True)
        raise optuna.TrialPruned(pruned[-1])
    return replace(rec, tasks=tuple(t for t in rec.tasks if t.n))  # tasks without dev items: nothing scored

def objective(spec: TrialSpec, runner: Runner, space: SearchSpace) -> Callable[[Any], float]:
    """One trial: sample options, run (or reuse) the cell on the dev view, return its dev figure."""
    from harness.run.plan import Cell, cell_id, strategy_code

    plan = runner.plan

    def run(trial: Any) -> float:
        try:
            return attempt(trial)
        except (TrialFailed, Unsupported) as e:
            trial.set_user_attr("error", str(e))  # a failed trial counts in the budget (interrupted ones do not)
            raise

    def attempt(trial: Any) -> float:
        options = _options(runner.registry, spec, space(trial))
        cid = cell_id(plan.suite, plan.model, spec.strategy, options, spec.seed, spec.limit, None, runner.device,
                      strategy_code(runner.registry, spec.strategy))
        trial.set_user_attr("options", options)
        trial.set_user_attr("host", f"{platform.node()}:{os.getpid()}")  # which worker ran it
        trial.set_user_attr("cell_id", cid)
        cell = Cell(spec.strategy, options, spec.seed, cid)
        maximize = METRICS[spec.metric] == "maximize"
        rec = runner.reuse_or_run(cell, lambda c: _run_trial_cell(runner, c, trial, maximize))
        if rec.status == "skipped":
            raise Unsupported(rec.error or "skipped")
        if rec.status != "ok":
            raise TrialFailed(rec.error)
        trial.set_user_attr("dev_accuracy", finite(cell_score(rec)))
        trial.set_user_attr("best_dev_loss", rec.adapt.extras.get("best_dev_loss"))
        return trial_value(rec, spec.metric)

    return run

def run_trials(spec: TrialSpec, n: int, worker: int = 0, runner: Runner | None = None,
               say: Callable[[str], None] | None = None) -> None:
    """Run `n` trials of the study in this process (any number of workers may do so at once). A
    strategy that cannot run here stops the study and leaves the reason in its user attributes.
    `say` gets one line per finished trial."""
    study = open_study(spec, worker)
    runner = runner or trial_runner(spec)
    space = search_space(runner.registry, spec.strategy)
    assert space is not None
    try:
        study.optimize(objective(spec, runner, space), n_trials=n, catch=(TrialFailed,), gc_after_trial=True,
                       callbacks=[_progress(say)] if say else None)
    except Unsupported as e:
        study.set_user_attr("unsupported", e.reason)

def _progress(say: Callable[[str], None]) -> Callable[[Any, Any], None]:
    def done(study: Any, trial: Any) -> None:
        value = "" if trial.value is None or trial_state(trial) != "complete" else f" {trial.value:.4f}"
        note = trial.user_attrs.get("pruned") or trial.user_attrs.get("error") or ""
        say(f"trial {trial.number}: {trial_state(trial)}{value} {trial.params} {note}".rstrip())

    return done
