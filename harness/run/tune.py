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
Ray tasks (`_parallel_ray`). Each worker's sampler is seeded `seed + worker`, so parallel studies are
not bit-reproducible. Optuna with a shared storage rather than Ray Tune: a trial stays an ordinary
cell (same runner, records and cache), and the same code runs with or without Ray.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.core.cache import atomic_write_text, stable_hash
from harness.core.errors import HarnessError, Unsupported
from harness.core.records import CellRecord, from_json, to_json

if TYPE_CHECKING:
    from harness.run.config import CompareConfig
    from harness.model.load import ModelSpec
    from harness.strategy.registry import Registry
    from harness.run.runner import Runner
    from harness.data.suites import Suite

METRICS: dict[str, Literal["maximize", "minimize"]] = {"dev-accuracy": "maximize", "dev-loss": "minimize"}
SearchSpace = Callable[[Any], dict[str, Any]]


# ---------------------------------------------------------------- search spaces of the built-ins
def _budget(trial: Any) -> dict[str, Any]:
    """Training budget: epochs (what counts on a GPU) and the CPU step cap (what counts on a CPU)."""
    return {"epochs": trial.suggest_int("epochs", 1, 3),
            "cpu_max_steps": trial.suggest_categorical("cpu_max_steps", [12, 24, 36])}


def _lr(low: float, high: float) -> SearchSpace:
    return lambda trial: {"learning_rate": trial.suggest_float("learning_rate", low, high, log=True)}


def _lora(trial: Any) -> dict[str, Any]:
    return {**_lr(1e-4, 3e-3)(trial), "r": trial.suggest_categorical("r", [4, 8, 16, 32]),
            "alpha": trial.suggest_categorical("alpha", [8, 16, 32, 64]), **_budget(trial)}


def _with_budget(*spaces: SearchSpace) -> SearchSpace:
    return lambda trial: {k: v for s in (*spaces, _budget) for k, v in s(trial).items()}


SPACES: dict[str, SearchSpace] = {
    "few-shot": lambda t: {"k": t.suggest_int("k", 1, 8),
                           "selection": t.suggest_categorical("selection", ["similar", "random"])},
    "rag": lambda t: {"k": t.suggest_int("k", 1, 6),
                      "chunk_size": t.suggest_categorical("chunk_size", [60, 120, 240, 400])},
    "lora": _lora,
    "dora": _lora,
    "qlora": _lora,
    "full-ft": _with_budget(_lr(1e-5, 3e-4)),
    "ia3": _with_budget(_lr(1e-3, 3e-2)),
    "layer-freeze": _with_budget(_lr(1e-5, 3e-4),
                                 lambda t: {"top_layers": t.suggest_categorical("top_layers", [2, 4, 8])}),
    "norm-bias": _with_budget(_lr(1e-4, 1e-2)),
}
"""Built-in strategies' spaces; each default option lies inside its range (trial 0 is the defaults)."""


class _Prefixed:
    """A trial whose parameter names get a prefix: the two sides of a hybrid share one trial."""

    def __init__(self, trial: Any, prefix: str):
        self.trial, self.prefix = trial, prefix

    def suggest_float(self, name: str, *a: Any, **k: Any) -> Any:
        return self.trial.suggest_float(self.prefix + name, *a, **k)

    def suggest_int(self, name: str, *a: Any, **k: Any) -> Any:
        return self.trial.suggest_int(self.prefix + name, *a, **k)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.trial.suggest_categorical(self.prefix + name, choices)


def search_space(registry: Registry, name: str) -> SearchSpace | None:
    """The strategy's own `search_space`, else the built-in table's; hybrids combine both sides'."""
    cls = registry.get(name)
    own = getattr(cls, "search_space", None)
    if callable(own):
        return own
    if name in SPACES:
        return SPACES[name]
    if "+" in name:
        context, _, weights = name.partition("+")
        sides = {"context": search_space(registry, context), "weights": search_space(registry, weights)}
        if any(sides.values()):
            return lambda t: {side: space(_Prefixed(t, f"{side}.")) for side, space in sides.items() if space}
    return None


class _NoDefault(Exception):
    pass


