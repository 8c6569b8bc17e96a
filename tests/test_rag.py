import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from harness_strategies.rag import Rag

from harness.core.errors import HarnessError, Unsupported
from harness.core.records import Example, Prediction
from harness.data.evaluation import evaluate_task, evidence_metrics, retrieval_metrics
from harness.data.formats import import_suite
from harness.data.suites import load_suite_dir
from harness.model.retrieval import evidence_recall, span_covered, spans_overlap
from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext
from harness.strategy.registry import Registry

PLUGINS = Path(__file__).parent / "fixtures" / "plugins" / "test_plugins.py"
CNLI = Path(__file__).parent / "fixtures" / "formats" / "contractnli" / "mini.json"


@pytest.fixture()
def ctx(tmp_path, tiny_runtime, tiny_model_dir):
    return RunContext(0, "cpu", tmp_path / "work", tmp_path / "cache", resolve_model(str(tiny_model_dir)),
                      lambda: tiny_runtime)


def test_rag_retrieves_the_gold_document_and_puts_it_in_the_prompt(ctx, mini_suite, tiny_runtime):
    rag = Rag(Rag.Options(retriever="dense", k=1, depth=2, chunk_size=30, overlap=5))  # bm25: test_rag_retrievers
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
    assert not first.cached and again.cached["index_load_s"] >= 0  # reuse is provenance ...
    assert again.extras == first.extras and again.notes == first.notes  # ... the result does not depend on it
    assert again.cached["reused_s"] == max(0.0, first.extras["index_build_s"] - again.cached["index_load_s"])
    copy = shutil.copytree(mini_suite_dir, tmp_path / "mini2")
    (copy / "corpus" / "lanter-supply.md").write_text("# Lanter\n\nClause 1. Payment is due in 12 days.\n")
    changed = Rag(Rag.Options()).adapt(ctx, load_suite_dir(copy)).report
    assert not changed.cached
    other_chunks = Rag(Rag.Options(chunk_size=15, overlap=2)).adapt(ctx, suite).report
    assert not other_chunks.cached


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


# ---------------------------------------------------------------- evidence spans (ContractNLI)
def test_span_overlap_is_at_least_one_shared_character():
    assert spans_overlap((10, 20), (19, 30)) and spans_overlap((10, 20), (0, 11)) and spans_overlap((10, 20), (12, 14))
    assert not spans_overlap((10, 20), (20, 30)) and not spans_overlap((10, 20), (0, 10))  # half-open: touching
    assert span_covered((10, 20), [(0, 15), (15, 25)])  # adjacent chunks cover it together
    assert not span_covered((10, 20), [(0, 15), (16, 25)])  # one character (15) missing
    assert span_covered((10, 20), [(10, 20)]) and not span_covered((10, 20), [(11, 30)])


def test_evidence_recall_arithmetic_on_hand_made_spans():
    gold = [(10, 20), (30, 40), (50, 60)]
    # (10,20) overlapped by (0,12) but not covered; (30,40) overlapped by (35,38) and (38,45) but 30..34
    # uncovered; (50,60) untouched
    assert evidence_recall(gold, [(0, 12), (35, 38), (38, 45)]) == (2 / 3, 0.0)
    # (10,20) inside (5,25); (30,40) inside (28,35)+(35,41); (50,60) touched only at its end boundary
    assert evidence_recall(gold, [(5, 25), (28, 35), (35, 41), (60, 70)]) == (2 / 3, 2 / 3)
    assert evidence_recall(gold, []) == (0.0, 0.0)
    assert evidence_recall([], [(0, 100)]) is None  # NotMentioned: nothing to find
    assert evidence_recall([(5, 5)], [(0, 100)]) is None  # an empty span is not evidence


def pred(ex_id, doc, gold, retrieved, spans, k=2, scope="document"):
    meta = {"doc_id": doc, "evidence_spans": gold, "retrieved": retrieved, "chunk_spans": spans,
            "chunks": [f"{d}#{i}" for i, d in enumerate(retrieved[:k])], "scope": scope}
    return Prediction(ex_id, "t", "x", "x", {"accuracy": 1.0}, 0.1, 10, 0, meta=meta)


