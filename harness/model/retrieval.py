"""Retrieval over a suite's corpus: chunking, embedding, a FAISS index cached on disk, and metrics.

Chunks follow sentence or paragraph boundaries and hold about `size` words, with `overlap` words
repeated between neighbours. The index is exact (flat inner product on normalized vectors) for
small corpora and HNSW or IVF above a size threshold. An index is cached under a key that hashes
the documents, the chunking options and the embedder, and is rebuilt only when one changes.
Indexes are saved with FAISS's own format and chunks as JSON: nothing is ever unpickled.

Evidence recall scores retrieval against gold character spans (ContractNLI's evidence): a gold
span is *found* when a retrieved chunk of the same document shares at least one character with
it (half-open offsets: [s, e) and [cs, ce) overlap when max(s, cs) < min(e, ce)), and *covered*
when every one of its characters lies inside the union of the retrieved chunks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.core.cache import atomic_write_text, stable_hash
from harness.core.records import Document

Boundary = Literal["sentence", "paragraph"]
IndexKind = Literal["auto", "flat", "hnsw", "ivf"]
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n\s*\n")
_PARAGRAPH_END = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Chunk:
    id: str
    """`<doc_id>#<n>`"""
    doc_id: str
    text: str
    start: int
    """Character offsets in the document."""
    end: int


def _units(text: str, boundary: Boundary) -> list[tuple[int, int]]:
    """Character spans of sentences or paragraphs, without surrounding whitespace."""
    pattern = _SENTENCE_END if boundary == "sentence" else _PARAGRAPH_END
    spans, pos = [], 0
    for m in [*pattern.finditer(text), None]:
        end = m.start() if m else len(text)
        piece = text[pos:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((pos + lead, pos + len(piece.rstrip())))
        pos = m.end() if m else len(text)
    return spans


def _split_long(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Cut one over-long unit into pieces of at most `size` words."""
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    return [(words[i][0], words[min(i + size, len(words)) - 1][1]) for i in range(0, len(words), size)]


def _words(text: str, span: tuple[int, int]) -> int:
    return len(text[span[0] : span[1]].split())


