"""`harness report RUN_DIR`: re-render a run's report from its records, without running a model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def report(run_dir: Path = typer.Argument(..., help="A run folder written by `harness compare`.")) -> None:
    """Re-render report.md and report.html of RUN_DIR from its JSON records (no model is loaded)."""
    from harness.report import render_run

    render_run(run_dir)
    Console().print(f"rendered {run_dir / 'report.html'} and {run_dir / 'report.md'}")
