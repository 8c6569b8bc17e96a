"""LoReFT on the tiny model: the intervention is the paper's formula, R keeps orthonormal rows through
training, only prompt positions are intervened on, batched padded scoring and generation equal one at
a time, and the trained parameters stay a tiny share of the model's."""

import pytest
import torch
from harness_strategies.reft import (
    Reft,
    default_layers,
    loreft,
    parse_positions,
    prompt_mask,
    reft_lm,
)
from pydantic import ValidationError

from harness.data.prompts import zero_shot_prompt
from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext


def ctx(tmp_path, rt, model_dir):
    return RunContext(0, "cpu", tmp_path / "cell", tmp_path / "cache", resolve_model(str(model_dir)), lambda: rt)


def test_the_intervention_is_the_papers_formula():
    torch.manual_seed(0)
    phi = loreft(16, 4)
    with torch.no_grad():
        phi.learned.weight.normal_()
        phi.learned.bias.normal_()
    h = torch.randn(3, 5, 16)
    r, w, b = (t.detach().double() for t in (phi.rotate.weight, phi.learned.weight, phi.learned.bias))
    hd = h.double()
    direct = hd + (hd @ w.T + b - hd @ r.T) @ r  # h + R^T (W h + b - R h), row vectors
    assert torch.allclose(phi(h).double(), direct, atol=1e-6, rtol=0)
    assert torch.allclose(r @ r.T, torch.eye(4, dtype=torch.float64), atol=1e-6)


def test_positions_parse_and_mask_the_prompt_ends():
    assert parse_positions("first:4+last:2") == (4, 2) and parse_positions("last:1") == (0, 1)
    with pytest.raises(ValueError):
        parse_positions("middle:3")
    for bad in ("first4", "first:0+last:0", "first:4+first:2"):  # malformed, nothing to intervene on, twice
        with pytest.raises(ValidationError):
            Reft.Options(positions=bad)
    for layers in ([], [-1], [2, 2]):
        with pytest.raises(ValidationError):
            Reft.Options(layers=layers)
    # row 0: prompt at columns 0..5; row 1: left-padded, prompt at columns 3..5
    mask = prompt_mask(torch.tensor([0, 3]), torch.tensor([6, 3]), 7, 2, 1)
    assert mask.tolist() == [[True, True, False, False, False, True, False],
                             [False, False, False, True, True, True, False]]
    assert default_layers(30) == [6, 12, 18, 24] and default_layers(2) == [0, 1]


def _requests(rt, suite):
    return [(rt.render(zero_shot_prompt(t, e, "sys")) + rt.answer_prefix(), list(e.choices) or [e.target])
            for t in suite.tasks for e in t.test]


def test_batched_scoring_and_generation_equal_one_at_a_time(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    strategy = Reft(Reft.Options(max_steps=4, eval_every=2, batch_size=2, learning_rate=5e-2))
    adapted = strategy.adapt(ctx(tmp_path, tiny_runtime, tiny_model_dir), mini_suite)
    rt = adapted.runtime
    requests = _requests(rt, mini_suite)
    batched = rt.loglikelihood_batch(requests, batch_size=8)
    single = [rt.loglikelihood_batch([q], batch_size=1)[0] for q in requests]
    base = tiny_runtime.loglikelihood_batch(requests, batch_size=8)
    diff = max(abs(a - b) for x, y in zip(batched, single, strict=True) for a, b in zip(x.logprobs, y.logprobs,
                                                                                          strict=True))
    moved = max(abs(a - b) for x, y in zip(batched, base, strict=True) for a, b in zip(x.logprobs, y.logprobs,
                                                                                         strict=True))
    assert diff < 1e-4 and moved > 1e-3  # the same one by one, and not the base model
    texts = [q[0] for q in requests]
    assert [g.text for g in rt.generate(texts, 6, batch_size=8)] == [rt.generate([t], 6, batch_size=1)[0].text
                                                                      for t in texts]


def test_generation_intervenes_on_the_prompt_only(tiny_runtime):
    import copy

    model = reft_lm(copy.deepcopy(tiny_runtime.model).requires_grad_(False), [0, 1], 4, 2, 2, tiny_runtime.tokenizer)
    seen = []
    model.base.model.layers[0].register_forward_hook(lambda m, a, out: seen.append(
        None if model.mask is None else int(model.mask.sum())))
    ids = tiny_runtime.encode("The Buyer shall pay")
    tokens = torch.tensor([[0, *ids], [*ids, *ids[:1]]])
    mask = torch.tensor([[0] + [1] * len(ids), [1] * (len(ids) + 1)])
    model.generate(input_ids=tokens, attention_mask=mask, max_new_tokens=3, do_sample=False, min_new_tokens=3,
                   pad_token_id=0)
    assert seen[0] == 8 and seen[1:] == [None, None]  # 2 + 2 positions per row in the prompt pass, then none


def test_training_keeps_r_orthonormal_and_moves_only_the_interventions(tmp_path, mini_suite, tiny_runtime,
                                                                       tiny_model_dir):
    before = {k: v.clone() for k, v in tiny_runtime.model.state_dict().items()}
    run = ctx(tmp_path, tiny_runtime, tiny_model_dir)
    adapted = Reft(Reft.Options(max_steps=4, eval_every=2, batch_size=2, learning_rate=5e-2)).adapt(run, mini_suite)
    model = adapted.runtime.model
    for phi in model.interventions.values():
        r = phi.rotate.weight.detach()
        assert torch.allclose(r @ r.T, torch.eye(r.shape[0]), atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in model.base.state_dict().items())  # the copy stayed frozen
    assert all(torch.equal(before[k], v) for k, v in tiny_runtime.model.state_dict().items())
    dim = tiny_runtime.model.config.hidden_size
    assert adapted.report.trainable_params == 2 * (2 * 4 * dim + 4)  # two layers of R, W (rank x dim) and b
    from safetensors.torch import load_file

    saved = load_file(run.work_dir / "artifact" / "loreft.safetensors")
    assert sorted(saved) == ["layer0.R", "layer0.W", "layer0.b", "layer1.R", "layer1.W", "layer1.b"]
    assert adapted.report.artifact_bytes < 10_000


def test_the_default_trains_under_a_thousandth_of_smollm2():
    """SmolLM2-135M's shape (built on the meta device: no weights): four layers of rank 4."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)
    with torch.device("meta"):
        model = reft_lm(LlamaForCausalLM(config).requires_grad_(False), default_layers(30), 4, 4, 4, None)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    assert trainable == 4 * (2 * 4 * 576 + 4) == 18_448
    assert trainable / total < 0.001 and total > 134_000_000
