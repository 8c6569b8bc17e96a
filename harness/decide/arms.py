"""Arms: what the analysis compares. One model: an arm is a strategy. Several models (compare --models):
an arm is a (model, strategy) pair, named `model/strategy`, so every summary, test, cost and the pick
are about a pair, and each pair's forgetting is against its own model's base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from harness.core.records import CellRecord


def model_label(identity: str) -> str:
    """A short name for a model identity: the alias, file or folder name, or the hub id."""
    kind, _, rest = identity.partition(":")
    if kind == "hub":
        return rest
    if kind in ("gguf", "dir"):
        return rest.rsplit(":", 1)[0]
    return kind


def models_of(records: Sequence[CellRecord]) -> list[str]:
    """The model identities in `records`, in first-seen order."""
    return list(dict.fromkeys(r.model for r in records))


def arm(rec: CellRecord, several: bool) -> str:
    return f"{model_label(rec.model)}/{rec.strategy}" if several else rec.strategy


def with_arms(records: Sequence[CellRecord]) -> list[CellRecord]:
    """`records` with each strategy renamed to its arm (unchanged for a one-model run). Apply once, to
    records as loaded; the saved records keep the strategy's own name."""
    several = len(models_of(records)) > 1
    return [replace(r, strategy=arm(r, several)) if several else r for r in records]


def baseline_arm(records: Sequence[CellRecord], baseline: str) -> str:
    """The arm the report tests others against: the baseline strategy on the first model."""
    several = len(models_of(records)) > 1
    return next((arm(r, several) for r in records if r.strategy == baseline), baseline)
