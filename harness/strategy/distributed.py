"""Data-parallel training of one cell over several processes, with the trainer's own DDP support.

The parent (the cell's process) writes a job folder and starts `torchrun --standalone` on this
module. Every worker rebuilds the strategy's trainable model from the strategy class and options
(`Launch`), loads the parent's current trainable weights into it (so a second training,
like a knowledge update, continues from the first), and runs `harness.model.training.fit_rows`: the Trainer sees
torchrun's environment and trains with DDP (gloo on CPU, nccl on CUDA), each process taking
batch_size / processes rows of every global batch. Rank 0 writes the trained weights and the
result; the parent loads them back into its model. Only JSON and safetensors cross processes.

    python -m torch.distributed.run --standalone --nproc_per_node N -m harness.strategy.distributed JOB.json
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.core.cache import atomic_write_text
from harness.core.errors import HarnessError
from harness.core.records import TrainingBudget
from harness.model.training import LoopOptions, Rows, TrainResult, fit_rows

JOB, INITIAL, TRAINED, RESULT = "job.json", "initial.safetensors", "trained.safetensors", "result.json"


@dataclass(frozen=True)
class Launch:
    """What a worker process needs to rebuild the same trainable model: the strategy class (import
    path, and its file for plugins loaded from a file), its options, the model and the cell's seed,
    device, cache folder. The weights themselves travel as safetensors (harness.strategy.distributed)."""

    strategy: str
    """module:qualname"""
    strategy_file: str | None
    options: dict[str, Any]
    model: dict[str, str]
    seed: int
    device: str
    cache_dir: str
    processes: int


def launch_for(strategy: Any, options: Any, run: Any, processes: int) -> Launch:
    """The Launch that rebuilds `strategy`'s trainable model in a worker."""
    cls = type(strategy)
    try:
        source: str | None = inspect.getfile(cls)
    except TypeError:
        source = None
    return Launch(f"{cls.__module__}:{cls.__qualname__}", source, options.model_dump(mode="json"),
                  asdict(run.model), run.seed, run.device, str(run.cache_dir), processes)


def save_trainable(model: Any, path: Path) -> None:
    """The trainable parameters of `model` (adapter or all weights) as one safetensors file."""
    from safetensors.torch import save_file

    tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(tensors, str(path))


def load_trainable(model: Any, path: Path) -> None:
    """Copy the tensors of `path` into the same-named parameters of `model`; every one must exist."""
    import torch
    from safetensors.torch import load_file

    params = dict(model.named_parameters())
    tensors = load_file(str(path))
    missing = sorted(set(tensors) - set(params))
    if missing:
        raise HarnessError(f"{path}: {len(missing)} tensors have no parameter in the model, e.g. {missing[0]}")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))


def train_in_processes(launch: Launch, model: Any, train: Rows, dev: Rows, o: LoopOptions, pad_id: int,
                       out: Path, optim: str | None) -> TrainResult:
    """Train `model` in place with `launch.processes` torchrun workers under the training options `o`
    (the strategy's, or a variant of them); the workers' checkpoints live in `out`, so a killed run
    resumes like a single-process one."""
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULT).unlink(missing_ok=True)
    save_trainable(model, out / INITIAL)
    job = {"launch": asdict(launch), "train": train, "dev": dev, "pad_id": pad_id, "optim": optim,
           "train_options": o.model_dump(mode="json")}
    atomic_write_text(out / JOB, json.dumps(job))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={launch.processes}",
           "-m", "harness.strategy.distributed", str(out / JOB)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (out / RESULT).is_file():
        atomic_write_text(out / "workers.log", proc.stdout + proc.stderr)
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{launch.processes}-process training failed (exit {proc.returncode}; log in "
                           f"{out / 'workers.log'}): {tail}")
    load_trainable(model, out / TRAINED)
    result = json.loads((out / RESULT).read_text())
    for name in (INITIAL, TRAINED, JOB):
        (out / name).unlink(missing_ok=True)
    budget = TrainingBudget(**result["budget"]) if result.get("budget") else None
    return TrainResult(**{**result, "curve": tuple(result["curve"]), "budget": budget})


def _import_strategy(ref: str, source: str | None) -> Any:
    """The strategy class: by module path, else from its source file (a --plugin file)."""
    module_name, qualname = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        if source is None:
            raise
        spec = importlib.util.spec_from_file_location(module_name, source)
        if spec is None or spec.loader is None:
            raise HarnessError(f"cannot load strategy {ref} from {source}") from None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def worker(job_path: Path) -> None:
    """One torchrun worker: rebuild, load the parent's weights, train; rank 0 writes the results."""
    from transformers import set_seed

    from harness.model.load import load_runtime
    from harness.model.spec import ModelSpec
    from harness.strategy.protocol import RunContext

    job = json.loads(job_path.read_text())
    launch = Launch(**job["launch"])
    out = job_path.parent
    cls = _import_strategy(launch.strategy, launch.strategy_file)
    strategy = cls(cls.Options.model_validate(launch.options))
    device = f"cuda:{os.environ['LOCAL_RANK']}" if launch.device.startswith("cuda") else launch.device
    spec = ModelSpec(**launch.model)  # type: ignore[arg-type]
    base = load_runtime(spec, device)
    run = RunContext(launch.seed, device, out, Path(launch.cache_dir), spec, lambda: base)
    set_seed(launch.seed)
    model = strategy.trainable_model(run, base)
    load_trainable(model, out / INITIAL)
    model.train()
    o = type(strategy.options).model_validate(job["train_options"])
    result = fit_rows(model, job["pad_id"], job["train"], job["dev"], o, out, launch.seed, device, job["optim"])
    if int(os.environ.get("RANK", "0")) == 0:
        save_trainable(model, out / TRAINED)
        atomic_write_text(out / RESULT, json.dumps(asdict(result)))


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
