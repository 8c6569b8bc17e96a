"""ContractNLI (Koreeda and Manning, 2021; CC BY 4.0): non-disclosure agreements, and for each one
17 hypotheses labelled Entailment, Contradiction or NotMentioned, with evidence spans.

Source: one JSON file of the release (`train.json`, `dev.json`, `test.json`), or a folder holding
them. Schema read: `documents[i].{id, text, spans}` (spans are character offsets),
`documents[i].annotation_sets[0].annotations[<hypothesis key>].{choice, spans}` (span indices)
and `labels[<hypothesis key>].hypothesis`.

One classification task, `contractnli`: one item per (document, hypothesis), `text` =
"Hypothesis: ...", with `doc_id`, `hypothesis_key`, `evidence` (the evidence span texts) and
`evidence_spans` ([start, end] character offsets in the document). The release's spans often end
in the space before the next one; the evidence is trimmed of surrounding whitespace, so a chunk
that holds the whole clause covers it (retrieval chunks never start or end in whitespace).
The documents become the corpus
(`corpus/<doc_id>.txt`). A single file (or `--carve`) is carved 70/15/15 by document, so the
hypotheses of one contract never straddle two splits; a folder with `test.json` keeps its splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.core.errors import HarnessError, SuiteError, validation_problems
from harness.data.formats.common import (
    ImportOptions,
    SuiteData,
    TaskData,
    read_json,
    require_path,
    slug,
    source_record,
)
from harness.data.formats.splits import carve, describe
from harness.data.kinds import CLASSIFICATION

LABELS = ("Entailment", "Contradiction", "NotMentioned")
LICENSE = "CC BY 4.0: ContractNLI, Koreeda and Manning (2021), https://stanfordnlp.github.io/contract-nli/"
INSTRUCTION = ("Does the non-disclosure agreement entail the hypothesis, contradict it, or not mention it? "
               "Answer Entailment, Contradiction or NotMentioned.")
SPLIT_FILES = {"train": "train.json", "dev": "dev.json", "test": "test.json"}


# The release's schema; other keys (url, document_type...) are ignored.
class _Annotation(BaseModel):
    choice: Literal["Entailment", "Contradiction", "NotMentioned"]
    spans: list[int]


class _AnnotationSet(BaseModel):
    annotations: dict[str, _Annotation]


class _Document(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)
    id: str
    text: str
    spans: list[tuple[int, int]]
    annotation_sets: list[_AnnotationSet] = Field(min_length=1)


class _Hypothesis(BaseModel):
    hypothesis: str = Field(min_length=1)


class _Release(BaseModel):
    documents: list[_Document]
    labels: dict[str, _Hypothesis]


def _parse(path: Path) -> _Release:
    try:
        return _Release.model_validate(read_json(path))
    except ValidationError as e:
        raise SuiteError(validation_problems(str(path), e)) from None


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without leading or trailing whitespace (unchanged when it is all whitespace)."""
    piece = text[start:end]
    if not piece.strip():
        return start, end
    return start + len(piece) - len(piece.lstrip()), end - (len(piece) - len(piece.rstrip()))


def _evidence(path: Path, i: int, key: str, doc: _Document, spans: list[int]) -> list[tuple[int, int]]:
    out = []
    for s in spans:
        if not 0 <= s < len(doc.spans):
            where = f"documents.{i}.annotation_sets.0.annotations.{key}.spans"
            raise HarnessError(f"{path}: field '{where}': span {s} out of range ({len(doc.spans)} spans)")
        out.append(_trimmed(doc.text, *doc.spans[s]))
    return out


def _items(path: Path, release: _Release, corpus: dict[str, str]) -> list[dict[str, Any]]:
    """One JSONL object per (document, hypothesis); each document's text goes into `corpus`."""
    items = []
    for i, doc in enumerate(release.documents):
        doc_id = slug(f"doc-{doc.id}")
        if corpus.get(doc_id, doc.text) != doc.text:
            raise HarnessError(f"{path}: field 'documents.{i}.id': id {doc.id!r} is used by another document")
        corpus[doc_id] = doc.text
        for key, ann in doc.annotation_sets[0].annotations.items():
            if key not in release.labels:
                raise HarnessError(f"{path}: field 'documents.{i}.annotation_sets.0.annotations.{key}': "
                                   f"hypothesis {key!r} is not in 'labels'")
            spans = _evidence(path, i, key, doc, ann.spans)
            items.append({
                "id": f"{doc_id}-{slug(key)}", "text": f"Hypothesis: {release.labels[key].hypothesis}",
                "label": ann.choice, "doc_id": doc_id, "hypothesis_key": key,
                "evidence": [doc.text[s:e] for s, e in spans], "evidence_spans": [[s, e] for s, e in spans],
            })
    return items


def _split_files(path: Path) -> dict[str, Path]:
    if path.is_file():
        return {"all": path}
    found = {split: path / name for split, name in SPLIT_FILES.items() if (path / name).is_file()}
    if not found:
        raise HarnessError(f"{path}: no {', '.join(SPLIT_FILES.values())} in this folder")
    return found


def read(source: str, options: ImportOptions) -> SuiteData:
    path = require_path(source)
    corpus: dict[str, str] = {}
    by_file = {split: _items(f, _parse(f), corpus) for split, f in _split_files(path).items()}
    carved = ""
    if options.carve or "test" not in by_file:
        pooled = [it for items in by_file.values() for it in items]
        by_file = carve(pooled, options.seed, group=lambda it: it["doc_id"])
        carved = describe(options.seed, "document")
    task = TaskData("contractnli", CLASSIFICATION.name, {s: by_file.get(s, []) for s in ("train", "dev", "test")},
                    LABELS, ("accuracy", "balanced_accuracy"), INSTRUCTION, 8)
    description = (f"ContractNLI: does each non-disclosure agreement entail, contradict or not mention each of "
                   f"17 hypotheses? {len(corpus)} agreements in corpus/, one item per (agreement, hypothesis).")
    record = source_record("contractnli", source, options, **({"carved": carved} if carved else {}))
    return SuiteData(options.name or "contractnli", description, LICENSE, (task,), record, corpus)
