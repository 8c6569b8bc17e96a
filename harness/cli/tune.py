"""`harness tune`: Optuna search over one strategy's options, scored on the suite's dev split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()


def trials_table(result: Any) -> Table:
    """One row per trial: state, dev figure, pruning step and the sampled parameters."""
    table = Table(title=f"{result.strategy}: {result.metric} on dev ({result.finished} trials)")
    extra = ["dev-accuracy"] if result.metric != "dev-accuracy" else []
    for col in ("trial", "state", result.metric, *extra, "params", "note"):
        table.add_column(col)
    for t in result.trials:
        mark = " (defaults)" if t.defaults else ""
        value = "–" if t.value is None else f"{t.value:.4f}"
        acc = "–" if t.dev_accuracy is None else f"{t.dev_accuracy:.4f}"
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        state = t.state if t.state != "pruned" else f"pruned@{max(map(int, t.intermediate), default=0)}"
        cells = [value, *([acc] if extra else []), params, escape(t.error or "")]
        table.add_row(f"{t.number}{mark}", state, *cells, style="bold" if t.number == result.best_trial else None)
    return table


def describe(result: Any) -> str:
    """One line: best against the defaults, or why the strategy was not tuned."""
    if result.status != "tuned":
        return f"{result.strategy}: not tuned: {result.reason}"
    if result.best_value is None:
        return f"{result.strategy}: no trial finished (see the table)"
    fmt = "{:.4f}".format
    base = "–" if result.default_value is None else fmt(result.default_value)
    chosen = result.tuned_params() or "the defaults"
    return (f"{result.strategy}: best {result.metric} {fmt(result.best_value)} (trial {result.best_trial}) vs "
            f"defaults {base}; best options: {chosen}")


def tune(
    suite: str = typer.Option(None, "--suite", "-s", help="Suite name, folder, or <format>:<path>."),
    strategy: str = typer.Option(..., "--strategy", help="Strategy to tune (see `harness strategies`)."),
    trials: int = typer.Option(20, "--trials", help="Trials in the study (trial 0 runs the default options)."),
    metric: str = typer.Option("dev-accuracy", "--metric", help="dev-accuracy (the headline score on dev items, "
                               "maximized) or dev-loss (best training dev loss, minimized; weight strategies)."),
    model: str = typer.Option(None, "--model", "-m", help="Model (default smollm2-135m-instruct)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the cells and of the TPE sampler."),
    limit: int = typer.Option(None, "--limit", help="Score at most N dev items per task (quick runs)."),
    out: str = typer.Option(None, "--out", help="Output folder (default reports/); the study goes to "
                             "<out>/<suite>/tuning/<strategy>-<key>/."),
    config: Path = typer.Option(None, "--config", help="run.toml: \\[options.<strategy>] is where the search starts."),
    plugin: list[Path] = typer.Option(None, "--plugin", help="Load strategies from this Python file too."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Worker processes sharing the study (each loads the model)."),
    storage: str = typer.Option(None, "--storage", help="Optuna RDB URL (e.g. postgresql://...) instead of the "
                                "study.journal file in the study folder."),
    device: str = typer.Option(None, "--device", help="cpu or cuda (default: cuda when present)."),
    executor: str = typer.Option(None, "--executor", help="local (default: here, or --jobs processes) or ray: "
                                 "the trials as Ray tasks sharing the study (--jobs tasks; 1: one per cluster CPU)."),
    ray_address: str = typer.Option(None, "--ray-address", help="Ray cluster to join (`auto` or host:port); "
                                    "default: a private local cluster."),
) -> None:
    """Search a strategy's options with Optuna (seeded TPE sampler, median pruner on the dev loss of
    weight strategies) and write tune.json (every trial, best options) next to the study's storage.
    Trials are scored on the dev split only; test items are never read. A finished study with the same
    inputs is reused; an interrupted one resumes."""
    import harness.api as api
    from harness.run.config import load_config

    cfg = load_config(config, {"suite": suite, "model": model, "limit": limit, "out": out, "device": device,
                               "plugins": plugin or None, "executor": executor, "ray_address": ray_address})
    result, folder = api.tune(cfg, strategy, trials=trials, metric=metric, seed=seed, jobs=jobs, storage=storage,
                      say=lambda line: console.print(line, markup=False))
    if result.trials:
        console.print(trials_table(result))
    console.print(describe(result), soft_wrap=True, markup=False)
    console.print(f"results: {folder / 'tune.json'}")
