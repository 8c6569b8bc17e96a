"""Measurement: wall time, peak memory (RSS on CPU, max allocated on CUDA), latency percentiles."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from harness.core.records import LatencySummary, Prediction


@dataclass
class Measured:
    wall_s: float = 0.0
    peak_mem_bytes: int = 0
    cpu_s: float = 0.0
    """CPU time of this process (all its threads): the work done, whatever else the machine does."""


def _rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


@contextmanager
def measure(device: str = "cpu", interval_s: float = 0.05) -> Iterator[Measured]:
    """Time the block and record its peak memory: CUDA max allocated, else sampled process RSS."""
    result = Measured()
    stop = threading.Event()
    cuda = device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    peak = [_rss_bytes()]

    def sample() -> None:
        while not stop.wait(interval_s):
            peak[0] = max(peak[0], _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    if not cuda:
        sampler.start()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield result
    finally:
        result.cpu_s = time.process_time() - c0
        result.wall_s = time.perf_counter() - t0
        stop.set()
        if cuda:
            import torch

            result.peak_mem_bytes = int(torch.cuda.max_memory_allocated())
        else:
            sampler.join()
            result.peak_mem_bytes = max(peak[0], _rss_bytes())


def summarize_latency(predictions: Sequence[Prediction], wall_s: float, batch_size: int | None) -> LatencySummary:
    lat = np.array([p.latency_s for p in predictions], dtype=float)
    if lat.size == 0:
        return LatencySummary(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, batch_size)
    return LatencySummary(
        p50_s=float(np.percentile(lat, 50)),
        p95_s=float(np.percentile(lat, 95)),
        mean_s=float(lat.mean()),
        items_per_s=float(len(lat) / wall_s) if wall_s > 0 else 0.0,
        prompt_tokens_mean=float(np.mean([p.prompt_tokens for p in predictions])),
        output_tokens_mean=float(np.mean([p.output_tokens for p in predictions])),
        batch_size=batch_size,
    )
