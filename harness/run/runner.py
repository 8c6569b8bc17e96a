"""Plan and run cells. A cell is (strategy, options, seed) on one suite and model.

Each cell's id hashes everything that determines its result; a finished cell's record is reused,
so an interrupted compare resumes where it stopped and an identical re-run costs nothing.
A cell that raises is recorded as failed and the others still run.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.core.cache import atomic_write_text, cache_root
from harness.core.errors import Unsupported
from harness.core.faults import kill_point
from harness.core.measure import measure, summarize_latency
from harness.core.provenance import now, provenance
from harness.core.records import CellRecord, Prediction, Retention, TaskResult, from_json, to_json
from harness.data.evaluation import evaluate_task
from harness.model.load import load_runtime, pick_device
from harness.model.runtime import ModelRuntime
from harness.model.training import on_train_step
from harness.run.plan import Cell, Plan
from harness.run.remote import RemoteOut
from harness.run.retention import RetentionProbe
from harness.run.work import cell_work
from harness.strategy.protocol import RunContext
from harness.strategy.registry import Registry

Event = Callable[..., None]
REUSABLE = ("ok", "skipped")


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA (or other accelerator) out-of-memory, as torch raises it."""
    return type(e).__name__ == "OutOfMemoryError" or "out of memory" in str(e).lower()


