"""The library entry point: a whole compare driven from Python, without the CLI, as a notebook would."""

import pytest

import harness
from harness.core.errors import HarnessError


def test_compare_from_python_then_load_and_recommend(tmp_path, mini_suite_dir, tiny_model_dir):
    events = []
    run = harness.compare({
        "suite": str(mini_suite_dir), "model": str(tiny_model_dir), "strategies": ["zero-shot", "lora"],
        "out": str(tmp_path / "reports"), "options": {"lora": {"max_steps": 2, "batch_size": 2}},
    }, on_event=lambda name, **data: events.append(name))
    assert [r.strategy for r in run.records] == ["zero-shot", "lora"] and not run.failed
    assert run.report_html.is_file() and run.report_md.is_file() and (run.folder / "report.json").is_file()
    assert run.decision is not None and run.decision.pick in ("zero-shot", "lora")
    assert events[0] == "run_start" and events.count("cell_done") == 2
    again = harness.load_run(run.folder)
    assert again.records == run.records and again.decision == run.decision
    strict = harness.recommend(run.folder, {"max_latency_ms": 1e-6})  # nothing is that fast
    assert strict.pick is None and all(o.excluded for o in strict.options)
    rerun = harness.compare({"suite": str(mini_suite_dir), "model": str(tiny_model_dir),
                             "strategies": ["zero-shot", "lora"], "out": str(tmp_path / "reports"),
                             "options": {"lora": {"max_steps": 2, "batch_size": 2}}},
                            on_event=lambda name, **data: events.append(name))
    assert rerun.records == run.records and events.count("cell_cached") == 2  # every cell reused


def test_bad_input_raises_before_anything_is_written(tmp_path, mini_suite_dir):
    with pytest.raises(HarnessError, match="unknown strategy"):
        harness.compare({"suite": str(mini_suite_dir), "strategies": ["no-such"], "out": str(tmp_path / "out")})
    assert not (tmp_path / "out").exists()
    with pytest.raises(HarnessError, match="field 'stratgies'"):
        harness.compare({"suite": str(mini_suite_dir), "stratgies": ["zero-shot"]})
