"""Hygiene checks: planted leaks of every kind are all caught, and nothing else is flagged."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.data import hygiene
from harness.data.catalog import load_suite
from harness.data.hygiene import HygieneOptions, check, drop_duplicates, normalize
from harness.data.suites import load_suite_dir

VOCABULARY = (
    "tenant landlord deposit notice crowns tribunal permit licence supplier buyer invoice penalty clause "
    "agreement party termination liability assignment governing court appeal fee interest month year "
    "registry minister inspector harbour freight vessel cargo warranty indemnity lease premises repair "
    "arbitration seat damages breach remedy cure period consent transfer successor waiver severance "
    "schedule annex recital covenant guarantor surety escrow royalty licensor licensee territory exclusive "
    "renewal expiry audit records books accounts auditor dispute mediation expert valuation price index"
)
WORDS = tuple(VOCABULARY.split())


def sentence(rng: random.Random, n: int = 40) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return f"Under the Velorian code, {' '.join(words)}?"


def write_suite(root: Path, tasks: dict[str, dict[str, list[dict]]], corpus: dict[str, str] | None = None,
                kind: str = "short-answer") -> Path:
    """A suite folder with one task per entry (kind short-answer unless told), splits as given."""
    lines = ['name = "planted"', 'license = "written for these tests"']
    if corpus:
        lines.append('corpus = "corpus/"')
        (root / "corpus").mkdir(parents=True)
        for doc_id, text in corpus.items():
            (root / "corpus" / f"{doc_id}.txt").write_text(text)
    for name, splits in tasks.items():
        (root / name).mkdir(parents=True)
        for split, items in splits.items():
            (root / name / f"{split}.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
        paths = ", ".join(f'{s} = "{name}/{s}.jsonl"' for s in splits)
        lines += [f"[tasks.{name}]", f'kind = "{kind}"', f"splits = {{ {paths} }}"]
    (root / "suite.toml").write_text("\n".join(lines) + "\n")
    return root


def qa(item_id: str, question: str, answer: str, **meta) -> dict:
    return {"id": item_id, "question": question, "answer": answer, **meta}


def garble(text: str) -> str:
    """The same words after normalization: other case, punctuation and spacing."""
    return "  " + text.upper().replace(" ", " ,  ").replace("?", " ...") + " !"


def edit_one_word(text: str, rng: random.Random) -> str:
    words = text.split()
    i = rng.randrange(10, len(words) - 10)
    words[i] = "zymurgy"  # not in WORDS
    return " ".join(words)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, dict[str, set[str]]]:
    """100 train items; a test split with 20 planted leaks of each kind and 40 clean items; a corpus
    of 20 FAQ pages (question and answer together), and pages holding only answers or only questions."""
    rng = random.Random(0)
    train = [qa(f"tr-{i:03d}", sentence(rng), f"{rng.randint(2, 99)} crowns") for i in range(100)]
    test: list[dict] = []
    planted: dict[str, set[str]] = {k: set() for k in ("exact", "normalized", "near", "corpus")}
    for i in range(20):
        test.append(qa(f"ex-{i}", train[i]["question"], train[i]["answer"]))
        test.append(qa(f"no-{i}", garble(train[20 + i]["question"]), train[20 + i]["answer"]))
        test.append(qa(f"nd-{i}", edit_one_word(train[40 + i]["question"], rng), train[40 + i]["answer"]))
        planted["exact"].add(f"ex-{i}")
        planted["normalized"].add(f"no-{i}")
        planted["near"].add(f"nd-{i}")
    corpus = {}
    filler = " ".join(rng.choice(WORDS) for _ in range(300)) + "."
    for i in range(20):
        item = qa(f"co-{i}", sentence(rng), f"{100 + i} crowns")
        test.append(item)
        planted["corpus"].add(item["id"])
        corpus[f"faq-{i}"] = f"Questions asked.\n{filler}\nQ: {item['question']}\nA: {item['answer']}.\n{filler}"
    for i in range(40):
        item = qa(f"ok-{i}", sentence(rng), f"{200 + i} crowns")
        test.append(item)
        if i < 10:  # the answer alone, as retrieval expects: not a leak
            corpus[f"statute-{i}"] = f"{filler} The fee is {item['answer']} per vessel. {filler}"
        elif i < 20:  # the question, but its answer far away: not a leak
            corpus[f"far-{i}"] = f"{item['question']} {filler} {filler} {filler} {filler} {item['answer']}."
    root = write_suite(tmp_path_factory.mktemp("planted"), {"qa": {"train": train, "test": test}}, corpus)
    return root, planted


def test_planted_leaks_are_caught_20_of_20_and_nothing_else(planted):
    root, expected = planted
    report = check(load_suite_dir(root))
    found = {kind: {i for f in report.findings if f.kind == kind for i in f.ids} for kind in hygiene.LEAK_KINDS}
    assert found[hygiene.OVERLAP_EXACT] == expected["exact"]
    assert found[hygiene.OVERLAP_NORMALIZED] == expected["normalized"]
    assert found[hygiene.OVERLAP_NEAR] == expected["near"]
    assert found[hygiene.CORPUS_LEAK] == expected["corpus"]
    assert [f.kind for f in report.findings] == list(hygiene.LEAK_KINDS)  # no duplicates, no field problems


def test_findings_name_what_each_item_matched(planted):
    root, _ = planted
    report = check(load_suite_dir(root))
    by_kind = {f.kind: dict(zip(f.ids, f.matched, strict=True)) for f in report.findings}
    assert by_kind[hygiene.OVERLAP_EXACT]["ex-3"] == "tr-003"
    assert by_kind[hygiene.OVERLAP_NORMALIZED]["no-3"] == "tr-023"
    assert by_kind[hygiene.OVERLAP_NEAR]["nd-3"] == "tr-043"
    assert by_kind[hygiene.CORPUS_LEAK]["co-3"] == "faq-3"


def test_leaks_above_the_threshold_raise_and_can_be_tuned(planted):
    root, _ = planted
    suite = load_suite_dir(root)
    report = check(suite)
    (leaks,) = report.leaks
    assert (len(leaks.copies), len(leaks.near), leaks.test_items) == (60, 20, 120)
    with pytest.raises(HarnessError, match=r"60 of 120 test items \(50.0%\).*20 of 120"):
        report.raise_for_leaks()
    check(suite, HygieneOptions(leak_rate=0.5, near_leak_rate=0.2)).raise_for_leaks()  # at the limit: passes


def test_near_duplicate_threshold_is_a_parameter(planted):
    root, _ = planted
    suite = load_suite_dir(root)
    assert check(suite, HygieneOptions(near_containment=1.0)).count(hygiene.OVERLAP_NEAR) == 0
    # 13-grams: one edited word removes 13 of the 32 grams; containment 0.59 still passes 0.5
    assert check(suite, HygieneOptions(ngram=13, near_containment=0.5)).count(hygiene.OVERLAP_NEAR) == 20


def test_corpus_window_is_a_parameter(planted):
    root, _ = planted
    wide = check(load_suite_dir(root), HygieneOptions(corpus_window=100_000))
    assert wide.count(hygiene.CORPUS_LEAK) == 30  # the 10 far-away answers now count too


def test_legal_qa_has_no_leaks_though_its_corpus_holds_every_answer():
    suite = load_suite("legal-qa", dedupe=False)
    report = check(suite)
    assert report.findings == ()
    assert all(not t.copies and not t.near for t in report.leaks)
    # the check is not vacuous: the answers are in the corpus, the questions are not
    docs = {d.id: normalize(d.text) for d in suite.corpus}
    qa_task = suite.task("statute-qa")
    with_answer = [ex for ex in qa_task.test if normalize(ex.target) in docs[ex.meta["doc_id"]]]
    assert len(with_answer) >= len(qa_task.test) // 2


def test_a_faq_page_added_to_legal_qa_is_caught(tmp_path):
    root = shutil.copytree(load_suite("legal-qa").root, tmp_path / "legal-qa")
    test = load_suite_dir(root).task("statute-qa").test[:3]
    faq = "\n\n".join(f"{ex.input}\n{ex.target}" for ex in test)
    (root / "corpus" / "faq.md").write_text(f"# Frequently asked questions\n\n{faq}\n")
    found = [f for f in check(load_suite_dir(root)).findings if f.kind == hygiene.CORPUS_LEAK]
    assert [set(f.ids) for f in found] == [{ex.id for ex in test}]
    assert set(found[0].matched) == {"faq"}


def test_duplicates_inside_a_split_are_counted_and_dropped_keeping_the_first(tmp_path):
    items = [
        {"id": "a", "text": "The Buyer shall pay within 30 days.", "label": "payment"},
        {"id": "b", "text": "The Buyer shall pay within 30 days.", "label": "payment"},  # exact
        {"id": "c", "text": "the buyer shall pay, within 30 days", "label": "payment"},  # normalized
        {"id": "d", "text": "THE BUYER SHALL PAY WITHIN 30 DAYS!", "label": "termination"},  # conflicting
        {"id": "e", "text": "Either party may terminate on notice.", "label": "termination"},
    ]
    root = write_suite(tmp_path / "s", {"clauses": {"test": items}}, kind="classification")
    toml = root / "suite.toml"
    toml.write_text(toml.read_text().replace('kind = "classification"',
                                             'kind = "classification"\nlabels = ["payment", "termination"]'))
    suite = load_suite_dir(root)
    report = check(suite)
    assert {f.kind: f.ids for f in report.findings} == {
        hygiene.DUPLICATE: ("b",), hygiene.NORMALIZED_DUPLICATE: ("c",), hygiene.CONFLICTING: ("d",)}
    deduped = drop_duplicates(suite)
    assert [ex.id for ex in deduped.task("clauses").test] == ["a", "d", "e"]
    assert deduped.notes == ("clauses test: dropped 2 duplicate items of 5 (kept the first of each)",)
    assert [ex.id for ex in load_suite(str(root)).task("clauses").test] == ["a", "d", "e"]  # what compare uses
    assert report.balance[0].counts == (("payment", 3), ("termination", 2))


def test_same_text_about_another_document_is_a_different_item(tmp_path):
    hyp = "Hypothesis: Receiving Party may share Confidential Information with its employees."
    train = [{"id": "d1-h", "text": hyp, "label": "yes", "doc_id": "d1"}]
    test = [{"id": "d2-h", "text": hyp, "label": "no", "doc_id": "d2"},
            {"id": "d3-h", "text": hyp, "label": "yes", "doc_id": "d3"}]
    root = write_suite(tmp_path / "s", {"nli": {"train": train, "test": test}}, kind="classification")
    toml = root / "suite.toml"
    toml.write_text(toml.read_text().replace('kind = "classification"',
                                             'kind = "classification"\nlabels = ["yes", "no"]'))
    assert check(load_suite_dir(root)).findings == ()


def test_multiple_choice_items_differ_by_their_options(tmp_path):
    q = "Which of the following is a remedy for breach of contract?"
    train = [{"id": "t1", "question": q, "choices": ["Damages", "A fine", "Prison", "A tax"], "answer": "Damages"}]
    test = [{"id": "x1", "question": q, "choices": ["A fine", "Rescission", "Prison", "A tax"], "answer": "Rescission"},
            {"id": "x2", "question": q, "choices": ["Damages", "A fine", "Prison", "A tax"], "answer": "Damages"}]
    report = check(load_suite_dir(write_suite(tmp_path / "s", {"mc": {"train": train, "test": test}},
                                              kind="multiple-choice")))
    assert [(f.kind, f.ids) for f in report.findings] == [(hygiene.OVERLAP_EXACT, ("x2",))]
    assert report.balance[-1].counts == (("A", 1), ("B", 1))


def test_blank_and_over_long_fields_are_reported(tmp_path):
    test = [qa("q1", "What is the fee?", "   "), qa("q2", "Why? " * 50, "Because."), qa("q3", "Who pays?", "Buyer")]
    report = check(load_suite_dir(write_suite(tmp_path / "s", {"qa": {"test": test}})), HygieneOptions(max_chars=100))
    assert {f.kind: (f.ids, f.matched) for f in report.findings} == {
        hygiene.EMPTY_FIELD: (("q1",), ("answer",)), hygiene.LONG_FIELD: (("q2",), ("question",))}


def test_normalize():
    assert normalize("  The “Buyer”, shall PAY!\n\t30 days_ ") == "the buyer shall pay 30 days"
