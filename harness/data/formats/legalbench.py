"""LegalBench (Guha et al., 2023): one task folder (`train.tsv`, `test.tsv`, `README.md`), or the
`tasks/` folder above them (one task per subfolder, all in one suite; `--subjects` picks some).

Columns vary per task. The target is the `answer` column, else `label`; an `index` (or `idx`, `id`)
column numbers the rows; the input is the `text` column, or else every other column, each on its
own line as "column: value"; columns left over are kept as metadata. A task whose targets take at
most 20 distinct values, each used twice on average, is a classification task (labels sorted,
balanced accuracy reported); any other is short-answer. The task summary in its README is the
instruction, and its license is recorded.

`train.tsv` holds LegalBench's 4 to 8 few-shot examples and stays the `train` split; `test.tsv`
is the test split. `--carve` also carves train/dev/test (70/15/15, stratified by label, identical
texts kept together) out of `test.tsv`, the carved train rows joining the few-shot ones. Exact
duplicate rows (some CUAD test rows repeat) are kept in the files, reported by the hygiene check,
and dropped by `load_suite` before a compare scores anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.data.formats.common import (
    ImportOptions,
    SuiteData,
    TaskData,
    distinct,
    read_table,
    read_text,
    require_path,
    slug,
    source_record,
)
from harness.data.formats.splits import carve, describe
from harness.data.hygiene import normalize
from harness.data.kinds import CLASSIFICATION, SHORT_ANSWER, TaskKind

TARGET_COLUMNS = ("answer", "label")
ID_COLUMNS = ("index", "idx", "id")
MAX_LABELS = 20
CITATION = "LegalBench, Guha et al. (2023)"


@dataclass(frozen=True)
class _Columns:
    target: str
    id: str | None
    inputs: tuple[str, ...]
    meta: tuple[str, ...]


@dataclass(frozen=True)
class _Row:
    id: str
    input: str
    target: str
    meta: dict[str, str]


def _task_dirs(path: Path, subjects: tuple[str, ...]) -> list[Path]:
    if (path / "test.tsv").is_file():
        return [path]
    dirs = sorted(d for d in path.iterdir() if (d / "test.tsv").is_file()) if path.is_dir() else []
    if not dirs:
        raise HarnessError(f"{path}: no test.tsv here nor in its subfolders (expected a LegalBench task folder "
                           "or the tasks/ folder above them)")
    if not subjects:
        return dirs
    names = {d.name: d for d in dirs}
    unknown = [s for s in subjects if s not in names]
    if unknown:
        raise HarnessError(f"{path}: no task {unknown[0]!r} (tasks: {', '.join(names)})")
    return [names[s] for s in subjects]


def _columns(path: Path, columns: list[str]) -> _Columns:
    target = next((c for c in TARGET_COLUMNS if c in columns), None)
    if target is None:
        raise HarnessError(f"{path}:1: field 'answer': no 'answer' or 'label' column (columns: {', '.join(columns)})")
    id_col = next((c for c in ID_COLUMNS if c in columns), None)
    rest = [c for c in columns if c not in (target, id_col)]
    inputs = ["text"] if "text" in rest else rest
    if not inputs:
        raise HarnessError(f"{path}:1: field 'text': no input column (columns: {', '.join(columns)})")
    return _Columns(target, id_col, tuple(inputs), tuple(c for c in rest if c not in inputs))


def _rows(path: Path, task: str, split: str) -> list[_Row]:
    columns, lines = read_table(path, "\t")
    cols = _columns(path, columns)
    out = []
    for n, (line, row) in enumerate(lines, start=1):
        for col in (cols.target, *cols.inputs):
            if not row[col].strip():
                raise HarnessError(f"{path}:{line}: field '{col}': empty")
        text = row[cols.inputs[0]] if len(cols.inputs) == 1 else "\n".join(f"{c}: {row[c]}" for c in cols.inputs)
        number = row[cols.id] if cols.id else f"{n:04d}"
        out.append(_Row(f"{task}-{split}-{slug(number)}", text, row[cols.target].strip(),
                        {c: row[c] for c in cols.meta}))
    return out


def _readme(folder: Path) -> dict[str, str]:
    """`**Key**: value` lines of the task's README (Task summary, License...)."""
    path = next((p for p in sorted(folder.iterdir()) if p.name.lower() == "readme.md"), None)
    if path is None:
        return {}
    found = re.findall(r"^\*\*([^*]+)\*\*:\s*(.+)$", read_text(path), flags=re.MULTILINE)
    return {k.strip().lower(): re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", v).strip() for k, v in found}


def _item(row: _Row, kind: TaskKind) -> dict[str, Any]:
    text_key, target_key = kind.fields
    meta = {(f"source_{k}" if k in ("id", text_key, target_key) else k): v for k, v in row.meta.items()}
    return {"id": row.id, text_key: row.input, target_key: row.target, **meta}


def _kind(rows: list[_Row]) -> tuple[TaskKind, tuple[str, ...]]:
    values = distinct([r.target for r in rows])
    if len(values) <= MAX_LABELS and 2 * len(values) <= len(rows):
        return CLASSIFICATION, tuple(sorted(values))
    return SHORT_ANSWER, ()


def _instruction(summary: str, kind: TaskKind, labels: tuple[str, ...]) -> str | None:
    if not summary:
        return None
    if kind is not CLASSIFICATION:
        return f"{summary} Answer with a short phrase."
    return f"{summary} Answer {' or '.join(labels)}." if len(labels) <= 6 else f"{summary} Answer with one label."


def _carve(train: list[_Row], test: list[_Row], kind: TaskKind, seed: int) -> dict[str, list[_Row]]:
    """Carve train/dev/test out of test.tsv. Rows repeating a few-shot example's text go to train
    with it (they would otherwise leak into dev or test)."""
    shots = {normalize(r.input) for r in train}
    label = (lambda r: r.target) if kind.needs_labels else None
    parts = carve([r for r in test if normalize(r.input) not in shots], seed, group=lambda r: normalize(r.input),
                  label=label)
    seen = [r for r in test if normalize(r.input) in shots]
    return {"train": train + seen + parts["train"], "dev": parts["dev"], "test": parts["test"]}


def _task(folder: Path, options: ImportOptions) -> tuple[TaskData, str]:
    """The task of one folder, and its license."""
    name = slug(folder.name)
    train = _rows(folder / "train.tsv", name, "train") if (folder / "train.tsv").is_file() else []
    test = _rows(folder / "test.tsv", name, "test")
    kind, labels = _kind(train + test)
    splits = {"train": train, "dev": [], "test": test}
    if options.carve:
        splits = _carve(train, test, kind, options.seed)
    readme = _readme(folder)
    items = {s: [_item(r, kind) for r in rows] for s, rows in splits.items()}
    task = TaskData(name, kind.name, items, labels, kind.metrics,
                    _instruction(readme.get("task summary", ""), kind, labels), 16 if labels else 64)
    license = re.sub(r"(?i)\bcc by\b", "CC BY", readme.get("license", "see the task's README in LegalBench"))
    return task, license


def _license(licenses: dict[str, str]) -> str:
    if len(set(licenses.values())) == 1:
        return f"{next(iter(licenses.values()))} ({CITATION})"
    return f"{CITATION}; per task: " + "; ".join(f"{t}: {lic}" for t, lic in licenses.items())


def read(source: str, options: ImportOptions) -> SuiteData:
    path = require_path(source)
    dirs = _task_dirs(path, options.subjects)
    tasks, licenses = [], {}
    for folder in dirs:
        task, licenses[task.name] = _task(folder, options)
        tasks.append(task)
    names = ", ".join(t.name for t in tasks)
    description = f"LegalBench tasks ({CITATION}): {names}."
    more: dict[str, Any] = {"tasks": [t.name for t in tasks]}
    if options.carve:
        more["carved"] = describe(options.seed, "label, from test.tsv; train.tsv rows stay in train")
    record = source_record("legalbench", source, options, **more)
    return SuiteData(options.name or "legalbench", description, _license(licenses), tuple(tasks), record)
