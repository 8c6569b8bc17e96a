"""Same seed, same records: two runs on CPU give byte-identical records apart from timing and
provenance fields, for every strategy family (context, weights, hybrid)."""

from __future__ import annotations

import json
from typing import Any

from harness.core.records import to_json
from harness.model.spec import resolve_model
from harness.run.config import CompareConfig
from harness.run.plan import make_plan
from harness.run.runner import Runner
from harness.strategy.registry import Registry

TIMING = {"provenance", "latency", "eval_wall_s", "eval_peak_mem_bytes", "peak_mem_bytes", "latency_s", "cached"}
"""Fields that measure the machine, not the result; every other field must be identical."""

STRATEGIES = ["zero-shot", "few-shot", "rag", "lora", "full-ft", "rag+lora"]
OPTIONS = {name: {"max_steps": 2, "batch_size": 2, "eval_every": 1} for name in ("lora", "full-ft")}


def without_timing(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_timing(v) for k, v in node.items() if k not in TIMING and not k.endswith("_s")}
    if isinstance(node, list):
        return [without_timing(v) for v in node]
    return node


def run_once(mini_suite, tiny_model_dir, out) -> list[str]:
    cfg = CompareConfig(suite="mini", strategies=STRATEGIES, options=OPTIONS, retention=False)
    reg = Registry.discover()
    plan = make_plan(cfg, mini_suite, resolve_model(str(tiny_model_dir)), reg)
    records = Runner(plan, reg, out, device="cpu").run()
    assert [r.status for r in records] == ["ok"] * len(STRATEGIES), [r.error for r in records]
    return [json.dumps(without_timing(json.loads(to_json(r))), sort_keys=True) for r in records]


def test_two_runs_with_the_same_seed_give_identical_records(mini_suite, tiny_model_dir, tmp_path):
    first = run_once(mini_suite, tiny_model_dir, tmp_path / "a")
    second = run_once(mini_suite, tiny_model_dir, tmp_path / "b")
    for name, a, b in zip(STRATEGIES, first, second, strict=True):
        assert a == b, f"{name}: records differ beyond timing fields"
