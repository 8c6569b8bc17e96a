"""The compute precision of a device: bf16 wherever its matmuls have native bf16 (CUDA; a CPU with
AVX512-BF16 or AMX), fp32 elsewhere.

On such a device every strategy computes the same way: the base model is loaded in bf16, evaluation
runs under bf16 autocast (so a fine-tune's fp32 master weights are evaluated as the base is), and
training is bf16-mixed (fp32 trainable weights, bf16 compute; harness.model.training.precision).
On the 2-core CI CPU (AVX512-BF16) a bf16 matmul runs at 4.4x to 4.7x the fp32 rate
(benchmarks/forward_efficiency.py; benchmarks/cpu_precision.py measures what it changes in a compare,
side by side). Where bf16 is emulated (no such flag) it is slower than fp32, so fp32 stays.

`HARNESS_PRECISION=fp32` (or `bf16`) overrides the choice; the precision is part of a cell's id.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""x86 CPU flags (Linux /proc/cpuinfo) whose presence means bf16 dot products in hardware."""


@lru_cache(maxsize=1)
def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 matmuls in hardware (Linux x86: its /proc/cpuinfo flags)."""
    info = Path("/proc/cpuinfo")
    if platform.machine().lower() not in ("x86_64", "amd64") or not info.is_file():
        return False
    flags = next((line.split(":", 1)[1].split() for line in info.read_text().splitlines()
                  if line.startswith("flags")), [])
    return any(f in flags for f in NATIVE_BF16_FLAGS)


def compute_dtype(device: str) -> str:
    """"bfloat16" or "float32": what `device`'s models are loaded and computed in (module docstring)."""
    wanted = os.environ.get("HARNESS_PRECISION", "auto").strip().lower()
    if wanted in ("fp32", "float32"):
        return "float32"
    if wanted in ("bf16", "bfloat16"):
        return "bfloat16"
    if wanted != "auto":
        from harness.core.errors import HarnessError

        raise HarnessError(f"HARNESS_PRECISION={wanted!r}: expected auto, fp32 or bf16")
    return "bfloat16" if device.startswith("cuda") or native_bf16_cpu() else "float32"


@contextlib.contextmanager
def autocast(device: str, dtype: str) -> Iterator[None]:
    """bf16 autocast on `device` when `dtype` is bfloat16; nothing otherwise."""
    if dtype != "bfloat16":
        yield
        return
    import torch

    with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16):
        yield


def without_amp_wrapper(model: object) -> None:
    """Undo what bf16-mixed training (the Trainer's accelerate) leaves on a model: an autocast wrapper around
    its forward that also converts every output to fp32 (a 262k vocabulary's logits twice over).
    Evaluation applies the device's precision itself (ModelRuntime), so the model gets its own forward back."""
    original = model.__dict__.pop("_original_forward", None)
    if original is None:
        return
    if getattr(original, "__func__", None) is getattr(type(model), "forward", None):
        model.__dict__.pop("forward", None)  # the class's own forward again
    else:
        model.forward = original  # type: ignore[attr-defined]  # a forward patched before training
