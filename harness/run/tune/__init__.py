"""Hyperparameter search: Optuna over each strategy's declared search space, scored on dev only.

What a trial is. One cell (the strategy with sampled options, one seed) run by the ordinary
`Runner` on the suite's *dev* view: every task's test split is replaced by its dev split, so no
strategy code and no scorer ever sees a test item (`dev_view`). Weight strategies still train on
train and early-stop on dev loss, as in a compare.

The metric. `dev-accuracy` (maximized) is the compare's headline score computed on dev items: the
mean over tasks of each task's main per-item metric (token F1 for short answers, accuracy for
classification and multiple choice; `harness.decide.analysis.main_metric`), tasks without dev items left
out. `dev-loss` (minimized) is the best dev loss of the training (weight strategies only).

Sampler and pruner. TPE seeded with `--seed` (deterministic for one worker); its random start-up
is half the trials (at most 10), so 8 trials still get 4 model-guided ones. Trial 0 is always the
strategy's default (or configured) options, so the best trial is never worse than the defaults on
dev and the study shows what tuning gained. A median pruner watches the dev loss weight strategies
compute every `eval_every` steps (reported through `harness.model.training.on_dev_eval`; negated under a
maximized metric, so "higher is better" holds for both); it stops a trial whose dev loss is worse
than the median of earlier trials at the same step.

Search spaces. A strategy declares its own with a `search_space(trial) -> dict` static method
(options to set, from `trial.suggest_*`); built-ins have theirs in `SPACES`. Hybrids `a+b` search
both sides' spaces, prefixed `context.` and `weights.`. A strategy without one is not tuned.

Storage. Each study lives in `study.journal` next to its `tune.json`: Optuna's JournalStorage on an
append-only file, with a file lock. Chosen over SQLite because parallel workers (processes here,
Ray tasks or nodes on a shared filesystem) append to one log and each replays it: no database
server, no "database is locked" retries under concurrent writers, and it works on NFS where SQLite
locking does not. `--storage URL` takes an RDB URL (e.g. postgresql://) for a cluster with a server.
Parallel workers: `run_trials(spec, n)` is a plain top-level function over a picklable `TrialSpec`;
any executor can run N of them against the same storage: `--jobs N` runs them as processes here,
and under the Ray executor (`tune --executor ray`, `compare --executor ray --tune-trials N`) they are
Ray tasks (`on_ray`). Each worker's sampler is seeded `seed + worker`, so parallel studies are
not bit-reproducible. Optuna with a shared storage rather than Ray Tune: a trial stays an ordinary
cell (same runner, records and cache), and the same code runs with or without Ray."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.cache import atomic_write_text
from harness.core.errors import HarnessError
from harness.core.records import to_json
from harness.run.tune.dev import METRICS, cell_score, dev_view, trial_value
from harness.run.tune.parallel import in_processes, on_ray
from harness.run.tune.results import TrialRow, TuneResult, load_result, report_rows, result_of, summary_line, trial_rows
from harness.run.tune.spaces import default_params, effective_rates, search_space
from harness.run.tune.study import (
    TrialFailed,
    TrialSpec,
    open_study,
    requeue_interrupted,
    startup_trials,
    tune_key,
)
from harness.run.tune.trials import objective, run_trials, trial_runner

if TYPE_CHECKING:
    from harness.data.suites import Suite
    from harness.model.spec import ModelSpec
    from harness.run.config import CompareConfig
    from harness.run.runner import Runner
    from harness.strategy.registry import Registry

__all__ = ["METRICS", "TrialFailed", "TrialRow", "TrialSpec", "TuneResult", "Tuning", "cell_score", "default_params",
           "dev_view", "load_result", "objective", "open_study", "plan_study", "report_rows", "run_trials",
           "search_space", "startup_trials", "study_result", "trial_runner", "trial_value", "tune", "tune_key",
           "tune_strategies"]

@dataclass(frozen=True)
class Tuning:
    """What `tune` needs besides the spec: the result's folder, workers, an optional ready runner."""

    folder: Path
    trials: int
    jobs: int = 1
    runner: Runner | None = field(default=None, compare=False)
    say: Callable[[str], None] | None = field(default=None, compare=False)
    """One line per finished trial (in-process trials only)."""
    executor: Any = field(default=None, compare=False)
    """harness.run.executors.RayExecutor: trials run as Ray tasks on its cluster; else here (or `jobs` processes)."""

