"""The library face of harness: what the CLI calls, and what a notebook or another tool calls.

    import harness

    run = harness.compare({"suite": "legal-qa", "strategies": ["zero-shot", "few-shot"], "limit": 10})
    print(run.decision.pick, run.folder)
    decision = harness.recommend(run, {"max_latency_ms": 800, "queries_per_month": 50_000})
    again = harness.load_run(run.folder)

`compare` runs (or reuses) every cell of the plan and writes reports/<suite>/<run-id>/ exactly as
`harness compare` does; progress comes through `on_event(name, **data)` (the CLI draws its progress
bar from the same events). Bad input raises HarnessError before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.cache import exclusive
from harness.core.errors import HarnessError
from harness.core.faults import kill_point
from harness.core.records import CellRecord
from harness.decide.analysis import analyze
from harness.decide.arms import with_arms
from harness.decide.decision import Constraints, Decision, merge_constraints
from harness.decide.decision import recommend as decide
from harness.report import load_run as load_run_files
from harness.report import write_run
from harness.run.config import CompareConfig, load_config

if TYPE_CHECKING:
    from harness.data.suites import Suite
    from harness.model.plan import CellPlan
    from harness.run.plan import Plan
    from harness.run.runner import Runner
    from harness.run.tune import TuneResult

Event = Callable[..., None]
"""on_event(name, **data): run_start, model_loading, cell_cached, cell_start, task_start, task_done,
cell_done, cells_submitted, tune (one line per finished trial), mlflow, pushed, plan (the predicted
table, right after run_start)."""


@dataclass(frozen=True)
class Run:
    """A finished compare (or one loaded from its folder): its records and the decision."""

    folder: Path
    """reports/<suite>/<run-id>: report.html, report.md, report.json, records/."""
    run_id: str
    suite: str
    records: tuple[CellRecord, ...]
    constraints: dict[str, Any] = field(default_factory=dict)
    """The constraints the decision was made under (saved with the run)."""
    decision: Decision | None = None
    url: str | None = None
    """Where the run folder was pushed, when --out is a URL (`folder` is then its local staging copy)."""

    @property
    def failed(self) -> bool:
        """Whether any cell failed (the CLI exits 1)."""
        return any(r.status == "failed" for r in self.records)

    @property
    def report_html(self) -> Path:
        return self.folder / "report.html"

    @property
    def report_md(self) -> Path:
        return self.folder / "report.md"


def _config(config: CompareConfig | Mapping[str, Any] | str | Path) -> CompareConfig:
    """A CompareConfig from itself, a dict of its keys, or a run.toml path."""
    if isinstance(config, CompareConfig):
        return config
    if isinstance(config, str | Path):
        return load_config(Path(config), {})
    return load_config(None, dict(config))


def recommend(run: Run | str | Path, constraints: Constraints | Mapping[str, Any] | None = None) -> Decision:
    """The decision on a run's records under `constraints` (added to those saved with the run);
    no model is loaded."""
    loaded = run if isinstance(run, Run) else load_run(run)
    given = constraints.model_dump(exclude_defaults=True) if isinstance(constraints, Constraints) else constraints
    merged = merge_constraints(loaded.constraints, **dict(given or {}))
    return decide(analyze(with_arms(loaded.records)), Constraints.model_validate(merged))


def load_run(path: str | Path) -> Run:
    """A run folder written by compare, with the decision under its saved constraints."""
    folder = Path(path)
    report, records = load_run_files(folder)
    decision = decide(analyze(with_arms(records)), Constraints.model_validate(report.constraints))
    return Run(folder, report.run_id, report.suite, tuple(records), dict(report.constraints), decision)


def compare(config: CompareConfig | Mapping[str, Any] | str | Path, *, on_event: Event | None = None) -> Run:
    """Run every cell of the configured compare (reusing finished ones), write the report and decide.
    `config`: a CompareConfig, a dict of its keys (as in run.toml), or a run.toml path."""
    from harness.run.setup import prepare

    cfg = _config(config)
    emit: Event = on_event or (lambda *a, **k: None)
    constraints = merge_constraints(cfg.decide)
    ready = prepare(cfg, emit)
    with exclusive(ready.base):
        tuned: tuple[dict[str, Any], ...] = ()
        if cfg.tune_trials:
            ready, tuned = ready.tuned(emit)
        emit("run_start", plan=ready.plan, pending=ready.pending(), device=ready.runner.device,
             executor=ready.executor.name, notes=ready.suite.notes)
        _preflight(ready, emit)
        ready.runner.emit = PartialReports(cfg, ready.plan, ready.runner, ready.suite, constraints, tuned, emit)
        kill_point("run-start")
        records = ready.executor.run(ready.runner)
        return _finish(cfg, ready.plan, ready.runner, ready.suite, records, constraints, tuned, emit)


def plan(config: CompareConfig | Mapping[str, Any] | str | Path, *, memory_gb: float | None = None,
         device_kind: str | None = None) -> list[CellPlan]:
    """Each cell of the configured compare, predicted before anything runs (harness.model.plan): trainable
    parameters, peak memory by term, training steps, wall time, and whether it fits `device_kind`'s memory
    (default: the compare's device; `memory_gb`: another device's). No weights load; nothing is written."""
    from harness.model.plan import plan_cells
    from harness.run.setup import prepare

    cfg = _config(config)
    ready = prepare(cfg, lambda *a, **k: None)
    return plan_cells(ready.plan, ready.registry, device_kind or ready.runner.device, memory_gb,
                      trust_remote_code=cfg.trust_remote_code)


def _preflight(ready: Any, emit: Event) -> None:
    """The plan's table before the first cell (event `plan`); a cell predicted not to fit is skipped with
    the reason before anything trains. A model the planner cannot read is run as before (`error`)."""
    from harness.model.plan import plan_cells

    try:
        rows = plan_cells(ready.plan, ready.registry, ready.runner.device,
                          trust_remote_code=ready.cfg.trust_remote_code)
    except Exception as e:  # planning only informs: it never stops a compare
        emit("plan", rows=[], error=f"{type(e).__name__}: {e}")
        return
    emit("plan", rows=rows, error=None)
    ready.runner.unfit = {r.cell_id: r.reason for r in rows if not r.fits}


@dataclass
class PartialReports:
    """Passes the runner's events on, and after every finished (or reused) cell rewrites the run's
    report.html, report.md and report.json (atomically) from the cells so far, marked "partial: k of n
    cells": a user opens the report while the weight strategies still train."""

    cfg: CompareConfig
    plan: Plan
    runner: Runner
    suite: Suite
    constraints: dict[str, Any]
    tuned: tuple[dict[str, Any], ...]
    emit: Event
    done: dict[str, CellRecord] = field(default_factory=dict)

    def __call__(self, event: str, **data: Any) -> None:
        self.emit(event, **data)
        if event not in ("cell_done", "cell_cached"):
            return
        self.done[data["cell"].cell_id] = data["record"]
        if len(self.done) < len(self.plan.cells):  # the last cell's report is the final one (_finish)
            self.write()

    def write(self) -> None:
        records = [self.done[c.cell_id] for c in self.plan.cells if c.cell_id in self.done]
        run_dir = self.runner.cells_dir.parent / self.plan.run_id
        write_run(run_dir, self.plan.run_id, records, self.constraints, self.tuned, self.suite.notes,
                  self.cfg.baseline, progress=(len(records), len(self.plan.cells)))
        self.emit("report_written", folder=run_dir, done=len(records), total=len(self.plan.cells))


