"""The decision constraints, declared once and accepted by `harness compare` and `harness recommend`."""

from __future__ import annotations

from typing import Any

import typer

MAX_LATENCY = typer.Option(None, "--max-latency-ms", help="Largest acceptable p50 latency per query (ms).")
MAX_FORGETTING = typer.Option(None, "--max-forgetting-pt",
                              help="Largest acceptable accuracy drop on the retention suite (points).")
BUDGET = typer.Option(None, "--budget-usd", help="Largest total cost: adaptation plus serving over the horizon.")
MAX_MEMORY = typer.Option(None, "--max-memory-gb", help="Largest acceptable peak memory (GB).")
QUERIES = typer.Option(None, "--queries-per-month", help="Expected serving volume, for total cost (default 0).")
MONTHS = typer.Option(None, "--months", help="Horizon of the total cost (default 12).")
WEIGHTS = typer.Option(None, "--weights",
                       help="Utility weights, e.g. accuracy=1,cost=0.5 (criteria: accuracy, cost, latency, "
                            "forgetting). Default: accuracy only; statistical ties go to the cheaper.")
MARGIN = typer.Option(None, "--margin", help="Equivalence margin in score points (default 2): strategies are tied "
                      "only when their difference is shown to lie within it (TOST).")
COST_BASIS = typer.Option(None, "--cost-basis", help="work (default: FLOPs at this machine's measured throughput, "
                          "steady under load) or wall (measured time).")
UPDATES = typer.Option(None, "--updates-per-month", help="Knowledge updates a month, each at the strategy's "
                       "measured update cost, added to the total cost.")
PRICE = typer.Option(None, "--price-per-hour", help="USD per hour of the hardware used (overrides the table: "
                     "cpu 0.10, a100 1.80, h100 2.90, h200 3.70, other GPUs 1.00).")


def constraints_from(base: dict[str, Any] | None = None, **flags: Any) -> dict[str, Any]:
    """`base` with the flags that were given, validated (harness.decide.decision.merge_constraints)."""
    from harness.decide.decision import merge_constraints

    return merge_constraints(base, **flags)


FLAGS = ("max_latency_ms", "max_forgetting_pt", "budget_usd", "max_memory_gb", "queries_per_month", "months",
         "weights", "price_per_hour", "margin_pt", "cost_basis", "updates_per_month")


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The decision flags among a command's arguments (None: not given)."""
    return {k: values[k] for k in FLAGS if k in values}
