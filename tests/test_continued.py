"""Continued pretraining on the tiny model: the corpus becomes token windows with loss on every
token, the step budget is split between the phases, and a suite without a corpus is refused."""

from dataclasses import replace

import pytest
import torch
from harness_strategies.continued import ContinuedPretraining, corpus_rows, split_budget, step_budget

from harness.core.errors import Unsupported
from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext


def ctx(tmp_path, rt, model_dir):
    return RunContext(0, "cpu", tmp_path / "cell", tmp_path / "cache", resolve_model(str(model_dir)), lambda: rt)


def test_budget_split():
    assert split_budget(24, 0.5, True) == (12, 12) and split_budget(4, 0.25, True) == (1, 3)
    assert split_budget(24, 0.5, False) == (24, 0) and split_budget(-1, 0.5, True) == (-1, -1)
    assert split_budget(2, 0.9, True) == (1, 1)
    o = ContinuedPretraining.Options()
    assert step_budget(o, "cpu") == 24 and step_budget(o, "cuda") == -1
    assert step_budget(o.model_copy(update={"max_steps": 5}), "cpu") == 5


def test_corpus_windows_cover_every_document_token(mini_suite, tiny_runtime):
    rows = corpus_rows(tiny_runtime, list(mini_suite.corpus), 16)
    eos = tiny_runtime.tokenizer.eos_token
    expected = [t for d in mini_suite.corpus for t in tiny_runtime.encode(d.text.strip() + eos)]
    assert [t for r in rows for t in r["input_ids"]] == expected
    assert all(r["labels"] == r["input_ids"] and len(r["input_ids"]) <= 16 for r in rows)


@pytest.mark.parametrize("then_instruct", [True, False])
def test_pretrains_on_the_corpus_then_instructs(then_instruct, tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    before = {k: v.clone() for k, v in tiny_runtime.model.state_dict().items()}
    opts = ContinuedPretraining.Options(then_instruct=then_instruct, max_steps=4, eval_every=2, batch_size=2,
                                        chunk_tokens=32)
    run = ctx(tmp_path, tiny_runtime, tiny_model_dir)
    adapted = ContinuedPretraining(opts).adapt(run, mini_suite)
    ex = adapted.report.extras
    assert ex["train_steps"] == 4 and ex["corpus_windows"] > 0
    assert (ex["pretrain_steps"], ex["instruct_steps"]) == ((2, 2) if then_instruct else (4, 0))
    assert (run.work_dir / "train" / "instruct").is_dir() == then_instruct
    steps = [r["step"] for r in adapted.report.curve]
    assert steps == sorted(steps) and max(steps) <= 4  # the instruct curve follows the corpus curve
    assert all(torch.equal(before[k], v) for k, v in tiny_runtime.model.state_dict().items())


def test_corpus_phase_learns_the_corpus(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    """Corpus-only training lowers the next-token loss of the corpus itself."""
    text = [d.text for d in mini_suite.corpus]
    nll = lambda rt: sum(n for n, _ in rt.token_nll(text)) / sum(k for _, k in rt.token_nll(text))  # noqa: E731
    opts = ContinuedPretraining.Options(then_instruct=False, max_steps=6, eval_every=6, batch_size=4,
                                        learning_rate=1e-2, chunk_tokens=64)
    adapted = ContinuedPretraining(opts).adapt(ctx(tmp_path, tiny_runtime, tiny_model_dir), mini_suite)
    assert nll(adapted.runtime) < nll(tiny_runtime) - 0.1


def test_suite_without_corpus_is_unsupported(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    with pytest.raises(Unsupported, match="no corpus"):
        ContinuedPretraining(ContinuedPretraining.Options()).adapt(
            ctx(tmp_path, tiny_runtime, tiny_model_dir), replace(mini_suite, corpus=()))


def test_knowledge_update_pretrains_on_the_held_out_document(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    opts = ContinuedPretraining.Options(max_steps=2, eval_every=2, batch_size=2, update_docs=1)
    run = ctx(tmp_path, tiny_runtime, tiny_model_dir)
    upd = ContinuedPretraining(opts).adapt(run, mini_suite).report.update
    assert upd is not None and upd.n_docs == 1 and (run.work_dir / "update" / "pretrain").is_dir()
