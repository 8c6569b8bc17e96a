"""Text identity for the hygiene checks: normalization, "the same question" keys, duplicate scans,
word n-gram containment, and finding a question with its answer in a corpus (harness.data.hygiene
turns these into findings)."""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness.core.records import Document, Example
from harness.data.kinds import TaskKind

_NON_WORD = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Lowercase (NFKC, casefold), punctuation and symbols dropped, words separated by one space."""
    return " ".join(_NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())


@dataclass(frozen=True)
class ItemKey:
    """What makes two items the same question: their text (as the kind defines it, normalized too)
    within the same doc_id scope, and their answer."""

    scope: str
    text: str
    norm: str
    target: str

    @classmethod
    def of(cls, ex: Example, kind: TaskKind) -> ItemKey:
        text = kind.identity(ex)
        return cls(str(ex.meta.get("doc_id", "")), text, normalize(text), normalize(ex.target))


@dataclass(frozen=True)
class Duplicates:
    exact: list[tuple[str, str]]
    normalized: list[tuple[str, str]]
    conflicting: list[tuple[str, str]]
    """(item id, id of the earlier item it repeats)"""


def scan_duplicates(items: Sequence[Example], kind: TaskKind) -> Duplicates:
    exact: dict[tuple[str, str, str], str] = {}
    normal: dict[tuple[str, str, str], str] = {}
    by_text: dict[tuple[str, str], tuple[str, str]] = {}
    out = Duplicates([], [], [])
    for ex in items:
        k = ItemKey.of(ex, kind)
        raw, norm = (k.scope, k.text, ex.target), (k.scope, k.norm, k.target)
        if raw in exact:
            out.exact.append((ex.id, exact[raw]))
        elif norm in normal:
            out.normalized.append((ex.id, normal[norm]))
        elif (k.scope, k.norm) in by_text and by_text[(k.scope, k.norm)][1] != k.target:
            out.conflicting.append((ex.id, by_text[(k.scope, k.norm)][0]))
        exact.setdefault(raw, ex.id)
        normal.setdefault(norm, ex.id)
        by_text.setdefault((k.scope, k.norm), (ex.id, k.target))
    return out


def ngrams(norm: str, n: int) -> set[str]:
    words = norm.split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


class NgramIndex:
    """Which reference items (train or dev) contain each word n-gram, per doc_id scope."""

    def __init__(self, refs: Sequence[tuple[str, ItemKey]], n: int):
        self.n = n
        self.postings: dict[tuple[str, str], list[str]] = {}
        for ref_id, key in refs:
            for g in ngrams(key.norm, n):
                self.postings.setdefault((key.scope, g), []).append(ref_id)

    def best_match(self, key: ItemKey, threshold: float) -> tuple[float, str]:
        """The reference item holding the largest share of `key`'s n-grams, if that share can
        reach `threshold` (the share found in all references together bounds it, and is cheap)."""
        grams = ngrams(key.norm, self.n)
        hits = [(key.scope, g) for g in grams if (key.scope, g) in self.postings]
        if not grams or len(hits) < threshold * len(grams):
            return 0.0, ""
        counts = Counter(ref for h in hits for ref in self.postings[h])
        ref, shared = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return shared / len(grams), ref


class CorpusIndex:
    """Every corpus document normalized into one string, to find where a question occurs.

    A leak is a test question found verbatim (normalized) in a document with its answer (or an
    alias) within `window` characters of it: the test item itself is in the corpus, as in a FAQ
    page or a copy of the test file. The answer alone in a document is not a leak; that is what
    retrieval is for (legal-qa's statutes contain every answer, and none of its questions).
    Only kinds whose answer is content are searched: short-answer and multiple-choice. A
    classification label next to its text is not evidence of a copy (a clause under the heading
    "Termination" is not a leaked test item), and language modeling has no answer.
    """

    def __init__(self, docs: Sequence[Document]):
        self.ids = [d.id for d in docs]
        parts = [f" {normalize(d.text)} " for d in docs]
        self.starts: list[int] = []
        pos = 0
        for p in parts:
            self.starts.append(pos)
            pos += len(p) + 1
        self.text = "\n".join(parts)

    def leak(self, question: str, answers: Sequence[str], window: int) -> str | None:
        """The id of the first document holding `question` with one of `answers` near it."""
        q = f" {question} "
        wanted = [f" {a} " for a in answers if a]
        pos = self.text.find(q)
        while pos != -1 and wanted:
            i = bisect.bisect_right(self.starts, pos) - 1
            end = self.starts[i + 1] - 1 if i + 1 < len(self.starts) else len(self.text)
            near = self.text[max(self.starts[i], pos - window) : min(end, pos + len(q) + window)]
            if any(a in near for a in wanted):
                return self.ids[i]
            pos = self.text.find(q, pos + 1)
        return None
