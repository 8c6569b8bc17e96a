"""A compare's cells, planned: for each cell its method and trainable parameters, predicted peak memory
(with the breakdown), training steps, adaptation and evaluation time, and whether it fits the device.

`plan_cells` reads a plan by attribute (`cells` with strategy, options, seed, cell_id and optionally a
model; `suite`, `model`, `limit`, `batch_size`) and a registry by `get(name).family`, so this layer
needs no import of the run layer that builds them. Nothing is loaded but configurations and, when on
disk already, tokenizers."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from harness.core.errors import HarnessError
from harness.core.precision import compute_dtype
from harness.model.plan.footprint import GB, Footprint, Method, Shapes, footprint
from harness.model.plan.methods import method_for
from harness.model.plan.shape import ModelShape, config_of, converted_folder, shape_of, tokenizer_of
from harness.model.plan.timing import Timing, Workload, predict_time
from harness.model.plan.workload import MESSAGE_TOKENS, SuiteTokens, suite_tokens, token_counter, workload
from harness.model.spec import ModelSpec


@dataclass(frozen=True)
class Capacity:
    """The memory a cell may use on the planned device."""

    device: str
    """cpu or cuda."""
    bytes: float
    source: str
    """What the figure is: RAM, CUDA total memory, or --memory-gb."""
    free: float | None = None
    """Memory free right now on this machine, when it is the planned device."""


def capacity(device: str, memory_gb: float | None = None) -> Capacity:
    """The planned device's memory: `memory_gb` when given, else this machine's CUDA device's total memory,
    or its RAM (with what is available now beside it)."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if memory_gb is not None:
        return Capacity(kind, memory_gb * GB, "given")
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise HarnessError("planning for CUDA on a machine without one needs the device's memory (--memory-gb)")
        index = torch.device(device).index or 0
        free, total = torch.cuda.mem_get_info(index)
        return Capacity(kind, float(total), "CUDA memory", float(free))
    import psutil

    vm = psutil.virtual_memory()
    return Capacity(kind, float(vm.total), "RAM", float(vm.available))


BF16_CPU_CAUTION = ("bf16 on a CPU: weight cells measured up to 37% above this plan "
                    "(benchmarks/results/plan_accuracy.md); fp32 plans were within 20%")
"""The activation model's bf16 widths do not hold under CPU autocast (norms and elementwise ops keep fp32):
measured, not yet modelled."""


