"""Retrieval-augmented generation: the suite's corpus, chunked, embedded and indexed with FAISS;
the top-k chunks go into the prompt, tagged with their ids. Weights are untouched.

Short-answer tasks get retrieved context, and so does any task whose items carry gold
`evidence_spans` (ContractNLI's 3-way classification): the suite then says where the answer lies.
Such an item is a question about one given document (its `doc_id`), so by default its retrieval
is confined to that document's chunks; the harness scores the chunks' character offsets against
the gold spans (see harness.model.retrieval.evidence_recall)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from harness.core.cache import atomic_write_text
from harness.core.errors import HarnessError
from harness.data.kinds import SHORT_ANSWER
from harness.model.embeddings import DEFAULT_EMBEDDER, embed, embed_flops
from harness.model.retrieval import IndexKind, VectorIndex, chunk_corpus, index_key
from harness.strategy import (
    DEFAULT_SYSTEM,
    Adapted,
    AdaptReport,
    Document,
    Example,
    KnowledgeUpdate,
    Prompt,
    RunContext,
    StrategyOptions,
    Suite,
    Task,
    Unsupported,
    context_prompt,
    unchanged_weights,
    zero_shot_prompt,
)


class Rag:
    """Top-k corpus chunks by embedding similarity, placed before the question."""

    name: ClassVar[str] = "rag"
    family: ClassVar[str] = "context"
    description: ClassVar[str] = "Retrieves top-k corpus chunks (sentence-transformers + FAISS) into the prompt."

    class Options(StrategyOptions):
        k: int = Field(3, ge=1, le=50, description="Chunks put in the prompt.")
        depth: int = Field(5, ge=1, le=100, description="Chunks retrieved and scored (recall@depth, MRR).")
        chunk_size: int = Field(120, ge=10, le=4000, description="Words per chunk (about).")
        overlap: int = Field(20, ge=0, description="Words shared by neighbouring chunks.")
        boundary: Literal["sentence", "paragraph"] = Field("sentence", description="Where chunks may end.")
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

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {"k": trial.suggest_int("k", 1, 6),
                "chunk_size": trial.suggest_categorical("chunk_size", [60, 120, 240, 400])}

    # ------------------------------------------------------------ adapt: build or load the index
    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        if not suite.corpus:
            raise Unsupported(f"rag needs a corpus; suite {suite.name!r} declares none")
        docs = sorted(suite.corpus, key=lambda d: d.id)
        n_new = min(self.options.update_docs, len(docs) - 1)
        base_docs, new_docs = docs[: len(docs) - n_new], docs[len(docs) - n_new :]
        self.index, extras, cached = self._index_for(run, base_docs)
        update = self._absorb(new_docs, suite) if new_docs else None
        adapted = unchanged_weights(run)
        report = AdaptReport(total_params=adapted.report.total_params, artifact_bytes=int(extras["index_bytes"]),
                             extras=extras, update=update, cached=cached)
        return Adapted(adapted.runtime, report)

    def _chunking(self) -> dict[str, Any]:
        o = self.options
        return {"size": o.chunk_size, "overlap": o.overlap, "boundary": o.boundary, "index": o.index, "meta": 2,
                "threshold": o.hnsw_threshold}

    def _index_for(self, run: RunContext, docs: list[Document]
                   ) -> tuple[VectorIndex, dict[str, float], dict[str, float]]:
        """The index, its figures (the same whether built now or loaded: build time, chunks, bytes) and
        what the cache saved (provenance: load time, and the build time it did not spend)."""
        folder = run.cache_dir / "rag" / index_key(docs, self._chunking(), self.options.embedder)
        t0 = time.perf_counter()
        cached = VectorIndex.load(folder)
        if cached is not None:
            meta = json.loads((folder / "meta.json").read_text())
            load_s = time.perf_counter() - t0
            saved = {"index_load_s": load_s, "reused_s": max(0.0, meta["index_build_s"] - load_s)}
            return cached, {**meta, "index_bytes": float(cached.nbytes(folder))}, saved
        o = self.options
        t0 = time.perf_counter()
        chunks = chunk_corpus(docs, o.chunk_size, o.overlap, o.boundary)
        vectors = embed([c.text for c in chunks], o.embedder, run.device)
        index = VectorIndex.build(vectors, chunks, o.index, o.hnsw_threshold)
        meta = {"index_build_s": time.perf_counter() - t0, "index_chunks": float(len(chunks)),
                "index_flops": embed_flops([c.text for c in chunks], o.embedder, run.device)}
        index.save(folder)
        atomic_write_text(folder / "meta.json", json.dumps(meta))
        return index, {**meta, "index_bytes": float(index.nbytes(folder))}, {}

    def _absorb(self, docs: list[Document], suite: Suite) -> KnowledgeUpdate:
        """Add held-out documents to the live index; check their questions now find them."""
        assert self.index is not None
        o = self.options
        t0 = time.perf_counter()
        chunks = chunk_corpus(docs, o.chunk_size, o.overlap, o.boundary)
        self.index.add(embed([c.text for c in chunks], o.embedder), chunks)
        wall = time.perf_counter() - t0
        new_ids = {d.id for d in docs}
        items = [e for t in suite.tasks for e in t.test if e.meta.get("doc_id") in new_ids]
        found = [e.meta["doc_id"] in self._retrieve([e.input])[0][0] for e in items]
        recall = sum(found) / len(found) if found else None
        return KnowledgeUpdate(len(docs), wall, "index-add", len(items), recall)

    # ------------------------------------------------------------ prompts: retrieve per question
    def _retrieve(self, queries: list[str], within: Sequence[str | None] | None = None
                  ) -> tuple[list[list[str]], list[list[int]], float]:
        """(doc ids, chunk positions) of the top chunks per query, best first, and seconds per query.
        `within[i]`, when given and not None, confines query i to that document's chunks."""
        assert self.index is not None, "adapt() must run before prompts()"
        t0 = time.perf_counter()
        depth = max(self.options.k, self.options.depth)
        vectors = embed(queries, self.options.embedder)
        scopes = list(within) if within is not None else [None] * len(queries)
        rows: list[list[int]] = [[] for _ in queries]
        for doc_id in dict.fromkeys(scopes):  # one search per scope: a document's questions together
            sel = [i for i, s in enumerate(scopes) if s == doc_id]
            if doc_id is None:
                _, idx = self.index.search(vectors[sel], depth)
            else:
                _, idx = self.index.search_within(vectors[sel], depth, self.index.positions_of(doc_id))
            for i, row in zip(sel, idx, strict=True):
                rows[i] = [int(p) for p in row if p >= 0]
        per_query = (time.perf_counter() - t0) / max(1, len(queries))
        return [[self.index.chunks[i].doc_id for i in row] for row in rows], rows, per_query

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

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        if not examples or not self._gets_context(task):
            return [zero_shot_prompt(task, ex, self.options.system) for ex in examples]
        assert self.index is not None
        scopes = [self._scope(ex) for ex in examples]
        docs, positions, per_query = self._retrieve([ex.input for ex in examples], scopes)
        out = []
        for ex, doc_ids, pos, scope in zip(examples, docs, positions, scopes, strict=True):
            chunks = [self.index.chunks[i] for i in pos[: self.options.k]]
            prompt = context_prompt(task, ex, [(c.id, c.text) for c in chunks], self.options.system)
            meta: dict[str, Any] = {"retrieved": doc_ids, "chunks": [c.id for c in chunks], "retrieval_s": per_query,
                                    "chunk_spans": [[self.index.chunks[i].start, self.index.chunks[i].end]
                                                    for i in pos]}
            if scope is not None:
                meta["scope"] = "document"
            out.append(Prompt(prompt.messages, meta))
        return out


def _has_evidence(task: Task) -> bool:
    """Whether the task's items carry gold evidence spans (character offsets in their document)."""
    return any("evidence_spans" in ex.meta for split in (task.test, task.dev, task.train) for ex in split)
