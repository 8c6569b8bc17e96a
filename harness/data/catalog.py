"""Finding suites: by name on the suite search path, by folder, or as `<format>:<path>` (a public
dataset in its native format, imported once into the cache by harness.data.formats). `load_suite`
is what `compare` uses: it validates the suite and drops duplicate items (harness.data.hygiene).
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from pathlib import Path

from harness.core.errors import HarnessError
from harness.data.formats import cached_import, formats
from harness.data.hygiene import drop_duplicates
from harness.data.suites import Suite, load_suite_dir


def suite_search_path() -> list[Path]:
    """Where named suites are looked up: $HARNESS_SUITES_PATH, ./suites, then the built-in suites."""
    env = [Path(p) for p in os.environ.get("HARNESS_SUITES_PATH", "").split(os.pathsep) if p]
    return [*env, Path.cwd() / "suites", builtin_suites()]


def builtin_suites() -> Path:
    """The folder of the suites harness ships: the `harness_suites` package (the repository's suites/
    in a checkout or an editable install, package data in a wheel)."""
    spec = importlib.util.find_spec("harness_suites")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "suites"  # a source tree that was never installed


def available_suites() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in suite_search_path():
        if base.is_dir():
            for d in sorted(base.iterdir()):
                if (d / "suite.toml").is_file():
                    found.setdefault(d.name, d.resolve())
    return found


def _adapter_ref(ref: str) -> tuple[str, str] | None:
    """(format, source) for a ref like `contractnli:data/dev.json` whose format is registered."""
    fmt, sep, source = ref.partition(":")
    if not sep or Path(ref).exists():
        return None
    return (fmt, source) if fmt in formats() else None


def resolve_suite(ref: str) -> Path:
    """A suite folder from a name (searched on the suite path), a path to a folder, or
    `<format>:<path>`: the source imported once into the cache (see harness.data.formats)."""
    path = Path(ref).expanduser()
    if (path / "suite.toml").is_file():
        return path.resolve()
    if adapter := _adapter_ref(ref):
        return cached_import(*adapter)
    known = available_suites()
    if ref in known:
        return known[ref]
    if path.exists():
        raise HarnessError(f"{path}: no suite.toml in this folder")
    fmt, sep, _ = ref.partition(":")
    if sep and len(fmt) > 1:
        raise HarnessError(f"unknown suite {ref!r}: {fmt!r} is not a known format (formats: {', '.join(formats())})")
    hint = difflib.get_close_matches(ref, list(known), n=1)
    msg = f"unknown suite {ref!r}"
    msg += f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(known) or 'none'})"
    raise HarnessError(msg)


def load_suite(ref: str, dedupe: bool = True) -> Suite:
    """The suite `ref` names (see `resolve_suite`), validated; with `dedupe`, duplicate items inside
    a split are dropped (the first kept) and counted in `Suite.notes` (see harness.data.hygiene)."""
    suite = load_suite_dir(resolve_suite(ref))
    if not dedupe:
        return suite
    return drop_duplicates(suite)
