"""Retrieval-augmented generation: the suite's corpus, chunked and indexed; the top-k chunks go into
the prompt, tagged with their ids. Weights are untouched.

Retrievers: `dense` (sentence embeddings in FAISS), `bm25` (bm25s over stemmed words) or `hybrid`,
reciprocal rank fusion of the two rankings (harness.model.fusion; each side contributes its top
FUSION_CANDIDATES chunks, the constant `rrf_k` is 60 as in the RRF paper). With `rerank = "model"`
the evaluated model itself reorders the first stage's top `rerank_depth` chunks by its yes/no
judgement of whether each answers the question; in a hybrid such as `rag+lora` that is the
fine-tuned model (the runtime `run.load_base()` returns inside `adapt`, kept for `prompts`). The
rerank is part of serving, so it is inside each query's `retrieval_s`.

With `shots = n` the n most similar solved train items of the task (by embedding, like few-shot's)
come first as earlier chat turns, then the retrieved passages and the question.

Short-answer tasks get retrieved context, and so does any task whose items carry gold
`evidence_spans` (ContractNLI's 3-way classification): the suite then says where the answer lies.
Such an item is a question about one given document (its `doc_id`), so by default its retrieval
is confined to that document's chunks, for every retriever; the harness scores the chunks'
character offsets against the gold spans (see harness.model.retrieval.evidence_recall)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from harness.core.cache import atomic_write_text
from harness.core.errors import HarnessError
from harness.data.kinds import SHORT_ANSWER
from harness.model.embeddings import DEFAULT_EMBEDDER, embed, embed_flops
from harness.model.fusion import RRF_K, reciprocal_rank_fusion, rerank
from harness.model.lexical import SETTINGS as BM25_SETTINGS
from harness.model.lexical import LexicalIndex
from harness.model.retrieval import Chunk, IndexKind, VectorIndex, chunk_corpus, index_key
from harness.strategy import (
    DEFAULT_SYSTEM,
    Adapted,
    AdaptReport,
    Document,
    Example,
    KnowledgeUpdate,
    ModelRuntime,
    Prompt,
    RunContext,
    StrategyOptions,
    Suite,
    Task,
    Unsupported,
    context_prompt,
    shots_prompt,
    unchanged_weights,
    zero_shot_prompt,
)

FUSION_CANDIDATES = 50
"""hybrid: chunks each retriever contributes to the fusion (at least; more when depth asks for more)."""


class Rag:
    """Top-k corpus chunks (dense, BM25 or both fused, optionally reranked by the model) before the question."""

    name: ClassVar[str] = "rag"
    family: ClassVar[str] = "context"
    description: ClassVar[str] = ("Retrieves top-k corpus chunks (dense, BM25 or hybrid; optional model rerank) "
                                  "into the prompt.")

    class Options(StrategyOptions):
        k: int = Field(3, ge=1, le=50, description="Chunks put in the prompt.")
        depth: int = Field(5, ge=1, le=100, description="Chunks retrieved and scored (recall@depth, MRR).")
        chunk_size: int = Field(120, ge=10, le=4000, description="Words per chunk (about).")
        overlap: int = Field(20, ge=0, description="Words shared by neighbouring chunks.")
        boundary: Literal["sentence", "paragraph"] = Field("sentence", description="Where chunks may end.")
        retriever: Literal["dense", "bm25", "hybrid"] = Field(
            "bm25", description="dense (embeddings + FAISS), bm25 (bm25s, stemmed words) or hybrid (reciprocal "
            "rank fusion of both rankings).")
        rrf_k: int = Field(RRF_K, ge=1, le=1000, description="hybrid: k in the fused score sum 1/(k + rank); 60 "
                           "as in the RRF paper.")
        rerank: Literal["none", "model"] = Field(
            "none", description="model: the evaluated model reorders the top rerank_depth chunks by its judgement "
            "log P(yes) - log P(no) that a chunk answers the question (costs one scoring per chunk per query).")
        rerank_depth: int = Field(5, ge=1, le=100, description="rerank: first-stage chunks the model judges.")
        shots: int = Field(0, ge=0, le=16, description="Solved train examples (most similar by embedding) as "
                           "earlier chat turns before the passages.")
        embedder: str = Field(DEFAULT_EMBEDDER, description="sentence-transformers model id or folder.")
        index: IndexKind = Field("auto", description="flat (exact), hnsw, ivf, or auto by corpus size.")
        hnsw_threshold: int = Field(50_000, ge=1, description="auto: HNSW from this many chunks.")
        kinds: list[str] = Field([SHORT_ANSWER.name], description="Task kinds that get retrieved context.")
        evidence_tasks: bool = Field(True, description="Also tasks of any kind whose items carry evidence_spans.")
        scope: Literal["auto", "corpus", "document"] = Field(
            "auto", description="Search the whole corpus, or only the item's doc_id document; auto: the document "
            "for items with evidence_spans (a question about that document), the corpus otherwise.")
        update_docs: int = Field(0, ge=0, description="Hold out N documents and time adding them.")
        system: str = Field(DEFAULT_SYSTEM, description="System prompt; empty for none.")

        @model_validator(mode="after")
        def _overlap_below_size(self) -> Rag.Options:
            if self.overlap >= self.chunk_size:
                raise ValueError("overlap must be smaller than chunk_size")
            return self

    def __init__(self, options: Options):
        self.options = options
        self.index: VectorIndex | None = None
        """The dense index (retriever dense or hybrid)."""
        self.lexical: LexicalIndex | None = None
        """The BM25 index (retriever bm25 or hybrid)."""
        self.reranker: ModelRuntime | None = None
        """rerank = model: the runtime adapt() received (in a hybrid, the trained one)."""
        self._train_vectors: dict[str, Any] = {}

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {"k": trial.suggest_int("k", 1, 6),
                "chunk_size": trial.suggest_categorical("chunk_size", [60, 120, 240, 400]),
                "retriever": trial.suggest_categorical("retriever", ["bm25", "hybrid", "dense"])}

    @property
    def chunks(self) -> list[Chunk]:
        """Every indexed chunk, by position (the same order in both indexes)."""
        index = self.index if self.index is not None else self.lexical
        assert index is not None, "adapt() must run before prompts()"
        return index.chunks

    def _uses(self, kind: str) -> bool:
        return self.options.retriever in (kind, "hybrid")

    # ------------------------------------------------------------ adapt: build or load the index
    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        if not suite.corpus:
            raise Unsupported(f"rag needs a corpus; suite {suite.name!r} declares none")
        docs = sorted(suite.corpus, key=lambda d: d.id)
        n_new = min(self.options.update_docs, len(docs) - 1)
        base_docs, new_docs = docs[: len(docs) - n_new], docs[len(docs) - n_new :]
        extras, cached = self._index_for(run, base_docs)
        adapted = unchanged_weights(run)
        if self.options.rerank == "model":
            self.reranker = run.load_base()  # in a hybrid: the trained model, the one evaluated
        if self.options.shots:
            self._embed_train(suite)
        update = self._absorb(new_docs, suite) if new_docs else None
        report = AdaptReport(total_params=adapted.report.total_params, artifact_bytes=int(extras["index_bytes"]),
                             extras=extras, update=update, cached=cached)
        return Adapted(adapted.runtime, report)

    def _chunking(self) -> dict[str, Any]:
        """What the cached index depends on besides documents and embedder: chunking, retriever, index."""
        o = self.options
        return {"size": o.chunk_size, "overlap": o.overlap, "boundary": o.boundary, "index": o.index, "meta": 3,
                "threshold": o.hnsw_threshold, "retriever": o.retriever,
                "bm25": BM25_SETTINGS if self._uses("bm25") else None}

    def _load(self, folder: Path) -> bool:
        """Load every index this retriever needs from `folder`; False when one is missing."""
        dense = VectorIndex.load(folder) if self._uses("dense") else None
        lexical = LexicalIndex.load(folder) if self._uses("bm25") else None
        if (self._uses("dense") and dense is None) or (self._uses("bm25") and lexical is None):
            return False
        self.index, self.lexical = dense, lexical
        return True

    def _index_for(self, run: RunContext, docs: list[Document]) -> tuple[dict[str, float], dict[str, float]]:
        """Build or load the indexes; their figures (the same whether built now or loaded: build time,
        chunks, bytes) and what the cache saved (provenance: load time, and the build time it did not spend)."""
        folder = run.cache_dir / "rag" / index_key(docs, self._chunking(), self.options.embedder)
        t0 = time.perf_counter()
        if (folder / "meta.json").is_file() and self._load(folder):
            meta = json.loads((folder / "meta.json").read_text())
            load_s = time.perf_counter() - t0
            saved = {"index_load_s": load_s, "reused_s": max(0.0, meta["index_build_s"] - load_s)}
            return {**meta, "index_bytes": float(_folder_bytes(folder))}, saved
        o = self.options
        t0 = time.perf_counter()
        chunks = chunk_corpus(docs, o.chunk_size, o.overlap, o.boundary)
        meta = {"index_chunks": float(len(chunks))}
        if self._uses("dense"):
            self.index = VectorIndex.build(embed([c.text for c in chunks], o.embedder, run.device), chunks,
                                           o.index, o.hnsw_threshold)
        if self._uses("bm25"):
            self.lexical = LexicalIndex.build(chunks)
        meta["index_build_s"] = time.perf_counter() - t0
        if self._uses("dense"):
            meta["index_flops"] = embed_flops([c.text for c in chunks], o.embedder, run.device)
        for index in (self.index, self.lexical):
            if index is not None:
                index.save(folder)
        atomic_write_text(folder / "meta.json", json.dumps(meta))
        return {**meta, "index_bytes": float(_folder_bytes(folder))}, {}

    def _embed_train(self, suite: Suite) -> None:
        """Embeddings of every context task's train inputs, for choosing shots."""
        for t in suite.tasks:
            if t.train and self._gets_context(t):
                self._train_vectors[t.name] = embed([e.input for e in t.train], self.options.embedder)

    def _absorb(self, docs: list[Document], suite: Suite) -> KnowledgeUpdate:
        """Add held-out documents to the live indexes; check their questions now find them."""
        o = self.options
        t0 = time.perf_counter()
        chunks = chunk_corpus(docs, o.chunk_size, o.overlap, o.boundary)
        if self.index is not None:
            self.index.add(embed([c.text for c in chunks], o.embedder), chunks)
        if self.lexical is not None:
            self.lexical.add(chunks)
        wall = time.perf_counter() - t0
        new_ids = {d.id for d in docs}
        items = [e for t in suite.tasks for e in t.test if e.meta.get("doc_id") in new_ids]
        found = [e.meta["doc_id"] in self._retrieve([e.input])[0][0] for e in items]
        recall = sum(found) / len(found) if found else None
        return KnowledgeUpdate(len(docs), wall, "index-add", len(items), recall)

    # ------------------------------------------------------------ prompts: retrieve per question
    def _retrieve(self, queries: list[str], within: Sequence[str | None] | None = None
                  ) -> tuple[list[list[str]], list[list[int]], float]:
        """(doc ids, chunk positions) of the top chunks per query, best first, and seconds per query
        (the model's rerank included). `within[i]`, when given and not None, confines query i to that
        document's chunks."""
        o = self.options
        t0 = time.perf_counter()
        depth = max(o.k, o.depth)
        pool = max(depth, o.rerank_depth) if o.rerank == "model" else depth
        rows = self._first_stage(queries, list(within) if within is not None else [None] * len(queries), pool)
        if o.rerank == "model":
            rows = self._reranked(queries, rows)
        rows = [row[:depth] for row in rows]
        per_query = (time.perf_counter() - t0) / max(1, len(queries))
        return [[self.chunks[i].doc_id for i in row] for row in rows], rows, per_query

    def _first_stage(self, queries: list[str], scopes: list[str | None], n: int) -> list[list[int]]:
        """The top `n` chunk positions per query from the retriever, one search per scope."""
        vectors = embed(queries, self.options.embedder) if self.index is not None else None
        each = max(n, FUSION_CANDIDATES) if self.options.retriever == "hybrid" else n
        rows: list[list[int]] = [[] for _ in queries]
        for doc_id in dict.fromkeys(scopes):  # one search per scope: a document's questions together
            sel = [i for i, s in enumerate(scopes) if s == doc_id]
            positions = None if doc_id is None else [i for i, c in enumerate(self.chunks) if c.doc_id == doc_id]
            ranked: list[list[list[int]]] = []
            if self.index is not None and vectors is not None:
                ranked.append(self._dense(vectors[sel], each, positions))
            if self.lexical is not None:
                ranked.append([[p for p, _ in r] for r in self.lexical.search([queries[i] for i in sel], each,
                                                                             positions)])
            for j, i in enumerate(sel):
                lists = [r[j] for r in ranked]
                rows[i] = (reciprocal_rank_fusion(lists, self.options.rrf_k) if len(lists) > 1 else lists[0])[:n]
        return rows

    def _dense(self, vectors: np.ndarray, n: int, positions: list[int] | None) -> list[list[int]]:
        assert self.index is not None
        if positions is None:
            _, idx = self.index.search(vectors, n)
        else:
            _, idx = self.index.search_within(vectors, n, positions)
        return [[int(p) for p in row if p >= 0] for row in idx]

    def _reranked(self, queries: list[str], rows: list[list[int]]) -> list[list[int]]:
        """The first `rerank_depth` chunks of each row in the model's order, the rest after them."""
        assert self.reranker is not None, "rerank = model: adapt() must run before prompts()"
        n = self.options.rerank_depth
        heads = [[(p, self.chunks[p].text) for p in row[:n]] for row in rows]
        ordered = rerank(self.reranker, queries, heads)
        return [[*top, *row[n:]] for top, row in zip(ordered, rows, strict=True)]

    def _gets_context(self, task: Task) -> bool:
        if task.kind in self.options.kinds:
            return True
        return self.options.evidence_tasks and _has_evidence(task)

    def _scope(self, ex: Example) -> str | None:
        """The document an item's retrieval is confined to, or None for the whole corpus."""
        scope = self.options.scope
        if scope == "corpus" or (scope == "auto" and "evidence_spans" not in ex.meta):
            return None
        doc_id = ex.meta.get("doc_id")
        if not isinstance(doc_id, str) or not doc_id:
            raise HarnessError(f"rag scope={scope}: item {ex.id!r} has no doc_id naming the document it is about")
        return doc_id

    def _shots(self, task: Task, examples: Sequence[Example]) -> list[list[Example]]:
        """The `shots` train items nearest each example by embedding (never the example itself), the
        nearest last, next to the question; none for a task without train items."""
        vectors = self._train_vectors.get(task.name)
        if not self.options.shots or vectors is None:
            return [[] for _ in examples]
        sims = embed([e.input for e in examples], self.options.embedder) @ vectors.T
        out = []
        for ex, row in zip(examples, sims, strict=True):
            near = [task.train[i] for i in row.argsort(kind="stable")[::-1] if task.train[i].id != ex.id]
            out.append(near[: self.options.shots][::-1])
        return out

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        if not examples or not self._gets_context(task):
            return [zero_shot_prompt(task, ex, self.options.system) for ex in examples]
        scopes = [self._scope(ex) for ex in examples]
        docs, positions, per_query = self._retrieve([ex.input for ex in examples], scopes)
        shots = self._shots(task, examples)
        out = []
        for ex, doc_ids, pos, scope, shot in zip(examples, docs, positions, scopes, shots, strict=True):
            chunks = [self.chunks[i] for i in pos[: self.options.k]]
            prompt = (context_prompt(task, ex, [(c.id, c.text) for c in chunks], self.options.system) if chunks
                      else zero_shot_prompt(task, ex, self.options.system))  # BM25 found no word of the question
            if shot:  # the solved examples as earlier turns, then the passages and the question
                prompt = Prompt((*shots_prompt(task, ex, shot, self.options.system).messages[:-1], prompt.messages[-1]))
            meta: dict[str, Any] = {"retrieved": doc_ids, "chunks": [c.id for c in chunks], "retrieval_s": per_query,
                                    "chunk_spans": [[self.chunks[i].start, self.chunks[i].end] for i in pos]}
            if scope is not None:
                meta["scope"] = "document"
            out.append(Prompt(prompt.messages, meta))
        return out


def _has_evidence(task: Task) -> bool:
    """Whether the task's items carry gold evidence spans (character offsets in their document)."""
    return any("evidence_spans" in ex.meta for split in (task.test, task.dev, task.train) for ex in split)


def _folder_bytes(folder: Path) -> int:
    """Bytes a deployment stores: the indexes and their chunks. `meta.json` is the harness's own
    bookkeeping (it holds the build time, so counting it would make the size vary run to run)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and f.name != "meta.json")
