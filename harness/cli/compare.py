"""`harness compare`: run strategies on a suite and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from harness.cli import constraints as C
from harness.cli.plan import plan_event
from harness.cli.recommend import show as show_decision

console = Console()


def _split(value: str | None) -> list[str] | None:
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


def _batch(value: str | None) -> int | str | None:
    """`auto` as is, a number as int (validated with the rest of the config)."""
    return int(value) if value is not None and value.strip().isdigit() else value


class ProgressView:
    """Turns runner events into a rich progress bar over test items (with an ETA), a second bar over a
    training's steps (with its loss), and one line per cell; says where the report is once it exists."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.bar = progress.add_task("starting", total=None)
        self.train: Any = None
        self.report_shown = False
        self.handlers = {"run_start": self.start, "model_loading": self.loading, "cell_start": self.adapting,
                         "train_step": self.step, "report_written": self.report, "task_start": self.task,
                         "task_done": self.advance, "cell_done": self.done, "cells_submitted": self.submitted,
                         "cell_cached": self.reused}

    def __call__(self, event: str, **data: Any) -> None:
        cell = data.get("cell")
        label = escape(f"{cell.strategy} seed {cell.seed}") if cell else ""  # names are data, never markup
        if event in _MESSAGES:
            self.progress.console.print(_MESSAGES[event](data), soft_wrap=True)
        elif event in self.handlers:
            self.handlers[event](label, data)

    def say(self, text: str) -> None:
        self.progress.update(self.bar, description=text)

    def loading(self, label: str, data: dict[str, Any]) -> None:
        self.say(f"loading model {escape(data['model'].ref)} (first use converts it)")

    def adapting(self, label: str, data: dict[str, Any]) -> None:
        self.say(f"{label}: adapting")

    def task(self, label: str, data: dict[str, Any]) -> None:
        self.say(f"{label}: {escape(data['task'])} ({data['n']} items)")

    def advance(self, label: str, data: dict[str, Any]) -> None:
        self.progress.advance(self.bar, data["n"])

    def submitted(self, label: str, data: dict[str, Any]) -> None:
        self.say(f"{data['n']} cells running on {data['executor']}")

    def reused(self, label: str, data: dict[str, Any]) -> None:
        self.progress.console.print(f"[cyan]reused[/] {label} ({data['cell'].cell_id})")

    def report(self, label: str, data: dict[str, Any]) -> None:
        if not self.report_shown:
            self.report_shown = True
            self.progress.console.print(Text(f"report (rewritten after every cell): {data['folder']}/report.html"))

    def done(self, label: str, data: dict[str, Any]) -> None:
        if self.train is not None:
            self.progress.remove_task(self.train)
            self.train = None
        rec = data["record"]
        style = {"ok": "green", "skipped": "yellow"}.get(rec.status, "red")
        extra = f": {escape(rec.error)}" if rec.error else ""
        self.progress.console.print(f"[{style}]{rec.status}[/] {label}{extra}", soft_wrap=True)

    def step(self, label: str, data: dict[str, Any]) -> None:
        loss = "" if data["loss"] is None else f", loss {data['loss']:.3f}"
        text = f"{label}: training step {data['step']}/{data['steps']}{loss}"
        if self.train is None:
            self.train = self.progress.add_task(text, total=data["steps"])
        self.progress.update(self.train, description=text, completed=data["step"], total=data["steps"])

    def start(self, label: str, data: dict[str, Any]) -> None:
        plan = data["plan"]
        for note in data["notes"]:
            self.progress.console.print(Text(f"note: {note}"))
        where = f", executor {data['executor']}" if data["executor"] != "local" else ""
        cells, models = len(plan.cells), ", ".join(m.ref for m in plan.models or [plan.model])
        self.progress.console.print(f"[bold]{escape(plan.suite.name)}[/]: {cells} cells ({cells - data['pending']} "
                                    f"cached), model {escape(models)}, device {data['device']}{where}")
        self.progress.update(self.bar, total=data["pending"] * plan.items_per_cell())


