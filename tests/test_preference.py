"""Preference and reinforcement strategies (dpo, grpo, rlhf, rlaif) on the tiny model: the pairs split
validates like every split, derived pairs are seeded, distinct and never about a test item, rewards
and judge verdicts are read right from hand-made outputs, and each strategy moves its trained weights
and leaves the base untouched."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from harness_strategies.preference import Dpo, plan_steps
from harness_strategies.rl import Grpo, Rlhf, format_reward, item_reward, parse_choice, reward_metrics, task_reward
from harness_strategies.rlaif import Rlaif, judged_pairs, parse_verdict

from harness.core.errors import HarnessError, SuiteError
from harness.data import pairs as P
from harness.data.kinds.preference import PreferencePair
from harness.data.suites import load_suite_dir
from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext


def ctx(tmp_path, rt, model_dir, name="cell"):
    return RunContext(0, "cpu", tmp_path / name, tmp_path / "cache", resolve_model(str(model_dir)), lambda: rt)


def suite_with_pairs(tmp_path, mini_suite_dir, lines):
    root = tmp_path / "suite"
    shutil.copytree(mini_suite_dir, root)
    (root / "qa" / "pairs.jsonl").write_text("".join(json.dumps(x) + "\n" if isinstance(x, dict) else x + "\n"
                                                     for x in lines))
    toml = (root / "suite.toml").read_text().replace('test = "qa/test.jsonl" }',
                                                     'test = "qa/test.jsonl", pairs = "qa/pairs.jsonl" }')
    (root / "suite.toml").write_text(toml)
    return root


# ---------------------------------------------------------------- the pairs split
def test_a_pairs_split_loads_and_bad_lines_name_file_line_and_field(tmp_path, mini_suite_dir, mini_suite):
    train_id = mini_suite.task("qa").train[0].id
    good = {"id": "p1", "prompt": train_id, "chosen": "thirty days", "rejected": "ninety days", "source": "hand"}
    suite = load_suite_dir(suite_with_pairs(tmp_path / "ok", mini_suite_dir, [good]))
    assert suite.task("qa").pairs == (PreferencePair("p1", "qa", train_id, "thirty days", "ninety days", "hand"),)
    bad = suite_with_pairs(tmp_path / "bad", mini_suite_dir, [
        good, {"id": "p2", "prompt": "x", "chosen": "a"}, {**good, "colour": "red"}, good, "not json"])
    with pytest.raises(SuiteError) as e:
        load_suite_dir(bad)
    problems = "\n".join(e.value.problems)
    assert "pairs.jsonl:2: field 'rejected': Field required" in problems
    assert "pairs.jsonl:3: field 'colour': Extra inputs are not permitted" in problems
    assert "pairs.jsonl:4: field 'id': duplicate id 'p1' (also on line 1)" in problems
    assert "pairs.jsonl:5: invalid JSON" in problems


def test_suites_check_reports_same_answers_and_test_prompts(tmp_path, mini_suite_dir, mini_suite):
    from typer.testing import CliRunner

    from harness.cli import app

    qa = mini_suite.task("qa")
    root = suite_with_pairs(tmp_path, mini_suite_dir, [
        {"id": "same", "prompt": qa.train[0].id, "chosen": "Thirty days.", "rejected": "thirty days"},
        {"id": "leak", "prompt": qa.test[0].id, "chosen": "a", "rejected": "b"},
        {"id": "leak-text", "prompt": qa.test[1].input, "chosen": "a", "rejected": "b"},
        {"id": "fine", "prompt": qa.train[1].id, "chosen": "a", "rejected": "b"}])
    found = {(f.pair_id, f.kind) for f in P.pair_findings(load_suite_dir(root))}
    assert found == {("same", P.SAME_ANSWERS), ("leak", P.TEST_PROMPT), ("leak-text", P.TEST_PROMPT)}
    result = CliRunner().invoke(app, ["suites", "check", str(root)])  # the CLI's main() exits 2 on it
    assert isinstance(result.exception, HarnessError) and "preference pairs have a test item" in str(result.exception)
    assert "pair-test-prompt" in result.output and "pair-same-answers" in result.output
    assert CliRunner().invoke(app, ["suites", "check", str(root), "--allow-leaks"]).exit_code == 0


# ---------------------------------------------------------------- derivation
def test_pair_derivation_is_seeded_distinct_and_never_about_a_test_item(mini_suite):
    qa, clauses = mini_suite.task("qa"), mini_suite.task("clauses")
    leaked = replace(qa.train[0], id="copy-in-test")
    qa = replace(qa, test=(*qa.test, leaked))  # a train item repeated in test gets no pair
    wrong, right = qa.train[1], qa.train[2]
    base = {wrong.id: ("ninety-nine days", 0.0), right.id: (right.target, 1.0)}
    pairs = P.derive_task_pairs(qa, 3, base)
    assert pairs == P.derive_task_pairs(qa, 3, base)  # seeded
    assert {p.prompt for p in pairs} == {e.id for e in qa.train[1:]}  # train items only, not the leaked one
    assert all(P.normalize(p.chosen) != P.normalize(p.rejected) for p in pairs)
    by_item = {p.prompt: p for p in pairs}
    assert by_item[wrong.id].rejected == "ninety-nine days" and by_item[wrong.id].source == P.BASE_ANSWER
    assert by_item[right.id].source == P.OTHER_ANSWER  # a right base answer is never the rejected one
    labelled = P.derive_task_pairs(clauses, 0)
    assert {p.source for p in labelled} == {P.WRONG_CHOICE} and all(p.rejected in clauses.labels for p in labelled)
    assert all(p.chosen == clauses.train[i].target for i, p in enumerate(labelled))
    assert P.derive_task_pairs(clauses, 0) == labelled


def test_base_answers_are_computed_once_and_cached(tmp_path, mini_suite, tiny_runtime):
    from types import SimpleNamespace

    tasks = P.preference_tasks(mini_suite)
    first = P.base_answers(tiny_runtime, mini_suite, tasks, tmp_path)
    assert set(first) == {t.name for t in tasks} and all(len(first[t.name]) == len(t.train) for t in tasks)
    no_model = SimpleNamespace(spec=tiny_runtime.spec, model=None)  # would fail if it had to answer again
    assert P.base_answers(no_model, mini_suite, tasks, tmp_path) == first
    derived = P.suite_pairs(mini_suite, 0, tiny_runtime, tmp_path)
    assert set(derived) == {t.name for t in tasks} and all(derived.values())


# ---------------------------------------------------------------- rewards and judge
def test_rewards_on_hand_made_outputs():
    assert item_reward("18,750 crowns", ["18,750 crowns", "18750 crowns"], [], "f1") == 1.0
    assert item_reward("Answer: 12 months.\nBecause the Act says so.", ["15 months"], [], "f1") == 0.5
    assert item_reward("12 months", ["15 months"], [], "exact_match") == 0.0
    labels = ["payment", "termination", "governing-law"]
    assert item_reward("Governing law.", ["governing-law"], labels, "f1") == 1.0
    assert item_reward("This is a termination clause, not payment.", ["termination"], labels, "f1") == 1.0
    assert item_reward("I cannot tell.", ["payment"], labels, "f1") == 0.0
    assert parse_choice("payment", labels) == "payment" and parse_choice("nothing here", labels) is None
    fn = task_reward({"qa": "f1", "clauses": "f1"})
    out = fn(prompts=["p1", "p2"], completions=["thirty days", "payment"], completion_ids=[[1], [2]],
             task=["qa", "clauses"], targets=[["thirty days"], ["termination"]], choices=[[], labels],
             trainer_state=None, log_extra=None, log_metric=None)  # TRL's call, extra dataset columns as kwargs
    assert out == [1.0, 0.0]
    assert format_reward([], ["thirty days", "a\nb", ""]) == [1.0, 0.0, 0.0]


def test_reward_metric_main_uses_each_tasks_main_metric(mini_suite):
    assert reward_metrics(mini_suite, "f1") == {"qa": "f1", "clauses": "f1"}
    assert reward_metrics(mini_suite, "main")["qa"] == mini_suite.task("qa").main_metric


@pytest.mark.parametrize(("text", "verdict"), [
    ("A", "A"), ("B.", "B"), ("**B**", "B"), ("(A)", "A"), ("A is better.", "A"), ("Answer B", "B"),
    ("The better answer is answer A.", "A"), ("I prefer B over A.", "B"), ("Answer: B", "B"),
    ("Both answers are wrong.", None), ("Neither", None), ("", None), ("A better answer would cite the Act.", None),
    ("Answer A is vague and answer B is better.", "B"), ("Answer B is wrong; A is correct.", "A"),
    ("Answer B is wrong, so I prefer A", "A"), ("Answer B is wrong.", None), ("Answer B is not grounded.", None),
])
def test_judge_verdicts_are_parsed(text, verdict):
    assert parse_verdict(text) == verdict


def test_judged_pairs_and_agreement_with_gold(mini_suite):
    qa = mini_suite.task("qa")
    items = [(qa, qa.train[0]), (qa, qa.train[1]), (qa, qa.train[2])]
    gold0, gold1 = qa.train[0].target, qa.train[1].target
    samples = [[gold0, "no idea"], ["no idea", gold1], ["same", "same"]]
    pairs, stats = judged_pairs(items, samples, [2.5, 0.7, 1.0])  # right on the first, wrong on the second
    assert [(p.chosen, p.rejected) for _, p in pairs] == [(gold0, "no idea"), ("no idea", gold1)]
    assert stats == {"judge_pairs": 2.0, "judge_known": 2.0, "judge_agreement": 0.5}


def test_the_step_budget_is_shared_and_the_cap_only_shortens():
    o = Dpo.Options()
    assert plan_steps(o, "cpu", 184, 184, 0.5) == plan_steps(o, "cpu", 184, 184, 0.5)
    plan = plan_steps(o, "cpu", 184, 184, 0.5)
    assert (plan.first, plan.second, plan.planned) == (12, 12, 92)
    small = plan_steps(o, "cpu", 6, 6, 0.5)
    assert (small.first, small.second) == (2, 2)  # two epochs of one batch each, under the 24-step cap
    fixed = plan_steps(Dpo.Options(max_steps=10), "cpu", 6, 6, 0.5)
    assert (fixed.first, fixed.second, fixed.planned) == (5, 5, 10)
    assert plan_steps(o, "cuda", 6, 6, 0.5).second == -1  # epochs on CUDA
    none_first = plan_steps(o, "cpu", 0, 184, 0.5)
    assert (none_first.first, none_first.second) == (0, 24)


# ---------------------------------------------------------------- training on the tiny model
def _moved(adapted, base_state) -> bool:
    trained = {k: v for k, v in adapted.runtime.model.named_parameters() if v.requires_grad or "lora_" in k}
    if any("lora_B" in k for k in trained):  # LoRA B starts at zero
        return any(v.detach().abs().sum() > 0 for k, v in trained.items() if "lora_B" in k)
    return any(not torch.equal(v.detach(), base_state[k]) for k, v in adapted.runtime.model.named_parameters())


CASES = {
    "dpo-lora": (Dpo, {"max_steps": 2, "batch_size": 4}),
    "dpo-full": (Dpo, {"method": "full-ft", "max_steps": 2, "batch_size": 4, "sft_first": False}),
    "grpo": (Grpo, {"max_steps": 2, "batch_size": 4, "num_generations": 2, "max_completion_length": 6,
                    "format_weight": 1.0}),
    "rlhf": (Rlhf, {"max_steps": 3, "batch_size": 4, "num_generations": 2, "max_completion_length": 6}),
    "rlaif": (Rlaif, {"max_steps": 2, "batch_size": 4, "sample_tokens": 4}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_weights_move_and_the_base_stays_untouched(case, tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    cls, options = CASES[case]
    base_state = {k: v.clone() for k, v in tiny_runtime.model.state_dict().items()}
    torch.manual_seed(0)
    run = ctx(tmp_path, tiny_runtime, tiny_model_dir)
    adapted = cls(cls.Options(**options, learning_rate=5e-2)).adapt(run, mini_suite)
    assert all(torch.equal(base_state[k], v) for k, v in tiny_runtime.model.state_dict().items())
    assert _moved(adapted, base_state), "no trained weight moved"
    report = adapted.report
    assert report.budget is not None and report.budget.steps == report.extras["train_steps"] >= 2
    assert report.artifact_bytes > 0 and not (run.work_dir / "artifact" / "ref").exists()
    assert "kl_to_base" in report.extras and report.extras["kl_to_base"] >= 0
    expected = {"dpo-lora": "dpo_reward_accuracy", "dpo-full": "dpo_reward_accuracy", "grpo": "rl_reward_end",
                "rlhf": "rm_accuracy", "rlaif": "judge_pairs"}[case]
    assert expected in report.extras and report.notes.startswith(cls.name)
    assert all(not np.isnan(v) for v in report.extras.values())


# ---------------------------------------------------------------- the report section
def _record(strategy, extras=None, curve=(), budget=None):
    from harness.core.records import AdaptReport, CellRecord, LatencySummary, Prediction, TaskResult

    preds = tuple(Prediction(f"q{i}", "qa", "a", "a", {"f1": float(i % 2)}, 0.1, 10, 2) for i in range(6))
    return CellRecord(
        cell_id=f"id-{strategy}", suite="mini", suite_hash="0" * 64, strategy=strategy, options={}, seed=0,
        model="tiny", limit=None, status="ok", tasks=(TaskResult("qa", "short-answer", 6, {"f1": 0.5}, "f1"),),
        predictions=preds, latency=LatencySummary(0.1, 0.2, 0.1, 10.0, 10.0, 2.0, 8), family="weights",
        adapt=AdaptReport(trainable_params=5, total_params=10, notes=f"{strategy}: notes", extras=extras or {},
                          curve=curve, budget=budget))


def test_the_report_has_a_preference_and_rl_section_beside_lora(tmp_path):
    from harness.core.records import TrainingBudget
    from harness.report import write_run

    capped = TrainingBudget(24, 92, 0.5, "cpu_max_steps", "trained 24 of 92 planned steps (CPU cap)", "fp32", 8, 1e-3)
    records = [
        _record("lora", {"train_steps": 24.0}, budget=capped),
        _record("grpo", {"rl_prompts": 184.0, "rl_reward_start": 0.1, "rl_reward_end": 0.25, "kl_to_base": 0.012,
                         "rl_kl_end": 0.003}, ({"step": 1.0, "reward": 0.1}, {"step": 2.0, "reward": 0.3}), capped),
        _record("rlhf", {"rl_prompts": 184.0, "pref_pairs": 184.0, "rm_accuracy": 0.75, "rm_heldout_pairs": 37.0}),
        _record("rlaif", {"pref_pairs": 40.0, "judge_agreement": 0.6, "judge_known": 30.0,
                          "dpo_reward_accuracy": 0.875}, ({"step": 13.0, "reward_margin": 0.2},)),
    ]
    write_run(tmp_path, "run-1", records)
    md = (tmp_path / "report.md").read_text()
    section = md[md.index("## Preference and RL"):]
    assert section.index("| lora |") < section.index("| grpo |") < section.index("| rlaif |")
    assert "0.100 → 0.250" in section and "0.0120" in section and "0.750 (n=37)" in section
    assert "0.600 (n=30)" in section and "0.875" in section and "**Capped:** lora, grpo" in section
    assert (tmp_path / "charts" / "rewards.svg").is_file()
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Preference and RL</h2>" in html and "Reward curves" in html
    write_run(tmp_path / "plain", "run-2", [_record("lora", {"train_steps": 24.0})])
    assert "Preference and RL" not in (tmp_path / "plain" / "report.md").read_text()
