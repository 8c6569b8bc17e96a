"""`harness recommend RUN_DIR`: pick a strategy under constraints, from a run's records alone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.cli import constraints as C

if TYPE_CHECKING:
    from harness.decide.decision import Decision


def recommend(
    run_dir: Path = typer.Argument(..., help="A run folder written by `harness compare`."),
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
    save: bool = typer.Option(False, "--save", help="Store these constraints in the run and re-render its report."),
) -> None:
    """Filter the run's strategies by the constraints, compute the Pareto front over score, cost,
    latency and forgetting, and pick one with the reasons in measured numbers. Statistically tied
    strategies (paired test, p >= 0.05) go to the cheaper. Flags add to the constraints saved with
    the run. No model is loaded."""
    import harness.api as api
    from harness.report import render_run

    run = api.load_run(run_dir)
    merged = C.constraints_from(run.constraints, **C.given(dict(locals())))
    decision = api.recommend(run, merged)
    show(decision)
    if save:
        render_run(run_dir, merged)
        Console().print(f"saved; re-rendered {run_dir / 'report.html'}")


def show(decision: Decision) -> None:
    """The decision and its reasons, then every option with its figures (plain text, no markup)."""
    from harness.decide.cost import fmt_usd

    console = Console(highlight=False)
    console.print(Text(f"Decision: {decision.pick or 'none'}", style="bold"))
    for line in decision.rationale:
        console.print(f"- {line}", markup=False, soft_wrap=True)
    table = Table(title="options")
    for col in ("strategy", "score", "total USD", "p50 ms", "forgetting pt", "front", "excluded"):
        table.add_column(col)
    for o in decision.options:
        cells = (o.strategy, f"{o.score:.3f}", fmt_usd(o.tco_usd), "–" if o.p50_ms is None else f"{o.p50_ms:.0f}",
                 "–" if o.forgetting_pt is None else f"{o.forgetting_pt:+.1f}", "yes" if o.front else "",
                 o.excluded or "")
        table.add_row(*(Text(c) for c in cells))  # Text: error messages may hold [brackets], never markup
    console.print(table)
