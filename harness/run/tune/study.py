"""A study: its spec (plain data any worker can receive), its identity, its Optuna storage and sampler."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.cache import stable_hash
from harness.run.tune.dev import METRICS

if TYPE_CHECKING:
    from harness.data.suites import Suite
    from harness.model.spec import ModelSpec

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

def requeue_interrupted(study: Any) -> None:
    """Trials left running by a killed earlier process (the caller holds the folder's lock, so no live
    worker owns them): closed as failed without an error (`interrupted`, not counted in the budget)
    and queued again with the same parameters, so their cell resumes from its last checkpoint."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.enqueue_trial(t.params, user_attrs={k: v for k, v in t.user_attrs.items() if k == "defaults"})
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)


def finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def trial_state(trial: Any) -> str:
    state = str(trial.state.name).lower()
    return "interrupted" if state == "fail" and "error" not in trial.user_attrs else state
