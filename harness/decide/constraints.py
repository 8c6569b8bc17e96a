"""What the user can live with: the decision's constraints, prices and rule settings, validated at the
boundary (run.toml `[decide]`, the flags of `compare` and `recommend`, `harness.recommend`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.core.errors import HarnessError, validation_message
from harness.decide.cost import DEFAULT_PRICES, fmt_count

Criterion = Literal["accuracy", "cost", "latency", "forgetting"]


class Constraints(BaseModel):
    """What the user can live with. Every field is optional; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_latency_ms: float | None = Field(None, gt=0, description="Largest acceptable p50 latency per query.")
    max_forgetting_pt: float | None = Field(None, ge=0, description="Largest acceptable drop on the retention suite.")
    budget_usd: float | None = Field(None, ge=0, description="Largest total cost: adaptation plus serving over "
                                     "the horizon at queries_per_month.")
    max_memory_gb: float | None = Field(None, gt=0, description="Largest acceptable peak memory.")
    queries_per_month: float = Field(0, ge=0, description="Expected serving volume, for total cost.")
    months: int = Field(12, ge=1, le=120, description="Horizon of the total cost of ownership.")
    weights: dict[Criterion, float] = Field(default_factory=dict, description="Utility weights; default accuracy=1.")
    price_per_hour: float | None = Field(None, gt=0, description="USD per hour of the hardware used (overrides "
                                         "the price table).")
    prices: dict[str, float] = Field(default_factory=dict, description="Price table overrides: cpu, a100, h100...")
    margin_pt: float = Field(2.0, ge=0, le=100, description="Equivalence margin in score points: two strategies are "
                             "tied only when their difference is shown to lie within it (TOST).")
    cost_basis: Literal["work", "wall"] = Field("work", description="work: FLOPs at the machine's measured "
                                                "throughput (does not move with the load); wall: measured time.")
    updates_per_month: float = Field(0, ge=0, description="Knowledge updates a month (new documents absorbed), "
                                     "each at the strategy's measured update cost, added to the total cost.")

    @field_validator("weights", "prices")
    @classmethod
    def _finite_non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        for key, x in v.items():
            if not math.isfinite(x) or x < 0:
                raise ValueError(f"{key}: {x} must be a finite number >= 0")
        return v

    @field_validator("prices")
    @classmethod
    def _known_hardware(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(DEFAULT_PRICES))
        if unknown:
            raise ValueError(f"unknown hardware {', '.join(unknown)} (known: {', '.join(DEFAULT_PRICES)})")
        return v

    def queries(self) -> float:
        return self.queries_per_month * self.months

    @property
    def margin(self) -> float:
        """The equivalence margin in score units (0..1)."""
        return self.margin_pt / 100

    def by_score(self) -> bool:
        """Ranking by score alone (no weights, or accuracy only): then ties go to the cheaper."""
        return not any(w for k, w in self.weights.items() if k != "accuracy")

    def horizon(self) -> str:
        """What the total cost covers, in words."""
        updates = f" and {self.updates_per_month:g} knowledge updates/month" if self.updates_per_month else ""
        if not self.queries_per_month and not updates:
            return "adaptation cost (no query volume given)"
        return f"total cost over {self.months} months at {fmt_count(self.queries_per_month)} queries/month{updates}"


def parse_weights(text: str | None) -> dict[str, float]:
    """'accuracy=1,cost=0.5' -> {'accuracy': 1.0, 'cost': 0.5}; the keys are checked by Constraints."""
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        try:
            out[key.strip()] = float(value) if sep else math.nan
        except ValueError:
            raise HarnessError(f"--weights: {part.strip()!r} is not name=number") from None
        if not math.isfinite(out[key.strip()]) or out[key.strip()] < 0:
            raise HarnessError(f"--weights: {part.strip()!r} needs a number >= 0")
    return out


def merge_constraints(base: Mapping[str, Any] | None = None, **flags: Any) -> dict[str, Any]:
    """`base` (a run.toml [decide] table or the constraints saved with a run) with the `flags` that
    were given (None: not given; `weights` may be "accuracy=1,cost=0.5"), validated; the fields that
    differ from the defaults, as plain JSON values."""
    from pydantic import ValidationError

    data = dict(base or {})
    if isinstance(flags.get("weights"), str):
        flags["weights"] = parse_weights(flags["weights"])
    data.update({k: v for k, v in flags.items() if v is not None})
    try:
        return Constraints.model_validate(data).model_dump(mode="json", exclude_defaults=True)
    except ValidationError as e:
        raise HarnessError(validation_message("constraints", e)) from None
