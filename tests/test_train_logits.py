"""Training computes logits only where the loss needs them (harness.model.loss): the same loss and the
same gradients as transformers' own causal LM loss over every position, the same trained weights through
the real loop (gradient accumulation included), on the chat model and on a base tokenizer that adds BOS
and has no chat template; prompt-learning adapters keep every position."""

from __future__ import annotations

import copy

import pytest
import torch

from harness.model import training
from harness.model.loss import KeptLogitsLoss, PadCollator, keeps_logits, loss_positions
from harness.model.training import LoopOptions, fit_rows
from harness.strategy.training import sft_pairs, tokenize_pairs


def _rows(runtime, suite) -> list[dict[str, list[int]]]:
    return tokenize_pairs(runtime, sft_pairs(runtime, suite, "train", "Answer briefly."), 128)


def _batch(runtime, suite, n: int = 4) -> dict[str, torch.Tensor]:
    rows = _rows(runtime, suite)[:n]
    assert len({sum(1 for x in r["labels"] if x == -100) for r in rows}) > 1  # prompts of different lengths
    return PadCollator(runtime.tokenizer.pad_token_id, keep_logits=True)(rows)


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("which", ["tiny_runtime", "tiny_base_runtime"])
def test_kept_logits_loss_and_gradients_equal_transformers_loss(which, request, mini_suite):
    runtime = request.getfixturevalue(which)
    batch = _batch(runtime, mini_suite)
    keep = batch.pop("logits_to_keep")
    labels = batch["labels"]
    assert 0 < len(keep) < labels.shape[1] - 1  # the head runs at fewer positions than the row has
    model = copy.deepcopy(runtime.model).train().requires_grad_(True)
    items = int((labels[:, 1:] != -100).sum())
    full = model(**batch, num_items_in_batch=items).loss
    full.backward()
    want = _grads(model)
    model.zero_grad(set_to_none=True)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    kept = KeptLogitsLoss()(model(**inputs, logits_to_keep=keep), labels, num_items_in_batch=items)
    kept.backward()
    got = _grads(model)
    assert kept.item() == pytest.approx(full.item(), rel=1e-5)
    assert want.keys() == got.keys() and all(torch.allclose(want[k], got[k], rtol=1e-4, atol=1e-7) for k in want)


def test_positions_are_where_the_next_token_is_labelled():
    labels = torch.tensor([[-100, -100, 5, 6, -100], [-100, -100, -100, -100, 7]])
    assert loss_positions(labels).tolist() == [1, 2, 3]  # row 0 predicts 5 and 6 from 1, 2; row 1 predicts 7 from 3


def test_training_through_the_loop_trains_the_same_weights(tmp_path, mini_suite, tiny_base_runtime, monkeypatch):
    """Three optimizer steps of two micro-batches each (gradient accumulation), with dev evaluations:
    the kept-logits loop and the every-position loop end at the same weights and dev losses."""
    rt = tiny_base_runtime
    rows = _rows(rt, mini_suite)
    o = LoopOptions.model_validate(dict(max_steps=3, eval_every=1, batch_size=2, grad_accum=2, learning_rate=1e-3,
                                        patience=5))
    results, weights = [], []
    for i, keep in enumerate((True, False)):
        monkeypatch.setattr(training, "keeps_logits", lambda model, keep=keep: keep)
        model = copy.deepcopy(rt.model).requires_grad_(True)
        results.append(fit_rows(model, rt.tokenizer.pad_token_id, rows, rows[:4], o, tmp_path / f"r{i}", 0, "cpu"))
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
    kept, every = results
    base = rt.model.state_dict()
    assert any(not torch.equal(weights[0][k], base[k]) for k in base)  # it trained
    assert all(torch.allclose(weights[0][k], weights[1][k], rtol=1e-4, atol=1e-6) for k in base)
    dev = [(a["dev_loss"], b["dev_loss"]) for a, b in zip(kept.curve, every.curve, strict=True) if "dev_loss" in a]
    assert dev and all(a == pytest.approx(b, rel=1e-5) for a, b in dev)
    assert every.logit_positions is None and kept.head_trained and kept.train_tokens == every.train_tokens
    assert kept.logit_positions is not None and 0 < kept.logit_positions < kept.train_tokens


def test_prompt_learning_keeps_every_position(tiny_runtime):
    from peft import PrefixTuningConfig, TaskType, get_peft_model

    prefix = get_peft_model(copy.deepcopy(tiny_runtime.model),
                            PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4))
    assert keeps_logits(tiny_runtime.model) and not keeps_logits(prefix)


def test_a_resumed_training_continues_the_count_its_checkpoint_saved(tmp_path):
    """The positions count is in every checkpoint (a killed training resumes it, as tests/test_crash.py
    checks end to end); a checkpoint saved without one leaves the count unknown, never short."""
    from harness.model.training import POSITIONS_FILE, saved_positions

    assert saved_positions(None) == 0
    assert saved_positions(str(tmp_path)) is None
    (tmp_path / POSITIONS_FILE).write_text('{"positions": 96}')
    assert saved_positions(str(tmp_path)) == 96


def test_trainings_in_sequence_add_their_positions_or_are_unknown():
    from harness.model.training import TrainResult, positions_of

    def run(n):
        return TrainResult((), 10, None, 1, False, logit_positions=n)

    assert positions_of([run(3), run(4)]) == 7 and positions_of([run(3), run(None)]) is None
