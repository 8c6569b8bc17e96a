"""The built-in legal-qa suite keeps the promises its README makes."""

from collections import Counter

import pytest

from harness.data.catalog import load_suite


@pytest.fixture(scope="module")
def suite():
    return load_suite("legal-qa")


def test_corpus_is_at_least_30_documents_of_300_to_800_words(suite):
    assert len(suite.corpus) >= 30
    for doc in suite.corpus:
        assert 300 <= len(doc.text.split()) <= 800, doc.id


def test_every_evidence_is_in_its_document_and_contains_the_answer(suite):
    docs = {d.id: d.text for d in suite.corpus}
    qa = suite.task("statute-qa")
    for ex in (*qa.train, *qa.dev, *qa.test):
        assert ex.meta["doc_id"] in docs, ex.id
        assert ex.meta["evidence"] in docs[ex.meta["doc_id"]], ex.id
        assert ex.target in ex.meta["evidence"], ex.id


def test_coverage_tags_match_the_train_split(suite):
    qa = suite.task("statute-qa")
    train_facts = {e.meta["fact_id"]: e.input for e in qa.train}
    for ex in (*qa.dev, *qa.test):
        fact = ex.meta["fact_id"]
        if ex.meta["coverage"] == "seen":
            assert fact in train_facts and train_facts[fact] != ex.input, ex.id  # taught, worded differently
        else:
            assert ex.meta["coverage"] == "unseen" and fact not in train_facts, ex.id
    tags = Counter(e.meta["coverage"] for e in qa.test)
    assert tags["seen"] >= 10 and tags["unseen"] >= 10


def test_splits_are_about_60_15_25_and_clause_labels_stratified(suite):
    total = sum(len(t.train) + len(t.dev) + len(t.test) for t in suite.tasks)
    assert total >= 300
    for t in suite.tasks:
        n = len(t.train) + len(t.dev) + len(t.test)
        assert 0.5 <= len(t.train) / n <= 0.7 and 0.1 <= len(t.dev) / n <= 0.2 and 0.2 <= len(t.test) / n <= 0.3
    ct = suite.task("clause-type")
    for split in (ct.train, ct.dev, ct.test):
        counts = Counter(e.target for e in split)
        assert set(counts) == set(ct.labels) and max(counts.values()) == min(counts.values())


def test_test_questions_are_not_copied_from_train(suite):
    qa = suite.task("statute-qa")
    assert not {e.input for e in qa.train} & {e.input for e in qa.test}
