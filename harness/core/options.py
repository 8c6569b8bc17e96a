"""The base of every options model a user sets (a strategy's options, the training budget)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrategyOptions(BaseModel):
    """Base for a strategy's options: validated, unknown keys rejected, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
