"""`harness strategies`: what is registered, each strategy's options, and plugins that failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


def _options(cls: Any) -> str:
    lines = []
    for name, f in cls.Options.model_fields.items():
        default = "required" if f.is_required() else repr(f.default)
        lines.append(f"{name} = {default}" + (f"  ({f.description})" if f.description else ""))
    return "\n".join(lines) or "(none)"


def strategies(
    plugin: list[Path] = typer.Option([], "--plugin", help="Also load strategies from this Python file."),
) -> None:
    """List registered strategies (entry points in group `harness.strategies`), their options with
    defaults, and any plugin that failed to load with its error."""
    from harness.registry import Registry

    reg = Registry.discover()
    for p in plugin:
        reg.add_plugin_file(p)
    loaded = reg.load_all()
    table = Table(title="strategies", show_lines=True)
    for col in ("name", "family", "description", "options", "from"):
        table.add_column(col)
    for name, cls in loaded.items():
        table.add_row(name, cls.family, cls.description, _options(cls), reg.entries[name].origin)
    console = Console()
    console.print(table)
    for name, error in reg.errors.items():
        console.print(f"[red]failed to load[/] {name} ({reg.entries[name].target}): {error}", soft_wrap=True)
