"""What this machine computes per second, measured once and cached: the dense matmul throughput in the
device's compute precision (harness.core.precision: bf16 on CUDA and on a CPU with native bf16, else
fp32) that prices work in FLOPs (harness.decide.cost, the `work` basis) and turns a plan's FLOPs into
predicted time. A few seconds of micro-benchmark the first time; a lookup after."""

from __future__ import annotations

import json
import platform
import time
from typing import Any

from harness.core.cache import atomic_write_text, cache_root, stable_hash
from harness.core.precision import compute_dtype


def _machine_key(device: str) -> str:
    import torch

    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor()
    return stable_hash({"node": platform.node(), "machine": platform.machine(), "name": name, "device": device,
                        "threads": torch.get_num_threads(), "torch": torch.__version__, "dtype": compute_dtype(device)})


def _measure(device: str, seconds: float = 1.0) -> float:
    """Sustained FLOP/s of square matmuls in the compute precision (1024 on CPU, 8192 on CUDA)."""
    import torch

    cuda = device.startswith("cuda")
    n, dtype = (8192 if cuda else 1024), getattr(torch, compute_dtype(device))
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    runs, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        runs += 1
    sync()
    return 2 * n**3 * runs / (time.perf_counter() - t0)


def flops_per_second(device: str = "cpu") -> float:
    """This machine's measured matmul throughput on `device` (cached per machine, device and threads)."""
    path = cache_root() / "throughput.json"
    known: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    key = _machine_key(device)
    if key not in known:
        known[key] = _measure(device)
        atomic_write_text(path, json.dumps(known, indent=1))
    return float(known[key])


def matmul_params(model: Any) -> int:
    """Parameters that take part in a matmul per token: all of them, less the input embedding table
    (a lookup), plus the output head (a matmul even when it shares the embedding table)."""
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == embed.data_ptr()
    return int(total - embed.numel() + (embed.numel() if tied else 0))


def head_params(model: Any) -> int:
    """The output head's parameters (vocabulary x hidden; 0 for a model without one)."""
    head = model.get_output_embeddings()
    return int(head.weight.numel()) if head is not None else 0


def forward_flops(matmul: int, head: int, tokens: float, logits_at: float) -> float:
    """Matmul FLOPs of forwards over `tokens` positions that compute logits at `logits_at` of them: 2 x the
    parameters but the output head at every position, 2 x the head's where logits are computed (a prompt's
    other positions need none). The planner (harness.model.plan.timing) and the measured work basis
    (harness.run.work) both count evaluation this way."""
    return float(2 * (matmul - head) * tokens + 2 * head * logits_at)


def train_flops(matmul: int, head: int, trainable: int, tokens: float, logits_at: float | None = None,
                head_trains: bool = False) -> float:
    """Matmul FLOPs of training steps over `tokens` positions whose logits are computed at `logits_at` of
    them (None: all): per token 2 x the parameters forward and 2 x backward through the activations, and 2 x
    the trainable ones for their gradients (4N + 2T); the output head's share (4H, plus 2H when it trains)
    only where logits are computed (harness.model.loss.KeptLogitsLoss). The planner and the measured work
    basis both count training this way."""
    at = tokens if logits_at is None else logits_at
    trained_head = head if head_trains else 0
    return float(tokens * (4 * (matmul - head) + 2 * (trainable - trained_head)) + at * (4 * head + 2 * trained_head))