def test_evidence_metrics_average_items_with_spans_at_k_and_depth():
    preds = [
        # two gold spans; first chunk finds one, the third (beyond k=2) finds the other
        pred("a", "d1", [[0, 10], [100, 110]], ["d1", "d1", "d1"], [[0, 50], [200, 250], [90, 105]]),
        # a chunk of another document at the same offsets does not count
        pred("b", "d1", [[0, 10]], ["d2", "d1", "d1"], [[0, 50], [300, 350], [400, 450]]),
        pred("c", "d1", [], ["d1", "d1", "d1"], [[0, 50], [50, 90], [90, 120]]),  # NotMentioned: left out
    ]
    m = evidence_metrics(preds)
    assert m == {"evidence_recall@2": (0.5 + 0.0) / 2, "evidence_recall@3": (1.0 + 0.0) / 2,
                 "evidence_covered@2": (0.5 + 0.0) / 2}
    # confined to the document, the gold-document recall would be 1 by construction: not reported
    assert retrieval_metrics(preds) == m
    corpus_wide = [replace(p, meta={**p.meta, "scope": None}) for p in preds]
    r = retrieval_metrics(corpus_wide)
    assert r["recall@1"] == 2 / 3 and r["evidence_recall@3"] == 0.5


@pytest.fixture()
def cnli_suite(tmp_path):
    return import_suite("contractnli", str(CNLI), tmp_path / "cnli")


def test_contractnli_classification_gets_context_from_its_own_document(ctx, cnli_suite):
    task = cnli_suite.task("contractnli")
    items = [*task.train, *task.dev, *task.test]
    rag = Rag(Rag.Options(k=2, depth=3, chunk_size=12, overlap=0))
    rag.adapt(ctx, cnli_suite)
    prompts = rag.prompts(ctx, task, items)
    texts = {d.id: d.text for d in cnli_suite.corpus}
    for ex, p in zip(items, prompts, strict=True):
        doc = ex.meta["doc_id"]
        assert "Context passages" in p.messages[-1].content and p.meta["scope"] == "document"
        assert p.meta["retrieved"] == [doc] * 3 and all(c.startswith(f"{doc}#") for c in p.meta["chunks"])
        for (s, e), cid in zip(p.meta["chunk_spans"], p.meta["chunks"], strict=False):
            assert f"[{cid}] {texts[doc][s:e]}" in p.messages[-1].content  # offsets point at the text shown
    # the whole corpus: the boilerplate-sharing agreements lend each other chunks
    wide = Rag(Rag.Options(k=2, depth=3, chunk_size=12, overlap=0, scope="corpus"))
    wide.adapt(ctx, cnli_suite)
    assert any(set(p.meta["retrieved"]) != {ex.meta["doc_id"]} for ex, p in zip(items, wide.prompts(
        ctx, task, items), strict=True))
    off = Rag(Rag.Options(evidence_tasks=False))
    off.adapt(ctx, cnli_suite)
    assert not off.prompts(ctx, task, items[:1])[0].meta


def test_document_scope_needs_the_items_doc_id(ctx, cnli_suite):
    task = cnli_suite.task("contractnli")
    rag = Rag(Rag.Options(scope="document"))
    rag.adapt(ctx, cnli_suite)
    orphan = Example("x", task.name, "Hypothesis: anything", "NotMentioned", choices=task.test[0].choices)
    with pytest.raises(HarnessError, match="item 'x' has no doc_id"):
        rag.prompts(ctx, task, [orphan])


def test_evidence_recall_of_a_tiny_model_rag_run(ctx, cnli_suite):
    """At most 19 words a chunk, one fixture sentence each: a gold span (a sentence) is found and
    covered when its chunk is retrieved. The reported recall must equal the count made here."""
    task = cnli_suite.task("contractnli")
    items = [*task.train, *task.dev, *task.test]
    rag = Rag(Rag.Options(k=2, depth=4, chunk_size=19, overlap=0))
    adapted = rag.adapt(ctx, cnli_suite)
    prompts = rag.prompts(ctx, task, items)
    preds, result = evaluate_task(adapted.runtime, task, items, prompts, batch_size=4)
    with_gold = [(ex, p) for ex, p in zip(items, prompts, strict=True) if ex.meta["evidence_spans"]]
    assert 0 < len(with_gold) < len(items)  # NotMentioned items have no spans
    for n in (2, 4):
        hits = [sum(any(s < ce and cs < e for cs, ce in p.meta["chunk_spans"][:n]) for s, e in ex.meta[
            "evidence_spans"]) / len(ex.meta["evidence_spans"]) for ex, p in with_gold]
        assert result.metrics[f"evidence_recall@{n}"] == pytest.approx(sum(hits) / len(hits))
    assert 0 < result.metrics["evidence_recall@2"] <= result.metrics["evidence_recall@4"] <= 1
    assert result.metrics["evidence_covered@2"] == result.metrics["evidence_recall@2"]
    assert "recall@1" not in result.metrics and "accuracy" in result.metrics
    assert all("chunk_spans" in p.meta and "evidence_spans" in p.meta for p in preds)


