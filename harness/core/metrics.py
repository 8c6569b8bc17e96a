"""Metrics as pure functions: no network, no hub scripts.

Per-item metrics score one prediction against its targets; task-level metrics aggregate the
per-item scores (a mean), except balanced accuracy, which needs the labels of all items.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

EVALUATE_MODULE = str(Path(__file__).parent / "evaluate" / "harness_metrics.py")
"""These metrics as an `evaluate` module: `evaluate.load(EVALUATE_MODULE, "key_match")` (see there)."""

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD-style normalization: lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, targets: Sequence[str]) -> float:
    """1.0 when the normalized prediction equals any normalized target."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(t) for t in targets))


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, targets: Sequence[str]) -> float:
    """Best token-overlap F1 of the normalized prediction against any target."""
    pred = normalize_answer(prediction).split()
    return max(_f1(pred, normalize_answer(t).split()) for t in targets)


def accuracy(prediction: str, target: str) -> float:
    return float(prediction == target)


def balanced_accuracy(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Mean recall over the gold classes present (classes never gold are ignored)."""
    if not targets:
        return float("nan")
    recalls = []
    for label in sorted(set(targets)):
        idx = [i for i, t in enumerate(targets) if t == label]
        recalls.append(sum(predictions[i] == label for i in idx) / len(idx))
    return sum(recalls) / len(recalls)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def recall_at_k(retrieved: Sequence[str], gold: str, k: int) -> float:
    """1.0 when the gold id is among the first k retrieved ids (duplicates count once)."""
    return float(gold in list(dict.fromkeys(retrieved))[:k])


def reciprocal_rank(retrieved: Sequence[str], gold: str) -> float:
    """1 / rank of the gold id among the distinct retrieved ids; 0 when absent."""
    return next((1.0 / (i + 1) for i, d in enumerate(dict.fromkeys(retrieved)) if d == gold), 0.0)


def answer_in_output(prediction: str, targets: Sequence[str]) -> float:
    """1.0 when a normalized target is contained, as whole words, in the normalized prediction: a
    verbose right answer ("The deposit is returned within 21 days") counts, a wrong one does not."""
    pred = f" {normalize_answer(prediction)} "
    return float(any(norm and f" {norm} " in pred for norm in (normalize_answer(t) for t in targets)))


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ENTITY = re.compile(r"\b[A-Z][\w'-]*")


def _numbers(text: str) -> list[str]:
    """Numbers as written, thousands separators and trailing zeros of decimals dropped: "3,250" -> "3250",
    "2.50" -> "2.5"."""
    out = []
    for raw in _NUMBER.findall(text):
        digits = raw.replace(",", "")
        if "." in digits:
            digits = digits.rstrip("0").rstrip(".")
        out.append(digits)
    return out


def key_terms(answer: str) -> tuple[frozenset[str], frozenset[str]]:
    """(numbers, named-entity words) of an answer: what a factual answer must get right."""
    entities = {w.lower() for w in _ENTITY.findall(answer) if w.lower() not in ("the", "a", "an")}
    return frozenset(_numbers(answer)), frozenset(entities)


def key_match(prediction: str, targets: Sequence[str]) -> float:
    """Correctness of a factual short answer: 1.0 when, for some target (or alias), the prediction states
    every number of the target and no other number, and names every named-entity word of the target
    (capitalized words, case-insensitive). "12 months" against "15 months" scores 0, "15 months."
    and "within 15 months" score 1. A target with neither numbers nor names falls back to exact match."""
    pred_numbers = set(_numbers(prediction))
    pred_words = set(normalize_answer(prediction).split())
    for target in targets:
        numbers, entities = key_terms(target)
        if not numbers and not entities:
            if exact_match(prediction, [target]):
                return 1.0
            continue
        names_ok = all(set(normalize_answer(e).split()) <= pred_words for e in entities)
        if pred_numbers == set(numbers) and names_ok:
            return 1.0
    return 0.0
