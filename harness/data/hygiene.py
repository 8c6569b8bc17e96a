"""Data hygiene: the mistakes in a suite that inflate scores, found before anything runs.

`check(suite)` looks at a loaded `Suite` and returns a `HygieneReport` of findings:

- duplicates inside a split: exact, and after normalization (lowercase, punctuation and
  whitespace stripped); and texts that repeat with a different answer;
- overlap of test with train and with dev: exact, normalized, and near-duplicates (word n-gram
  containment, see `HygieneOptions`);
- corpus-to-test leakage: a test question together with its answer in one window of a corpus
  document (see `CorpusIndex`);
- label balance per split, and empty or over-long fields.

What makes two items "the same question": the input text (for multiple choice, the question and
its options), within the same `doc_id` when items have one. ContractNLI asks the same 17 hypotheses
of every contract; those are different items, not duplicates.

`HygieneReport.raise_for_leaks` turns a leak share above `leak_rate` into a HarnessError, and
`drop_duplicates` is what `load_suite` (the path `compare` uses) applies: in each split, the
first of each set of duplicates is kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from harness.core.errors import HarnessError
from harness.core.records import Example
from harness.data.kinds import TaskKind
from harness.data.overlap import CorpusIndex, ItemKey, NgramIndex, normalize, scan_duplicates
from harness.data.suites import SPLITS, Suite, Task

_NON_WORD = re.compile(r"[\W_]+")

DUPLICATE = "duplicate"
NORMALIZED_DUPLICATE = "normalized-duplicate"
CONFLICTING = "conflicting-answers"
OVERLAP_EXACT = "overlap-exact"
OVERLAP_NORMALIZED = "overlap-normalized"
OVERLAP_NEAR = "overlap-near"
CORPUS_LEAK = "corpus-leak"
EMPTY_FIELD = "empty-field"
LONG_FIELD = "long-field"
LEAK_KINDS = (OVERLAP_EXACT, OVERLAP_NORMALIZED, OVERLAP_NEAR, CORPUS_LEAK)

@dataclass(frozen=True)
class HygieneOptions:
    """Thresholds of the checks.

    Near-duplicates: a test item is a near-duplicate of a train (or dev) item when at least
    `near_containment` of the test item's word `ngram`-grams occur in that one item (8-grams, 0.7,
    as in PaLM's contamination study). Containment rather than Jaccard because it is asymmetric: a
    test clause pasted inside a longer train clause still scores 1.0, where Jaccard is diluted by
    the length difference. 8-grams rather than 3-grams because legal text is formulaic ("the laws
    of the", "shall not be"): 3-grams are shared by unrelated clauses, a run of eight words rarely
    is. One edited word removes at most eight n-grams, so a 35-word item with one edit stays above
    0.7. Measured on the real files: at 0.5, 48 of MMLU moral_scenarios' 100 val items matched a
    dev item through their long shared stem alone; at 0.7 none do, while governing-law clauses
    that differ from a few-shot example only in the state named still match. Items shorter than
    `ngram` words are compared exactly and normalized only.

    Leak thresholds, per task, as a share of its test items: `leak_rate` for copies (exact or
    normalized in train or dev, or question and answer in the corpus), `near_leak_rate` for
    near-duplicates, looser because templates (boilerplate clauses, one stem for many questions)
    match too.
    """

    ngram: int = 8
    near_containment: float = 0.7
    corpus_window: int = 1000
    """Characters (normalized text) on each side of a question found in a corpus document within
    which its answer makes a leak: about one retrieval chunk."""
    corpus_min_words: int = 4
    """Shorter questions are not searched in the corpus (they match by accident)."""
    max_chars: int = 10_000
    """A field longer than this is reported (long inputs are truncated by most models)."""
    leak_rate: float = 0.01
    """Copies above this share of a task's test items make `raise_for_leaks` raise."""
    near_leak_rate: float = 0.05
    """Near-duplicates (and no copy) above this share make `raise_for_leaks` raise."""


@dataclass(frozen=True)
class Finding:
    """One kind of problem in one task and split (or pair of splits), with every item concerned."""

    kind: str
    task: str
    split: str
    """The split checked ('test'), or the pair for overlaps ('train/test')."""
    count: int
    of: int
    """Items in the split checked (for leaks: the test split), the denominator of `share`."""
    ids: tuple[str, ...]
    """Every item concerned (for overlaps and leaks: the test items)."""
    matched: tuple[str, ...] = ()
    """For each id, what it matched (the earlier duplicate, the train/dev item, the document) or the
    field at fault."""
    detail: str = ""

    @property
    def share(self) -> float:
        return self.count / self.of if self.of else 0.0

    @property
    def is_leak(self) -> bool:
        return self.kind in LEAK_KINDS


@dataclass(frozen=True)
class LabelCounts:
    """Items per label (classification) or per answer position (multiple choice) in one split."""

    task: str
    split: str
    counts: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class TaskLeaks:
    """The test items of one task that leak, by how."""

    task: str
    test_items: int
    copies: tuple[str, ...]
    """Test items with an exact or normalized copy in train or dev, or in a corpus document."""
    near: tuple[str, ...]
    """Test items that are only near-duplicates of a train or dev item."""

    @property
    def copy_share(self) -> float:
        return len(self.copies) / self.test_items if self.test_items else 0.0

    @property
    def near_share(self) -> float:
        return len(self.near) / self.test_items if self.test_items else 0.0


@dataclass(frozen=True)
class HygieneReport:
    suite: str
    options: HygieneOptions
    findings: tuple[Finding, ...]
    balance: tuple[LabelCounts, ...]
    leaks: tuple[TaskLeaks, ...]

    def count(self, kind: str, task: str | None = None) -> int:
        return sum(f.count for f in self.findings if f.kind == kind and task in (None, f.task))

    def over_threshold(self) -> list[str]:
        """One sentence per task whose leaks exceed a threshold; empty when none does."""
        o, out = self.options, []
        for t in self.leaks:
            if t.copy_share > o.leak_rate:
                out.append(f"task {t.task}: {len(t.copies)} of {t.test_items} test items ({t.copy_share:.1%}) are "
                           f"copies of train/dev items or in the corpus (threshold {o.leak_rate:.0%}), e.g. "
                           f"{', '.join(t.copies[:3])}")
            if t.near_share > o.near_leak_rate:
                out.append(f"task {t.task}: {len(t.near)} of {t.test_items} test items ({t.near_share:.1%}) are "
                           f"near-duplicates of train/dev items (threshold {o.near_leak_rate:.0%}), e.g. "
                           f"{', '.join(t.near[:3])}")
        return out

    def raise_for_leaks(self) -> None:
        """Raise a HarnessError naming every leak above its threshold (the CLI exits 2)."""
        if over := self.over_threshold():
            raise HarnessError(f"suite {self.suite!r} leaks: {'; '.join(over)} (--allow-leaks to accept)")


# ---------------------------------------------------------------- duplicates inside a split
def _finding(kind: str, task: str, split: str, of: int, pairs: list[tuple[str, str]], detail: str = "") -> Finding:
    return Finding(kind, task, split, len(pairs), of, tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), detail)


