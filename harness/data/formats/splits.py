"""Carving train/dev/test splits out of data that lacks the splits a strategy needs.

Items are first gathered into groups that must not be separated (all hypotheses of one contract,
or identical texts, so a duplicate never lands on both sides of a split). Groups are ordered by
stratum (their majority label), shuffled within each stratum by a seeded `random.Random`, and then
dealt one by one to the split whose quota (its fraction of all items) is the least filled. Every
split fills at the same pace, so each stratum is spread in proportion, the totals end within one
group of the fractions, and with at least as many groups as splits none is left empty.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.70, "dev": 0.15, "test": 0.15}


def _groups(items: Sequence[T], group: Callable[[T], str]) -> list[list[T]]:
    by_key: dict[str, list[T]] = {}
    for it in items:
        by_key.setdefault(group(it), []).append(it)
    return list(by_key.values())


def _stratum(members: list[T], label: Callable[[T], str] | None) -> str:
    if label is None:
        return ""
    counts = Counter(label(m) for m in members)
    return min(counts, key=lambda k: (-counts[k], k))  # the majority label; ties by name


def _ordered(groups: list[list[T]], label: Callable[[T], str] | None, rng: random.Random) -> list[list[T]]:
    strata: dict[str, list[list[T]]] = {}
    for g in groups:
        strata.setdefault(_stratum(g, label), []).append(g)
    out: list[list[T]] = []
    for key in sorted(strata):
        members = strata[key]
        rng.shuffle(members)
        out += members
    return out


def carve(
    items: Sequence[T],
    seed: int,
    fractions: dict[str, float] | None = None,
    *,
    group: Callable[[T], str],
    label: Callable[[T], str] | None = None,
) -> dict[str, list[T]]:
    """Split `items` by `fractions` (default 70/15/15 train/dev/test), keeping each `group` whole
    and each `label` stratum in proportion. The same items and seed give the same splits."""
    fractions = fractions or DEFAULT_FRACTIONS
    quotas = {name: f * len(items) for name, f in fractions.items() if f > 0}
    out: dict[str, list[T]] = {name: [] for name in fractions}
    for members in _ordered(_groups(items, group), label, random.Random(seed)):
        out[_least_filled(quotas, out)].extend(members)
    return out


def _least_filled(quotas: dict[str, float], out: dict[str, list[T]]) -> str:
    """The split with the largest unfilled part of its quota (ties: the earlier split)."""
    return max(quotas, key=lambda s: (quotas[s] - len(out[s])) / quotas[s])


def describe(seed: int, by: str, fractions: dict[str, float] | None = None) -> str:
    """How a carving was made, for suite.toml: '70/15/15 train/dev/test, seed 0, by label'."""
    fractions = fractions or DEFAULT_FRACTIONS
    shares = "/".join(f"{round(f * 100)}" for f in fractions.values())
    return f"{shares} {'/'.join(fractions)}, seed {seed}, by {by}"