@pytest.fixture()
def cnli_run(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    config = tmp_path / "run.toml"
    config.write_text(f'suite = "contractnli:{CNLI}"\nmodel = "{tiny_model_dir}"\nstrategies = ["zero-shot", "rag"]\n'
                      f'out = "{out}"\n[options.rag]\nchunk_size = 12\noverlap = 0\n')
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "harness", "compare", "--config", str(config)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return next(d for d in out.rglob("*") if (d / "report.json").is_file())


def test_compare_on_a_contractnli_file_reports_evidence_recall(cnli_run):
    from harness.report import load_run

    _, records = load_run(cnli_run)
    zero, rag = records
    assert not any(m.startswith("evidence") for t in zero.tasks for m in t.metrics)
    [metrics] = [t.metrics for t in rag.tasks]
    assert 0 <= metrics["evidence_recall@3"] <= 1 and "evidence_recall@5" in metrics
    md = (cnli_run / "report.md").read_text()
    assert "contractnli evidence\\_recall@3 |" in md  # per-cell table column
    assert f"contractnli: evidence\\_recall@3 {metrics['evidence_recall@3']:.3f}" in md  # retrieval table
    html = (cnli_run / "report.html").read_text()
    assert f"contractnli: evidence_recall@3 {metrics['evidence_recall@3']:.3f}" in html
    assert "evidence_recall@3" in (cnli_run / "charts" / "retrieval.svg").read_text()


def test_hybrid_trains_its_weights_on_the_context_prompts(ctx, mini_suite, monkeypatch):
    """rag+lora trains on the prompts its evaluation shows (retrieved passages in front of the question),
    with room for them in every row; train_on_context=False trains on zero-shot prompts as before."""
    import harness.strategy.training as training

    seen: list[list[tuple[str, str]]] = []
    real = training.tokenize_pairs
    monkeypatch.setattr(training, "tokenize_pairs", lambda rt, pairs, n: seen.append(pairs) or real(rt, pairs, n))
    cls = Registry.discover().get("rag+lora")
    budget = {"max_steps": 1, "cpu_max_steps": 1, "eval_every": 1}
    hybrid = cls(cls.Options.model_validate({"context": {"k": 1, "retriever": "dense"}, "weights": budget}))
    assert hybrid.weights.options.max_seq_len == 1024  # not given: room for the passages
    dumped = cls.Options.model_validate({"context": {"k": 1}, "weights": budget}).model_dump(mode="json")
    assert cls.Options.model_validate(dumped).weights.max_seq_len == 1024  # as the runner re-validates a cell's
    hybrid.adapt(ctx, mini_suite)
    train, dev = seen[0], seen[1]
    qa_rows = [p for p, _ in train if "Context passages" in p]
    assert len(qa_rows) == len(mini_suite.task("qa").train) and any("Context passages" in p for p, _ in dev)
    seen.clear()
    plain = cls(cls.Options.model_validate({"context": {"k": 1}, "weights": {**budget, "max_seq_len": 256},
                                            "train_on_context": False}))
    assert plain.weights.options.max_seq_len == 256  # given: kept
    plain.adapt(ctx, mini_suite)
    assert seen and not any("Context passages" in p for p, _ in seen[0])
    assert training.sft_pairs(ctx.load_base(), mini_suite, "train", "sys") == [  # outside the block: zero-shot
        (ctx.load_base().render(training.zero_shot_prompt(t, ex, "sys")), training.answer_text(t, ex))
        for t in mini_suite.tasks if t.spec.trains for ex in t.train]
