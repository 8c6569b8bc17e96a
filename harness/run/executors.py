"""Where cells run: in this process, one after another (the default), or as Ray tasks on a cluster.

An executor changes where a cell runs, never what it is: the plan, the cell ids, the records and
the cache rule (`Runner.cached`) are the same either way. Under Ray each pending cell is one task;
the worker builds its own Runner from the plan (its own base-model load, kept for the next cell
of the same run in that worker process), runs the cell and writes the record atomically into the
cells folder, so a finished cell survives any later crash of the driver or of another worker. A
worker that dies mid-cell is retried by Ray (`max_retries`); a retried or reconstructed task first
looks for the record and returns it instead of recomputing.

Paths (suite, model folder, plugin files, output folder) are passed as they are: on a multi-node
cluster they must name the same files on every node (a shared filesystem), except the output folder
when --out is a URL (harness.run.remote): then each worker writes the record into the staging folder of
its own node and pushes it to the URL itself, and looks there first for a record another node
finished. Ray is imported only here, and only when the Ray executor runs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.core.cache import atomic_write_text
from harness.core.errors import HarnessError
from harness.core.records import CellRecord, from_json, to_json

if TYPE_CHECKING:
    from harness.run.config import CompareConfig
    from harness.run.plan import Cell, Plan
    from harness.run.remote import RemoteOut
    from harness.run.runner import Runner

RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory")
"""What a strategy may declare in its optional `resources` class attribute (Ray's task options;
`memory` in bytes). Undeclared: 1 CPU, and on CUDA a whole GPU for weight and hybrid strategies
(they train) and half of one for context strategies (inference only, two share a card)."""
CONTEXT_GPU_SHARE = 0.5
FORWARDED_ENV = ("HARNESS_", "HF_", "TRANSFORMERS_", "TOKENIZERS_")
"""Environment variables the driver passes to workers, so plugin allow-lists, offline mode and
the crash-test kill points mean the same thing on every node."""


def forwarded_env() -> dict[str, str]:
    """This process's variables that workers get too (see FORWARDED_ENV)."""
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}


INSTALL_HINT = "--executor ray needs Ray: pip install 'harness[ray]'"


class Executor(Protocol):
    name: str

    def run(self, runner: Runner) -> list[CellRecord]:
        """Every cell of the runner's plan, in plan order, reusing finished records."""
        ...


class LocalExecutor:
    """Today's loop: cells one after another in this process, sharing one base-model load."""

    name = "local"

    def run(self, runner: Runner) -> list[CellRecord]:
        return runner.run()


def cell_resources(cls: Any, device: str, options: dict[str, Any] | None = None) -> dict[str, float]:
    """Ray task resources for one cell of strategy class `cls` on `device` (see RESOURCE_KEYS); a
    weight strategy training in N processes (option `processes`) takes N CPUs, or N GPUs on CUDA."""
    cuda = device.startswith("cuda")
    processes = (options or {}).get("processes")
    n = float(processes) if isinstance(processes, int) and processes > 1 else 1.0
    res: dict[str, float] = {"num_cpus": 1.0 if cuda else n}
    if cuda:
        res["num_gpus"] = n if cls.family in ("weights", "hybrid") else CONTEXT_GPU_SHARE
    declared = dict(getattr(cls, "resources", None) or {})
    unknown = sorted(set(declared) - set(RESOURCE_KEYS))
    if unknown:
        raise HarnessError(f"strategy {cls.name!r} declares unknown resources {unknown} "
                           f"(known: {', '.join(RESOURCE_KEYS)})")
    res.update({k: float(v) for k, v in declared.items()})
    if not cuda:
        res.pop("num_gpus", None)  # a CPU run never waits for a GPU the cluster may not have
    return res


@dataclass(frozen=True)
class CellTask:
    """What a worker needs to rebuild the driver's Runner: sent once per run through the object store."""

    plan: Plan
    cells_dir: str
    """Absolute; relative to the staging folder (of each node) when `remote` is set."""
    device: str
    trust_remote_code: bool
    plugins: tuple[str, ...]
    remote: RemoteOut | None = None


_worker_state: dict[str, Any] = {}
"""Per worker process: the Runner of the run it last served (so its base model loads once per run)."""


def _worker_runner(task: CellTask) -> Runner:
    from harness.run.runner import Runner
    from harness.strategy.registry import Registry

    key = (task.plan.run_id, task.cells_dir, task.device, task.trust_remote_code, task.plugins, task.remote)
    if _worker_state.get("key") != key:
        _worker_state.clear()  # one run's base model at a time
        registry = Registry.discover()
        for p in task.plugins:
            registry.add_plugin_file(Path(p))
        cells_dir = task.remote.staging / task.cells_dir if task.remote else Path(task.cells_dir)
        runner = Runner(task.plan, registry, cells_dir, device=task.device,
                        trust_remote_code=task.trust_remote_code, remote=task.remote)
        _worker_state.update(key=key, runner=runner)
    runner_: Runner = _worker_state["runner"]
    return runner_