def tune(spec: TrialSpec, how: Tuning) -> TuneResult:
    """Run (or resume, or reuse) the study and write `tune.json` next to its storage."""
    from harness.data.catalog import load_suite
    from harness.model.spec import resolve_model
    from harness.strategy.registry import Registry

    t0 = time.perf_counter()
    registry = how.runner.registry if how.runner else Registry.discover()
    if how.runner is None:
        for p in spec.plugins:
            registry.add_plugin_file(Path(p))
    suite = how.runner.plan.suite if how.runner else dev_view(load_suite(spec.suite))
    model = how.runner.plan.model if how.runner else resolve_model(spec.model)
    head = _head(spec, suite, model, how.trials)
    space = search_space(registry, spec.strategy)
    if space is None:
        return TuneResult(status="not-tuned", reason="no search space", **head)
    cached = load_result(how.folder)
    if cached is not None and cached.status == "tuned" and cached.finished >= how.trials:
        return cached
    how.folder.mkdir(parents=True, exist_ok=True)
    study = open_study(spec)
    requeue_interrupted(study)
    if not study.trials:
        params = default_params(space, effective_rates(spec.base_options, spec.device))
        if params is not None:
            study.enqueue_trial(params, user_attrs={"defaults": True})
    remaining = how.trials - sum(r.state != "interrupted" for r in trial_rows(study))
    if remaining > 0 and "unsupported" not in study.user_attrs:
        if getattr(how.executor, "name", "local") == "ray":
            on_ray(spec, remaining, how.jobs, how.executor)
        elif how.jobs > 1:
            in_processes(spec, remaining, how.jobs)
        else:
            run_trials(spec, remaining, 0, how.runner or trial_runner(spec, registry), how.say)
    result = result_of(open_study(spec), spec, head, time.perf_counter() - t0)
    atomic_write_text(how.folder / "tune.json", to_json(result))
    return result

def _head(spec: TrialSpec, suite: Suite, model: ModelSpec, trials: int) -> dict[str, Any]:
    return dict(strategy=spec.strategy, suite=suite.name, suite_hash=suite.data_hash, model=model.identity,
                metric=spec.metric, direction=METRICS[spec.metric], seed=spec.seed, limit=spec.limit,
                trials_requested=trials, default_options=spec.base_options, best_options=spec.base_options)

def study_result(spec: TrialSpec, trials: int) -> TuneResult:
    """The study as it stands now (an unfinished one too), without running anything."""
    from harness.data.catalog import load_suite
    from harness.model.spec import resolve_model

    head = _head(spec, dev_view(load_suite(spec.suite)), resolve_model(spec.model), trials)
    return result_of(open_study(spec), spec, head, 0.0)

def plan_study(cfg: CompareConfig, suite: Suite, model: ModelSpec, registry: Registry, strategy: str, trials: int,
               seed: int, metric: str, device: str, storage: str | None = None) -> tuple[TrialSpec, Path]:
    """The study of `strategy` for a run configuration, and its folder under <out>/<suite>/tuning/.
    Trial cells of every study of the suite share tuning/cells/, so a repeated sample costs nothing."""
    if metric not in METRICS:
        raise HarnessError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    if trials < 1:
        raise HarnessError("--trials must be at least 1")
    cls = registry.get(strategy)
    from pydantic import ValidationError

    try:
        base = cls.Options.model_validate(cfg.options.get(strategy, {})).model_dump(mode="json")
    except ValidationError as e:
        raise HarnessError(f"options.{strategy}: {e.errors()[0]['msg']}") from None
    key = tune_key(suite, model, strategy, base, trials, seed, metric, cfg.limit, device)[:12]
    root = cfg.out / suite.name / "tuning"
    folder = root / f"{strategy}-{key}"
    spec = TrialSpec(
        suite=cfg.suite, model=cfg.model, strategy=strategy, base_options=base, seed=seed, metric=metric,
        limit=cfg.limit, batch_size=cfg.batch_size if isinstance(cfg.batch_size, int) else None, device=device,
        storage=storage or str(folder / "study.journal"), study_name=f"{suite.name}/{strategy}/{key}",
        cells_dir=str(root / "cells"), startup_trials=startup_trials(trials), prune_after=max(1, min(5, trials // 4)),
        plugins=tuple(str(p) for p in cfg.plugins), trust_remote_code=cfg.trust_remote_code,
    )
    return spec, folder

def tune_strategies(cfg: CompareConfig, suite: Suite, model: ModelSpec, registry: Registry, names: list[str],
                    trials: int, device: str, jobs: int = 1, say: Callable[[str], None] = print,
                    executor: Any = None) -> tuple[CompareConfig, tuple[TuneResult, ...]]:
    """`compare --tune-trials N`: every strategy with a search space gets a study of exactly N trials
    (same seed, metric and dev items), so none wins by being tuned more; the run then uses each one's
    best options. Studies are cached by their inputs (`tune_key`), so a re-run does not re-tune."""
    options = dict(cfg.options)
    results = []
    runner = None
    for name in names:
        spec, folder = plan_study(cfg, suite, model, registry, name, trials, cfg.seeds[0], "dev-accuracy", device)
        if search_space(registry, name) is None:
            results.append(tune(spec, Tuning(folder, trials)))
            say(f"{name}: not tuned: no search space")
            continue
        remote = getattr(executor, "name", "local") == "ray"
        if jobs == 1 and runner is None and not remote:
            runner = trial_runner(spec, registry)  # one base-model load for every study
        local = runner if jobs == 1 and not remote else None
        result = tune(spec, Tuning(folder, trials, jobs, local, executor=executor if remote else None))
        results.append(result)
        if result.status == "tuned" and result.best_value is not None:
            options[name] = result.best_options
        say(summary_line(result))
    return cfg.model_copy(update={"options": options}), tuple(results)
