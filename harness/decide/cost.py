"""The cost model: hours times a price per hour of the hardware that ran them.

One-off adaptation cost (training or indexing), serving cost per 1,000 queries (evaluation time per
query under batched serving, so RAG's longer prompts and retrieval are in it), the cost of a
knowledge update, and the break-even volume between two strategies: the number of queries after
which the one that costs more up front but less per query is cheaper in total.

Two bases for the hours. `wall`: measured wall time, which moves with whatever else the machine
does (a shared machine can double it). `work`: the cell's FLOPs (estimated from the model's size
and the tokens it trained on and read; harness.run.runner) at the machine's measured matmul
throughput, which does not move with the load; the decision uses `work` by default and says so.
Records without work figures are priced on wall time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.decide.analysis import StrategySummary

DEFAULT_PRICES: dict[str, float] = {
    "cpu": 0.10,   # a small cloud VM, 2 vCPU
    "a100": 1.80,  # one A100 80 GB, on-demand cloud rate
    "h100": 2.90,
    "h200": 3.70,
    "gpu": 1.00,   # any other CUDA device
}
"""USD per hour. Defaults only: override per run (`--price-per-hour`, or `[prices]` in run.toml)."""


def hardware_key(device: str, accelerator: str | None) -> str:
    """Which row of the price table a record's hardware falls under."""
    if not device.startswith("cuda"):
        return "cpu"
    name = (accelerator or "").upper()
    return next((k for k in ("h200", "h100", "a100") if k.upper() in name), "gpu")


@dataclass(frozen=True)
class Cost:
    strategy: str
    hardware: str
    usd_per_hour: float
    adapt_usd: float
    usd_per_1k_queries: float
    update_usd: float | None
    """Cost of absorbing new documents (re-indexing or further training), where measured."""
    basis: str = "wall"
    """What the hours are: measured wall time, or `work` (FLOPs at the machine's measured throughput)."""

    def total(self, queries: float) -> float:
        """Adaptation plus serving `queries` queries."""
        return self.adapt_usd + self.usd_per_1k_queries * queries / 1000


def work_seconds(s: StrategySummary) -> tuple[float, float] | None:
    """(adaptation, per-query) seconds of the strategy's FLOPs at the measured throughput, or None when
    its records carry no work figures."""
    w = s.work
    if not w.get("flops_per_s") or "adapt_flops" not in w or not w.get("queries"):
        return None
    rate = w["flops_per_s"]
    return w["adapt_flops"] / rate, w["eval_flops"] / w["queries"] / rate


def strategy_cost(s: StrategySummary, prices: Mapping[str, float] | None = None,
                  price_per_hour: float | None = None, basis: str = "wall") -> Cost:
    """Dollars for one strategy's hours (`basis`: wall or work). `price_per_hour` overrides the table."""
    table = {**DEFAULT_PRICES, **(prices or {})}
    hw = hardware_key(s.device, s.accelerator)
    rate = price_per_hour if price_per_hour is not None else table[hw]
    per_s = rate / 3600
    adapt_s, query_s, used = s.adapt_s, s.query_s or 0.0, "wall"
    work = work_seconds(s) if basis == "work" else None
    if work is not None:
        (adapt_s, query_s), used = work, "work"
    update = None if s.update_s is None else s.update_s * per_s
    return Cost(s.strategy, hw, rate, adapt_s * per_s, query_s * per_s * 1000, update, used)


def break_even(a: Cost, b: Cost) -> float | None:
    """Queries after which `a` becomes cheaper in total than `b`: only when `a` costs more up front
    and less per query. None when it never does (or is cheaper from the first query)."""
    extra_upfront = a.adapt_usd - b.adapt_usd
    saving_per_query = (b.usd_per_1k_queries - a.usd_per_1k_queries) / 1000
    if extra_upfront <= 0 or saving_per_query <= 0:
        return None
    return extra_upfront / saving_per_query


def break_evens(costs: list[Cost]) -> list[tuple[Cost, Cost, float]]:
    """Every (a, b, queries) where `a` overtakes `b`, smallest volume first."""
    out = [(a, b, q) for a in costs for b in costs if a is not b and (q := break_even(a, b)) is not None]
    return sorted(out, key=lambda t: (t[2], t[0].strategy, t[1].strategy))


def fmt_usd(x: float) -> str:
    """Dollars with enough digits to tell small CPU costs apart."""
    if x == 0:
        return "$0"
    if 0 < x < 1e-4:
        return "<$0.0001"
    if abs(x) >= 100:
        return f"${x:,.0f}"
    if abs(x) >= 0.995:
        return f"${x:,.2f}"
    return f"${x:.2g}"


def fmt_count(n: float) -> str:
    """2,300,000 -> '2.3 M'."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if round(n / size, 1) >= 1:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f}"
