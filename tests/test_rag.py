import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from harness_strategies.rag import Rag

from harness.errors import Unsupported
from harness.evaluation import evaluate_task
from harness.models import resolve_model
from harness.registry import Registry
from harness.strategy import RunContext
from harness.suites import load_suite_dir

PLUGINS = Path(__file__).parent / "fixtures" / "plugins" / "test_plugins.py"


@pytest.fixture()
def ctx(tmp_path, tiny_runtime, tiny_model_dir):
    return RunContext(0, "cpu", tmp_path / "work", tmp_path / "cache", resolve_model(str(tiny_model_dir)),
                      lambda: tiny_runtime)


def test_rag_retrieves_the_gold_document_and_puts_it_in_the_prompt(ctx, mini_suite, tiny_runtime):
    rag = Rag(Rag.Options(k=1, depth=2, chunk_size=30, overlap=5))
    adapted = rag.adapt(ctx, mini_suite)
    assert adapted.report.extras["index_chunks"] >= 2 and adapted.report.artifact_bytes > 0
    task = mini_suite.task("qa")
    prompts = rag.prompts(ctx, task, task.test)
    for _ex, p in zip(task.test, prompts, strict=True):
        assert len(p.meta["retrieved"]) == 2 and len(p.meta["chunks"]) == 1
        assert p.meta["chunks"][0] in p.messages[-1].content
    pell = [p for ex, p in zip(task.test, prompts, strict=True) if ex.meta.get("doc_id") == "pell-harbour-code"]
    assert all(p.meta["retrieved"][0] == "pell-harbour-code" for p in pell)
    _, result = evaluate_task(adapted.runtime, task, task.test, prompts, batch_size=4)
    assert result.metrics["recall@1"] == 1.0 and result.metrics["mrr"] == 1.0  # both gold docs found first


def test_classification_tasks_get_no_context_by_default(ctx, mini_suite):
    rag = Rag(Rag.Options())
    rag.adapt(ctx, mini_suite)
    [p] = rag.prompts(ctx, mini_suite.task("clauses"), mini_suite.task("clauses").test[:1])
    assert "Context passages" not in p.messages[-1].content and not p.meta


def test_index_is_cached_and_rebuilt_when_the_corpus_changes(ctx, mini_suite_dir, tmp_path):
    suite = load_suite_dir(mini_suite_dir)
    first = Rag(Rag.Options()).adapt(ctx, suite).report
    again = Rag(Rag.Options()).adapt(ctx, suite).report
    assert first.extras["index_reused"] == 0.0 and again.extras["index_reused"] == 1.0
    assert again.extras["index_build_s"] == first.extras["index_build_s"]
    copy = shutil.copytree(mini_suite_dir, tmp_path / "mini2")
    (copy / "corpus" / "lanter-supply.md").write_text("# Lanter\n\nClause 1. Payment is due in 12 days.\n")
    changed = Rag(Rag.Options()).adapt(ctx, load_suite_dir(copy)).report
    assert changed.extras["index_reused"] == 0.0
    other_chunks = Rag(Rag.Options(chunk_size=15, overlap=2)).adapt(ctx, suite).report
    assert other_chunks.extras["index_reused"] == 0.0


def test_knowledge_update_adds_held_out_documents(ctx, mini_suite):
    report = Rag(Rag.Options(update_docs=1)).adapt(ctx, mini_suite).report
    upd = report.update
    assert upd is not None and upd.n_docs == 1 and upd.method == "index-add" and upd.wall_s > 0
    # pell-harbour-code sorts last: its two test questions must find it after the update
    assert upd.n_items == 2 and upd.recall_after == 1.0


def test_rag_without_corpus_is_unsupported(ctx, mini_suite):
    with pytest.raises(Unsupported, match="needs a corpus"):
        Rag(Rag.Options()).adapt(ctx, replace(mini_suite, corpus=()))


def test_overlap_must_be_below_chunk_size():
    with pytest.raises(ValueError):
        Rag.Options(chunk_size=20, overlap=20)


def test_rag_context_composes_on_any_weights_strategy(ctx, mini_suite, tiny_runtime):
    reg = Registry.discover()
    reg.add_plugin_file(PLUGINS)
    hybrid_cls = reg.get("rag+perturb")
    assert hybrid_cls.family == "hybrid" and hybrid_cls.name == "rag+perturb"
    hybrid = hybrid_cls(hybrid_cls.Options.model_validate({"context": {"k": 1}}))
    adapted = hybrid.adapt(ctx, mini_suite)
    # evaluated on the perturbed copy, not on the base model
    assert adapted.runtime is not tiny_runtime
    assert not torch.equal(adapted.runtime.model.model.norm.weight, tiny_runtime.model.model.norm.weight)
    assert adapted.report.trainable_params == tiny_runtime.model.config.hidden_size  # the shifted norm
    assert adapted.report.extras["index_chunks"] >= 2
    task = mini_suite.task("qa")
    [p] = hybrid.prompts(ctx, task, task.test[:1])
    assert "Context passages" in p.messages[-1].content and p.meta["retrieved"]
    with pytest.raises(Exception, match="hybrid is <context strategy>"):
        reg.get("perturb+rag")
