"""Which space a study searches (the strategy's own `search_space`, hybrids combined: see
harness.strategy.search) and the parameters that reproduce a strategy's default options (trial 0)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.strategy.search import SearchSpace, space_of

if TYPE_CHECKING:
    from harness.strategy.registry import Registry


def effective_rates(options: dict[str, Any], device: str) -> dict[str, Any]:
    """`options` with `learning_rate` set to the rate in effect on `device` (the CPU default under the
    CPU cap), recursively for a hybrid's sides: what trial 0 must reproduce."""
    out = {k: effective_rates(v, device) if isinstance(v, dict) else v for k, v in options.items()}
    capped = not device.startswith("cuda") and out.get("cpu_max_steps", 0)
    if capped and out.get("cpu_learning_rate"):
        out["learning_rate"] = out["cpu_learning_rate"]
    return out


def search_space(registry: Registry, name: str) -> SearchSpace | None:
    """The space strategy `name` declares (a hybrid: both sides'), or None: not tuned."""
    return space_of(registry.get(name))


class _NoDefault(Exception):
    pass

class _DefaultsTrial:
    """Stands in for a trial and answers each suggestion with the option of that name in `options`
    (flattened with dots): the parameters that reproduce the default options, to enqueue as trial 0."""

    def __init__(self, options: dict[str, Any]):
        self.options = _flatten(options)
        self.params: dict[str, Any] = {}

    def _pick(self, name: str, ok: Callable[[Any], bool]) -> Any:
        if name not in self.options or not ok(self.options[name]):
            raise _NoDefault(name)
        self.params[name] = self.options[name]
        return self.options[name]

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> Any:
        return self._pick(name, lambda v: isinstance(v, int | float) and low <= v <= high)

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> Any:
        value = self._pick(name, lambda v: isinstance(v, int | float) and v == int(v) and low <= v <= high)
        self.params[name] = int(value)
        return int(value)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._pick(name, lambda v: v in choices)

def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out

def merge_options(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge_options(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out

def default_params(space: SearchSpace, options: dict[str, Any]) -> dict[str, Any] | None:
    """The trial parameters that give `options`, or None when an option lies outside the space."""
    probe = _DefaultsTrial(options)
    try:
        space(probe)
    except _NoDefault:
        return None
    return probe.params
