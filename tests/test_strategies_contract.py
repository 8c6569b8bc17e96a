"""The contract every registered strategy must keep. Runs over the registry, not a hand-kept list."""

import re

import pytest
import torch
from pydantic import ValidationError

from harness.core.records import Prompt
from harness.data.evaluation import evaluate_task
from harness.model.runtime import ModelRuntime
from harness.model.spec import resolve_model
from harness.strategy.protocol import Adapted, RunContext
from harness.strategy.registry import Registry

REGISTRY = Registry.discover()
NAMES = REGISTRY.names()


def test_builtins_are_registered_through_entry_points():
    assert {"zero-shot", "few-shot"} <= set(NAMES)
    assert REGISTRY.entries["zero-shot"].origin == "harness"
    REGISTRY.load_all()
    assert REGISTRY.errors == {}


def make_ctx(tmp_path, runtime, tiny_model_dir, seed=0):
    return RunContext(seed=seed, device="cpu", work_dir=tmp_path / "work", cache_dir=tmp_path / "cache",
                      model=resolve_model(str(tiny_model_dir)), load_base=lambda: runtime)


@pytest.mark.parametrize("name", NAMES)
def test_declares_name_family_description_and_strict_options(name):
    cls = REGISTRY.get(name)
    assert cls.name == name and re.fullmatch(r"[a-z0-9]+(-[a-z0-9+]+)*", name)
    assert cls.family in ("context", "weights", "hybrid")
    assert cls.description
    opts = cls.Options()
    with pytest.raises(ValidationError):
        cls.Options(no_such_option=1)
    with pytest.raises(ValidationError):
        opts.__setattr__(next(iter(cls.Options.model_fields)), None)  # frozen


@pytest.mark.parametrize("name", NAMES)
def test_adapts_prompts_and_evaluates_without_touching_the_base(name, tmp_path, mini_suite, tiny_runtime,
                                                               tiny_model_dir):
    cls = REGISTRY.get(name)
    before = {k: v.clone() for k, v in tiny_runtime.model.state_dict().items()}
    ctx = make_ctx(tmp_path, tiny_runtime, tiny_model_dir)
    strategy = cls(cls.Options())
    adapted = strategy.adapt(ctx, mini_suite)
    assert isinstance(adapted, Adapted) and isinstance(adapted.runtime, ModelRuntime)
    assert 0 <= adapted.report.trainable_params <= adapted.report.total_params
    for task in mini_suite.tasks:
        prompts = strategy.prompts(ctx, task, task.test)
        assert len(prompts) == len(task.test) and all(isinstance(p, Prompt) for p in prompts)
        for p, ex in zip(prompts, task.test, strict=True):
            assert p.messages[-1].role == "user" and ex.input in p.messages[-1].content
        preds, result = evaluate_task(adapted.runtime, task, task.test, prompts, batch_size=2)
        assert result.n == len(task.test) == len(preds)
    after = tiny_runtime.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", NAMES)
def test_prompts_are_deterministic_for_a_seed(name, tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    cls = REGISTRY.get(name)
    task = mini_suite.tasks[0]
    runs = []
    for _ in range(2):
        ctx = make_ctx(tmp_path, tiny_runtime, tiny_model_dir, seed=7)
        s = cls(cls.Options())
        s.adapt(ctx, mini_suite)
        runs.append(s.prompts(ctx, task, task.test))
    def untimed(prompts):  # timing fields (`*_s`) may differ; everything else must not
        return [(p.messages, {k: v for k, v in p.meta.items() if not k.endswith("_s")}) for p in prompts]

    assert untimed(runs[0]) == untimed(runs[1])
