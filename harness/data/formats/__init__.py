"""Adapters: public datasets in their native formats, and your own tables, turned into normal suites.

An adapter is a function `read(source, options) -> SuiteData` (see `common`). Formats register
through the `harness.formats` entry-point group, the built-ins exactly like a plugin's (`mmlu =
"harness.data.formats.mmlu:read"` in pyproject), as lazy "module:function" targets, so an
adapter's imports load only when it is used; `register` adds one at run time. `import_suite`
writes the suite folder and validates it with the same loader as every other suite;
`cached_import` does that once per source and options in the cache folder, for
`harness compare --suite <format>:<path>`.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from harness.core.errors import HarnessError, SuiteError
from harness.core.plugins import allowed_entry_points
from harness.data.formats.common import ImportOptions, SuiteData, slug, write_suite
from harness.data.suites import Suite, load_suite_dir

Adapter = Callable[[str, ImportOptions], SuiteData]

CACHE_VERSION = "3"
"""Part of every cache key: bump it when an adapter's output changes for the same input."""

GROUP = "harness.formats"
_REGISTERED: dict[str, str | Adapter] = {}
"""Formats added at run time by `register` (entry points are read on each lookup)."""

__all__ = ["Adapter", "ImportOptions", "SuiteData", "cached_import", "formats", "get", "import_suite", "read",
           "register"]


def _adapters() -> dict[str, str | Adapter]:
    declared: dict[str, str | Adapter] = {ep.name: ep.value for ep, _ in allowed_entry_points(GROUP)}
    return {**declared, **_REGISTERED}


def formats() -> list[str]:
    """The registered format names."""
    return sorted(_adapters())


def register(name: str, adapter: str | Adapter, replace_existing: bool = False) -> None:
    """Register a format at run time: a function, or "module:function" imported on first use."""
    if name in _adapters() and not replace_existing:
        raise HarnessError(f"format {name!r} is already registered")
    _REGISTERED[name] = adapter


def get(name: str) -> Adapter:
    """The adapter of format `name`; an unknown name raises HarnessError with a suggestion."""
    adapters = _adapters()
    if name not in adapters:
        hint = difflib.get_close_matches(name, formats(), n=1)
        more = f"; did you mean {hint[0]!r}?" if hint else f" (formats: {', '.join(formats())})"
        raise HarnessError(f"unknown format {name!r}{more}")
    target = adapters[name]
    if callable(target):
        return target
    module, _, func = target.partition(":")
    fn: Adapter = getattr(importlib.import_module(module), func)
    return fn


def default_name(fmt: str, source: str) -> str:
    """`<format>-<source name>`, e.g. `contractnli-dev`; just the format when they coincide."""
    stem = slug(Path(source).stem or Path(source).name or source).lower()
    return fmt if stem in (fmt, "tasks", "data") else f"{fmt}-{stem}"


def read(fmt: str, source: str, options: ImportOptions | None = None) -> SuiteData:
    """Read `source` with format `fmt`'s adapter (nothing is written)."""
    options = options or ImportOptions()
    adapter = get(fmt)
    return adapter(source, replace(options, name=options.name or default_name(fmt, source)))


def import_suite(fmt: str, source: str, out: Path, options: ImportOptions | None = None,
                 overwrite: bool = False) -> Suite:
    """Import `source` into the suite folder `out` (the suite is named after the folder unless
    `options.name` says otherwise), validated by `load_suite_dir` before it is moved into place:
    nothing is left behind on an error."""
    options = options or ImportOptions()
    _check_out(out, overwrite)
    data = read(fmt, source, replace(options, name=options.name or slug(out.name)))
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_suite(data, tmp)
        suite = _validate(tmp, out)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return replace(suite, root=out.resolve())


def _validate(tmp: Path, out: Path) -> Suite:
    """Load the suite written in `tmp`; problems name the files as they would be in `out`."""
    try:
        return load_suite_dir(tmp)
    except SuiteError as e:
        raise SuiteError([p.replace(str(tmp), str(out)) for p in e.problems]) from None


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        if out.exists():
            out.rmdir()
        return
    if not (out / "suite.toml").is_file():
        raise HarnessError(f"{out}: exists and is not a suite folder; choose another --out")
    if not overwrite:
        raise HarnessError(f"{out}: a suite is already there; pass --force to replace it")


# ---------------------------------------------------------------- the import cache
def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    return []


def _source_files(source: str, options: ImportOptions) -> list[Path]:
    paths = [Path(source).expanduser(), *([options.mapping] if options.mapping else [])]
    files = [f for p in paths for f in _files_under(p)]
    for f in list(files):
        if f.suffix == ".toml":  # a column mapping: the data files it names count too
            from harness.data.formats.table import mapping_files

            files += [g for p in mapping_files(f) for g in _files_under(p)]
    return files


def source_key(fmt: str, source: str, options: ImportOptions) -> str:
    """sha256 of the format, the options and every source file's bytes (for a hub dataset id, the id)."""
    h = hashlib.sha256(json.dumps([CACHE_VERSION, fmt, source, options.name, options.describe()]).encode())
    for f in _source_files(source, options):
        h.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def cached_import(fmt: str, source: str, options: ImportOptions | None = None) -> Path:
    """The suite folder of `source` imported with `options`, in `<cache>/suites/`, written on the
    first call and reused while the source files and options stay the same."""
    from harness.core.cache import cache_root

    options = options or ImportOptions()
    options = replace(options, name=options.name or default_name(fmt, source))
    get(fmt)  # an unknown format fails before hashing anything
    folder = cache_root() / "suites" / f"{options.name}-{source_key(fmt, source, options)[:16]}"
    if not (folder / "suite.toml").is_file():
        import_suite(fmt, source, folder, options, overwrite=True)
    return folder