def run_cell_task(task: CellTask, cell: Cell) -> str:
    """The Ray task body (runs on a worker): the cell's record as JSON, written to the cells folder
    first (and pushed to the URL, if --out is one). A record already there (an earlier attempt
    finished it, on this node or another) is returned, not recomputed."""
    return to_json(_worker_runner(task).reuse_or_run(cell))


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HarnessError(INSTALL_HINT) from None
    return ray


class RayExecutor:
    """Each pending cell as one Ray task; records come back as they finish (any order), the list
    returned is in plan order."""

    name = "ray"

    def __init__(self, address: str | None = None, plugins: tuple[Path, ...] = (), max_retries: int = 3):
        self.address = address
        """None: start a private local cluster on 127.0.0.1 for this run; `auto` or host:port: join one."""
        self.plugins = tuple(str(Path(p).resolve()) for p in plugins)
        self.max_retries = max_retries

    def run(self, runner: Runner) -> list[CellRecord]:
        ray = import_ray()
        started = self.connect(ray)
        try:
            return self._run(ray, runner)
        finally:
            if started:
                ray.shutdown()

    def connect(self, ray: Any) -> bool:
        """Initialise Ray unless the caller already did; True when this call did (and must shut it down)."""
        if ray.is_initialized():
            return False
        common = dict(logging_level=logging.WARNING, log_to_driver=False)
        try:
            if self.address:
                ray.init(address=self.address, **common)
            else:
                # Ray counts the CPUs itself (container limits included): one cell per CPU at a time
                ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1", **common)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = self.address or "a new local cluster"
            raise HarnessError(f"cannot start or reach Ray at {where}: {str(e).splitlines()[0]}") from None
        return True

    def _run(self, ray: Any, runner: Runner) -> list[CellRecord]:
        plan = runner.plan
        runner.remove_stale_temp()
        records: dict[str, CellRecord] = {}
        todo = []
        for cell in plan.cells:
            rec = runner.cached(cell)
            if rec is None:
                todo.append(cell)
            else:
                records[cell.cell_id] = rec
                runner.emit("cell_cached", cell=cell, record=rec)
        if todo:
            refs = self._submit(ray, runner, todo)
            runner.emit("cells_submitted", n=len(todo), executor=self.name)
            per_cell = plan.items_per_cell()
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    cell = refs[ref]
                    records[cell.cell_id] = rec = self._collect(ray, runner, ref, cell)
                    runner.emit("task_done", cell=cell, task="all tasks", n=per_cell)
                    runner.emit("cell_done", cell=cell, record=rec)
            runner.remove_stale_temp()  # left by a worker killed while writing; every task has ended
        return [records[c.cell_id] for c in plan.cells]

    def _submit(self, ray: Any, runner: Runner, cells: list[Cell]) -> dict[Any, Cell]:
        remote = runner.remote
        cells_dir = remote.relative(runner.cells_dir) if remote else str(runner.cells_dir.resolve())
        task = ray.put(CellTask(runner.plan, cells_dir, runner.device, runner.trust_remote_code, self.plugins,
                                remote))
        remote = ray.remote(run_cell_task)
        env = forwarded_env()
        needs = {c.cell_id: cell_resources(runner.registry.get(c.strategy), runner.device, c.options)
                 for c in cells}
        _check_feasible(ray.cluster_resources(), cells, needs)
        refs = {}
        for cell in cells:
            res = needs[cell.cell_id]
            opts = remote.options(**res, max_retries=self.max_retries, retry_exceptions=False,
                                  runtime_env={"env_vars": env}, name=f"harness:{cell.strategy}:{cell.seed}")
            refs[opts.remote(task, cell)] = cell
        return refs

    def _collect(self, ray: Any, runner: Runner, ref: Any, cell: Cell) -> CellRecord:
        """The finished cell's record; a task that failed outside the cell (its worker died past the
        retries, a plugin missing on the node) becomes a failed record, like any failing cell."""
        path = runner.record_path(cell)
        try:
            rec = from_json(CellRecord, ray.get(ref))
        except ray.exceptions.RayError as e:
            first = (str(e).strip().splitlines() or [""])[0]
            rec = runner.failed_record(cell, f"{type(e).__name__} on Ray: {first}")
            runner.save_record(cell, rec)
            return rec
        if not path.is_file():  # the worker's node does not share this folder: keep the record here too
            atomic_write_text(path, to_json(rec))
        return rec


def _check_feasible(cluster: dict[str, float], cells: list[Cell], needs: dict[str, dict[str, float]]) -> None:
    """A cell no node of the cluster could ever run would wait forever: say so instead (a cluster that
    adds nodes on demand should be scaled up before the compare)."""
    names = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
    for cell in cells:
        for key, amount in needs[cell.cell_id].items():
            have = cluster.get(names[key], 0.0)
            if amount > have:
                raise HarnessError(f"{cell.strategy} seed {cell.seed} needs {key}={amount:g} but the Ray cluster has "
                                   f"{have:g} in all; use --device cpu, or a cluster with more")


def make_executor(cfg: CompareConfig) -> Executor:
    """The executor the config asks for; Ray's absence is an input error raised before anything runs."""
    if cfg.executor == "local":
        if cfg.ray_address:
            raise HarnessError("--ray-address needs --executor ray")
        return LocalExecutor()
    import_ray()
    return RayExecutor(cfg.ray_address, tuple(cfg.plugins))