def _free_device_memory(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


class Runner:
    """Runs a plan's cells in order, reusing finished records from `cells_dir` (and from `remote`,
    the URL the output folder is mirrored to, when the compare's --out is one: see harness.run.remote)."""

    def __init__(self, plan: Plan, registry: Registry, cells_dir: Path, on_event: Event | None = None,
                 device: str | None = None, trust_remote_code: bool = False, remote: RemoteOut | None = None):
        self.plan = plan
        self.registry = registry
        self.cells_dir = cells_dir
        self.emit: Event = on_event or (lambda *a, **k: None)
        self.device = device or pick_device()
        self.trust_remote_code = trust_remote_code
        self.remote = remote
        self._bases: dict[str, ModelRuntime] = {}
        self.current = plan.model
        """The model of the cell being run (compare --models runs several, one after another)."""
        self._probes: dict[str, RetentionProbe] = {}
        self.unfit: dict[str, str] = {}
        """Cell id -> why it is predicted not to fit the device (harness.model.plan): skipped, never saved."""

    @property
    def probe(self) -> RetentionProbe | None:
        """The retention probe of the current model (each model against its own base); None without one."""
        if self.plan.retention is None:
            return None
        key = self.current.identity
        if key not in self._probes:
            self._probes[key] = RetentionProbe(self.plan.retention, key, self.cells_dir.parent / "retention",
                                               self.plan.limit, self.plan.batch_size, self.device)
        return self._probes[key]

    def base_paths(self) -> list[Path]:
        """The cached base-model retention files of every model used so far (pushed to a URL --out)."""
        return [p.base_path for p in self._probes.values()]

    def record_path(self, cell: Cell) -> Path:
        return self.cells_dir / f"{cell.cell_id}.json"

    def cached(self, cell: Cell) -> CellRecord | None:
        """The cell's reusable record: local first, then at the URL (finished on another machine or node)."""
        path = self.record_path(cell)
        rec = _reusable(path)
        if rec is None and self.remote is not None and self.remote.fetch(path):
            rec = _reusable(path)
        if rec is not None and cell.rerun and _finished_before(rec, self.plan.started):
            return None  # compare --rerun: made before this run, recompute
        return rec

    def save_record(self, cell: Cell, rec: CellRecord) -> None:
        """Write the cell's record atomically, and push it to the URL when there is one."""
        path = self.record_path(cell)
        atomic_write_text(path, to_json(rec))
        if self.remote is not None:
            self.remote.push(path)

    def run(self) -> list[CellRecord]:
        """Every cell of the plan, reusing finished records. The caller holds the folder's lock, so
        temporary files left by a killed earlier run are garbage: they are removed first."""
        self.remove_stale_temp()
        return [self.reuse_or_run(cell) for cell in self.plan.cells]

    def reuse_or_run(self, cell: Cell, compute: Callable[[Cell], CellRecord] | None = None) -> CellRecord:
        """The cell's finished record if there is one (here or at the URL); else compute it (`compute`,
        default `run_cell`) and save it atomically before returning. The one place a cell is reused or
        run: the local loop, Ray workers and tuning trials all come here."""
        rec = self.cached(cell)
        if rec is not None:
            self.emit("cell_cached", cell=cell, record=rec)
            return rec
        if cell.cell_id in self.unfit:  # not saved: a device with more memory runs it
            rec = CellRecord(**self._header(cell), status="skipped", error=self.unfit[cell.cell_id])
            rec = replace(rec, provenance=provenance(self.device, now(), self.trust_remote_code))
            self.emit("cell_done", cell=cell, record=rec)
            return rec
        kill_point("cell-start")
        self.emit("cell_start", cell=cell)
        rec = (compute or self.run_cell)(cell)
        self.save_record(cell, rec)
        self.emit("cell_done", cell=cell, record=rec)
        kill_point("between-cells")
        return rec

    def remove_stale_temp(self) -> None:
        """Temporary files of records a killed run was writing. Only the holder of the folder's lock
        may call this (no live writer can own them then)."""
        for stale in self.cells_dir.glob(".*.tmp"):
            stale.unlink(missing_ok=True)

    def failed_record(self, cell: Cell, error: str) -> CellRecord:
        """The record of a cell that could not finish (also used by executors when a worker dies)."""
        return replace(CellRecord(**self._header(cell), status="failed", error=error),
                       provenance=provenance(self.device, now(), self.trust_remote_code))

    def load_base(self) -> ModelRuntime:
        """The current model's base runtime, loaded once and shared by its cells (one model in memory)."""
        key = self.current.identity
        if key not in self._bases:
            self._bases.clear()
            _free_device_memory(self.device)
            self.emit("model_loading", model=self.current)
            self._bases[key] = load_runtime(self.current, self.device, self.trust_remote_code)
            self.emit("model_loaded", model=self.current)
        return self._bases[key]

    def _header(self, cell: Cell) -> dict[str, Any]:
        p = self.plan
        return dict(cell_id=cell.cell_id, suite=p.suite.name, suite_hash=p.suite.data_hash,
                    strategy=cell.strategy, options=cell.options, seed=cell.seed, model=p.model_of(cell).identity,
                    limit=p.limit)

    def run_cell(self, cell: Cell) -> CellRecord:
        started = now()
        self.current = self.plan.model_of(cell)
        try:
            rec = self._evaluate_with_retries(cell)
        except Unsupported as e:
            rec = CellRecord(**self._header(cell), status="skipped", error=e.reason)
        except Exception as e:  # isolate the cell: record it, keep going
            work = self.cells_dir / cell.cell_id
            work.mkdir(parents=True, exist_ok=True)
            atomic_write_text(work / "error.log", traceback.format_exc())
            rec = CellRecord(**self._header(cell), status="failed", error=f"{type(e).__name__}: {e}")
        return replace(rec, provenance=provenance(self.device, started, self.trust_remote_code))

    def _evaluate_with_retries(self, cell: Cell) -> CellRecord:
        """Out of device memory: halve the evaluation batch (an automatic one restarts from 8) and try
        again, down to 1."""
        batch = self.plan.batch_size
        while True:
            try:
                return self._evaluate_cell(cell, batch)
            except Exception as e:
                if not is_out_of_memory(e) or batch == 1:
                    raise
                batch = 8 if batch is None else batch // 2
                self.emit("cell_retry", cell=cell, reason=f"out of memory; batch size {batch}")
                _free_device_memory(self.device)

    def _evaluate_cell(self, cell: Cell, batch_size: int | None) -> CellRecord:
        cls = self.registry.get(cell.strategy)
        strategy = cls(cls.Options.model_validate(cell.options))
        ctx = RunContext(cell.seed, self.device, self.cells_dir / cell.cell_id, cache_root(), self.current,
                         self.load_base)
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        self.load_base()  # shared by cells: loading it is not part of any strategy's cost
        step = lambda s, n, loss: self.emit("train_step", cell=cell, step=s, steps=n, loss=loss)  # noqa: E731
        with measure(self.device) as m, on_train_step(step):
            adapted = strategy.adapt(ctx, self.plan.suite)
        adapt = replace(adapted.report, wall_s=m.wall_s, peak_mem_bytes=m.peak_mem_bytes)
        kill_point("adapted")
        phases = {"adapt": m.wall_s}
        with measure(self.device) as ev:
            preds, results = self._evaluate_tasks(cell, strategy, ctx, adapted.runtime, batch_size, phases)
        queries = [p for p, query in zip(preds, self._queries(preds), strict=True) if query]
        t0 = time.perf_counter()
        retention = self._retention(cell, adapted.runtime)
        phases["retention"] = time.perf_counter() - t0
        return CellRecord(
            **self._header(cell), status="ok", tasks=tuple(results), predictions=tuple(preds), adapt=adapt,
            latency=summarize_latency(queries, ev.wall_s, batch_size), eval_wall_s=ev.wall_s,
            eval_peak_mem_bytes=ev.peak_mem_bytes, retention=retention, family=cls.family,
            work=cell_work(self.load_base().model, adapt, queries, m, ev, self.device), phase_s=phases,
        )

    def _evaluate_tasks(self, cell: Cell, strategy: Any, ctx: RunContext, rt: ModelRuntime, batch_size: int | None,
                        phases: dict[str, float]) -> tuple[list[Prediction], list[TaskResult]]:
        """Every task's test items through the strategy's prompts on the adapted runtime."""
        preds: list[Prediction] = []
        results: list[TaskResult] = []
        for task in self.plan.suite.tasks:
            examples = task.test[: self.plan.limit]
            self.emit("task_start", cell=cell, task=task.name, n=len(examples))
            t0 = time.perf_counter()
            prompts = strategy.prompts(ctx, task, examples)
            p, r = evaluate_task(rt, task, examples, prompts, batch_size)
            phases[f"eval:{task.name}"] = time.perf_counter() - t0
            preds += p
            results.append(r)
            self.emit("task_done", cell=cell, task=task.name, n=len(examples))
            kill_point("task-done")
        return preds, results

    def _retention(self, cell: Cell, rt: ModelRuntime) -> Retention | None:
        """The retention suite on the adapted model beside the base's; a strategy that changes only the
        prompt shares the base's weights, so its retention is the base's, not re-scored."""
        if self.probe is None:
            return None
        n = sum(len(t.test[: self.plan.limit]) for t in self.probe.suite.tasks)
        self.emit("task_start", cell=cell, task=f"retention ({self.probe.suite.name})", n=n)
        base_path = self.probe.base_path
        shared = self.remote is not None and (base_path.is_file() or self.remote.fetch(base_path))
        if self.registry.get(cell.strategy).family == "context":
            result = self.probe.shared(self.load_base())
        else:
            result = self.probe.measure(rt, self.load_base())
        if self.remote is not None and not shared:
            self.remote.push(base_path)  # computed here: the base figures for every other node
        self.emit("task_done", cell=cell, task="retention", n=n)
        return result

    def _queries(self, preds: list[Prediction]) -> list[bool]:
        """Whether each prediction answers a user query (latency counts it; language modeling does not)."""
        query = {t.name: t.spec.query for t in self.plan.suite.tasks}
        return [query[p.task] for p in preds]


def _finished_before(rec: CellRecord, started: str) -> bool:
    """Whether `rec` was finished before `started` (a record stores whole seconds: one finished in the
    plan's own second counts as before, as it was)."""
    if rec.provenance is None:
        return True
    return datetime.fromisoformat(rec.provenance.finished_at) < datetime.fromisoformat(started)


def _reusable(path: Path) -> CellRecord | None:
    """The record at `path` if it is a valid record of a finished or skipped cell. A record that
    does not parse (a foreign file, or one half written at a URL) is never trusted: recompute."""
    if not path.is_file():
        return None
    try:
        rec = from_json(CellRecord, path.read_bytes())
    except ValueError:
        return None
    return rec if rec.status in REUSABLE else None
