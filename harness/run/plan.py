"""The plan of a compare: which cells run. A cell is (strategy, options, seed) on one suite and model;
its id hashes everything that determines its result, so an identical re-run reuses it and any
change to the inputs makes a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from harness.core.cache import stable_hash
from harness.core.digest import harness_code, library_versions, module_code
from harness.core.errors import HarnessError
from harness.core.precision import compute_dtype
from harness.core.provenance import now
from harness.core.records import SCHEMA_VERSION
from harness.data.catalog import load_suite
from harness.data.suites import Suite, load_suite_dir
from harness.model.spec import ModelSpec
from harness.run.config import CompareConfig
from harness.strategy.registry import Registry


@dataclass(frozen=True)
class Cell:
    strategy: str
    options: dict[str, Any]
    seed: int
    cell_id: str
    model: ModelSpec | None = None
    """The model this cell adapts (compare --models); None: the plan's model."""
    rerun: bool = False
    """Recompute even when a finished record exists (compare --rerun): records older than the plan are
    ignored, so a worker or a retry inside this run still reuses what this run computed."""


@dataclass(frozen=True)
class Plan:
    suite: Suite
    model: ModelSpec
    cells: tuple[Cell, ...]
    limit: int | None
    batch_size: int | None
    """Evaluation batch size; None: chosen per task from free memory."""
    run_id: str
    retention: Suite | None = None
    models: tuple[ModelSpec, ...] = ()
    """Every model of the run when there are several (compare --models); empty: just `model`."""
    started: str = ""
    """When the plan was made (UTC, ISO seconds): a --rerun cell's records from before it are stale."""

    def model_of(self, cell: Cell) -> ModelSpec:
        return cell.model or self.model

    def items_per_cell(self) -> int:
        suites = [self.suite] + ([self.retention] if self.retention else [])
        return sum(len(t.test[: self.limit]) for s in suites for t in s.tasks)


def cell_id(suite: Suite, model: ModelSpec, strategy: str, options: dict[str, Any], seed: int,
            limit: int | None, retention: Suite | None = None, device: str = "cpu", code: str = "") -> str:
    """The hash of everything that determines a cell's result: the inputs, the strategy's own code
    (`code`, see `strategy_code`), the harness code on the evaluation path, the device's compute
    precision (harness.core.precision) and the versions of the libraries that compute (harness.core.digest)."""
    return stable_hash({
        "schema": SCHEMA_VERSION, "suite": suite.data_hash, "model": model.identity,
        "strategy": strategy, "options": options, "seed": seed, "limit": limit,
        "retention": retention.data_hash if retention else None, "device": device.split(":")[0],
        "dtype": compute_dtype(device),
        "code": [harness_code(), code], "versions": library_versions(),
    })


def strategy_code(registry: Registry, name: str) -> str:
    """Digest of the source of strategy `name` (a hybrid: both sides')."""
    cls = registry.get(name)
    sides = getattr(cls, "sides", None) or (cls,)
    return ",".join(module_code(side) for side in sides)


def retention_suite(cfg: CompareConfig, suite: Suite) -> Suite | None:
    """The suite's retention suite (a sibling folder or any suite name), unless turned off."""
    if not cfg.retention or not suite.retention:
        return None
    sibling = suite.root.parent / suite.retention
    return load_suite_dir(sibling) if (sibling / "suite.toml").is_file() else load_suite(suite.retention)


def _validated_options(registry: Registry, name: str, raw: dict[str, Any]) -> dict[str, Any]:
    cls = registry.get(name)
    try:
        return cls.Options.model_validate(raw).model_dump(mode="json")
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise HarnessError(f"options.{name}.{loc}: {err['msg']}") from None


DEFAULT_STRATEGIES = ("zero-shot", "few-shot", "rag", "lora", "qlora", "dora", "full-ft")
"""What a compare runs when no strategy is named: one of each approach the decision is about.
`all` runs every registered strategy (plugins and the other built-ins included)."""


def strategy_names(cfg: CompareConfig, registry: Registry) -> list[str]:
    """The requested strategies; the default set when none were named; every one that loads for `all`."""
    if cfg.strategies == ["all"]:
        return sorted(registry.load_all())
    names = list(dict.fromkeys(cfg.strategies or DEFAULT_STRATEGIES))
    for name in names:
        registry.get(name)
    return names


def make_plan(cfg: CompareConfig, suite: Suite, model: ModelSpec | Sequence[ModelSpec], registry: Registry,
              device: str = "cpu") -> Plan:
    """Cells: every model x strategy x seed, model by model (one base model in memory at a time), the
    strategies that only change the prompt first (an early partial report has them while the weight
    strategies train)."""
    models = [model] if isinstance(model, ModelSpec) else list(model)
    names = strategy_names(cfg, registry)
    for name in cfg.options:
        registry.get(name)  # options for a strategy that does not exist: say which
    for name in set(cfg.rerun or ()) - {"all", *names}:
        raise HarnessError(f"--rerun {name}: not among this compare's strategies ({', '.join(names)})")
    retention = retention_suite(cfg, suite)
    options = {name: _validated_options(registry, name, cfg.options.get(name, {})) for name in names}
    cells = []
    for spec in models:
        for name in sorted(names, key=lambda n: registry.get(n).family != "context"):
            code = strategy_code(registry, name)
            for seed in cfg.seeds:
                cid = cell_id(suite, spec, name, options[name], seed, cfg.limit, retention, device, code)
                cells.append(Cell(name, options[name], seed, cid, spec if len(models) > 1 else None,
                                  rerun=_rerun(cfg, name)))
    run_id = f"{datetime.now():%Y%m%d-%H%M%S}-{stable_hash([c.cell_id for c in cells], 6)}"
    batch = None if cfg.batch_size == "auto" else cfg.batch_size
    return Plan(suite, models[0], tuple(cells), cfg.limit, batch, run_id, retention,
                tuple(models) if len(models) > 1 else (), now(precise=True))


def _rerun(cfg: CompareConfig, name: str) -> bool:
    rerun = cfg.rerun or []
    return "all" in rerun or name in rerun
