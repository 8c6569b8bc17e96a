"""Multi-task schedules of `lora` and `full-ft` on the tiny model: joint stays today's training,
per-task trains one set of weights per task and routes each task's items to its own, sequential
trains task after task and records every task's score after every stage (the forgetting matrix)."""

import pytest
import torch
from harness_strategies.schedules import load_trainable, split_steps
from harness_strategies.weights import FullFinetune, Lora

from harness.core.errors import Unsupported
from harness.core.records import AdaptReport, CellRecord, from_json, to_json
from harness.data.evaluation import evaluate_task
from harness.model.spec import resolve_model
from harness.strategy import prompts_as_trained
from harness.strategy.protocol import RunContext


def ctx(tmp_path, rt, model_dir, name="cell"):
    return RunContext(0, "cpu", tmp_path / name, tmp_path / "cache", resolve_model(str(model_dir)), lambda: rt)


def test_steps_are_shared_in_proportion_to_rows_and_sum_to_the_budget():
    assert split_steps(24, [184, 62]) == [18, 6]
    assert split_steps(4, [4, 4]) == [2, 2]
    assert split_steps(3, [100, 1, 1]) == [1, 1, 1]  # at least one step each
    assert all(sum(split_steps(t, rows)) == t for t in (5, 24, 97) for rows in ([1, 1, 1, 1, 1], [184, 62], [7, 0, 3]))
    with pytest.raises(Unsupported):  # fewer steps than stages: said, not overspent
        split_steps(1, [4, 4])
    assert split_steps(-1, [3, 5]) == [-1, -1]  # an epoch budget: every stage runs its epochs


def test_joint_is_the_default_and_only_adds_the_option():
    assert Lora.Options().schedule == "joint" and FullFinetune.Options().schedule == "joint"
    assert set(Lora.Options().model_dump()) - {"schedule"} == set(Lora.Options.__mro__[1]().model_dump())


def _opts(cls, schedule):
    return cls.Options(schedule=schedule, max_steps=4, eval_every=2, batch_size=2, learning_rate=5e-3)


def test_per_task_trains_one_adapter_per_task_and_routes_each_task_to_its_own(tmp_path, mini_suite, tiny_runtime,
                                                                            tiny_model_dir):
    before = {k: v.clone() for k, v in tiny_runtime.model.state_dict().items()}
    run = ctx(tmp_path, tiny_runtime, tiny_model_dir)
    strategy = Lora(_opts(Lora, "per-task"))
    adapted = strategy.adapt(run, mini_suite)
    assert all(torch.equal(before[k], v) for k, v in tiny_runtime.model.state_dict().items())
    files = sorted(p.name for p in (run.work_dir / "artifact").glob("*.safetensors"))
    assert files == ["clauses.safetensors", "qa.safetensors"]
    one_adapter = sum(p.numel() for p in adapted.runtime.model.parameters() if p.requires_grad)
    assert adapted.report.trainable_params == 2 * one_adapter and adapted.report.extras["task_weights"] == 2
    assert adapted.report.extras["train_steps"] == 4  # 2 + 2: the joint budget, shared
    from safetensors.torch import load_file

    qa, clauses = (load_file(run.work_dir / "artifact" / f) for f in ("qa.safetensors", "clauses.safetensors"))
    assert any(not torch.equal(qa[k], clauses[k]) for k in qa)  # two different adapters
    ids = torch.tensor([tiny_runtime.encode("The Buyer shall pay all invoices.")])
    for name, state in (("qa", qa), ("clauses", clauses)):
        routed = adapted.runtime.for_task(name)
        routed.loglikelihood_batch([("The Buyer", [" shall"])])  # any operation loads the task's weights
        with torch.no_grad():
            got = routed.model(input_ids=ids).logits
            load_trainable(routed.model, state)
            want = routed.model(input_ids=ids).logits
        assert torch.equal(got, want)
    task = mini_suite.tasks[0]
    _, result = evaluate_task(adapted.runtime, task, task.test, prompts_as_trained(strategy.options, task,
                                                                                   task.test), 2)
    assert result.n == len(task.test)


