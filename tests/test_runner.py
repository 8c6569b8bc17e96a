import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.core.records import CellRecord, from_json
from harness.model.spec import resolve_model
from harness.run.config import CompareConfig
from harness.run.plan import cell_id, make_plan
from harness.run.runner import Runner
from harness.strategy.registry import Registry

PLUGINS = Path(__file__).parent / "fixtures" / "plugins" / "test_plugins.py"


def registry_with_plugins() -> Registry:
    reg = Registry.discover()
    reg.add_plugin_file(PLUGINS)
    return reg


def test_cell_id_depends_on_every_input(mini_suite, tiny_model_dir):
    model = resolve_model(str(tiny_model_dir))
    base = cell_id(mini_suite, model, "few-shot", {"k": 4}, 0, None)
    assert base == cell_id(mini_suite, model, "few-shot", {"k": 4}, 0, None)
    variants = [
        cell_id(mini_suite, model, "few-shot", {"k": 5}, 0, None),
        cell_id(mini_suite, model, "few-shot", {"k": 4}, 1, None),
        cell_id(mini_suite, model, "few-shot", {"k": 4}, 0, 2),
        cell_id(mini_suite, model, "zero-shot", {"k": 4}, 0, None),
    ]
    assert len({base, *variants}) == 5


def test_plan_rejects_bad_options_and_unknown_strategies(mini_suite, tiny_model_dir):
    model = resolve_model(str(tiny_model_dir))
    reg = Registry.discover()
    with pytest.raises(HarnessError, match=r"options\.few-shot\.k"):
        make_plan(CompareConfig(suite="x", strategies=["few-shot"], options={"few-shot": {"k": 0}}),
                  mini_suite, model, reg)
    with pytest.raises(HarnessError, match="did you mean 'few-shot'"):
        make_plan(CompareConfig(suite="x", strategies=["few-shoot"]), mini_suite, model, reg)
    with pytest.raises(HarnessError, match="unknown strategy"):
        make_plan(CompareConfig(suite="x", options={"nope": {}}), mini_suite, model, reg)


def test_runner_records_reuse_failures_and_skips(mini_suite, tiny_model_dir, tmp_path):
    reg = registry_with_plugins()
    cfg = CompareConfig(suite="mini", strategies=["zero-shot", "boom", "needs-cuda"], seeds=[0, 1])
    plan = make_plan(cfg, mini_suite, resolve_model(str(tiny_model_dir)), reg)
    events: list[str] = []
    runner = Runner(plan, reg, tmp_path / "cells", on_event=lambda e, **_: events.append(e), device="cpu")
    records = runner.run()
    status = {(r.strategy, r.seed): r.status for r in records}
    assert status == {("zero-shot", 0): "ok", ("zero-shot", 1): "ok", ("boom", 0): "failed",
                      ("boom", 1): "failed", ("needs-cuda", 0): "skipped", ("needs-cuda", 1): "skipped"}
    boom = next(r for r in records if r.strategy == "boom")
    assert boom.error == "RuntimeError: exploded on purpose"
    assert "Traceback" in (tmp_path / "cells" / boom.cell_id / "error.log").read_text()
    ok = next(r for r in records if r.status == "ok")
    assert [t.n for t in ok.tasks] == [3, 3] and len(ok.predictions) == 6
    assert ok.latency is not None and ok.latency.p95_s >= ok.latency.p50_s > 0
    assert ok.provenance is not None and ok.provenance.packages["torch"]
    # second run: ok and skipped cells are reused, failed ones are retried
    events.clear()
    again = Runner(plan, reg, tmp_path / "cells", on_event=lambda e, **_: events.append(e), device="cpu").run()
    assert events.count("cell_cached") == 4 and events.count("cell_start") == 2
    assert [r.cell_id for r in again] == [r.cell_id for r in records]


def run_cli(args, cwd, env=None, check_rc=None):
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stdout + proc.stderr
    return proc


def test_compare_resumes_after_a_hard_kill_without_recomputing(mini_suite_dir, tiny_model_dir, tmp_path):
    args = ["compare", "--suite", str(mini_suite_dir), "--model", str(tiny_model_dir), "--out", str(tmp_path),
            "--strategies", "zero-shot,few-shot,kill-once", "--plugin", str(PLUGINS)]
    env = {"HARNESS_TEST_MARKER": str(tmp_path / "marker")}
    first = run_cli(args, tmp_path, env)
    assert first.returncode == -9  # SIGKILL in the third cell
    cells = tmp_path / "mini" / "cells"
    done = {p.name: p.read_bytes() for p in cells.glob("*.json")}
    assert len(done) == 2  # zero-shot and few-shot finished before the kill
    assert not list(cells.glob(".*.tmp"))  # no half-written record
    second = run_cli(args, tmp_path, env, check_rc=0)
    assert second.stdout.count("reused") == 2
    for name, blob in done.items():
        assert (cells / name).read_bytes() == blob  # not recomputed, not rewritten
    runs = [d for d in (tmp_path / "mini").iterdir() if (d / "report.json").is_file()]
    reports = {d: json.loads((d / "report.json").read_text()) for d in runs}
    [killed] = [d for d, r in reports.items() if r["progress"] is not None]  # its partial report stays
    assert reports[killed]["progress"] == [2, 3] and len(reports[killed]["cells"]) == 2
    [run_dir] = [d for d, r in reports.items() if r["progress"] is None]
    report = reports[run_dir]
    assert [c["status"] for c in report["cells"]] == ["ok", "ok", "ok"]
    for c in report["cells"]:
        from_json(CellRecord, (run_dir / c["record"]).read_bytes())


def test_failed_cell_gives_exit_code_1_and_a_report(mini_suite_dir, tiny_model_dir, tmp_path):
    proc = run_cli(["compare", "--suite", str(mini_suite_dir), "--model", str(tiny_model_dir), "--out",
                    str(tmp_path), "--strategies", "zero-shot,boom", "--plugin", str(PLUGINS)], tmp_path)
    assert proc.returncode == 1, proc.stderr
    [run_dir] = [d for d in (tmp_path / "mini").iterdir() if (d / "report.json").is_file()]
    md = (run_dir / "report.md").read_text()
    assert "RuntimeError: exploded on purpose" in md and "zero-shot" in md


def test_evaluation_flops_pay_the_output_head_only_where_logits_are_computed(tiny_runtime):
    """A prompt's positions but its last need no logits: the work basis must not charge a long prompt
    the head at every token (harness/run/work.py)."""
    from harness.core.measure import Measured
    from harness.core.records import AdaptReport, Prediction
    from harness.model.throughput import head_params, matmul_params
    from harness.run.work import cell_work

    model = tiny_runtime.model
    n, h = matmul_params(model), head_params(model)
    assert h == model.config.vocab_size * model.config.hidden_size and 0 < h < n
    generated = Prediction("a", "t", "x", "x", {}, 0.1, 100, 5)
    scored = Prediction("b", "t", "x", "x", {}, 0.1, 40, 0)  # a choice item: one logits position
    work = cell_work(model, AdaptReport(), [generated, scored], Measured(), Measured(), "cpu")
    assert work["eval_tokens"] == 145
    assert work["eval_flops"] == 2 * (n - h) * 145 + 2 * h * (5 + 1)
