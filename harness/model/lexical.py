"""Lexical retrieval: BM25 over chunks (bm25s), beside the dense index of harness.model.retrieval.

Chunks and queries are tokenized the same way (lowercased words of two or more characters, English
stopwords removed, PyStemmer's English stemmer): an unstemmed query against a stemmed index would
silently miss words. Scoring is bm25s's default (Lucene's BM25, k1 = 1.5, b = 0.75). A chunk that
shares no word with the query scores 0 and is never returned (bm25s itself would pad the top k
with such chunks), so a search may return fewer than k chunks; ties go to the earlier chunk.

BM25's weights depend on the whole collection (document frequencies, mean length), so adding
documents rebuilds the index over every chunk (milliseconds at corpus sizes a suite has). The index
is saved in bm25s's own format (JSON and numpy arrays, loaded with pickling off) beside its chunks
as JSON, and loaded only from the harness's cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.cache import atomic_write_text
from harness.model.retrieval import Chunk

SETTINGS = {"method": "lucene", "k1": 1.5, "b": 0.75, "stopwords": "en", "stemmer": "english", "version": 1}
"""Everything that changes a BM25 ranking (part of the cache key of an index built with it)."""


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer(SETTINGS["stemmer"])


def tokenize(texts: Sequence[str], stemmer: Any = None) -> list[list[str]]:
    """Each text's BM25 terms: lowercased words of 2+ characters, no English stopwords, stemmed."""
    import bm25s

    out = bm25s.tokenize(list(texts), stopwords=SETTINGS["stopwords"], stemmer=stemmer or _stemmer(),
                         return_ids=False, show_progress=False)
    return [list(t) for t in out]


class LexicalIndex:
    """BM25 over `chunks`; `search` returns (chunk positions, scores) with scores above 0, best first."""

    def __init__(self, retriever: Any, chunks: list[Chunk]):
        self.retriever = retriever
        self.chunks = list(chunks)  # its own list: a dense index of the same chunks appends to its own
        self._stem = _stemmer()

    @staticmethod
    def _fit(texts: Sequence[str], stemmer: Any) -> Any:
        import bm25s

        retriever = bm25s.BM25(method=SETTINGS["method"], k1=SETTINGS["k1"], b=SETTINGS["b"])
        retriever.index(tokenize(texts, stemmer), show_progress=False)
        return retriever

    @classmethod
    def build(cls, chunks: Sequence[Chunk]) -> LexicalIndex:
        return cls(cls._fit([c.text for c in chunks], _stemmer()), list(chunks))

    def add(self, chunks: Sequence[Chunk]) -> None:
        """Knowledge update: the new chunks become searchable (the collection statistics change, so
        the index is rebuilt over every chunk)."""
        self.chunks += list(chunks)
        self.retriever = self._fit([c.text for c in self.chunks], self._stem)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for `query` (0 where they share no term)."""
        ids = self.retriever.get_tokens_ids(tokenize([query], self._stem)[0])
        if not ids:
            return np.zeros(len(self.chunks), dtype=np.float32)
        return np.asarray(self.retriever.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, queries: Sequence[str], k: int, positions: Sequence[int] | None = None
               ) -> list[list[tuple[int, float]]]:
        """The top `k` (position, score) per query with a score above 0, best first; with `positions`,
        only among the chunks at those positions (one document's, say)."""
        allowed = None if positions is None else np.asarray(sorted(set(positions)), dtype=np.int64)
        out = []
        for q in queries:
            scores = self.scores(q)
            cand = np.arange(len(scores)) if allowed is None else allowed
            cand = cand[scores[cand] > 0]
            order = cand[np.lexsort((cand, -scores[cand]))][: max(0, k)]  # by score, ties to the earlier chunk
            out.append([(int(i), float(scores[i])) for i in order])
        return out

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(folder / "bm25"), show_progress=False)
        atomic_write_text(folder / "chunks.json", json.dumps([asdict(c) for c in self.chunks]))

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex | None:
        """The index saved in `folder` (a harness cache folder), or None when absent or inconsistent."""
        import bm25s

        if not (folder / "bm25" / "params.index.json").is_file() or not (folder / "chunks.json").is_file():
            return None
        chunks = [Chunk(**c) for c in json.loads((folder / "chunks.json").read_text())]
        retriever = bm25s.BM25.load(str(folder / "bm25"), allow_pickle=False, show_progress=False)
        return cls(retriever, chunks) if retriever.scores.get("num_docs") == len(chunks) else None
