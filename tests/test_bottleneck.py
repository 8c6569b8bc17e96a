"""Bottleneck adapters on the tiny model: zero-initialised adapters leave the model's outputs exactly
unchanged, training moves the adapters and nothing else, Pfeiffer puts one per layer and Houlsby two."""

import copy

import pytest
import torch
from harness_strategies.bottleneck import Adapter, adapter_lm

from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext


def ctx(tmp_path, rt, model_dir):
    return RunContext(0, "cpu", tmp_path / "cell", tmp_path / "cache", resolve_model(str(model_dir)), lambda: rt)


@pytest.mark.parametrize("placement", ["pfeiffer", "houlsby"])
def test_zero_initialised_adapters_change_nothing(placement, tiny_runtime):
    model = adapter_lm(copy.deepcopy(tiny_runtime.model).requires_grad_(False), placement, 4, "relu")
    ids = torch.tensor([tiny_runtime.encode("The Buyer shall pay all invoices within thirty days.")])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, tiny_runtime.model(input_ids=ids).logits)
    dim, layers = tiny_runtime.model.config.hidden_size, tiny_runtime.model.config.num_hidden_layers
    width = dim // 4
    per_adapter = dim * width + width + width * dim + dim
    sites = 1 if placement == "pfeiffer" else 2
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == layers * sites * per_adapter
    # the adapters act once trained: a nonzero up-projection changes the output
    with torch.no_grad():
        next(iter(model.adapters.values())).up.weight.fill_(0.1)
        assert not torch.equal(model(input_ids=ids).logits, tiny_runtime.model(input_ids=ids).logits)


def test_training_moves_only_the_adapters(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    before = {k: v.clone() for k, v in tiny_runtime.model.state_dict().items()}
    run = ctx(tmp_path, tiny_runtime, tiny_model_dir)
    options = Adapter.Options(placement="houlsby", max_steps=4, eval_every=2, batch_size=2, learning_rate=5e-3)
    adapted = Adapter(options).adapt(run, mini_suite)
    model = adapted.runtime.model
    assert all(torch.equal(before[k], v) for k, v in model.base.state_dict().items())  # its frozen copy
    assert all(torch.equal(before[k], v) for k, v in tiny_runtime.model.state_dict().items())  # the shared base
    assert all(bool(a.up.weight.abs().sum() > 0) for a in model.adapters.values())  # every adapter moved
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("adapters.") for n in trainable)
    assert adapted.report.trainable_params == sum(p.numel() for p in model.adapters.parameters())
    from safetensors.torch import load_file

    saved = load_file(run.work_dir / "artifact" / "trainable.safetensors")
    assert set(saved) == trainable and adapted.report.artifact_bytes > 0


def test_smollm2_adapter_sizes():
    """SmolLM2-135M's shape (meta device, no weights): Pfeiffer at reduction 16 is 30 adapters of width 36."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)
    with torch.device("meta"):
        base = LlamaForCausalLM(config).requires_grad_(False)
        counts = {p: sum(x.numel() for x in adapter_lm(copy.deepcopy(base), p, 16, "relu").adapters.parameters())
                  for p in ("pfeiffer", "houlsby")}
    assert counts == {"pfeiffer": 30 * 42_084, "houlsby": 60 * 42_084}