def chunk_document(doc: Document, size: int = 120, overlap: int = 20,
                   boundary: Boundary = "sentence") -> list[Chunk]:
    """Chunks of about `size` words on `boundary`s; neighbours share about `overlap` words."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError("need size >= 1 and 0 <= overlap < size")
    text = doc.text
    units: list[tuple[int, int]] = []
    for s, e in _units(text, boundary):
        units += _split_long(text, s, e, size) if _words(text, (s, e)) > size else [(s, e)]
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, n = i, 0
        while j < len(units) and (n == 0 or n + _words(text, units[j]) <= size):
            n += _words(text, units[j])
            j += 1
        start, end = units[i][0], units[j - 1][1]
        chunks.append(Chunk(f"{doc.id}#{len(chunks)}", doc.id, text[start:end], start, end))
        if j >= len(units):
            break
        back, kept = j, 0  # step back over trailing units worth `overlap` words
        while back - 1 > i and kept + _words(text, units[back - 1]) <= overlap:
            back -= 1
            kept += _words(text, units[back])
        i = back
    return chunks


def chunk_corpus(docs: Sequence[Document], size: int, overlap: int, boundary: Boundary) -> list[Chunk]:
    return [c for d in docs for c in chunk_document(d, size, overlap, boundary)]


# ---------------------------------------------------------------- index
def _faiss_index(vectors: np.ndarray, kind: IndexKind, threshold: int) -> Any:
    import faiss

    n, dim = vectors.shape
    index: Any
    if kind == "auto":
        kind = "flat" if n < threshold else "hnsw"
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
    else:
        nlist = max(1, int(4 * np.sqrt(n)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = max(1, nlist // 8)
    index.add(vectors)
    return index


class VectorIndex:
    """Chunks and their FAISS index; `search` returns chunk positions and scores."""

    def __init__(self, index: Any, chunks: list[Chunk]):
        self.index = index
        self.chunks = chunks

    @classmethod
    def build(cls, vectors: np.ndarray, chunks: list[Chunk], kind: IndexKind = "auto",
              threshold: int = 50_000) -> VectorIndex:
        return cls(_faiss_index(np.ascontiguousarray(vectors, dtype=np.float32), kind, threshold), chunks)

    def add(self, vectors: np.ndarray, chunks: list[Chunk]) -> None:
        """Incremental update: new chunks become searchable without rebuilding."""
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.chunks += chunks

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, idx = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, idx

    def positions_of(self, doc_id: str) -> list[int]:
        """Index positions of one document's chunks."""
        return [i for i, c in enumerate(self.chunks) if c.doc_id == doc_id]

    def search_within(self, queries: np.ndarray, k: int, positions: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Like `search`, but only among the chunks at `positions` (one document's, say): FAISS's
        ID selector, so the ranking is the index's own; -1 pads rows when fewer chunks exist."""
        import faiss as faiss_module

        faiss: Any = faiss_module  # its type stubs lack the search-parameter classes
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if not positions:
            return np.full((len(q), k), -np.inf, dtype=np.float32), np.full((len(q), k), -1, dtype=np.int64)
        selector = faiss.IDSelectorBatch(np.asarray(positions, dtype=np.int64))
        params: Any
        if isinstance(self.index, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.index.hnsw.efSearch, k))
        elif isinstance(self.index, faiss.IndexIVF):
            params = faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nlist)  # every list: ids are few
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, idx = self.index.search(q, k, params=params)
        return scores, idx

    def save(self, folder: Path) -> None:
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / "index.faiss.tmp"))
        (folder / "index.faiss.tmp").replace(folder / "index.faiss")
        atomic_write_text(folder / "chunks.json", json.dumps([asdict(c) for c in self.chunks]))

    @classmethod
    def load(cls, folder: Path) -> VectorIndex | None:
        import faiss

        if not (folder / "index.faiss").is_file() or not (folder / "chunks.json").is_file():
            return None
        chunks = [Chunk(**c) for c in json.loads((folder / "chunks.json").read_text())]
        index = faiss.read_index(str(folder / "index.faiss"))
        return cls(index, chunks) if index.ntotal == len(chunks) else None

    def nbytes(self, folder: Path) -> int:
        """Bytes a deployment stores: the index and its chunks. `meta.json` is the harness's own
        bookkeeping (it holds the build time, so counting it would make the size vary run to run)."""
        return sum(f.stat().st_size for f in folder.iterdir() if f.is_file() and f.name != "meta.json")


# ---------------------------------------------------------------- evidence recall
Span = tuple[int, int]


def spans_overlap(a: Span, b: Span) -> bool:
    """At least one character in common (half-open offsets)."""
    return max(a[0], b[0]) < min(a[1], b[1])


def _merged(spans: Sequence[Span]) -> list[Span]:
    out: list[Span] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def span_covered(span: Span, retrieved: Sequence[Span]) -> bool:
    """Every character of `span` lies inside the union of the `retrieved` spans."""
    return any(s <= span[0] and span[1] <= e for s, e in _merged(retrieved))


def evidence_recall(gold: Sequence[Span], retrieved: Sequence[Span]) -> tuple[float, float] | None:
    """(share of gold spans overlapped by a retrieved span, share fully covered by the retrieved
    spans' union); both spans lists index the same document. None when there is no non-empty gold
    span to find (ContractNLI's NotMentioned items have none)."""
    spans = [(int(s), int(e)) for s, e in gold if int(e) > int(s)]
    if not spans:
        return None
    found = sum(any(spans_overlap(g, r) for r in retrieved) for g in spans)
    covered = sum(span_covered(g, retrieved) for g in spans)
    return found / len(spans), covered / len(spans)


def index_key(docs: Sequence[Document], options: dict[str, Any], embedder: str) -> str:
    """Cache key: every document's id and text, the chunking and index options, the embedder."""
    return stable_hash({"docs": [(d.id, d.text) for d in docs], "options": options, "embedder": embedder}, 24)