@dataclass(frozen=True)
class CellPlan:
    """One row of the plan."""

    strategy: str
    seed: int
    cell_id: str
    model: str
    method: str
    trainable: int
    total_params: int
    memory: Footprint
    steps: int
    time: Timing | None
    """None when this machine cannot measure the planned device's throughput."""
    fits: bool
    reason: str
    embedder: bool = False
    """The sentence embedder is in the process once this cell has run."""
    device: str = ""
    """What the cell was planned for, e.g. "cpu, 25.3 GB of RAM"."""
    shapes: Shapes | None = None
    """The batch and sequence lengths the memory was planned at."""

    @property
    def peak_gb(self) -> float:
        return self.memory.peak / GB

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly row."""
        t = self.time
        return {"strategy": self.strategy, "seed": self.seed, "cell_id": self.cell_id, "model": self.model,
                "method": self.method, "trainable_params": self.trainable, "total_params": self.total_params,
                "peak_gb": round(self.peak_gb, 3), "peak_phase": self.memory.phase,
                "breakdown_gb": {k: round(v / GB, 3) for k, v in self.memory.terms.items()},
                "train_peak_gb": round(self.memory.train_peak / GB, 3),
                "eval_peak_gb": round(self.memory.eval_peak / GB, 3), "train_steps": self.steps,
                "adapt_s": None if t is None else round(t.adapt_s, 1),
                "eval_s": None if t is None else round(t.eval_s, 1),
                "fits": self.fits, "reason": self.reason, "device": self.device, "notes": list(self.memory.notes)}


def describe(cap: Capacity) -> str:
    where = {"given": "given", "RAM": "of RAM", "CUDA memory": "of CUDA memory"}[cap.source]
    return f"{cap.device}, {cap.bytes / GB:.1f} GB {where}"


def verdict(peak: float, cap: Capacity) -> tuple[bool, str]:
    """Whether a predicted peak fits, in words."""
    where = {"given": "given", "RAM": "of RAM", "CUDA memory": "of CUDA memory"}[cap.source]
    if peak > cap.bytes:
        return False, f"predicted peak {peak / GB:.1f} GB > {cap.bytes / GB:.1f} GB available"
    said = f"predicted peak {peak / GB:.1f} GB <= {cap.bytes / GB:.1f} GB {where}"
    if cap.free is not None and peak > cap.free:
        said += f" (only {cap.free / GB:.1f} GB free now)"
    return True, said


@dataclass(frozen=True)
class ModelPlanInputs:
    """What planning needs of one model, computed once per model."""

    spec: ModelSpec
    shape: ModelShape
    tokens: SuiteTokens
    count: Any
    notes: tuple[str, ...] = ()


def model_inputs(spec: ModelSpec, suite: Any, limit: int | None, trust_remote_code: bool = False) -> ModelPlanInputs:
    shape = shape_of(config_of(spec, trust_remote_code), spec.ref)
    tokenizer = tokenizer_of(spec)
    count = token_counter(tokenizer)
    notes: tuple[str, ...] = ()
    if tokenizer is None:
        notes += ("tokens estimated from characters (no tokenizer on disk yet)",)
    if spec.source == "gguf" and not (converted_folder(spec) / "config.json").is_file():
        notes += (f"{spec.ref}: the GGUF file is converted once before the first cell (about 30 s per 100M "
                  "parameters here; not in these times)",)
    return ModelPlanInputs(spec, shape, suite_tokens(suite, count, limit), count, notes)


def plan_cell(inputs: ModelPlanInputs, strategy: str, family: str, options: dict[str, Any], cap: Capacity,
              flops_per_s: float | None, eval_batch: int | None, seed: int = 0, cell_id: str = "",
              embedder_loaded: bool = False) -> CellPlan:
    """One cell's row (module docstring); `eval_batch` None: sized as --batch-size auto sizes it;
    `embedder_loaded`: an earlier cell of the same process loaded the sentence embedder."""
    shape = inputs.shape
    method = method_for(strategy, family, options, shape)
    if embedder_loaded and not method.embedder:
        method = replace(method, embedder=True)
    system_text = str(dict(options.get("weights", options)).get("system", options.get("system", "")) or "")
    system = inputs.count(system_text) + MESSAGE_TOKENS if system_text else 0
    trains = method.trainable > 0
    work, shapes = workload(inputs.tokens, strategy, options, cap.device, eval_batch or 8, trains, system,
                            method.virtual_tokens, method.all_logits)
    if eval_batch is None:
        work, shapes = _auto_batch(inputs, strategy, options, cap, trains, system, method, shapes.eval_seq)
    bf16 = compute_dtype(cap.device) == "bfloat16"
    memory = footprint(shape, method, shapes, cuda=cap.device == "cuda", bf16=bf16)
    caution = (BF16_CPU_CAUTION,) if bf16 and cap.device == "cpu" and method.trainable else ()
    memory = replace(memory, notes=memory.notes + inputs.notes + caution)
    timing = None if flops_per_s is None else predict_time(shape, method, work, flops_per_s,
                                                           "bfloat16" if bf16 else "float32")
    fits, reason = verdict(memory.peak, cap)
    if method.approximate and not fits:
        fits, reason = True, f"run anyway: {reason}, but {method.note}"
    return CellPlan(strategy, seed, cell_id, inputs.spec.ref, method.name, method.trainable, shape.params, memory,
                    work.steps, timing, fits, reason, method.embedder, describe(cap), shapes)


def _auto_batch(inputs: ModelPlanInputs, strategy: str, options: dict[str, Any], cap: Capacity, trains: bool,
                system: int, method: Method, seq: int) -> tuple[Workload, Any]:
    """--batch-size auto: the most rows (at most 64) whose KV cache at the longest row fits in half the memory
    (harness.model.memory.auto_batch_size)."""
    per_token = inputs.shape.kv_bytes_per_token(2 if compute_dtype(cap.device) == "bfloat16" else 4)
    batch = max(1, min(64, int((cap.free or cap.bytes) * 0.5) // max(1, per_token * max(1, seq))))
    return workload(inputs.tokens, strategy, options, cap.device, batch, trains, system, method.virtual_tokens,
                    method.all_logits)


def plan_cells(plan: Any, registry: Any, device: str, memory_gb: float | None = None,
               flops_per_s: float | None = None, trust_remote_code: bool = False) -> list[CellPlan]:
    """Every cell of `plan` (module docstring) on `device` (cpu or cuda) with `memory_gb` of memory (default:
    this machine's). Throughput: `flops_per_s`, else measured here when the planned device is this
    machine's kind; else times are left out."""
    cap = capacity(device, memory_gb)
    rate = flops_per_s if flops_per_s is not None else _local_throughput(cap.device)
    inputs: dict[str, ModelPlanInputs] = {}
    rows: list[CellPlan] = []
    for cell in plan.cells:
        spec = getattr(cell, "model", None) or plan.model
        if spec.identity not in inputs:
            inputs[spec.identity] = model_inputs(spec, plan.suite, plan.limit, trust_remote_code)
        family = registry.get(cell.strategy).family
        loaded = any(r.embedder for r in rows)  # cells run in order in one process (the local executor)
        rows.append(plan_cell(inputs[spec.identity], cell.strategy, family, cell.options, cap, rate,
                              plan.batch_size, cell.seed, cell.cell_id, loaded))
    return rows


def _local_throughput(kind: str) -> float | None:
    """This machine's measured matmul throughput for `kind` when it has such a device."""
    from harness.model.throughput import flops_per_second

    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            return None
    return flops_per_second(kind)
