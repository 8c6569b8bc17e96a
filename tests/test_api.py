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


def test_rerun_recomputes_the_named_strategies_only(tmp_path, mini_suite_dir, tiny_model_dir):
    cfg = {"suite": str(mini_suite_dir), "model": str(tiny_model_dir), "strategies": ["zero-shot", "few-shot"],
           "out": str(tmp_path / "reports"), "limit": 2}
    first = harness.compare(cfg)
    events: list[tuple[str, str]] = []

    def seen(name: str, **data) -> None:
        if "cell" in data:
            events.append((name, data["cell"].strategy))

    again = harness.compare({**cfg, "rerun": ["few-shot"]}, on_event=seen)
    assert ("cell_cached", "zero-shot") in events and ("cell_start", "few-shot") in events
    assert ("cell_cached", "few-shot") not in events
    old, new = (next(r for r in run.records if r.strategy == "few-shot") for run in (first, again))
    assert new.cell_id == old.cell_id and new.provenance.finished_at >= old.provenance.finished_at
    assert [p.output for p in new.predictions] == [p.output for p in old.predictions]  # same inputs, same answers
    with pytest.raises(HarnessError, match="--rerun lora: not among"):
        harness.compare({**cfg, "rerun": ["lora"]})
