"""Everything a compare needs before its first cell runs, checked in order so that bad input fails
before anything is written: the output URL, the strategies (plugins included), the suite, the
model, the plan, the runner and the executor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.data.catalog import load_suite
from harness.data.suites import Suite
from harness.model.load import pick_device
from harness.model.spec import resolve_model
from harness.run.config import CompareConfig
from harness.run.executors import Executor, make_executor
from harness.run.plan import Plan, make_plan, strategy_names
from harness.run.remote import RemoteOut
from harness.run.runner import Runner
from harness.strategy.registry import Registry


@dataclass(frozen=True)
class Prepared:
    """A compare ready to run."""

    cfg: CompareConfig
    registry: Registry
    suite: Suite
    plan: Plan
    runner: Runner
    executor: Executor
    base: Path
    """<out>/<suite>: the folder the run holds the lock of (cells/, runs, tuning/)."""

    def pending(self) -> int:
        """Cells with no reusable record yet."""
        return sum(self.runner.cached(c) is None for c in self.plan.cells)

    def tuned(self, emit: Callable[..., None]) -> tuple[Prepared, tuple[dict[str, Any], ...]]:
        """Tune every strategy with a search space (`tune_trials` trials each, on dev), then re-plan with
        the best options; the report's tuning rows."""
        from harness.run.tune import report_rows, tune_strategies

        cfg, results = tune_strategies(self.cfg, self.suite, self.plan.model, self.registry,
                                       strategy_names(self.cfg, self.registry), self.cfg.tune_trials or 0,
                                       self.runner.device, self.cfg.tune_jobs, lambda line: emit("tune", line=line),
                                       self.executor)
        plan = make_plan(cfg, self.suite, self.plan.models or self.plan.model, self.registry, self.runner.device)
        runner = Runner(plan, self.registry, self.base / "cells", self.runner.emit, self.runner.device,
                        cfg.trust_remote_code, self.runner.remote)
        return replace(self, cfg=cfg, plan=plan, runner=runner), report_rows(results)


def remote_out(url: str | None) -> RemoteOut | None:
    """The URL --out mirrors to (harness.run.remote), checked before anything runs; None for a folder."""
    if url is None:
        return None
    remote = RemoteOut(url)
    remote.check()
    return remote


def registry_for(cfg: CompareConfig) -> Registry:
    """Installed strategies plus the config's plugin files."""
    registry = Registry.discover()
    for p in cfg.plugins:
        registry.add_plugin_file(p)
    return registry


def prepare(cfg: CompareConfig, emit: Callable[..., None]) -> Prepared:
    remote = remote_out(cfg.out_url)
    registry = registry_for(cfg)
    suite = load_suite(cfg.suite)
    device = cfg.device or pick_device()
    models = [resolve_model(m) for m in cfg.models] if cfg.models else [resolve_model(cfg.model)]
    plan = make_plan(cfg, suite, models, registry, device)
    base = cfg.out / suite.name
    runner = Runner(plan, registry, base / "cells", emit, device, cfg.trust_remote_code, remote)
    return Prepared(cfg, registry, suite, plan, runner, make_executor(cfg), base)


def tuning(cfg: CompareConfig, strategy: str, trials: int, seed: int, metric: str, storage: str | None, jobs: int,
           say: Callable[[str], None] | None) -> tuple[Any, Any, Path]:
    """(study spec, how to run it, the folder whose lock the study holds) for `harness tune`."""
    from harness.run.tune import Tuning, plan_study

    executor = make_executor(cfg)
    registry = registry_for(cfg)
    suite = load_suite(cfg.suite)
    spec, folder = plan_study(cfg, suite, resolve_model(cfg.model), registry, strategy, trials, seed, metric,
                              cfg.device or pick_device(), storage)
    how = Tuning(folder, trials, jobs, say=say, executor=executor if executor.name == "ray" else None)
    return spec, how, cfg.out / suite.name
