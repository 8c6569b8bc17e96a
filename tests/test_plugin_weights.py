"""A weight strategy from outside the core (the example plugin's `last-mlp`, loaded as a --plugin file)
gets the same plumbing as the built-in `lora` through the public `train_weights`: trained weights move
and the base does not, an artifact, the training budget, the dev curve, a knowledge update and a
search space."""

from pathlib import Path

import torch

from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext
from harness.strategy.registry import Registry
from harness.strategy.search import space_of

PLUGIN = Path(__file__).parent.parent / "examples" / "harness-plugin-example" / "harness_plugin_last_mlp.py"


def _adapt(name, registry, tmp_path, rt, model_dir, suite):
    cls = registry.get(name)
    opts = cls.Options(max_steps=4, eval_every=2, batch_size=2, learning_rate=5e-3, update_docs=1)
    run = RunContext(0, "cpu", tmp_path / name, tmp_path / "cache", resolve_model(str(model_dir)), lambda: rt)
    return run, cls(opts).adapt(run, suite)


def test_a_plugin_weight_strategy_gets_what_lora_gets(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    registry = Registry.discover()
    assert registry.add_plugin_file(PLUGIN) == ["last-mlp"]
    before = {k: v.clone() for k, v in tiny_runtime.model.state_dict().items()}
    run, plugin = _adapt("last-mlp", registry, tmp_path, tiny_runtime, tiny_model_dir, mini_suite)
    _, lora = _adapt("lora", registry, tmp_path, tiny_runtime, tiny_model_dir, mini_suite)
    assert all(torch.equal(before[k], v) for k, v in tiny_runtime.model.state_dict().items())  # base untouched
    trained = {k: v for k, v in plugin.runtime.model.named_parameters() if v.requires_grad}
    assert trained and all(".layers.1.mlp." in k for k in trained)
    assert any(not torch.equal(v.detach(), before[k]) for k, v in trained.items()), "no trained weight moved"
    assert plugin.report.trainable_params == sum(v.numel() for v in trained.values())
    assert (run.work_dir / "artifact" / "trainable.safetensors").is_file() and plugin.report.artifact_bytes > 0
    for report in (plugin.report, lora.report):  # the same budget, curve, update and data fields
        assert report.extras["train_steps"] == 4 and "best_dev_loss" in report.extras
        assert report.extras["train_items"] > 0 and report.train_tokens > 0
        assert [r for r in report.curve if "dev_loss" in r] and [r for r in report.curve if "train_loss" in r]
        assert report.update is not None and report.update.method == "continued-training"
    assert set(plugin.report.extras) == set(lora.report.extras)
    assert space_of(registry.get("last-mlp")) is not None
