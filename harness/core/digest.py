"""What a cell's result depends on besides its inputs: the code that computes it and the libraries
that compute with it. Both go into every cell id, so a fix to the harness, an edited plugin or an
upgraded transformers recomputes cells instead of silently reusing records made by other code."""

from __future__ import annotations

import hashlib
import inspect
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness.core.version import __version__

RESULT_PACKAGES = ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "sentence-transformers",
                   "faiss-cpu", "tokenizers", "safetensors", "numpy")
"""Libraries whose version can change a number in a record."""

RESULT_CODE = ("core", "model", "data", "strategy", "run/runner.py", "run/plan.py", "run/retention.py",
               "run/work.py")
"""The harness's own code on the path from inputs to a record (harness/...); the CLI, the report, the
decision and the executors only move or read records."""


def _files_digest(files: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@cache
def harness_code() -> str:
    """Digest of the harness modules that determine results (RESULT_CODE), and its version."""
    root = Path(__file__).resolve().parent.parent
    files: list[Path] = []
    for part in RESULT_CODE:
        path = root / part
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return f"{__version__}:{_files_digest(files, root)}"


@cache
def library_versions() -> tuple[tuple[str, str], ...]:
    """(package, version) of every installed RESULT_PACKAGES member."""
    out = []
    for name in RESULT_PACKAGES:
        try:
            out.append((name, version(name)))
        except PackageNotFoundError:
            continue
    return tuple(out)


def module_code(obj: Any) -> str:
    """Digest of the source a class or function comes from: its module file, and when that module is
    part of a package, every module of that package folder (a strategy may import its siblings). A
    plugin file loaded with --plugin is hashed like any other module, so editing it makes new cells."""
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    try:
        path = Path(inspect.getfile(module if module is not None else obj)).resolve()
    except TypeError:  # built in a REPL: nothing to hash
        return "no-source"
    package = module is not None and "." in module.__name__ and (path.parent / "__init__.py").is_file()
    files = sorted(path.parent.glob("*.py")) if package else [path]
    return _files_digest(files, path.parent)