def _duplicate_findings(task: Task, split: str, items: Sequence[Example]) -> list[Finding]:
    d = scan_duplicates(items, task.spec)
    found = [
        _finding(DUPLICATE, task.name, split, len(items), d.exact, "identical text and answer; dropped at load"),
        _finding(NORMALIZED_DUPLICATE, task.name, split, len(items), d.normalized,
                 "same text and answer after normalization; dropped at load"),
        _finding(CONFLICTING, task.name, split, len(items), d.conflicting, "same text, a different answer"),
    ]
    return [f for f in found if f.count]


# ---------------------------------------------------------------- overlap between splits
def _overlap_findings(task: Task, ref_split: str, opts: HygieneOptions) -> list[Finding]:
    refs = [(ex.id, ItemKey.of(ex, task.spec)) for ex in getattr(task, ref_split)]
    if not refs:
        return []
    raw = {(k.scope, k.text): i for i, k in reversed(refs)}
    norm = {(k.scope, k.norm): i for i, k in reversed(refs)}
    index = NgramIndex(refs, opts.ngram)
    found: dict[str, list[tuple[str, str]]] = {OVERLAP_EXACT: [], OVERLAP_NORMALIZED: [], OVERLAP_NEAR: []}
    for ex in task.test:
        k = ItemKey.of(ex, task.spec)
        if (k.scope, k.text) in raw:
            found[OVERLAP_EXACT].append((ex.id, raw[(k.scope, k.text)]))
        elif (k.scope, k.norm) in norm:
            found[OVERLAP_NORMALIZED].append((ex.id, norm[(k.scope, k.norm)]))
        else:
            share, ref = index.best_match(k, opts.near_containment)
            if share >= opts.near_containment:
                found[OVERLAP_NEAR].append((ex.id, ref))
    pair = f"{ref_split}/test"
    return [_finding(kind, task.name, pair, len(task.test), pairs) for kind, pairs in found.items() if pairs]


