"""rag's retrievers (dense, BM25, hybrid by reciprocal rank fusion), the model reranker and shots:
BM25 and fusion on hand-made inputs, the rest on the tiny model and the mini suite."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from harness_strategies import rag as rag_module
from harness_strategies.prompting import FewShot
from harness_strategies.rag import Rag

from harness.data.formats import import_suite
from harness.data.prompts import answer_text, user_text
from harness.model.fusion import reciprocal_rank_fusion, relevance, relevance_request
from harness.model.lexical import LexicalIndex
from harness.model.retrieval import Chunk
from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext
from harness.strategy.registry import Registry

PLUGINS = Path(__file__).parent / "fixtures" / "plugins" / "test_plugins.py"
CNLI = Path(__file__).parent / "fixtures" / "formats" / "contractnli" / "mini.json"
TEXTS = ["The Buyer shall pay all invoices within thirty days of receipt.",
         "Either party may terminate this agreement on ninety days notice.",
         "Confidential information must not be disclosed to third parties.",
         "Invoices are issued monthly by the Supplier.",
         "The parties terminated the earlier agreement."]


def chunks(texts: list[str]) -> list[Chunk]:
    return [Chunk(f"d{i % 2}#{i}", f"d{i % 2}", t, 0, len(t)) for i, t in enumerate(texts)]


@pytest.fixture()
def ctx(tmp_path, tiny_runtime, tiny_model_dir):
    return RunContext(0, "cpu", tmp_path / "work", tmp_path / "cache", resolve_model(str(tiny_model_dir)),
                      lambda: tiny_runtime)


# ---------------------------------------------------------------- BM25
def test_bm25_finds_the_lexical_match_and_never_returns_zero_scores():
    index = LexicalIndex.build(chunks(TEXTS))
    [hits] = index.search(["Which invoices are issued monthly?"], 10)  # k above the corpus size is fine
    assert [p for p, _ in hits] == [3, 0] and hits[0][1] > hits[1][1] > 0  # only the chunks sharing a term
    assert index.search(["zebra quantum"], 3) == [[]]  # no known word: nothing, not k chunks scored 0
    assert index.search(["the of and"], 3) == [[]]  # stopwords only
    [stemmed] = index.search(["terminating"], 3)  # "terminating" meets "terminate" and "terminated"
    assert {p for p, _ in stemmed} == {1, 4}


def test_bm25_within_a_document_and_its_saved_copy(tmp_path):
    index = LexicalIndex.build(chunks(TEXTS))
    [odd] = index.search(["terminating invoices"], 5, positions=[1, 3])  # document d1's chunks
    assert {p for p, _ in odd} == {1, 3}
    assert index.search(["terminating invoices"], 5, positions=[]) == [[]]
    index.save(tmp_path / "ix")
    again = LexicalIndex.load(tmp_path / "ix")
    assert again is not None and again.chunks == index.chunks
    assert again.search(["terminating invoices"], 5) == index.search(["terminating invoices"], 5)
    assert LexicalIndex.load(tmp_path / "missing") is None


# ---------------------------------------------------------------- reciprocal rank fusion
def test_reciprocal_rank_fusion_order():
    # 1: 1/61 + 1/62, 3: 1/63 + 1/61, 2: 1/62, 4: 1/63
    assert reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]]) == [1, 3, 2, 4]
    # found twice at rank 2 beats found once at rank 1
    assert reciprocal_rank_fusion([[1, 2], [3, 2]]) == [2, 1, 3]
    assert reciprocal_rank_fusion([[1, 2], [2, 1]]) == [1, 2]  # a tie goes to the one seen first
    # k sets how much the first ranks weigh: once at rank 1 against twice at rank 4
    assert reciprocal_rank_fusion([[7, 1, 2, 8], [9, 3, 4, 8]], k=60)[0] == 8
    assert reciprocal_rank_fusion([[7, 1, 2, 8], [9, 3, 4, 8]], k=1)[0] == 7
    assert reciprocal_rank_fusion([]) == [] and reciprocal_rank_fusion([[5]]) == [5]
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[1]], k=0)


# ---------------------------------------------------------------- rag with each retriever
@pytest.fixture()
def cnli_suite(tmp_path):
    return import_suite("contractnli", str(CNLI), tmp_path / "cnli")


@pytest.mark.parametrize("retriever", ["bm25", "hybrid"])
def test_document_scope_holds_for_every_retriever(ctx, cnli_suite, retriever):
    task = cnli_suite.task("contractnli")
    items = [*task.train, *task.dev, *task.test]
    rag = Rag(Rag.Options(retriever=retriever, k=2, depth=3, chunk_size=12, overlap=0))
    rag.adapt(ctx, cnli_suite)
    prompts = rag.prompts(ctx, task, items)
    texts = {d.id: d.text for d in cnli_suite.corpus}
    for ex, p in zip(items, prompts, strict=True):
        doc = ex.meta["doc_id"]
        assert p.meta["scope"] == "document" and p.meta["retrieved"] and set(p.meta["retrieved"]) == {doc}
        for (s, e), cid in zip(p.meta["chunk_spans"], p.meta["chunks"], strict=False):
            assert cid.startswith(f"{doc}#") and f"[{cid}] {texts[doc][s:e]}" in p.messages[-1].content
    if retriever == "hybrid":  # the dense side always fills the depth
        assert all(len(p.meta["retrieved"]) == 3 for p in prompts)


def test_bm25_rag_retrieves_the_gold_document(ctx, mini_suite):
    rag = Rag(Rag.Options(retriever="bm25", k=1, depth=2, chunk_size=30, overlap=5))
    rag.adapt(ctx, mini_suite)
    assert rag.index is None and rag.lexical is not None  # no embedding of the corpus
    task = mini_suite.task("qa")
    for ex, p in zip(task.test, rag.prompts(ctx, task, task.test), strict=True):
        if ex.meta.get("doc_id"):
            assert p.meta["retrieved"][0] == ex.meta["doc_id"] and "Context passages" in p.messages[-1].content
        else:  # "What is the capital of France?" shares no word with the corpus: no passages, no empty header
            assert p.meta["retrieved"] == [] and "Context passages" not in p.messages[-1].content


def test_index_cache_is_keyed_by_the_retriever(ctx, mini_suite):
    def cached(**opts):
        return bool(Rag(Rag.Options(**opts)).adapt(ctx, mini_suite).report.cached)

    assert not cached(retriever="dense") and not cached(retriever="bm25") and not cached(retriever="hybrid")
    assert cached(retriever="dense") and cached(retriever="bm25") and cached(retriever="hybrid")
    assert cached(retriever="hybrid", rrf_k=10, rerank="model")  # ranking options: the same index
    hybrid = Rag(Rag.Options(retriever="hybrid"))
    hybrid.adapt(ctx, mini_suite)
    assert hybrid.index is not None and hybrid.lexical is not None
    assert hybrid.index.chunks == hybrid.lexical.chunks


@pytest.mark.parametrize("retriever", ["bm25", "hybrid"])
def test_knowledge_update_adds_documents_to_every_index(ctx, mini_suite, retriever):
    rag = Rag(Rag.Options(retriever=retriever, update_docs=1))
    upd = rag.adapt(ctx, mini_suite).report.update
    assert upd is not None and upd.method == "index-add" and upd.n_items == 2 and upd.recall_after == 1.0
    assert rag.lexical is not None and any(c.doc_id == "pell-harbour-code" for c in rag.lexical.chunks)
    [hits] = rag.lexical.search(["mooring permit"], 3)
    assert hits and rag.lexical.chunks[hits[0][0]].doc_id == "pell-harbour-code"
    if retriever == "hybrid":
        assert rag.index is not None and rag.index.chunks == rag.lexical.chunks
        assert rag.index.index.ntotal == len(rag.lexical.chunks)


# ---------------------------------------------------------------- the model as reranker
def test_rerank_orders_by_the_models_own_judgement(ctx, mini_suite, tiny_runtime):
    opts = {"retriever": "hybrid", "k": 2, "depth": 5, "chunk_size": 10, "overlap": 0}
    first = Rag(Rag.Options(**opts))
    first.adapt(ctx, mini_suite)
    reranked = Rag(Rag.Options(**opts, rerank="model", rerank_depth=4))
    reranked.adapt(ctx, mini_suite)
    assert reranked.reranker is tiny_runtime
    task = mini_suite.task("qa")
    moved = 0
    for ex, before, after in zip(task.test, first.prompts(ctx, task, task.test),
                                 reranked.prompts(ctx, task, task.test), strict=True):
        ids = _chunk_ids(first, before)
        head = ids[:4]
        judged = {cid: relevance(tiny_runtime.loglikelihood(*relevance_request(
            tiny_runtime, ex.input, _text(first, cid))).logprobs) for cid in head}
        expected = sorted(head, key=lambda cid: (-judged[cid], head.index(cid))) + ids[4:]
        assert _chunk_ids(reranked, after) == expected[:5]
        assert after.meta["chunks"] == expected[:2]  # the prompt gets the model's top k
        moved += expected != ids
    assert moved  # the judgement did reorder something


def _chunk_ids(rag: Rag, prompt) -> list[str]:
    """Every retrieved chunk's id, from the prompt's spans and documents."""
    by_span = {(c.doc_id, c.start, c.end): c.id for c in rag.chunks}
    return [by_span[(d, s, e)] for d, (s, e) in zip(prompt.meta["retrieved"], prompt.meta["chunk_spans"], strict=True)]


def _text(rag: Rag, cid: str) -> str:
    return next(c.text for c in rag.chunks if c.id == cid)


def test_rerank_time_is_part_of_retrieval_time(ctx, mini_suite, monkeypatch):
    rag = Rag(Rag.Options(retriever="bm25", rerank="model", rerank_depth=2))
    rag.adapt(ctx, mini_suite)
    real = rag_module.rerank

    def slow(*args, **kwargs):
        time.sleep(0.2)
        return real(*args, **kwargs)

    monkeypatch.setattr(rag_module, "rerank", slow)
    task = mini_suite.task("qa")
    prompts = rag.prompts(ctx, task, task.test)
    assert all(p.meta["retrieval_s"] >= 0.2 / len(prompts) for p in prompts)


def test_in_a_hybrid_the_trained_model_reranks(ctx, mini_suite, tiny_runtime):
    reg = Registry.discover()
    reg.add_plugin_file(PLUGINS)
    cls = reg.get("rag+perturb")
    hybrid = cls(cls.Options.model_validate({"context": {"rerank": "model", "rerank_depth": 2}}))
    adapted = hybrid.adapt(ctx, mini_suite)
    assert adapted.runtime is not tiny_runtime and hybrid.context.reranker is adapted.runtime
    task = mini_suite.task("qa")
    [p] = hybrid.prompts(ctx, task, task.test[:1])  # prompts() gets the base's run; the rerank still uses the trained
    assert p.meta["retrieved"]


# ---------------------------------------------------------------- shots
def test_shots_come_before_the_passages_chosen_like_few_shot(ctx, mini_suite):
    rag = Rag(Rag.Options(shots=2, k=1, retriever="dense"))  # dense always finds passages; bm25 may not
    rag.adapt(ctx, mini_suite)
    few = FewShot(FewShot.Options(k=2, selection="similar"))
    few.adapt(ctx, mini_suite)
    task = mini_suite.task("qa")
    for ex, p, f in zip(task.test, rag.prompts(ctx, task, task.test), few.prompts(ctx, task, task.test), strict=True):
        roles = [m.role for m in p.messages]
        assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
        assert p.messages[:-1] == f.messages[:-1]  # the same solved examples, in the same order, as few-shot's
        shown = {m.content for m in p.messages[1:-1:2]}
        assert shown <= {user_text(task, t) for t in task.train}
        assert {m.content for m in p.messages[2:-1:2]} <= {answer_text(task, t) for t in task.train}
        last = p.messages[-1].content
        assert last.startswith("Context passages:") and last.endswith(user_text(task, ex))
        assert "Context passages" not in "".join(m.content for m in p.messages[:-1])
    plain = Rag(Rag.Options(k=1, retriever="dense"))
    plain.adapt(ctx, mini_suite)
    assert [m.role for m in plain.prompts(ctx, task, task.test[:1])[0].messages] == ["system", "user"]
