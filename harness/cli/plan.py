"""`harness plan`: each cell of a compare, predicted before anything runs: trainable parameters, peak
memory with its breakdown, training steps, wall time, and whether it fits the device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

# The flags of `harness compare` that decide the cells (harness.cli.compare imports this module for the
# table it prints first, so they are declared here again rather than imported from there).
SUITE = typer.Option(None, "--suite", "-s", help="Suite name, folder, or <format>:<path> (as for compare).")
MODEL = typer.Option(None, "--model", "-m", help="Model: smollm2-135m-instruct (default), hub id, folder or .gguf.")
MODELS = typer.Option(None, "--models", help="Several models, comma-separated (as for compare).")
STRATEGIES = typer.Option(None, "--strategies", help="Comma-separated strategy names, or `all`; default: "
                          "zero-shot, few-shot, rag, lora, qlora, dora, full-ft.")
SEED = typer.Option(None, "--seed", help="Seed; repeat for several seeds (default 0).")
LIMIT = typer.Option(None, "--limit", help="Evaluate at most N test items per task.")
CONFIG = typer.Option(None, "--config", help="run.toml with these keys and per-strategy options.")
PLUGIN = typer.Option(None, "--plugin", help="Load strategies from this Python file too.")
DEVICE = typer.Option(None, "--device", help="cpu or cuda (default: cuda when present).")
MEMORY_GB = typer.Option(None, "--memory-gb", min=0.001, help="Plan for a device with this much memory (GB) "
                         "instead of this machine's RAM or CUDA memory.")
DEVICE_KIND = typer.Option(None, "--device-kind", help="cpu or cuda: plan for that kind of device (e.g. a GPU "
                           "from a CPU machine, with --memory-gb); default: --device, else this machine's.")
BATCH_SIZE = typer.Option(None, "--batch-size", help="Evaluation batch size (default 8), or `auto`.")
AS_JSON = typer.Option(False, "--json", help="Print the rows as JSON instead of a table.")


def _split(value: str | None) -> list[str] | None:
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


def _batch(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.strip().isdigit() else value


def _seconds(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def plan_table(rows: list[Any]) -> Table:
    """The plan as a table: one row per cell (harness.model.plan.CellPlan); the fit's reason where it does not."""
    where = f" for {rows[0].device}" if rows else ""
    table = Table(title=f"plan{where} (predicted before anything runs)", title_justify="left")
    for name in ("strategy", "trainable", "steps", "peak GB", "fits", "adapt", "eval"):
        table.add_column(name, no_wrap=name != "fits")
    table.add_column("memory (GB)", overflow="fold")
    several = len({x.model for x in rows}) > 1
    for r in rows:
        label = (f"{r.model}: " if several else "") + r.strategy + (f" seed {r.seed}" if r.seed else "")
        share = f" ({100 * r.trainable / r.total_params:.3g}%)" if r.trainable and r.total_params else ""
        t = r.time
        fits = "yes" if r.fits else f"[red]no[/]: {r.reason}"
        table.add_row(label, f"{r.trainable:,}{share}", str(r.steps or "–"), f"{r.peak_gb:.2f}", fits,
                      _seconds(t and t.adapt_s), _seconds(t and t.eval_s), r.memory.describe())
    notes = list(dict.fromkeys(n for r in rows for n in r.memory.notes))
    if notes:
        table.caption, table.caption_justify = "\n".join(notes), "left"
    return table


def plan_event(data: dict[str, Any]) -> Any:
    """What `harness compare` prints for the `plan` event: the table, or why there is none."""
    if data.get("error"):
        return Text(f"plan: not predicted ({data['error']})")
    return plan_table(list(data["rows"]))


def plan(
    suite: str = SUITE,
    model: str = MODEL,
    models: str = MODELS,
    strategies: str = STRATEGIES,
    seed: list[int] = SEED,
    limit: int = LIMIT,
    config: Path = CONFIG,
    plugin: list[Path] = PLUGIN,
    batch_size: str = BATCH_SIZE,
    device: str = DEVICE,
    memory_gb: float = MEMORY_GB,
    device_kind: str = DEVICE_KIND,
    as_json: bool = AS_JSON,
) -> None:
    """Predict each cell of a compare (same flags as `harness compare`) before running it: trainable
    parameters, peak memory (weights, gradients, optimizer states, activations, logits, KV cache),
    training steps, adaptation and evaluation time at this machine's measured throughput, and whether it
    fits the device's memory. No weights are loaded (models are built on the meta device) and nothing is
    written. `harness compare` prints the same table first and skips the cells that cannot fit."""
    import harness.api as api
    from harness.run.config import load_config

    if device_kind not in (None, "cpu", "cuda"):
        raise typer.BadParameter("cpu or cuda", param_hint="--device-kind")
    cfg = load_config(config, {"suite": suite, "model": model, "models": _split(models),
                               "strategies": _split(strategies),
                               "seeds": seed or None, "limit": limit, "plugins": plugin or None,
                               "batch_size": _batch(batch_size), "device": device})
    rows = api.plan(cfg, memory_gb=memory_gb, device_kind=device_kind)
    console = Console()
    if as_json:
        console.print_json(json.dumps([r.as_dict() for r in rows]))
        return
    console.print(plan_table(rows))
