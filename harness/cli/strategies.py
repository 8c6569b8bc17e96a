"""`harness strategies`: what is registered, grouped by family, each with its options, and the
plugins that failed to load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

FAMILIES = {"context": "change the prompt", "weights": "change the model", "hybrid": "both"}


def _options(cls: Any) -> str:
    lines = []
    for name, f in cls.Options.model_fields.items():
        default = "required" if f.is_required() else repr(f.default)
        lines.append(f"{name} = {default}" + (f"  ({f.description})" if f.description else ""))
    return "\n".join(lines) or "(none)"


def strategies(
    plugin: list[Path] = typer.Option([], "--plugin", help="Also load strategies from this Python file."),
    verbose: bool = typer.Option(False, "--options", "-o", help="Show every option with its default."),
) -> None:
    """List registered strategies (entry points in group `harness.strategies`) by family (context,
    weights, hybrid) with a one-line description, and every plugin that failed to load with its
    error. `--options` adds each strategy's options and defaults. Hybrids of any context and weights
    strategy are available as `<context>+<weights>`, e.g. rag+lora."""
    from harness.strategy.registry import Registry

    reg = Registry.discover()
    for p in plugin:
        reg.add_plugin_file(p)
    loaded = reg.load_all()
    console = Console()
    for family, what in FAMILIES.items():
        members = {n: c for n, c in loaded.items() if c.family == family}
        if not members:
            continue
        table = Table(title=f"{family}: {what}", show_lines=verbose, title_justify="left")
        for col in ("name", "description", "from", *(["options"] if verbose else [])):
            table.add_column(col)
        for name, cls in members.items():
            cells = [name, cls.description, reg.entries[name].origin, *([_options(cls)] if verbose else [])]
            table.add_row(*(Text(str(c)) for c in cells))
        console.print(table)
    console.print(Text("hybrid: any <context>+<weights> pair, e.g. rag+lora (the weights side trains, the "
                       "context side prompts the trained model)"))
    for name, error in reg.errors.items():
        console.print(Text(f"failed to load {name} ({reg.entries[name].target}): {error}", style="red"))
