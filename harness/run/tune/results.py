"""What a study produced: every trial as a row, the best options, the result file and the report rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.records import from_json
from harness.run.tune.dev import METRICS
from harness.run.tune.study import TrialSpec, finite, trial_state


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

def trial_rows(study: Any) -> tuple[TrialRow, ...]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if trial_state(t) not in ("complete", "pruned", "fail", "interrupted"):
            continue
        a = t.user_attrs
        rows.append(TrialRow(
            number=t.number, state=trial_state(t), params=dict(t.params), options=a.get("options", {}),
            value=finite(t.value) if t.values and trial_state(t) == "complete" else None,
            dev_accuracy=a.get("dev_accuracy"), best_dev_loss=a.get("best_dev_loss"),
            intermediate={str(k): float(v) for k, v in sorted(t.intermediate_values.items())},
            defaults=bool(a.get("defaults")), duration_s=t.duration.total_seconds() if t.duration else None,
            cell_id=a.get("cell_id"), error=a.get("error") or a.get("pruned"),
        ))
    return tuple(rows)

def result_of(study: Any, spec: TrialSpec, head: dict[str, Any], wall_s: float) -> TuneResult:
    rows = trial_rows(study)
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

def summary_line(r: TuneResult) -> str:
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
