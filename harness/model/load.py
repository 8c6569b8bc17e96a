"""Loading models: a GGUF file is converted once into a safetensors folder in the harness cache
(about 40 s for the default model), after which it loads in under a second; the cache key is the
file's identity (harness.model.spec).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core.cache import cache_root
from harness.core.errors import HarnessError
from harness.core.faults import kill_point
from harness.model.spec import ModelSpec

if TYPE_CHECKING:
    from harness.model.runtime import ModelRuntime


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


def assemble_gguf(spec: ModelSpec) -> Path:
    """The GGUF file of a package that ships it in chunks, assembled (once, atomically) at its location."""
    import importlib

    path = Path(spec.location)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    importlib.import_module(str(spec.package)).assemble(output_path=tmp, overwrite=True)  # checks its sha256
    tmp.replace(path)
    return path


def local_weights(spec: ModelSpec) -> str:
    """A folder or hub id that from_pretrained can load, converting a GGUF file on first use."""
    if spec.source != "gguf":
        return spec.location
    target = cache_root() / "models" / spec.identity.replace(":", "-")
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        gguf = assemble_gguf(spec) if spec.package else Path(spec.location)
        convert_gguf(gguf, target)
        if spec.package:
            gguf.unlink(missing_ok=True)  # converted: the chunks stay in their package
    return str(target)


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def base_dtype(device: str) -> str:
    """The dtype the base model is loaded and computed in: bf16 where the device's matmuls have native
    bf16, else fp32 (harness.core.precision)."""
    from harness.core.precision import compute_dtype

    return compute_dtype(device)


def load_runtime(spec: ModelSpec, device: str | None = None, trust_remote_code: bool = False,
                 dtype: str | None = None) -> ModelRuntime:
    """Load weights and tokenizer into a ModelRuntime computing in `base_dtype` (`dtype` overrides, e.g.
    to run the GPU configuration on a CPU without native bf16)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from harness.model.runtime import ModelRuntime

    hf_logging.disable_progress_bar()

    device = device or pick_device()
    dtype = dtype or base_dtype(device)
    torch_dtype = getattr(torch, dtype)
    where = local_weights(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise HarnessError(f"cannot load model {spec.ref!r}: {str(e).splitlines()[0]}") from None
    model.to(device)  # type: ignore[arg-type]  # transformers' stub types `to` as a decorator
    model.eval()
    return ModelRuntime(model, tokenizer, spec=spec, device=device, compute_dtype=dtype)
