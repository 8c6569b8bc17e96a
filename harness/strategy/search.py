"""Search spaces: how a strategy declares the options `harness tune` may try.

A strategy that can be tuned has a static method `search_space(trial) -> dict` returning the options
to set, drawn with `trial.suggest_float / suggest_int / suggest_categorical` (Optuna's trial API).
Its default options must lie inside the space (trial 0 runs the defaults). The pieces below are
shared by the built-ins; a plugin may use them or not. A hybrid `a+b` searches both sides' spaces,
their parameters prefixed `context.` and `weights.` (`hybrid_space`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SearchSpace = Callable[[Any], dict[str, Any]]


def learning_rate(trial: Any, low: float, high: float) -> dict[str, Any]:
    """The peak learning rate, on whatever device the trial trains (full schedule and CPU cap alike)."""
    rate = trial.suggest_float("learning_rate", low, high, log=True)
    return {"learning_rate": rate, "cpu_learning_rate": rate}


def budget(trial: Any) -> dict[str, Any]:
    """Epochs. The step budget itself (max_steps, the CPU cap) is never searched: trials and the compare
    train within the same fixed budget, which the report states (a tuned budget is not a fair comparison)."""
    return {"epochs": trial.suggest_int("epochs", 1, 3)}


class Prefixed:
    """A trial whose parameter names get a prefix: the two sides of a hybrid share one trial."""

    def __init__(self, trial: Any, prefix: str):
        self.trial, self.prefix = trial, prefix

    def suggest_float(self, name: str, *a: Any, **k: Any) -> Any:
        return self.trial.suggest_float(self.prefix + name, *a, **k)

    def suggest_int(self, name: str, *a: Any, **k: Any) -> Any:
        return self.trial.suggest_int(self.prefix + name, *a, **k)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.trial.suggest_categorical(self.prefix + name, choices)


def space_of(cls: Any) -> SearchSpace | None:
    """The strategy class's declared search space, or None when it declares none."""
    own = getattr(cls, "search_space", None)
    return own if callable(own) else None


def hybrid_space(context: SearchSpace | None, weights: SearchSpace | None) -> SearchSpace | None:
    """Both sides' spaces in one, each side's parameters prefixed; None when neither side has one."""
    sides = {"context": context, "weights": weights}
    if not any(sides.values()):
        return None
    return lambda t: {side: space(Prefixed(t, f"{side}.")) for side, space in sides.items() if space}
