"""MMLU (Hendrycks et al., 2021; MIT): four-choice questions in 57 subjects.

Source: the data folder holding `dev/`, `val/` and optionally `test/`, each with one headerless
CSV per subject, `<subject>_<split>.csv`, whose columns are question, A, B, C, D, answer letter.
One multiple-choice task per subject (`--subjects` picks some; default all found): the choices
are the four option texts and the answer is the text of the right one (an option repeated
verbatim is listed once; the count is recorded). `dev` (5 examples per subject) becomes `train`,
for few-shot prompts; `val` becomes `test`, or `dev` when a `test/` folder exists. With `--carve`
and no `test/` folder, `val` is carved into dev and test halves (stratified by answer position).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.data.formats.common import (
    ImportOptions,
    SuiteData,
    TaskData,
    distinct,
    read_delimited,
    require_path,
    source_record,
)
from harness.data.formats.splits import carve, describe
from harness.data.hygiene import normalize
from harness.data.kinds import MULTIPLE_CHOICE

FOLDERS = ("dev", "val", "test")
LETTERS = "ABCD"
LICENSE = "MIT: MMLU, Hendrycks et al. (2021), https://github.com/hendrycks/test"
HALVES = {"dev": 0.5, "test": 0.5}


def _files(path: Path) -> dict[str, dict[str, Path]]:
    """subject -> folder (dev, val, test) -> CSV file."""
    found: dict[str, dict[str, Path]] = {}
    for folder in FOLDERS:
        for f in sorted((path / folder).glob(f"*_{folder}.csv")):
            found.setdefault(f.name[: -len(f"_{folder}.csv")], {})[folder] = f
    if not found:
        raise HarnessError(f"{path}: no dev/, val/ or test/ folder with <subject>_<split>.csv files")
    return found


def _pick(path: Path, found: dict[str, dict[str, Path]], subjects: tuple[str, ...]) -> list[str]:
    for s in subjects:
        if s not in found:
            hint = difflib.get_close_matches(s, list(found), n=1)
            raise HarnessError(f"{path}: no subject {s!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
    chosen = list(subjects) or sorted(found)
    lacking = [s for s in chosen if not {"val", "test"} & set(found[s])]
    if lacking:
        raise HarnessError(f"{path}: subject {lacking[0]!r} has no val or test file to evaluate on")
    return chosen


def _row_item(path: Path, line: int, fields: list[str], item_id: str) -> tuple[dict[str, Any], bool]:
    """The JSONL object of one CSV row, and whether repeated options were merged."""
    if len(fields) != 6:
        raise HarnessError(f"{path}:{line}: {len(fields)} fields, expected 6 (question, A, B, C, D, answer)")
    question, options, letter = fields[0], fields[1:5], fields[5].strip()
    if letter not in LETTERS:
        raise HarnessError(f"{path}:{line}: field 'answer': {letter!r} is not one of A, B, C, D")
    for name, value in zip(("question", *LETTERS), fields, strict=False):
        if not value.strip():
            raise HarnessError(f"{path}:{line}: field '{name}': empty")
    choices = distinct(options)
    item = {"id": item_id, "question": question, "choices": choices, "answer": options[LETTERS.index(letter)]}
    return item, len(choices) < len(options)


def _read_file(path: Path, subject: str, folder: str) -> tuple[list[dict[str, Any]], int]:
    items, merged = [], 0
    for n, (line, fields) in enumerate(read_delimited(path, ",", header=False), start=1):
        item, was_merged = _row_item(path, line, fields, f"{subject}-{folder}-{n:04d}")
        items.append(item)
        merged += was_merged
    return items, merged


def _task(subject: str, files: dict[str, Path], options: ImportOptions) -> tuple[TaskData, int]:
    read = {folder: _read_file(f, subject, folder) for folder, f in files.items()}
    merged = sum(m for _, m in read.values())
    items = {folder: its for folder, (its, _) in read.items()}
    if "test" in items:
        splits = {"train": items.get("dev", []), "dev": items.get("val", []), "test": items["test"]}
    elif options.carve:
        halves = carve(items["val"], options.seed, HALVES, group=lambda it: normalize(it["question"]),
                       label=lambda it: str(it["choices"].index(it["answer"])))
        splits = {"train": items.get("dev", []), **halves}
    else:
        splits = {"train": items.get("dev", []), "dev": [], "test": items["val"]}
    words = subject.replace("_", " ")
    task = TaskData(subject, MULTIPLE_CHOICE.name, splits, (), ("accuracy",), f"Answer the question about {words}.")
    return task, merged


def read(source: str, options: ImportOptions) -> SuiteData:
    path = require_path(source)
    found = _files(path)
    tasks, merged = [], 0
    for subject in _pick(path, found, options.subjects):
        task, n = _task(subject, found[subject], options)
        tasks.append(task)
        merged += n
    more: dict[str, Any] = {"subjects_found": len(found), "repeated_options_merged": merged}
    if options.carve and not all("test" in found[t.name] for t in tasks):
        more["carved"] = describe(options.seed, "answer position, from val", HALVES)
    description = f"MMLU (Hendrycks et al., 2021): four-choice questions, {len(tasks)} subjects."
    record = source_record("mmlu", source, options, **more)
    return SuiteData(options.name or "mmlu", description, LICENSE, tuple(tasks), record)
