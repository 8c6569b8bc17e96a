"""compare --models: cells are (model, strategy, seed); the report and the decision are about (model,
strategy) pairs, each pair's forgetting against its own model's base. The second model is the tiny
base model (no chat template, BOS added), so the non-chat path runs in the same compare."""

from harness.api import compare, load_run
from harness.decide.arms import model_label, with_arms


def test_two_models_give_a_grid_and_a_pair_decision(tmp_path, mini_suite_dir, tiny_model_dir,
                                                     tiny_base_model_dir):
    events: list[str] = []
    run = compare({
        "suite": str(mini_suite_dir), "models": [str(tiny_model_dir), str(tiny_base_model_dir)],
        "strategies": ["zero-shot", "lora"], "out": str(tmp_path / "reports"), "limit": 4,
        "options": {"lora": {"max_steps": 2, "batch_size": 2}},
    }, on_event=lambda name, **data: events.append(name))
    assert not run.failed and len(run.records) == 4
    assert len({r.model for r in run.records}) == 2 and len({r.cell_id for r in run.records}) == 4
    assert events.count("model_loading") == 2  # model by model: each base loaded once
    assert [r.strategy for r in run.records[:2]] == ["zero-shot", "lora"]  # saved under their own names
    arms = {r.strategy for r in with_arms(list(run.records))}
    labels = [model_label(m) for m in dict.fromkeys(r.model for r in run.records)]
    assert arms == {f"{m}/{s}" for m in labels for s in ("zero-shot", "lora")}
    assert run.decision.pick in arms
    assert {o.strategy for o in run.decision.options} == arms
    md = run.report_md.read_text()
    assert "## Model x strategy" in md and all(m in md for m in labels)
    assert f"## Decision: {run.decision.pick}" in md
    files = sorted(p.name for p in (run.folder / "records").iterdir())
    assert len(files) == 4 and all("--" in f for f in files)  # no model's record overwrites another's
    for rec in run.records:  # each model's retention is scored against its own base
        if rec.retention is not None and rec.strategy == "zero-shot":
            assert rec.retention.shared_weights
    assert load_run(run.folder).decision == run.decision


def test_one_model_keeps_plain_strategy_names(tmp_path, mini_suite_dir, tiny_model_dir):
    run = compare({"suite": str(mini_suite_dir), "models": [str(tiny_model_dir)], "strategies": ["zero-shot"],
                   "out": str(tmp_path / "reports"), "limit": 2})
    assert run.decision.pick == "zero-shot" and "Model x strategy" not in run.report_md.read_text()