# ---------------------------------------------------------------- corpus-to-test leakage
def _corpus_findings(task: Task, corpus: CorpusIndex, opts: HygieneOptions) -> list[Finding]:
    if not task.spec.answer_is_content:
        return []
    pairs = []
    for ex in task.test:
        question = normalize(ex.input)
        if len(question.split()) < opts.corpus_min_words:
            continue
        doc = corpus.leak(question, [normalize(a) for a in (ex.target, *ex.aliases)], opts.corpus_window)
        if doc is not None:
            pairs.append((ex.id, doc))
    detail = "the question and its answer together in a corpus document"
    return [_finding(CORPUS_LEAK, task.name, "corpus/test", len(task.test), pairs, detail)] if pairs else []


# ---------------------------------------------------------------- fields and balance
def _field_values(ex: Example, kind: TaskKind) -> dict[str, str]:
    name_in, name_out = kind.fields
    values = {name_in: ex.input}
    if name_out:
        values[name_out] = ex.target
    values.update(kind.extra_fields(ex))
    values.update({f"aliases[{i}]": a for i, a in enumerate(ex.aliases)})
    return values


def _field_findings(task: Task, split: str, items: Sequence[Example], max_chars: int) -> list[Finding]:
    empty: list[tuple[str, str]] = []
    long: list[tuple[str, str]] = []
    for ex in items:
        for name, value in _field_values(ex, task.spec).items():
            if not value.strip():
                empty.append((ex.id, name))
            elif len(value) > max_chars:
                long.append((ex.id, name))
    out = []
    if empty:
        out.append(_finding(EMPTY_FIELD, task.name, split, len(items), empty, "blank after stripping whitespace"))
    if long:
        out.append(_finding(LONG_FIELD, task.name, split, len(items), long, f"over {max_chars:,} characters"))
    return out


def _balance(task: Task, split: str, items: Sequence[Example]) -> LabelCounts | None:
    counts = task.spec.balance(task.labels, items)
    return None if counts is None else LabelCounts(task.name, split, counts)


# ---------------------------------------------------------------- the checks
def _task_findings(task: Task, corpus: CorpusIndex | None, opts: HygieneOptions) -> list[Finding]:
    found: list[Finding] = []
    for split in SPLITS:
        items = getattr(task, split)
        found += _duplicate_findings(task, split, items) + _field_findings(task, split, items, opts.max_chars)
    found += _overlap_findings(task, "train", opts) + _overlap_findings(task, "dev", opts)
    if corpus is not None:
        found += _corpus_findings(task, corpus, opts)
    return found


def _task_leaks(task: Task, findings: Sequence[Finding]) -> TaskLeaks:
    mine = [f for f in findings if f.task == task.name]
    copies = {i for f in mine if f.is_leak and f.kind != OVERLAP_NEAR for i in f.ids}
    near = {i for f in mine if f.kind == OVERLAP_NEAR for i in f.ids} - copies
    order = [ex.id for ex in task.test]
    return TaskLeaks(task.name, len(task.test), tuple(i for i in order if i in copies),
                     tuple(i for i in order if i in near))


def check(suite: Suite, options: HygieneOptions | None = None) -> HygieneReport:
    """Every hygiene check on every task of `suite` (as loaded, before duplicates are dropped)."""
    opts = options or HygieneOptions()
    corpus = CorpusIndex(suite.corpus) if suite.corpus else None
    findings = [f for task in suite.tasks for f in _task_findings(task, corpus, opts)]
    balance = [b for t in suite.tasks for s in SPLITS if getattr(t, s) and (b := _balance(t, s, getattr(t, s)))]
    leaks = tuple(_task_leaks(t, findings) for t in suite.tasks)
    return HygieneReport(suite.name, opts, tuple(findings), tuple(balance), leaks)


def drop_duplicates(suite: Suite) -> Suite:
    """`suite` with exact and normalized duplicates inside each split removed (the first of each
    kept), and one note per split that changed in `Suite.notes`."""
    tasks, notes = [], []
    for task in suite.tasks:
        kept: dict[str, tuple[Example, ...]] = {}
        for split in SPLITS:
            items = getattr(task, split)
            d = scan_duplicates(items, task.spec)
            dropped = {i for i, _ in d.exact + d.normalized}
            kept[split] = tuple(ex for ex in items if ex.id not in dropped)
            if dropped:
                notes.append(f"{task.name} {split}: dropped {len(dropped)} duplicate items of {len(items)} "
                             "(kept the first of each)")
        tasks.append(replace(task, train=kept["train"], dev=kept["dev"], test=kept["test"]))
    return replace(suite, tasks=tuple(tasks), notes=(*suite.notes, *notes)) if notes else suite
