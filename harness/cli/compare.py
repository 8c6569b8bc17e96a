"""`harness compare`: run strategies on a suite and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from harness.cli import constraints as C
from harness.cli.recommend import show as show_decision

console = Console()


def _split(value: str | None) -> list[str] | None:
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


def _batch(value: str | None) -> int | str | None:
    """`auto` as is, a number as int (validated with the rest of the config)."""
    return int(value) if value is not None and value.strip().isdigit() else value


class ProgressView:
    """Turns runner events into a rich progress bar over test items and one line per cell."""

    def __init__(self, progress: Progress, total: int):
        self.progress = progress
        self.bar = progress.add_task("starting", total=total)

    def __call__(self, event: str, **data: Any) -> None:
        cell = data.get("cell")
        label = escape(f"{cell.strategy} seed {cell.seed}") if cell else ""  # names are data, never markup
        if event == "model_loading":
            self.progress.update(self.bar, description=f"loading model {data['model'].ref} (first use converts it)")
        elif event == "cell_start":
            self.progress.update(self.bar, description=f"{label}: adapting")
        elif event == "task_start":
            self.progress.update(self.bar, description=f"{label}: {escape(data['task'])} ({data['n']} items)")
        elif event == "task_done":
            self.progress.advance(self.bar, data["n"])
        elif event == "cell_done":
            rec = data["record"]
            style = {"ok": "green", "skipped": "yellow"}.get(rec.status, "red")
            extra = f": {escape(rec.error)}" if rec.error else ""
            self.progress.console.print(f"[{style}]{rec.status}[/] {label}{extra}", soft_wrap=True)
        elif event == "cells_submitted":
            self.progress.update(self.bar, description=f"{data['n']} cells running on {data['executor']}")
        elif event == "cell_cached" and cell is not None:
            self.progress.console.print(f"[cyan]reused[/] {label} ({cell.cell_id})")


def _summary(records: list[Any]) -> Table:
    table = Table(title="results")
    table.add_column("strategy")
    table.add_column("seed")
    table.add_column("status")
    tasks = list(dict.fromkeys(t.task for r in records for t in r.tasks))
    for t in tasks:
        table.add_column(t)
    table.add_column("p50 ms")
    for r in records:
        by_task = {t.task: t for t in r.tasks}
        cells = [", ".join(f"{k} {v:.3f}" for k, v in by_task[t].metrics.items()) if t in by_task else "–"
                 for t in tasks]
        p50 = f"{r.latency.p50_s * 1000:.0f}" if r.latency else "–"
        table.add_row(r.strategy, str(r.seed), r.status, *cells, p50)
    return table


def compare(
    suite: str = typer.Option(None, "--suite", "-s", help="Suite name (see `harness suites`), folder, or "
                              "<format>:<path> (contractnli, legalbench, mmlu, table; imported once, cached)."),
    model: str = typer.Option(None, "--model", "-m",
                              help="Model: smollm2-135m-instruct (default, embedded), hub id, folder or .gguf."),
    strategies: str = typer.Option(None, "--strategies",
                                   help="Comma-separated strategy names, or `all` for every registered one; default: "
                                        "zero-shot, few-shot, rag, lora, qlora, dora, full-ft."),
    seed: list[int] = typer.Option(None, "--seed", help="Seed; repeat for several seeds (default 0)."),
    limit: int = typer.Option(None, "--limit", help="Evaluate at most N test items per task (quick runs)."),
    out: str = typer.Option(None, "--out", help="Output folder (default reports/), or a URL fsspec knows (s3://, "
                            "gs://, file://...): records and reports are mirrored there (README, Scaling out)."),
    config: Path = typer.Option(None, "--config", help="run.toml with these keys and per-strategy options."),
    plugin: list[Path] = typer.Option(None, "--plugin", help="Load strategies from this Python file too."),
    batch_size: str = typer.Option(None, "--batch-size", help="Evaluation batch size (default 8), or `auto`: the "
                                   "largest whose KV cache fits in half the free CPU RAM or GPU memory."),
    device: str = typer.Option(None, "--device", help="cpu or cuda (default: cuda when present)."),
    trust_remote_code: bool = typer.Option(None, "--trust-remote-code",
                                           help="Allow model code from the model folder (off by default)."),
    executor: str = typer.Option(None, "--executor", help="Where cells run: local (default, in this process) "
                                 "or ray (one Ray task per cell; pip install 'harness\\[ray]')."),
    ray_address: str = typer.Option(None, "--ray-address", help="Ray cluster to join (`auto` or host:port); "
                                    "default: a private local cluster for this run."),
    retention: bool = typer.Option(None, "--retention/--no-retention",
                                   help="Measure forgetting on the suite's retention suite (default on)."),
    tune_trials: int = typer.Option(None, "--tune-trials", min=1, help="Tune every strategy that has a search space "
                                    "with the same N Optuna trials on dev first (see `harness tune`); cached."),
    tune_jobs: int = typer.Option(1, "--tune-jobs", min=1, help="Worker processes per study when tuning."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Log each cell as an MLflow run (pip install "
                                "'harness\\[track]') in a local sqlite store in the run folder (mlflow/mlflow.db)."),
    mlflow_uri: str = typer.Option(None, "--mlflow-uri", metavar="TRACKING_URI",
                                   help="Log to this MLflow tracking URI instead (a server, a database); "
                                        "implies --mlflow."),
    max_latency_ms: float = C.MAX_LATENCY,
    max_forgetting_pt: float = C.MAX_FORGETTING,
    budget_usd: float = C.BUDGET,
    max_memory_gb: float = C.MAX_MEMORY,
    queries_per_month: float = C.QUERIES,
    months: int = C.MONTHS,
    weights: str = C.WEIGHTS,
    price_per_hour: float = C.PRICE,
) -> None:
    """Run strategies on a suite and write reports/<suite>/<run>/ with report.html, report.md and the
    JSON records of every cell, with a decision under the constraints given (see `harness recommend`).

    A cell is one strategy with one seed. Finished cells are cached under reports/<suite>/cells/ by a
    hash of everything that determines their result, so an interrupted compare resumes where it
    stopped and an identical re-run reuses every cell. Exit code 0: all cells ran or were skipped with
    a reason; 1: a cell failed; 2: bad input (nothing is written).
    """
    from harness.core.cache import exclusive
    from harness.run.config import load_config
    from harness.run.executors import make_executor
    from harness.model.load import pick_device, resolve_model
    from harness.strategy.registry import Registry
    from harness.run.runner import Runner, make_plan
    from harness.data.suites import load_suite

    cfg = load_config(config, {
        "suite": suite, "model": model, "strategies": _split(strategies), "seeds": seed or None,
        "limit": limit, "out": out, "batch_size": _batch(batch_size), "trust_remote_code": trust_remote_code,
        "plugins": plugin or None, "retention": retention, "executor": executor, "ray_address": ray_address,
    })
    remote = _remote(cfg.out_url)
    decide = C.constraints_from(cfg.decide, max_latency_ms=max_latency_ms, max_forgetting_pt=max_forgetting_pt,
                                budget_usd=budget_usd, max_memory_gb=max_memory_gb,
                                queries_per_month=queries_per_month, months=months, weights=weights,
                                price_per_hour=price_per_hour)
    registry = Registry.discover()
    for p in cfg.plugins:
        registry.add_plugin_file(p)
    the_suite = load_suite(cfg.suite)
    device = device or pick_device()
    plan = make_plan(cfg, the_suite, resolve_model(cfg.model), registry, device)
    base = cfg.out / the_suite.name
    runner = Runner(plan, registry, base / "cells", device=device, trust_remote_code=cfg.trust_remote_code,
                    remote=remote)
    run_on = make_executor(cfg)
    with exclusive(base):
        tuned: tuple[Any, ...] = ()
        if tune_trials:
            from harness.run.runner import strategy_names
            from harness.run.tune import report_rows, tune_strategies

            cfg, results = tune_strategies(cfg, the_suite, plan.model, registry, strategy_names(cfg, registry),
                                           tune_trials, device, tune_jobs, lambda line: console.print(Text(line)),
                                           run_on)
            tuned = report_rows(results)
            plan = make_plan(cfg, the_suite, plan.model, registry, device)
            runner = Runner(plan, registry, base / "cells", device=device, trust_remote_code=cfg.trust_remote_code,
                            remote=remote)
        _run(plan, runner, base, the_suite, decide, run_on, tuned, mlflow_uri or ("local" if mlflow else None))


def _remote(url: str | None) -> Any:
    """The URL --out mirrors to (harness.run.remote), checked before anything runs; None for a local folder."""
    if url is None:
        return None
    from harness.run.remote import RemoteOut

    remote = RemoteOut(url)
    remote.check()
    return remote


def _push(remote: Any, run_dir: Path, shared: list[Path]) -> Any:
    """Mirror the run folder, and any cell record or base figures the URL lacks (a push that failed
    earlier), to the URL; how to show a path."""
    if remote is None:
        return str
    n, late = remote.push_tree(run_dir), remote.push_missing(shared)
    extra = f", and {late} cached files the URL lacked" if late else ""
    console.print(Text(f"pushed the run folder ({n} files) to {remote.display(run_dir)}{extra}"))
    return remote.display


def _run(plan: Any, runner: Any, base: Path, the_suite: Any, decide: dict[str, Any], run_on: Any = None,
         tuned: tuple[Any, ...] = (), mlflow: str | None = None) -> None:
    from harness.core.faults import kill_point
    from harness.report import write_run

    pending = [c for c in plan.cells if runner.cached(c) is None]
    per_cell = plan.items_per_cell()
    for note in the_suite.notes:
        console.print(Text(f"note: {note}"))
    where = f", executor {run_on.name}" if run_on and run_on.name != "local" else ""
    console.print(f"[bold]{the_suite.name}[/]: {len(plan.cells)} cells ({len(plan.cells) - len(pending)} cached), "
                  f"model {plan.model.ref}, device {runner.device}{where}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        runner.emit = ProgressView(progress, total=len(pending) * per_cell)
        kill_point("run-start")
        records = run_on.run(runner) if run_on else runner.run()
    run_dir = base / plan.run_id
    _, decision = write_run(run_dir, plan.run_id, records, decide, tuned, the_suite.notes)
    if mlflow:
        from harness.run.tracking import log_run

        uri = log_run(run_dir, records, None if mlflow == "local" else mlflow)
        console.print(f"mlflow: {len(records)} runs logged to {escape(uri)}")
    shared = [runner.record_path(c) for c in plan.cells] + ([runner.probe.base_path] if runner.probe else [])
    where = _push(runner.remote, run_dir, shared)
    console.print(_summary(records))
    show_decision(decision)
    console.print(f"report: {where(run_dir / 'report.html')}\n        {where(run_dir / 'report.md')}")
    if any(r.status == "failed" for r in records):
        raise typer.Exit(1)