_MESSAGES = {
    "tune": lambda d: Text(d["line"]),
    "plan": plan_event,
    "mlflow": lambda d: Text(f"mlflow: {d['n']} runs logged to {d['uri']}"),
    "pushed": lambda d: Text(f"pushed the run folder ({d['n']} files) to {d['where']}"
                             + (f", and {d['late']} cached files the URL lacked" if d["late"] else "")),
}


def _summary(records: list[Any]) -> Table:
    table = Table(title="results")
    table.add_column("strategy")
    table.add_column("seed")
    table.add_column("status")
    tasks = list(dict.fromkeys(t.task for r in records for t in r.tasks))
    for t in tasks:
        table.add_column(t)
    table.add_column("p50 ms")
    from harness.decide.arms import with_arms

    for r in with_arms(records):  # several models: model/strategy
        by_task = {t.task: t for t in r.tasks}
        cells = [", ".join(f"{k} {v:.3f}" for k, v in by_task[t].metrics.items()) if t in by_task else "–"
                 for t in tasks]
        p50 = f"{r.latency.p50_s * 1000:.0f}" if r.latency else "–"
        table.add_row(r.strategy, str(r.seed), r.status, *cells, p50)
    return table


def _overrides(f: dict[str, Any]) -> dict[str, Any]:
    """The run-config keys the flags set (None: not given, the config file's or the default value)."""
    return {
        "suite": f["suite"], "model": f["model"], "models": _split(f["models"]), "strategies": _split(f["strategies"]),
        "seeds": f["seed"] or None, "rerun": _split(f["rerun"]), "limit": f["limit"], "out": f["out"],
        "batch_size": _batch(f["batch_size"]),
        "trust_remote_code": f["trust_remote_code"], "plugins": f["plugin"] or None, "retention": f["retention"],
        "executor": f["executor"], "ray_address": f["ray_address"], "device": f["device"],
        "tune_trials": f["tune_trials"], "tune_jobs": f["tune_jobs"] if f["tune_jobs"] != 1 else None,
        "mlflow": f["mlflow"] or None, "mlflow_uri": f["mlflow_uri"],
    }


COLUMNS = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
           TextColumn("eta"), TimeRemainingColumn())

# The flags of `harness compare` (the decision's are shared with `recommend`: harness.cli.constraints).
SUITE = typer.Option(None, "--suite", "-s", help="Suite name (see `harness suites`), folder, or "
    "<format>:<path> (contractnli, legalbench, mmlu, table; imported once, cached).")
MODEL = typer.Option(None, "--model", "-m",
    help="Model: smollm2-135m-instruct (default, embedded), hub id, folder or .gguf.")
MODELS = typer.Option(None, "--models", help="Several models, comma-separated: cells become (model, strategy, "
    "seed), the report adds a model x strategy grid, and the decision picks a (model, strategy) pair.")
STRATEGIES = typer.Option(None, "--strategies",
    help="Comma-separated strategy names, or `all` for every registered one; default: "
    "zero-shot, few-shot, rag, lora, qlora, dora, full-ft.")
SEED = typer.Option(None, "--seed", help="Seed; repeat for several seeds (default 0).")
LIMIT = typer.Option(None, "--limit", help="Evaluate at most N test items per task (quick runs).")
OUT = typer.Option(None, "--out", help="Output folder (default reports/), or a URL fsspec knows (s3://, "
    "gs://, file://...): records and reports are mirrored there (README, Scaling out).")
CONFIG = typer.Option(None, "--config", help="run.toml with these keys and per-strategy options.")
PLUGIN = typer.Option(None, "--plugin", help="Load strategies from this Python file too.")
BATCH_SIZE = typer.Option(None, "--batch-size", help="Evaluation batch size (default 8), or `auto`: the "
    "largest whose KV cache fits in half the free CPU RAM or GPU memory.")
DEVICE = typer.Option(None, "--device", help="cpu or cuda (default: cuda when present).")
TRUST_REMOTE_CODE = typer.Option(None, "--trust-remote-code",
    help="Allow model code from the model folder (off by default).")
