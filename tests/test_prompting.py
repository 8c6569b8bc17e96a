from harness_strategies.prompting import FewShot, ZeroShot

from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext


def ctx(tmp_path, tiny_runtime, tiny_model_dir, seed):
    return RunContext(seed, "cpu", tmp_path, tmp_path, resolve_model(str(tiny_model_dir)), lambda: tiny_runtime)


def test_zero_shot_prompt_is_system_then_instruction_and_question(mini_suite, tmp_path, tiny_runtime,
                                                                  tiny_model_dir):
    task = mini_suite.task("clauses")
    [p] = ZeroShot(ZeroShot.Options(system="SYS")).prompts(ctx(tmp_path, tiny_runtime, tiny_model_dir, 0),
                                                            task, task.test[:1])
    assert [m.role for m in p.messages] == ["system", "user"]
    assert p.messages[0].content == "SYS"
    user = p.messages[1].content
    assert user.startswith(task.instruction) and task.test[0].input in user
    assert user.endswith(f"Text: {task.test[0].input}") and "payment" not in user  # candidates are scored, not listed


def test_few_shot_random_shows_k_train_examples_and_varies_with_seed(mini_suite, tmp_path, tiny_runtime,
                                                                     tiny_model_dir):
    task = mini_suite.task("qa")
    strat = FewShot(FewShot.Options(k=2, selection="random"))
    shots = {}
    for seed in range(6):
        c = ctx(tmp_path, tiny_runtime, tiny_model_dir, seed)
        [p] = strat.prompts(c, task, task.test[:1])
        assert [m.role for m in p.messages] == ["system", "user", "assistant", "user", "assistant", "user"]
        answers = [m.content for m in p.messages if m.role == "assistant"]
        assert set(answers) <= {e.target for e in task.train}
        shots[seed] = tuple(answers)
    assert len(set(shots.values())) > 1


def test_few_shot_similar_picks_the_nearest_train_example(mini_suite, tmp_path, tiny_runtime, tiny_model_dir):
    task = mini_suite.task("qa")
    strat = FewShot(FewShot.Options(k=1, selection="similar"))
    c = ctx(tmp_path, tiny_runtime, tiny_model_dir, 0)
    strat.adapt(c, mini_suite)
    [p] = strat.prompts(c, task, [task.test[1]])  # the Pell Harbour permit price question
    assert p.messages[2].content == "740 marks"
