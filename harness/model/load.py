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
