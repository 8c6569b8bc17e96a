"""Rehearsal on the tiny model: replay rows join the training data in the configured share, come
from the replay corpus (never the retention test split), and LoRA and full fine-tuning both train."""

import json

import pytest
import torch
from harness_strategies.rehearsal import Rehearsal, draw_replay, read_replay, replay_count, replay_source

from harness.core.errors import HarnessError
from harness.data.catalog import load_suite
from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext
from harness.strategy.training import text_rows


def ctx(tmp_path, rt, model_dir):
    return RunContext(0, "cpu", tmp_path / "cell", tmp_path / "cache", resolve_model(str(model_dir)), lambda: rt)


def test_replay_corpus_is_general_text_disjoint_from_the_retention_test_split(mini_suite):
    path = replay_source(mini_suite, None)
    texts = read_replay(path)
    assert path.name == "replay.jsonl" and 60 <= len(texts) <= 100
    general = load_suite("general")
    test_texts = {e.input for t in general.tasks for e in t.test}
    assert not test_texts & set(texts)
    test_words = [set(t.lower().split()) for t in test_texts]
    for text in texts:  # no paragraph is a near copy of a retention paragraph (word overlap < 60%)
        words = set(text.lower().split())
        assert max(len(words & w) / len(words) for w in test_words) < 0.6


def test_replay_share_and_draw_are_exact_and_seeded():
    assert replay_count(6, 0.25) == 2 and replay_count(6, 0.0) == 0 and replay_count(184, 0.25) == 62
    texts = [f"t{i}" for i in range(5)]
    a = draw_replay(texts, 12, __import__("numpy").random.default_rng(3))
    assert a == draw_replay(texts, 12, __import__("numpy").random.default_rng(3))
    assert sorted(a[:5]) == texts and sorted(a[5:10]) == texts  # whole passes before any repeat


def test_bad_replay_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b"}\n')
    with pytest.raises(HarnessError, match=r"r.jsonl:2: .*'text'"):
        read_replay(bad)
    with pytest.raises(HarnessError, match="not found"):
        read_replay(tmp_path / "missing.jsonl")


def test_text_rows_put_loss_on_every_token(tiny_runtime):
    rows = text_rows(tiny_runtime, ["The Buyer shall pay."], 384)
    assert rows[0]["labels"] == rows[0]["input_ids"] and rows[0]["input_ids"][-1] == tiny_runtime.tokenizer.eos_token_id


@pytest.mark.parametrize("method", ["lora", "full-ft"])
def test_rehearsal_trains_with_replay_rows(method, tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    opts = Rehearsal.Options(method=method, replay_fraction=0.5, max_steps=2, eval_every=2, batch_size=2)
    before = {k: v.clone() for k, v in tiny_runtime.model.state_dict().items()}
    report = Rehearsal(opts).adapt(ctx(tmp_path, tiny_runtime, tiny_model_dir), mini_suite).report
    n_task = sum(len(t.train) for t in mini_suite.tasks)
    assert report.extras["task_rows"] == n_task and report.extras["replay_rows"] == n_task  # half and half
    assert "replay.jsonl" in report.notes and report.extras["train_steps"] == 2
    assert all(torch.equal(before[k], v) for k, v in tiny_runtime.model.state_dict().items())
    full = report.trainable_params == report.total_params
    assert full == (method == "full-ft")


def test_replay_changes_what_is_learnt(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    """Same seed and steps, with and without replay: the trained weights differ (replay rows were used)."""
    def trained(fraction, name):
        opts = Rehearsal.Options(replay_fraction=fraction, max_steps=2, eval_every=2, batch_size=4)
        run = ctx(tmp_path / name, tiny_runtime, tiny_model_dir)
        model = Rehearsal(opts).adapt(run, mini_suite).runtime.model
        return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}

    plain, mixed = trained(0.0, "plain"), trained(0.5, "mixed")
    assert any(not torch.equal(plain[k], mixed[k]) for k in plain)


def test_custom_replay_path(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"id": str(i), "text": f"Paragraph {i} about rivers."}) for i in range(3)))
    opts = Rehearsal.Options(replay_fraction=0.2, replay_path=str(path), max_steps=1, batch_size=2)
    report = Rehearsal(opts).adapt(ctx(tmp_path, tiny_runtime, tiny_model_dir), mini_suite).report
    assert "mine.jsonl" in report.notes and report.extras["replay_rows"] >= 1


def test_hybrids_with_the_new_strategies_run_through_compare(tmp_path, mini_suite_dir, tiny_model_dir):
    """`rag+rehearsal` and `rag+prompt-tuning` are composed by the registry and run end to end."""
    import os
    import subprocess
    import sys

    from harness.report import load_run

    cfg = tmp_path / "run.toml"
    cfg.write_text(f'suite = "{mini_suite_dir}"\nmodel = "{tiny_model_dir}"\nlimit = 2\n'
                   '[options."rag+rehearsal".weights]\nmax_steps = 2\nbatch_size = 2\n'
                   '[options."rag+prompt-tuning".weights]\nmax_steps = 2\nbatch_size = 2\nvirtual_tokens = 4\n')
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "harness", "compare", "--config", str(cfg), "--strategies",
                           "rag+rehearsal,rag+prompt-tuning", "--no-retention", "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**os.environ})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [run_dir] = [d for d in (out / "mini").iterdir() if (d / "report.json").is_file()]
    records = {r.strategy: r for r in load_run(run_dir)[1]}
    assert set(records) == {"rag+rehearsal", "rag+prompt-tuning"}
    reh = records["rag+rehearsal"]
    assert reh.adapt.extras["replay_rows"] > 0 and reh.adapt.extras["train_steps"] == 2
    assert "index_chunks" in reh.adapt.extras or any("index" in k for k in reh.adapt.extras)
    assert records["rag+prompt-tuning"].adapt.trainable_params > 0
