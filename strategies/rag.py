"""Retrieval-augmented generation: the suite's corpus, chunked, embedded and indexed with FAISS;
the top-k chunks go into the prompt, tagged with their ids. Weights are untouched."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from harness.cache import atomic_write_text
from harness.embeddings import DEFAULT_EMBEDDER, embed
from harness.errors import Unsupported
from harness.prompts import DEFAULT_SYSTEM, context_prompt, zero_shot_prompt
from harness.records import AdaptReport, Document, Example, KnowledgeUpdate, Prompt
from harness.retrieval import IndexKind, VectorIndex, chunk_corpus, index_key
from harness.strategy import Adapted, RunContext, StrategyOptions, unchanged_weights
from harness.suites import Suite, Task


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
        kinds: list[str] = Field(["short-answer"], description="Task kinds that get retrieved context.")
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

    # ------------------------------------------------------------ adapt: build or load the index
    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        if not suite.corpus:
            raise Unsupported(f"rag needs a corpus; suite {suite.name!r} declares none")
        docs = sorted(suite.corpus, key=lambda d: d.id)
        n_new = min(self.options.update_docs, len(docs) - 1)
        base_docs, new_docs = docs[: len(docs) - n_new], docs[len(docs) - n_new :]
        self.index, extras = self._index_for(run, base_docs)
        update = self._absorb(new_docs, suite) if new_docs else None
        adapted = unchanged_weights(run)
        report = AdaptReport(total_params=adapted.report.total_params, artifact_bytes=int(extras["index_bytes"]),
                             extras=extras, update=update, notes="index reused from cache"
                             if extras["index_reused"] else "index built")
        return Adapted(adapted.runtime, report)

    def _chunking(self) -> dict[str, Any]:
        o = self.options
        return {"size": o.chunk_size, "overlap": o.overlap, "boundary": o.boundary, "index": o.index,
                "threshold": o.hnsw_threshold}

    def _index_for(self, run: RunContext, docs: list[Document]) -> tuple[VectorIndex, dict[str, float]]:
        folder = run.cache_dir / "rag" / index_key(docs, self._chunking(), self.options.embedder)
        cached = VectorIndex.load(folder)
        if cached is not None:
            meta = json.loads((folder / "meta.json").read_text())
            return cached, {**meta, "index_reused": 1.0, "index_bytes": float(cached.nbytes(folder))}
        o = self.options
        t0 = time.perf_counter()
        chunks = chunk_corpus(docs, o.chunk_size, o.overlap, o.boundary)
        vectors = embed([c.text for c in chunks], o.embedder, run.device)
        index = VectorIndex.build(vectors, chunks, o.index, o.hnsw_threshold)
        meta = {"index_build_s": time.perf_counter() - t0, "index_chunks": float(len(chunks))}
        index.save(folder)
        atomic_write_text(folder / "meta.json", json.dumps(meta))
        return index, {**meta, "index_reused": 0.0, "index_bytes": float(index.nbytes(folder))}

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
    def _retrieve(self, queries: list[str]) -> tuple[list[list[str]], list[list[int]], float]:
        """(doc ids, chunk positions) of the top chunks per query, best first, and seconds per query."""
        assert self.index is not None, "adapt() must run before prompts()"
        t0 = time.perf_counter()
        depth = max(self.options.k, self.options.depth)
        _, idx = self.index.search(embed(queries, self.options.embedder), depth)
        per_query = (time.perf_counter() - t0) / max(1, len(queries))
        positions = [[int(i) for i in row if i >= 0] for row in idx]
        return [[self.index.chunks[i].doc_id for i in row] for row in positions], positions, per_query

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        if task.kind not in self.options.kinds or not examples:
            return [zero_shot_prompt(task, ex, self.options.system) for ex in examples]
        assert self.index is not None
        docs, positions, per_query = self._retrieve([ex.input for ex in examples])
        out = []
        for ex, doc_ids, pos in zip(examples, docs, positions, strict=True):
            chunks = [self.index.chunks[i] for i in pos[: self.options.k]]
            prompt = context_prompt(task, ex, [(c.id, c.text) for c in chunks], self.options.system)
            meta = {"retrieved": doc_ids, "chunks": [c.id for c in chunks], "retrieval_s": per_query}
            out.append(Prompt(prompt.messages, meta))
        return out
