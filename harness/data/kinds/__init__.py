"""Task kinds, looked up by name: the built-ins (short-answer, classification, multiple-choice,
language-modeling) and any a plugin registers through the `harness.kinds` entry-point group (an
entry names a `TaskKind` object, e.g. `my-kind = "my_pkg.kinds:MY_KIND"`). See `base.TaskKind`."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from harness.core.errors import HarnessError
from harness.core.plugins import allowed_entry_points
from harness.data.kinds.base import Item, TaskKind
from harness.data.kinds.choice import CLASSIFICATION, MULTIPLE_CHOICE
from harness.data.kinds.short_answer import SHORT_ANSWER
from harness.data.kinds.text import LANGUAGE_MODELING

__all__ = ["CLASSIFICATION", "LANGUAGE_MODELING", "MULTIPLE_CHOICE", "SHORT_ANSWER", "Item", "TaskKind", "get",
           "main_metric", "names", "register"]

GROUP = "harness.kinds"
_KINDS: dict[str, TaskKind] = {k.name: k for k in (SHORT_ANSWER, CLASSIFICATION, MULTIPLE_CHOICE, LANGUAGE_MODELING)}
_loaded_plugins = False


def register(kind: TaskKind) -> None:
    """Add a kind (a plugin's); a different kind under a taken name is an error."""
    old = _KINDS.get(kind.name)
    if old is not None and old is not kind:
        raise HarnessError(f"task kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind


def _load_plugins() -> None:
    global _loaded_plugins
    if _loaded_plugins:
        return
    _loaded_plugins = True
    for ep, _ in allowed_entry_points(GROUP):
        kind = ep.load()
        if not isinstance(kind, TaskKind) or kind.name != ep.name:
            raise HarnessError(f"entry point {ep.value} ({GROUP}) is not a TaskKind named {ep.name!r}")
        register(kind)


def names() -> list[str]:
    _load_plugins()
    return list(_KINDS)


def get(name: str) -> TaskKind:
    """The kind called `name`; an unknown name is an error that lists the known ones."""
    if name not in _KINDS:
        _load_plugins()
    if name not in _KINDS:
        hint = difflib.get_close_matches(name, list(_KINDS), n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(_KINDS)})"
        raise HarnessError(f"unknown task kind {name!r}{extra}")
    return _KINDS[name]


_GENERIC_HEADLINE = ("f1", "accuracy", "exact_match")


def main_metric(kind: str, metrics: Sequence[str], declared: str | None = None) -> str | None:
    """The per-item metric a task is judged by: the one its record declares; else (records written
    before tasks declared one) its kind's first headline metric among `metrics`, or for a kind not
    registered here (a plugin not installed) the first of f1, accuracy, exact_match."""
    if declared is not None:
        return declared
    known = _KINDS.get(kind)
    if known is not None:
        return known.main_metric(metrics)
    return next((m for m in _GENERIC_HEADLINE if m in metrics), None)