class _DefaultsTrial:
    """Stands in for a trial and answers each suggestion with the option of that name in `options`
    (flattened with dots): the parameters that reproduce the default options, to enqueue as trial 0."""

    def __init__(self, options: dict[str, Any]):
        self.options = _flatten(options)
        self.params: dict[str, Any] = {}

    def _pick(self, name: str, ok: Callable[[Any], bool]) -> Any:
        if name not in self.options or not ok(self.options[name]):
            raise _NoDefault(name)
        self.params[name] = self.options[name]
        return self.options[name]

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> Any:
        return self._pick(name, lambda v: isinstance(v, int | float) and low <= v <= high)

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> Any:
        value = self._pick(name, lambda v: isinstance(v, int | float) and v == int(v) and low <= v <= high)
        self.params[name] = int(value)
        return int(value)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._pick(name, lambda v: v in choices)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def default_params(space: SearchSpace, options: dict[str, Any]) -> dict[str, Any] | None:
    """The trial parameters that give `options`, or None when an option lies outside the space."""
    probe = _DefaultsTrial(options)
    try:
        space(probe)
    except _NoDefault:
        return None
    return probe.params


# ---------------------------------------------------------------- the dev view and its score
def dev_view(suite: Suite) -> Suite:
    """The suite with every task's test split replaced by its dev split (and its own identity): what
    trials run on, so test items stay unseen. Train and dev are unchanged, so training data is the
    compare's; a task without dev items is trained on and not scored."""
    scored = [t.name for t in suite.tasks if t.dev and t.kind != "language-modeling"]
    if not scored:
        raise HarnessError(f"suite {suite.name!r} has no dev items: tuning scores trials on the dev split")
    tasks = tuple(replace(t, test=t.dev) for t in suite.tasks)
    return replace(suite, tasks=tasks, data_hash=stable_hash([suite.data_hash, "dev-as-test"]))


def cell_score(rec: CellRecord) -> float:
    """A cell's headline score: mean over tasks of the mean main per-item metric (harness.decide.analysis's
    definition for one seed). On a trial's record, whose items are dev items, it is dev-accuracy."""
    from harness.decide.analysis import cell_item_scores

    by_task: dict[str, list[float]] = {}
    for (task, _), v in cell_item_scores(rec).items():
        by_task.setdefault(task, []).append(v)
    return sum(sum(v) / len(v) for v in by_task.values()) / len(by_task) if by_task else math.nan


def trial_value(rec: CellRecord, metric: str) -> float:
    if metric == "dev-loss":
        loss = rec.adapt.extras.get("best_dev_loss")
        if loss is None:
            raise Unsupported(f"{rec.strategy} reports no dev loss (it does not train); use --metric dev-accuracy")
        return float(loss)
    return cell_score(rec)


