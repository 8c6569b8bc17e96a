"""EWC on the tiny model: the diagonal Fisher is the mean squared per-paragraph gradient, estimated on the
replay corpus; the penalty is (lambda / 2) sum F (change)^2, zero at the start, over the LoRA delta for
`lora`; the training loop adds it to the training loss only; lambda 0 trains exactly as lora."""

import copy

import pytest
import torch
from harness_strategies.ewc import Ewc, diagonal_fisher, ewc_penalty, lora_layers
from harness_strategies.weights import Lora, lora_or_full

from harness.model.spec import resolve_model
from harness.model.training import fit_rows
from harness.strategy.protocol import RunContext
from harness.strategy.training import sft_pairs, text_rows, tokenize_pairs

TEXTS = ["The Buyer shall pay all invoices within thirty days of receipt.",
         "Either party may terminate this agreement on ninety days notice."]


def ctx(tmp_path, rt, model_dir, name="cell"):
    return RunContext(0, "cpu", tmp_path / name, tmp_path / "cache", resolve_model(str(model_dir)), lambda: rt)


def test_fisher_is_the_mean_squared_log_likelihood_gradient_and_the_penalty_its_weighted_change(tiny_runtime):
    model = copy.deepcopy(tiny_runtime.model).requires_grad_(True)
    rows = text_rows(tiny_runtime, TEXTS, 64)
    fisher = diagonal_fisher(model, rows, "full-ft", "cpu")
    assert all(p.grad is None for p in model.parameters())  # gradients cleared
    name = "model.layers.0.mlp.down_proj.weight"
    param = dict(model.named_parameters())[name]
    manual = torch.zeros_like(param)
    for row in rows:
        model.zero_grad()
        ids = torch.tensor([row["input_ids"]])
        (model(input_ids=ids, labels=ids).loss * (ids.shape[1] - 1)).backward()  # the row's summed loss
        manual += param.grad ** 2
    assert torch.allclose(fisher[name], manual / 2, rtol=1e-5, atol=1e-12)
    penalty = ewc_penalty(model, fisher, "full-ft", 3.0)
    assert float(penalty().detach()) == 0.0
    with torch.no_grad():
        param[0, 0] += 0.5
    assert float(penalty().detach()) == pytest.approx(1.5 * float(fisher[name][0, 0]) * 0.25, rel=1e-5)


def test_lora_penalty_weighs_the_adapter_delta_by_the_base_weights_fisher(tiny_runtime):
    model = lora_or_full(tiny_runtime, Ewc.Options())
    rows = text_rows(tiny_runtime, TEXTS, 64)
    fisher = diagonal_fisher(model, rows, "lora", "cpu")
    layers = dict(lora_layers(model))
    assert set(fisher) == set(layers) and len(layers) == 4  # q and v of two layers
    assert all(fisher[n].shape == m.base_layer.weight.shape for n, m in layers.items())
    assert all(not m.base_layer.weight.requires_grad for m in layers.values())  # frozen again
    penalty = ewc_penalty(model, fisher, "lora", 2.0)
    assert float(penalty().detach()) == 0.0  # B starts at zero: no change yet
    layer = next(iter(layers.values()))
    with torch.no_grad():
        layer.lora_B["default"].weight.fill_(0.1)
    want = sum(float((fisher[n] * m.get_delta_weight("default") ** 2).sum()) for n, m in layers.items())
    assert float(penalty().detach()) == pytest.approx(want, rel=1e-5) and want > 0


def test_the_loop_adds_the_penalty_to_training_loss_only(tmp_path, mini_suite, tiny_runtime):
    o = Lora.Options(max_steps=2, eval_every=1, batch_size=2, learning_rate=1e-3, patience=5)
    rows = tokenize_pairs(tiny_runtime, sft_pairs(tiny_runtime, mini_suite, "train", o.system), 128)
    dev = tokenize_pairs(tiny_runtime, sft_pairs(tiny_runtime, mini_suite, "dev", o.system), 128)
    curves = []
    for i, penalty in enumerate((None, lambda: torch.tensor(100.0))):  # a constant: no gradient, same training
        model = copy.deepcopy(tiny_runtime.model).requires_grad_(True)
        result = fit_rows(model, tiny_runtime.tokenizer.pad_token_id, rows, dev, o, tmp_path / f"r{i}", 0, "cpu",
                          penalty=penalty)
        curves.append(result.curve)
    plain, penalized = curves
    train = [(a["train_loss"], b["train_loss"]) for a, b in zip(plain, penalized, strict=True) if "train_loss" in a]
    assert train and all(b - a == pytest.approx(100.0, abs=1e-3) for a, b in train)
    dev_losses = [(a["dev_loss"], b["dev_loss"]) for a, b in zip(plain, penalized, strict=True) if "dev_loss" in a]
    assert dev_losses and all(a == pytest.approx(b, abs=1e-6) for a, b in dev_losses)


def test_ewc_trains_with_the_replay_fisher_and_lambda_zero_is_lora(tmp_path, mini_suite, tiny_runtime,
                                                                   tiny_model_dir):
    budget = dict(max_steps=3, eval_every=3, batch_size=2, learning_rate=5e-3)
    before = {k: v.clone() for k, v in tiny_runtime.model.state_dict().items()}
    ewc = Ewc(Ewc.Options(ewc_lambda=1e6, fisher_samples=4, **budget))
    report = ewc.adapt(ctx(tmp_path, tiny_runtime, tiny_model_dir, "ewc"), mini_suite).report
    assert all(torch.equal(before[k], v) for k, v in tiny_runtime.model.state_dict().items())
    assert report.extras["fisher_rows"] == 4 and report.extras["ewc_lambda"] == 1e6
    assert report.extras["ewc_penalty_final"] > 0 and "replay.jsonl" in report.notes
    free = Ewc(Ewc.Options(ewc_lambda=0, fisher_samples=2, **budget)).adapt(
        ctx(tmp_path, tiny_runtime, tiny_model_dir, "free"), mini_suite).report
    lora = Lora(Lora.Options(**budget)).adapt(ctx(tmp_path, tiny_runtime, tiny_model_dir, "lora"), mini_suite).report
    assert free.curve == lora.curve and free.extras["ewc_penalty_final"] == 0.0
    assert report.curve != lora.curve  # a strong penalty changes the training
