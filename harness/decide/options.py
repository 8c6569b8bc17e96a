"""The records the decision works with: each strategy as an option, and each candidate's verdict
against the leader."""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.inference import Comparison
from harness.decide.cost import Cost


@dataclass(frozen=True)
class Option:
    """One strategy as the decision saw it."""

    strategy: str
    score: float
    low: float
    high: float
    cost: Cost
    tco_usd: float
    p50_ms: float | None
    forgetting_pt: float | None
    peak_mem_gb: float
    excluded: str | None = None
    flags: tuple[str, ...] = ()
    """Reasons for caution that do not exclude (forgetting that may exceed the limit)."""
    front: bool = False
    utility: float = 0.0
    forgetting_low: float | None = None
    """The lower end of the forgetting interval (a limit below it excludes the strategy)."""


@dataclass(frozen=True)
class Verdicts:
    """Each other candidate against the leader."""

    comparisons: dict[str, Comparison]
    tied: list[Option]
    underpowered: list[Option]