# ---------------------------------------------------------------- studies, trials and results
@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run trials of one study. Plain data: a process or a Ray task
    can receive it and call `run_trials` against the shared storage."""

    suite: str
    """Suite reference (name, folder or <format>:<path>) as `load_suite` takes it."""
    model: str | None
    strategy: str
    base_options: dict[str, Any]
    """The options the search starts from (defaults, or the run's configured ones); trial 0."""
    seed: int
    metric: str
    limit: int | None
    """At most this many dev items per task."""
    batch_size: int | None
    device: str
    storage: str
    """A journal file path, or an RDB URL (sqlite:///, postgresql://...)."""
    study_name: str
    cells_dir: str
    startup_trials: int
    """Random trials before TPE models the results."""
    prune_after: int
    """Finished trials before the median pruner may stop one."""
    plugins: tuple[str, ...] = ()
    trust_remote_code: bool = False


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    """complete, pruned, fail, or interrupted (its process was killed; it ran again)."""
    params: dict[str, Any]
    options: dict[str, Any]
    value: float | None
    dev_accuracy: float | None
    best_dev_loss: float | None
    intermediate: dict[str, float]
    """Optimizer step -> reported dev figure (the pruner's input)."""
    defaults: bool
    """The trial of the starting options."""
    duration_s: float | None
    cell_id: str | None
    error: str | None


@dataclass(frozen=True)
class TuneResult:
    """One strategy's study: every trial, the best options, and how they compare with the defaults."""

    strategy: str
    status: str
    """tuned; not-tuned (no search space); skipped (the strategy cannot run here: `reason`)."""
    reason: str | None
    suite: str
    suite_hash: str
    model: str
    metric: str
    direction: str
    seed: int
    limit: int | None
    trials_requested: int
    default_options: dict[str, Any]
    best_options: dict[str, Any]
    default_value: float | None = None
    best_value: float | None = None
    best_trial: int | None = None
    trials: tuple[TrialRow, ...] = ()
    storage: str = ""
    study_name: str = ""
    sampler: str = ""
    pruner: str = ""
    wall_s: float = 0.0

    @property
    def finished(self) -> int:
        """Trials that count in the budget (an interrupted and re-run trial counts once)."""
        return sum(t.state != "interrupted" for t in self.trials)

    def tuned_params(self) -> dict[str, Any]:
        """The best trial's parameters (what the search chose), empty when it kept the defaults."""
        best = next((t for t in self.trials if t.number == self.best_trial), None)
        return {} if best is None or best.defaults else dict(best.params)


class TrialFailed(Exception):
    """A trial's cell failed (the study goes on; the trial is recorded as failed)."""


def tune_key(suite: Suite, model: ModelSpec, strategy: str, options: dict[str, Any], trials: int, seed: int,
             metric: str, limit: int | None, device: str) -> str:
    """Identity of a study: a compare re-run with the same inputs reuses it instead of re-tuning."""
    return stable_hash({"suite": suite.data_hash, "model": model.identity, "strategy": strategy,
                        "options": options, "trials": trials, "seed": seed, "metric": metric, "limit": limit,
                        "device": device.split(":")[0]})


def startup_trials(trials: int) -> int:
    return max(1, min(10, trials // 2))


def _storage(spec: TrialSpec) -> Any:
    if "://" in spec.storage:
        return spec.storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(spec.storage).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(spec.storage))


def open_study(spec: TrialSpec, worker: int = 0) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials: in the table and tune.json
    sampler = optuna.samplers.TPESampler(seed=spec.seed + worker, n_startup_trials=spec.startup_trials)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=spec.prune_after, n_warmup_steps=0)
    return optuna.create_study(storage=_storage(spec), study_name=spec.study_name, sampler=sampler, pruner=pruner,
                               direction=METRICS[spec.metric], load_if_exists=True)


def trial_runner(spec: TrialSpec, registry: Registry | None = None) -> Runner:
    """A Runner over the dev view (no retention probe); its base model is loaded once for all trials."""
    from harness.model.load import resolve_model
    from harness.strategy.registry import Registry
    from harness.run.runner import Plan, Runner
    from harness.data.suites import load_suite

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
        return cls.Options.model_validate(_merge(spec.base_options, sampled)).model_dump(mode="json")
    except ValidationError as e:
        raise TrialFailed(f"sampled options are invalid: {e.errors()[0]['msg']}") from None


def _run_trial_cell(runner: Runner, cell: Any, trial: Any, maximize: bool) -> CellRecord:
    """Run the cell, reporting each dev loss to the pruner; a pruned trial leaves no record or folder."""
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
    rec = replace(rec, tasks=tuple(t for t in rec.tasks if t.n))  # tasks without dev items: nothing scored
    atomic_write_text(runner.record_path(cell), to_json(rec))
    return rec


def objective(spec: TrialSpec, runner: Runner, space: SearchSpace) -> Callable[[Any], float]:
    """One trial: sample options, run (or reuse) the cell on the dev view, return its dev figure."""
    from harness.run.runner import Cell, cell_id

    plan = runner.plan

    def run(trial: Any) -> float:
        try:
            return attempt(trial)
        except (TrialFailed, Unsupported) as e:
            trial.set_user_attr("error", str(e))  # a failed trial counts in the budget (interrupted ones do not)
            raise

    def attempt(trial: Any) -> float:
        options = _options(runner.registry, spec, space(trial))
        cid = cell_id(plan.suite, plan.model, spec.strategy, options, spec.seed, spec.limit, None, runner.device)
        trial.set_user_attr("options", options)
        trial.set_user_attr("host", f"{platform.node()}:{os.getpid()}")  # which worker ran it
        trial.set_user_attr("cell_id", cid)
        cell = Cell(spec.strategy, options, spec.seed, cid)
        rec = runner.cached(cell) or _run_trial_cell(runner, cell, trial, METRICS[spec.metric] == "maximize")
        if rec.status == "skipped":
            raise Unsupported(rec.error or "skipped")
        if rec.status != "ok":
            raise TrialFailed(rec.error)
        trial.set_user_attr("dev_accuracy", _finite(cell_score(rec)))
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
        value = "" if trial.value is None or _state(trial) != "complete" else f" {trial.value:.4f}"
        note = trial.user_attrs.get("pruned") or trial.user_attrs.get("error") or ""
        say(f"trial {trial.number}: {_state(trial)}{value} {trial.params} {note}".rstrip())

    return done


def _worker(spec: TrialSpec, n: int, worker: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    run_trials(spec, n, worker)


def _shares(n: int, jobs: int) -> list[int]:
    """`n` trials split between `jobs` workers up front, so the study gets exactly `n`."""
    return [n // jobs + (i < n % jobs) for i in range(jobs)]


def _parallel(spec: TrialSpec, n: int, jobs: int) -> None:
    """`jobs` processes share the study's storage; the trials are split between them up front, so
    the study gets exactly `n` (no worker starts one past the budget)."""
    import multiprocessing
    import os

    ctx = multiprocessing.get_context("spawn")
    shares = _shares(n, jobs)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    procs = [ctx.Process(target=_worker, args=(spec, k, i, threads)) for i, k in enumerate(shares) if k]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    bad = [p.exitcode for p in procs if p.exitcode]
    if bad:
        raise HarnessError(f"{len(bad)} tuning worker(s) exited with status {bad}")


def _parallel_ray(spec: TrialSpec, n: int, jobs: int, executor: Any) -> None:
    """The trials as Ray tasks sharing the study's storage (a file every node must see, or an RDB URL):
    `jobs` tasks (1: one per CPU of the cluster), the trials split between them up front; on CUDA each
    task takes a GPU."""
    from harness.run.executors import forwarded_env, import_ray

    ray = import_ray()
    started = executor.connect(ray)
    try:
        if jobs == 1:
            jobs = max(1, min(n, int(ray.cluster_resources().get("CPU", 1))))
        shares = _shares(n, jobs)
        gpus = 1.0 if spec.device.startswith("cuda") else 0.0
        env = forwarded_env()  # offline mode, allow-lists
        task = ray.remote(_worker).options(num_cpus=1, num_gpus=gpus, max_retries=0, runtime_env={"env_vars": env},
                                           name=f"harness-tune:{spec.strategy}")
        refs = [task.remote(spec, k, i, 1) for i, k in enumerate(shares) if k]
        ray.get(refs)
    finally:
        if started:
            ray.shutdown()


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _state(trial: Any) -> str:
    state = str(trial.state.name).lower()
    return "interrupted" if state == "fail" and "error" not in trial.user_attrs else state


def _rows(study: Any) -> tuple[TrialRow, ...]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if _state(t) not in ("complete", "pruned", "fail", "interrupted"):
            continue
        a = t.user_attrs
        rows.append(TrialRow(
            number=t.number, state=_state(t), params=dict(t.params), options=a.get("options", {}),
            value=_finite(t.value) if t.values and _state(t) == "complete" else None,
            dev_accuracy=a.get("dev_accuracy"), best_dev_loss=a.get("best_dev_loss"),
            intermediate={str(k): float(v) for k, v in sorted(t.intermediate_values.items())},
            defaults=bool(a.get("defaults")), duration_s=t.duration.total_seconds() if t.duration else None,
            cell_id=a.get("cell_id"), error=a.get("error") or a.get("pruned"),
        ))
    return tuple(rows)


def requeue_interrupted(study: Any) -> None:
    """Trials left running by a killed earlier process (the caller holds the folder's lock, so no live
    worker owns them): closed as failed without an error (`interrupted`, not counted in the budget)
    and queued again with the same parameters, so their cell resumes from its last checkpoint."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.enqueue_trial(t.params, user_attrs={k: v for k, v in t.user_attrs.items() if k == "defaults"})
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)


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
    from harness.model.load import resolve_model
    from harness.strategy.registry import Registry
    from harness.data.suites import load_suite

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
        params = default_params(space, spec.base_options)
        if params is not None:
            study.enqueue_trial(params, user_attrs={"defaults": True})
    remaining = how.trials - sum(r.state != "interrupted" for r in _rows(study))
    if remaining > 0 and "unsupported" not in study.user_attrs:
        if getattr(how.executor, "name", "local") == "ray":
            _parallel_ray(spec, remaining, how.jobs, how.executor)
        elif how.jobs > 1:
            _parallel(spec, remaining, how.jobs)
        else:
            run_trials(spec, remaining, 0, how.runner or trial_runner(spec, registry), how.say)
    result = _result(open_study(spec), spec, head, time.perf_counter() - t0)
    atomic_write_text(how.folder / "tune.json", to_json(result))
    return result


def _head(spec: TrialSpec, suite: Suite, model: ModelSpec, trials: int) -> dict[str, Any]:
    return dict(strategy=spec.strategy, suite=suite.name, suite_hash=suite.data_hash, model=model.identity,
                metric=spec.metric, direction=METRICS[spec.metric], seed=spec.seed, limit=spec.limit,
                trials_requested=trials, default_options=spec.base_options, best_options=spec.base_options)


def study_result(spec: TrialSpec, trials: int) -> TuneResult:
    """The study as it stands now (an unfinished one too), without running anything."""
    from harness.model.load import resolve_model
    from harness.data.suites import load_suite

    head = _head(spec, dev_view(load_suite(spec.suite)), resolve_model(spec.model), trials)
    return _result(open_study(spec), spec, head, 0.0)


def _result(study: Any, spec: TrialSpec, head: dict[str, Any], wall_s: float) -> TuneResult:
    rows = _rows(study)
    reason = study.user_attrs.get("unsupported")
    done = [r for r in rows if r.state == "complete" and r.value is not None]
    best = None
    if done:
        pick = max if METRICS[spec.metric] == "maximize" else min
        best = pick(done, key=lambda r: (r.value, -r.number) if pick is max else (r.value, r.number))
    default = next((r for r in rows if r.defaults), None)
    return TuneResult(
        status="skipped" if reason else "tuned", reason=reason, **{**head, "best_options": (
            best.options if best else spec.base_options)},
        default_value=default.value if default else None, best_value=best.value if best else None,
        best_trial=best.number if best else None, trials=rows, storage=spec.storage, study_name=spec.study_name,
        sampler=f"TPE (seed {spec.seed}, {spec.startup_trials} random start-up trials)",
        pruner=f"median on dev loss (after {spec.prune_after} finished trials)", wall_s=wall_s,
    )


def load_result(folder: Path) -> TuneResult | None:
    path = folder / "tune.json"
    if not path.is_file():
        return None
    try:
        return from_json(TuneResult, path.read_bytes())
    except ValueError:
        return None


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
        say(_line(result))
    return cfg.model_copy(update={"options": options}), tuple(results)


def _line(r: TuneResult) -> str:
    if r.status != "tuned":
        return f"{r.strategy}: not tuned: {r.reason}"
    best = "–" if r.best_value is None else f"{r.best_value:.4f}"
    return f"{r.strategy}: {r.finished} trials, best {r.metric} {best}, options {r.tuned_params() or 'defaults'}"


def report_rows(results: tuple[TuneResult, ...]) -> tuple[dict[str, Any], ...]:
    """One row per strategy for the report's "How each strategy was tuned" table (plain values)."""
    rows = []
    for r in results:
        states = [t.state for t in r.trials]
        rows.append({
            "strategy": r.strategy, "status": r.status, "reason": r.reason or "", "metric": r.metric,
            "trials": r.trials_requested if r.status == "tuned" else 0, "complete": states.count("complete"),
            "pruned": states.count("pruned"), "failed": states.count("fail"), "default_value": r.default_value,
            "best_value": r.best_value, "seed": r.seed,
            "best_options": ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in r.tuned_params().items()) or "defaults",
        })
    return tuple(rows)