def test_sequential_records_the_forgetting_matrix(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    run = ctx(tmp_path, tiny_runtime, tiny_model_dir)
    strategy = FullFinetune(_opts(FullFinetune, "sequential"))
    adapted = strategy.adapt(run, mini_suite)
    m = adapted.report.continual
    assert m is not None
    assert m.stages == ("before", "qa", "clauses") and m.tasks == ("qa", "clauses")
    assert m.splits == ("dev", "test") and m.metrics == ("key_match", "accuracy")
    assert [len(row) for row in m.items] == [2, 2, 2] and [len(c) for c in m.items[0]] == [1, 3]
    assert all(0 <= v <= 1 for row in m.scores for v in row)
    assert m.scores[1][1] == sum(m.items[1][1]) / 3
    # the first row is the untouched model's
    task = mini_suite.tasks[1]
    preds, _ = evaluate_task(tiny_runtime, task, task.test, prompts_as_trained(strategy.options, task, task.test), 8)
    assert m.items[0][1] == tuple(p.scores["accuracy"] for p in preds)
    assert adapted.report.extras["train_steps"] == 4 and adapted.report.extras["stage_eval_s"] > 0
    assert "sequential: qa then clauses" in adapted.report.notes
    # the matrix survives the record's JSON
    rec = CellRecord("c", "mini", "h", "full-ft", {}, 0, "m", None, "ok", adapt=adapted.report)
    assert from_json(CellRecord, to_json(rec)).adapt.continual == m


def test_records_without_a_matrix_still_read():
    assert AdaptReport().continual is None



def test_the_report_shows_the_matrix_as_a_heat_map(tmp_path):
    import xml.etree.ElementTree as ET

    from harness.core.records import ContinualMatrix, LatencySummary, Prediction, TaskResult
    from harness.report import write_run
    from harness.report.continual import heatmap

    hostile = "<script>x</script>"
    m = ContinualMatrix(("before", "qa", hostile), ("qa", hostile), ("key_match", "accuracy"), ("dev", "test"),
                        ((0.1, 0.3), (0.8, 0.35), (0.5, 0.9)), (((0.0, 0.2), (0.3,)), ((1.0, 0.6), (0.35,)),
                                                                  ((0.5, 0.5), (0.9,))))
    svg = heatmap(m, "matrix")
    ET.fromstring(svg)  # well formed
    assert "<script>" not in svg and "0.800" in svg and "0.900" in svg
    pred = Prediction("q1", "qa", "a", "a", {"key_match": 1.0}, 0.5, 40, 6)
    rec = CellRecord("id", "mini", "0" * 64, "full-ft", {"schedule": "sequential"}, 0, "tiny", None, "ok",
                     tasks=(TaskResult("qa", "short-answer", 1, {"key_match": 1.0}, "key_match"),),
                     predictions=(pred,), adapt=AdaptReport(total_params=10, continual=m),
                     latency=LatencySummary(0.5, 0.9, 0.6, 2.0, 40.0, 6.0, 8))
    write_run(tmp_path, "run-1", [rec])
    md = (tmp_path / "report.md").read_text()
    assert "## Continual learning" in md and "![forgetting matrix](charts/continual-full-ft-seed0.svg)" in md
    assert "| qa | 0.800 | 0.350 |" in md and "qa 0.800 after its stage, 0.500 at the end (-0.300)" in md
    chart = (tmp_path / "charts" / "continual-full-ft-seed0.svg").read_text()
    assert "Forgetting matrix: full-ft (seed 0)" in chart and "0.800" in chart
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Continual learning</h2>" in html and 'id="chart-continual-full-ft-seed0"' in html
    assert "<script>x" not in html