EXECUTOR = typer.Option(None, "--executor", help="Where cells run: local (default, in this process) "
    "or ray (one Ray task per cell; pip install 'harness\\[ray]').")
RAY_ADDRESS = typer.Option(None, "--ray-address", help="Ray cluster to join (`auto` or host:port); "
    "default: a private local cluster for this run.")
RETENTION = typer.Option(None, "--retention/--no-retention",
    help="Measure forgetting on the suite's retention suite (default on).")
TUNE_TRIALS = typer.Option(None, "--tune-trials", min=1, help="Tune every strategy that has a search space "
    "with the same N Optuna trials on dev first (see `harness tune`); cached.")
TUNE_JOBS = typer.Option(1, "--tune-jobs", min=1, help="Worker processes per study when tuning.")
MLFLOW = typer.Option(False, "--mlflow", help="Log each cell as an MLflow run (pip install "
    "'harness\\[track]') in a local sqlite store in the run folder (mlflow/mlflow.db).")
MLFLOW_URI = typer.Option(None, "--mlflow-uri", metavar="TRACKING_URI",
    help="Log to this MLflow tracking URI instead (a server, a database); "
    "implies --mlflow.")


RERUN = typer.Option(None, "--rerun", metavar="NAME[,NAME]|all", help="Recompute these strategies' cells "
    "although finished records exist (cells are otherwise reused whenever their inputs are unchanged).")


def compare(
    suite: str = SUITE,
    model: str = MODEL,
    models: str = MODELS,
    strategies: str = STRATEGIES,
    seed: list[int] = SEED,
    rerun: str = RERUN,
    limit: int = LIMIT,
    out: str = OUT,
    config: Path = CONFIG,
    plugin: list[Path] = PLUGIN,
    batch_size: str = BATCH_SIZE,
    device: str = DEVICE,
    trust_remote_code: bool = TRUST_REMOTE_CODE,
    executor: str = EXECUTOR,
    ray_address: str = RAY_ADDRESS,
    retention: bool = RETENTION,
    tune_trials: int = TUNE_TRIALS,
    tune_jobs: int = TUNE_JOBS,
    mlflow: bool = MLFLOW,
    mlflow_uri: str = MLFLOW_URI,
    max_latency_ms: float = C.MAX_LATENCY,
    max_forgetting_pt: float = C.MAX_FORGETTING,
    budget_usd: float = C.BUDGET,
    max_memory_gb: float = C.MAX_MEMORY,
    queries_per_month: float = C.QUERIES,
    months: int = C.MONTHS,
    weights: str = C.WEIGHTS,
    price_per_hour: float = C.PRICE,
    margin_pt: float = C.MARGIN,
    cost_basis: str = C.COST_BASIS,
    updates_per_month: float = C.UPDATES,
) -> None:
    """Run strategies on a suite and write reports/<suite>/<run>/ with report.html, report.md and the
    JSON records of every cell, with a decision under the constraints given (see `harness recommend`).

    A cell is one strategy with one seed, cached under reports/<suite>/cells/ by a hash of everything
    that determines its result: an interrupted compare resumes, an identical re-run reuses every cell.
    Exit code 0: all cells ran or were skipped with a reason; 1: a cell failed; 2: bad input.
    """
    import harness.api as api
    from harness.run.config import load_config

    flags = dict(locals())
    cfg = load_config(config, _overrides(flags))
    cfg = cfg.model_copy(update={"decide": C.constraints_from(cfg.decide, **C.given(flags))})
    with Progress(*COLUMNS, console=console, transient=True) as progress:
        run = api.compare(cfg, on_event=ProgressView(progress))
    console.print(_summary(list(run.records)))
    if run.decision is not None:
        show_decision(run.decision)
    where = run.url or run.folder
    console.print(Text(f"report: {where}/report.html\n        {where}/report.md"))
    if run.failed:
        raise typer.Exit(1)
