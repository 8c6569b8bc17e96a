"""Data-parallel training of one cell: a LoRA cell trained by two torchrun processes (gloo on CPU)
ends with the same adapter as the single-process one, since each process takes half of every
global batch and the trainer averages over the global batch's tokens."""

from __future__ import annotations

import pytest
import torch

from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext
from harness.strategy.registry import Registry

REGISTRY = Registry.discover()


def _train(name, processes, tmp_path, rt, model_dir, suite, **extra):
    cls = REGISTRY.get(name)
    opts = cls.Options(max_steps=4, eval_every=2, batch_size=4, learning_rate=5e-3, processes=processes, **extra)
    run = RunContext(0, "cpu", tmp_path / f"{name}-{processes}", tmp_path / "cache", resolve_model(str(model_dir)),
                     lambda: rt)
    adapted = cls(opts).adapt(run, suite)
    trained = {k: v.detach().clone() for k, v in adapted.runtime.model.named_parameters() if v.requires_grad}
    return trained, adapted.report, run.work_dir


@pytest.mark.slow
def test_two_gloo_processes_train_the_same_lora_adapter_as_one(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    one, one_report, _ = _train("lora", 1, tmp_path, tiny_runtime, tiny_model_dir, mini_suite, dropout=0.0)
    two, two_report, work = _train("lora", 2, tmp_path, tiny_runtime, tiny_model_dir, mini_suite, dropout=0.0)
    assert one.keys() == two.keys() and any("lora_B" in k for k in one)
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in two.items() if "lora_B" in k)  # it trained
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-5), k
    dev = [[r["dev_loss"] for r in rep.curve if "dev_loss" in r] for rep in (one_report, two_report)]
    assert dev[0] == pytest.approx(dev[1], abs=1e-5) and len(dev[0]) == 2
    assert two_report.extras["train_steps"] == one_report.extras["train_steps"] == 4
    assert not list((work / "train").glob("*.safetensors"))  # the hand-over files are cleaned up


def test_processes_must_divide_the_batch_and_auto_is_one_on_cpu():
    cls = REGISTRY.get("lora")
    assert cls.Options(batch_size=8).process_count("cpu") == 1
    assert cls.Options(batch_size=8, processes=4).process_count("cpu") == 4
    with pytest.raises(ValueError, match="divide batch_size"):
        cls.Options(batch_size=8, processes=3)


@pytest.mark.slow
def test_a_failing_worker_fails_the_training_with_its_log(tmp_path, mini_suite, tiny_runtime, tiny_model_dir,
                                                         monkeypatch):
    monkeypatch.setenv("HARNESS_KILL_AT", "train-checkpoint")  # every worker dies at its first checkpoint
    with pytest.raises(RuntimeError, match="2-process training failed") as err:
        _train("lora", 2, tmp_path, tiny_runtime, tiny_model_dir, mini_suite)
    assert "workers.log" in str(err.value) and (tmp_path / "lora-2" / "train" / "workers.log").is_file()