def _finish(cfg: CompareConfig, plan: Plan, runner: Runner, suite: Suite, records: list[CellRecord],
            constraints: dict[str, Any], tuned: tuple[dict[str, Any], ...], emit: Event) -> Run:
    """Write the run folder, log to MLflow, push to the URL; the Run."""
    if not records:
        raise HarnessError("nothing to run: the plan has no cells")
    run_dir = runner.cells_dir.parent / plan.run_id
    _, decision = write_run(run_dir, plan.run_id, records, constraints, tuned, suite.notes, cfg.baseline)
    if cfg.mlflow or cfg.mlflow_uri:
        from harness.run.tracking import log_run

        uri = log_run(run_dir, records, cfg.mlflow_uri)
        emit("mlflow", n=len(records), uri=uri)
    url = None
    if runner.remote is not None:
        shared = [runner.record_path(c) for c in plan.cells] + runner.base_paths()
        pushed, late = runner.remote.push_tree(run_dir), runner.remote.push_missing(shared)
        url = runner.remote.display(run_dir)
        emit("pushed", n=pushed, late=late, where=url)
    return Run(run_dir, plan.run_id, suite.name, tuple(records), constraints, decision, url)


def tune(config: CompareConfig | Mapping[str, Any] | str | Path, strategy: str, *, trials: int = 20,
         metric: str = "dev-accuracy", seed: int = 0, jobs: int = 1, storage: str | None = None,
         say: Callable[[str], None] | None = None) -> tuple[TuneResult, Path]:
    """Search one strategy's options with Optuna on the suite's dev split (see harness.run.tune);
    writes tune.json in the study folder under <out>/<suite>/tuning/; the result and that folder."""
    from harness.core.cache import atomic_write_text
    from harness.core.records import to_json
    from harness.run.setup import tuning

    cfg = _config(config)
    if cfg.out_url:
        raise HarnessError(f"--out {cfg.out_url}: a study is written locally (its journal needs a file lock); "
                           "give a folder")
    spec, how, base = tuning(cfg, strategy, trials, seed, metric, storage, jobs, say)
    if say is not None:
        say(f"{base.name}: tuning {strategy}, {trials} trials on dev, study in {how.folder}")
    with exclusive(base):
        from harness.run.tune import tune as run_tune

        result = run_tune(spec, how)
    atomic_write_text(how.folder / "tune.json", to_json(result))
    return result, how.folder
