import itertools

import numpy as np
import pytest

from harness.core.records import Document
from harness.model.retrieval import VectorIndex, chunk_corpus, chunk_document, index_key

TEXT = ("Section 1. A permit costs 740 marks. It lasts one season. "
        "Section 2. The harbour master answers within 9 days. Appeals go to the Harbour Tribunal. "
        "Section 3. Fees are paid in advance.")


def test_chunks_end_on_sentences_and_cover_the_document():
    doc = Document("d", "t", TEXT)
    chunks = chunk_document(doc, size=12, overlap=0)
    assert len(chunks) > 1
    for c in chunks:
        assert c.text == TEXT[c.start : c.end]
        assert c.text.rstrip().endswith((".", "!", "?", ":", ";"))
        assert len(c.text.split()) <= 12
    assert " ".join(c.text for c in chunks).split() == TEXT.split()  # no overlap: every word once
    assert [c.id for c in chunks] == [f"d#{i}" for i in range(len(chunks))]


def test_overlap_repeats_trailing_sentences():
    chunks = chunk_document(Document("d", "t", TEXT), size=14, overlap=6)
    assert any(a.end > b.start for a, b in itertools.pairwise(chunks))
    assert chunks[-1].end == len(TEXT)


def test_empty_short_long_and_unicode_documents():
    assert chunk_document(Document("e", "t", "   \n\n  ")) == []
    [short] = chunk_document(Document("s", "t", "Only one line."), size=50)
    assert short.text == "Only one line."
    long_sentence = " ".join(f"w{i}" for i in range(25))
    pieces = chunk_document(Document("l", "t", long_sentence), size=10, overlap=0)
    assert [len(p.text.split()) for p in pieces] == [10, 10, 5]
    uni = "Der Vertrag endet nach 30 Tagen. Le délai est de 14 jours. 契約は東京で締結される。"
    chunks = chunk_document(Document("u", "t", uni), size=6, overlap=0)
    assert all(c.text == uni[c.start : c.end] for c in chunks)
    assert "délai" in " ".join(c.text for c in chunks)


def test_paragraph_boundary_keeps_paragraphs_whole():
    text = "First paragraph one. Two.\n\nSecond paragraph here.\n\nThird."
    chunks = chunk_document(Document("p", "t", text), size=4, overlap=0, boundary="paragraph")
    # paragraphs are packed up to 4 words, never cut at a sentence inside a paragraph
    assert [c.text for c in chunks] == ["First paragraph one. Two.", "Second paragraph here.\n\nThird."]


def test_bad_chunk_options_raise():
    with pytest.raises(ValueError):
        chunk_document(Document("d", "t", TEXT), size=5, overlap=5)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_index_finds_exact_vectors_and_round_trips(kind, tmp_path):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(300, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = chunk_corpus([Document(f"d{i}", "t", f"Doc {i}.") for i in range(300)], 10, 0, "sentence")
    index = VectorIndex.build(vecs, chunks, kind)
    _, idx = index.search(vecs[:20], 1)
    hits = sum(int(i[0]) == q for q, i in enumerate(idx))
    assert hits >= (20 if kind == "flat" else 17)
    index.save(tmp_path)
    again = VectorIndex.load(tmp_path)
    assert again is not None and len(again.chunks) == 300
    assert np.array_equal(again.search(vecs[:5], 3)[1], index.search(vecs[:5], 3)[1])
    stored = (tmp_path / "index.faiss").stat().st_size + (tmp_path / "chunks.json").stat().st_size
    (tmp_path / "meta.json").write_text('{"index_build_s": 0.123456789}')  # bookkeeping with a timing in it
    assert index.nbytes(tmp_path) == stored  # the size is the deployable files', the same on every run


def test_index_key_changes_with_documents_options_and_embedder():
    docs = [Document("a", "t", "x"), Document("b", "t", "y")]
    key = index_key(docs, {"size": 10}, "e")
    assert key == index_key(list(docs), {"size": 10}, "e")
    assert key != index_key([docs[0], Document("b", "t", "y2")], {"size": 10}, "e")
    assert key != index_key(docs, {"size": 11}, "e")
    assert key != index_key(docs, {"size": 10}, "f")
