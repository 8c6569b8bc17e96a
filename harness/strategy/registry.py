"""The strategy registry: entry points in the `harness.strategies` group, plus `--plugin` files.

Entries are lazy (`module:Class` strings): a strategy's module is imported only when it is used or
listed. A plugin that fails to load is recorded with its error instead of breaking the CLI.

Which installed plugins load: harness.core.plugins (HARNESS_DISABLE_PLUGIN_AUTOLOAD, HARNESS_PLUGINS).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.core.errors import HarnessError
from harness.core.plugins import allowed_entry_points
from harness.strategy.protocol import Strategy

GROUP = "harness.strategies"


@dataclass(frozen=True)
class Entry:
    name: str
    target: str
    """`module:Class`, or `path/to/file.py:Class` for a plugin file."""
    origin: str
    """The distribution that declared it, or the plugin file."""


class Registry:
    """Strategy classes by name. Built-ins come in through entry points like any plugin."""

    def __init__(self, entries: list[Entry] | None = None):
        self.entries: dict[str, Entry] = {}
        self.errors: dict[str, str] = {}
        self._loaded: dict[str, type[Strategy]] = {}
        for e in entries or []:
            self.add(e)

    @classmethod
    def discover(cls) -> Registry:
        """All strategies declared by installed distributions."""
        reg = cls()
        for ep, dist in allowed_entry_points(GROUP):
            reg.add(Entry(ep.name, ep.value, dist))
        return reg

    def add(self, entry: Entry) -> None:
        old = self.entries.get(entry.name)
        if old and old.target != entry.target:
            raise HarnessError(
                f"strategy name {entry.name!r} is declared twice: by {old.origin} and by {entry.origin}"
            )
        self.entries[entry.name] = entry

    def add_plugin_file(self, path: Path) -> list[str]:
        """Import a single-file plugin and register every Strategy class it defines."""
        if not path.is_file():
            raise HarnessError(f"plugin file not found: {path}")
        module = _import_file(path)
        names = []
        for obj in vars(module).values():
            if isinstance(obj, type) and _looks_like_strategy(obj) and obj.__module__ == module.__name__:
                cls: Any = obj
                self.add(Entry(cls.name, f"{path}:{cls.__name__}", str(path)))
                self._loaded[cls.name] = cls
                names.append(cls.name)
        if not names:
            raise HarnessError(f"{path}: defines no strategy class (name, family, Options, adapt, prompts)")
        return names

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> type[Strategy]:
        """The strategy class for `name`, importing its module on first use."""
        if name in self._loaded:
            return self._loaded[name]
        if name not in self.entries and "+" in name:
            return self._hybrid(name)
        if name not in self.entries:
            hint = difflib.get_close_matches(name, self.names(), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else f" (registered: {', '.join(self.names())})"
            raise HarnessError(f"unknown strategy {name!r}{extra}")
        cls = _load_target(self.entries[name].target)
        if not _looks_like_strategy(cls) or cls.name != name:
            raise HarnessError(f"{self.entries[name].target} is not a strategy named {name!r}")
        self._loaded[name] = cls
        return cls

    def _hybrid(self, name: str) -> type[Strategy]:
        from harness.strategy.compose import compose

        context, _, weights = name.partition("+")
        cls = compose(self.get(context), self.get(weights))
        self._loaded[name] = cls
        return cls

    def load_all(self) -> dict[str, type[Strategy]]:
        """Load every entry; failures go to `self.errors` (name -> message) instead of raising."""
        ok = {}
        for name in self.names():
            try:
                ok[name] = self.get(name)
            except Exception as e:  # a broken plugin must not break the others
                self.errors[name] = f"{type(e).__name__}: {e}"
        return ok


def _looks_like_strategy(obj: type) -> bool:
    return all(hasattr(obj, a) for a in ("name", "family", "Options", "adapt", "prompts"))


def _load_target(target: str) -> type[Strategy]:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    cls: type[Strategy] = getattr(module, attr)
    return cls


def _import_file(path: Path) -> ModuleType:
    name = f"harness_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HarnessError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise HarnessError(f"{path}: plugin failed to import: {type(e).__name__}: {e}") from None
    return module
