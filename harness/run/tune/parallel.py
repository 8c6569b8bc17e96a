"""Trials in parallel: worker processes here, or Ray tasks on a cluster, sharing the study's storage."""

from __future__ import annotations

from typing import Any

from harness.core.errors import HarnessError
from harness.run.tune.study import TrialSpec
from harness.run.tune.trials import run_trials


def _worker(spec: TrialSpec, n: int, worker: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    run_trials(spec, n, worker)

def split_trials(n: int, jobs: int) -> list[int]:
    """`n` trials split between `jobs` workers up front, so the study gets exactly `n`."""
    return [n // jobs + (i < n % jobs) for i in range(jobs)]

def in_processes(spec: TrialSpec, n: int, jobs: int) -> None:
    """`jobs` processes share the study's storage; the trials are split between them up front, so
    the study gets exactly `n` (no worker starts one past the budget)."""
    import multiprocessing
    import os

    ctx = multiprocessing.get_context("spawn")
    shares = split_trials(n, jobs)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    procs = [ctx.Process(target=_worker, args=(spec, k, i, threads)) for i, k in enumerate(shares) if k]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    bad = [p.exitcode for p in procs if p.exitcode]
    if bad:
        raise HarnessError(f"{len(bad)} tuning worker(s) exited with status {bad}")

def on_ray(spec: TrialSpec, n: int, jobs: int, executor: Any) -> None:
    """The trials as Ray tasks sharing the study's storage (a file every node must see, or an RDB URL):
    `jobs` tasks (1: one per CPU of the cluster), the trials split between them up front; on CUDA each
    task takes a GPU."""
    from harness.run.executors import forwarded_env, import_ray

    ray = import_ray()
    started = executor.connect(ray)
    try:
        if jobs == 1:
            jobs = max(1, min(n, int(ray.cluster_resources().get("CPU", 1))))
        shares = split_trials(n, jobs)
        gpus = 1.0 if spec.device.startswith("cuda") else 0.0
        env = forwarded_env()  # offline mode, allow-lists
        task = ray.remote(_worker).options(num_cpus=1, num_gpus=gpus, max_retries=0, runtime_env={"env_vars": env},
                                           name=f"harness-tune:{spec.strategy}")
        refs = [task.remote(spec, k, i, 1) for i, k in enumerate(shares) if k]
        ray.get(refs)
    finally:
        if started:
            ray.shutdown()
