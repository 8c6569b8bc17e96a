"""Any table: local CSV, TSV, JSONL, JSON or Parquet files, or a Hugging Face dataset id, with a
column mapping in a small TOML file (the `--mapping`, or the source itself when it is a .toml):

    kind = "multiple-choice"            # short-answer (default), classification, multiple-choice,
                                        # language-modeling
    task = "contracts-mc"               # optional: the task name (default: the source's name)
    instruction = "Pick the clause type."   # optional; labels, description, license too
    dataset = "org/name"                # optional: a hub dataset id (datasets.load_dataset)
    config = "default"                  # optional: its configuration
    split_column = "split"              # optional: values train, dev (or validation, val), test

    [files]                             # optional: one file per split, relative to this TOML
    train = "train.csv"
    test = "test.csv"

    [columns]
    input = "question"                  # required
    target = "answer"                   # required except for language-modeling
    choices = "options"                 # a list column, or a list of columns: ["A", "B", "C", "D"]
    id = "uid"                          # optional; default <task>-<split>-<row number>
    group = "doc"                       # optional: carve keeping each group in one split
    aliases = "other_answers"           # optional (short-answer): a list column
    keep = ["doc_id", "source"]         # optional: columns kept as metadata

Splits come from `[files]`, the `split_column`, files named train/dev/val/validation/test.* in a
source folder, or a hub dataset's splits. Data without a test split, or any data with `--carve`,
is carved 70/15/15 (stratified by label, by `group` when given). For multiple choice, an answer
that is not one of the choices may be a letter (A, B, ...) or a 0-based index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from harness.core.errors import HarnessError, SuiteError, validation_problems
from harness.data import kinds
from harness.data.formats.common import (
    ImportOptions,
    SuiteData,
    TaskData,
    read_json,
    read_table,
    read_text,
    slug,
    source_record,
)
from harness.data.formats.splits import carve, describe
from harness.data.hygiene import normalize
from harness.data.kinds import CLASSIFICATION, LANGUAGE_MODELING, MULTIPLE_CHOICE, SHORT_ANSWER

SPLIT_NAMES = {"train": "train", "dev": "dev", "validation": "dev", "valid": "dev", "val": "dev", "test": "test"}
SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
UNSPLIT = "all"


class Columns(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: str
    target: str | None = None
    choices: str | list[str] | None = None
    id: str | None = None
    group: str | None = None
    aliases: str | None = None
    keep: list[str] = []


class Mapping(BaseModel):
    """The column-mapping TOML; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")
    kind: str = SHORT_ANSWER.name
    task: str | None = None
    description: str = ""
    license: str = ""
    instruction: str | None = None
    labels: list[str] | None = None
    dataset: str | None = None
    config: str | None = None
    split_column: str | None = None
    files: dict[Literal["train", "dev", "test"], str] | None = None
    columns: Columns

    @model_validator(mode="after")
    def _check(self) -> Mapping:
        known = (SHORT_ANSWER, CLASSIFICATION, MULTIPLE_CHOICE, LANGUAGE_MODELING)
        if self.kind not in [k.name for k in known]:
            raise ValueError(f"kind {self.kind!r}: a table maps to one of {', '.join(k.name for k in known)}")
        if kinds.get(self.kind).fields[1] and self.columns.target is None:
            raise ValueError(f"a {self.kind} task needs columns.target")
        if self.kind == MULTIPLE_CHOICE.name and self.columns.choices is None:
            raise ValueError(f"a {self.kind} task needs columns.choices")
        return self


@dataclass(frozen=True)
class _Row:
    where: str
    """file:line (or file: row N, dataset[split] row N) for messages"""
    split: str
    """the source split (train, dev, test), or 'all' when the source has none"""
    number: int
    values: dict[str, Any]


# ---------------------------------------------------------------- the mapping
def load_mapping(path: Path) -> Mapping:
    try:
        raw = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as e:
        raise HarnessError(f"{path}: invalid TOML: {e}") from None
    try:
        return Mapping.model_validate(raw)
    except ValidationError as e:
        raise SuiteError(validation_problems(str(path), e)) from None


def mapping_files(path: Path) -> list[Path]:
    """The data files a mapping names (for the import cache key); none when it does not parse."""
    try:
        mapping = load_mapping(path)
    except HarnessError:
        return []
    return [path.parent / f for f in (mapping.files or {}).values()]


def _mapping_path(source: str, options: ImportOptions) -> Path:
    if options.mapping:
        if not options.mapping.is_file():
            raise HarnessError(f"{options.mapping}: no such mapping file")
        return options.mapping
    if source.endswith(".toml") and Path(source).is_file():
        return Path(source)
    raise HarnessError("the table format needs a column mapping: --mapping map.toml (see the README)")


# ---------------------------------------------------------------- reading rows
def _file_rows(path: Path, split: str) -> Iterator[_Row]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        _, rows = read_table(path, "\t" if suffix == ".tsv" else ",")
        yield from (_Row(f"{path}:{line}", split, n, row) for n, (line, row) in enumerate(rows, start=1))
    elif suffix == ".jsonl":
        yield from _jsonl_rows(path, split)
    elif suffix == ".json":
        data = read_json(path)
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise HarnessError(f"{path}: expected a JSON array of objects (or {{\"data\": [...]}})")
        yield from (_Row(f"{path}: item {n}", split, n, _object(f"{path}: item {n}", it))
                    for n, it in enumerate(items, start=1))
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        yield from (_Row(f"{path}: row {n}", split, n, row) for n, row in enumerate(rows, start=1))
    else:
        raise HarnessError(f"{path}: unsupported file type (supported: {', '.join(SUFFIXES)})")


def _object(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HarnessError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _jsonl_rows(path: Path, split: str) -> Iterator[_Row]:
    number = 0
    for line, text in enumerate(read_text(path).split("\n"), start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise HarnessError(f"{path}:{line}: invalid JSON: {e.msg} at column {e.colno}") from None
        number += 1
        yield _Row(f"{path}:{line}", split, number, _object(f"{path}:{line}", obj))


def _split_name(where: str, name: str) -> str:
    if name not in SPLIT_NAMES:
        raise HarnessError(f"{where}: split {name!r} is not one of {', '.join(SPLIT_NAMES)}")
    return SPLIT_NAMES[name]


def _folder_files(folder: Path) -> dict[str, Path]:
    found = {}
    for f in sorted(folder.iterdir()):
        if f.suffix.lower() in SUFFIXES and f.stem.lower() in SPLIT_NAMES:
            found[SPLIT_NAMES[f.stem.lower()]] = f
    if not found:
        raise HarnessError(f"{folder}: no train, dev, val, validation or test file ({', '.join(SUFFIXES)}) here")
    return found


def _hub_rows(dataset: str, config: str | None) -> list[_Row]:
    from datasets import load_dataset

    try:
        splits = load_dataset(dataset, config)
    except Exception as e:  # any failure of the hub or of the builder is bad input here
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(f"{dataset}: datasets.load_dataset failed: {first}") from None
    return [_Row(f"{dataset}[{name}] row {n}", _split_name(f"{dataset}[{name}]", name), n, dict(row))
            for name, ds in splits.items() for n, row in enumerate(ds, start=1)]


def _rows(source: str, mapping_path: Path, mapping: Mapping) -> list[_Row]:
    if mapping.files:
        return [r for split, f in mapping.files.items() for r in _file_rows(mapping_path.parent / f, split)]
    path = Path(source).expanduser()
    if path.is_file() and path != mapping_path:
        return list(_file_rows(path, UNSPLIT))
    if path.is_dir():
        return [r for split, f in _folder_files(path).items() for r in _file_rows(f, split)]
    dataset = mapping.dataset or (source if path != mapping_path else None)
    if not dataset:
        raise HarnessError(f"{mapping_path}: no data: give a file or folder, [files], or dataset = \"org/name\"")
    return _hub_rows(dataset, mapping.config)


# ---------------------------------------------------------------- rows to items
def _value(row: _Row, column: str) -> Any:
    if column not in row.values:
        raise HarnessError(f"{row.where}: field '{column}': no such column (columns: {', '.join(row.values)})")
    return row.values[column]


def _text(row: _Row, column: str) -> str:
    value = _value(row, column)
    if value is None or not str(value).strip():
        raise HarnessError(f"{row.where}: field '{column}': empty")
    return str(value)


def _list(row: _Row, column: str) -> list[str]:
    value = _value(row, column)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise HarnessError(f"{row.where}: field '{column}': expected a list (or a JSON list)") from None
    if not isinstance(value, list):
        raise HarnessError(f"{row.where}: field '{column}': expected a list, got {type(value).__name__}")
    return [str(v) for v in value]


def _answer(row: _Row, column: str, choices: list[str]) -> str:
    answer = _text(row, column).strip()
    if answer in choices:
        return answer
    if len(answer) == 1 and answer.isalpha() and ord(answer.upper()) - 65 < len(choices):
        return choices[ord(answer.upper()) - 65]
    if answer.isdigit() and int(answer) < len(choices):
        return choices[int(answer)]
    raise HarnessError(f"{row.where}: field '{column}': {answer!r} is not a choice, a letter or an index")


def _fields(row: _Row, m: Mapping) -> dict[str, Any]:
    """The kind's JSONL fields of one row (without id and metadata)."""
    cols, kind = m.columns, kinds.get(m.kind)
    text_key, target_key = kind.fields
    out: dict[str, Any] = {text_key: _text(row, cols.input)}
    if not target_key or cols.target is None:
        return out
    if kind is MULTIPLE_CHOICE and cols.choices is not None:
        choices = [_text(row, c) for c in cols.choices] if isinstance(cols.choices, list) else _list(row, cols.choices)
        out.update(choices=list(dict.fromkeys(choices)), answer=_answer(row, cols.target, choices))
    else:
        out[target_key] = _text(row, cols.target).strip()
        if kind is SHORT_ANSWER and cols.aliases:
            out["aliases"] = _list(row, cols.aliases)
    return out


def _meta(row: _Row, m: Mapping, taken: set[str]) -> dict[str, Any]:
    out = {}
    for col in dict.fromkeys([*m.columns.keep, *([m.columns.group] if m.columns.group else [])]):
        if col in taken:
            raise HarnessError(f"field 'columns.keep': {col!r} would overwrite the item's own field {col!r}")
        value = _value(row, col)
        out[col] = value if isinstance(value, str | int | float | bool | list | dict) or value is None else str(value)
    return out


def _item(row: _Row, m: Mapping, task: str) -> dict[str, Any]:
    fields = _fields(row, m)
    item_id = _text(row, m.columns.id) if m.columns.id else f"{task}-{row.split}-{row.number:05d}"
    return {"id": item_id, **fields, **_meta(row, m, {"id", *fields})}


def _check_ids(rows: list[_Row], items: list[dict[str, Any]]) -> None:
    seen: dict[str, str] = {}
    for row, it in zip(rows, items, strict=True):
        if it["id"] in seen:
            raise HarnessError(f"{row.where}: field 'id': duplicate id {it['id']!r} (also at {seen[it['id']]})")
        seen[it["id"]] = row.where


# ---------------------------------------------------------------- splits
def _split_of(row: _Row, m: Mapping) -> str:
    if m.split_column:
        return _split_name(f"{row.where}: field '{m.split_column}'", str(_value(row, m.split_column)))
    return row.split


Items = list[dict[str, Any]]


def _splits(pairs: list[tuple[str, dict[str, Any]]], m: Mapping, options: ImportOptions
            ) -> tuple[dict[str, Items], str]:
    """train/dev/test -> items, and how they were carved ('' when they were not)."""
    by_split: dict[str, Items] = {"train": [], "dev": [], "test": []}
    for split, it in pairs:
        by_split.setdefault(split, []).append(it)
    if by_split["test"] and not by_split.get(UNSPLIT) and not options.carve:
        return by_split, ""
    kind = kinds.get(m.kind)
    text_key, target_key = kind.fields
    group_col = m.columns.group
    group = (lambda it: str(it[group_col])) if group_col else (lambda it: normalize(it[text_key]))
    label = (lambda it: it[target_key]) if kind.needs_labels else None
    carved = carve([it for _, it in pairs], options.seed, group=group, label=label)
    by = f"column {group_col}" if group_col else "identical text"
    return carved, describe(options.seed, by + (", stratified by label" if label else ""))


def _labels(rows: list[_Row], items: Items, m: Mapping) -> tuple[str, ...]:
    kind = kinds.get(m.kind)
    if not kind.needs_labels:
        return ()
    target = kind.fields[1]
    if not m.labels:
        return tuple(sorted({it[target] for it in items}))
    for row, it in zip(rows, items, strict=True):
        if it[target] not in m.labels:
            raise HarnessError(f"{row.where}: field '{m.columns.target}': {it[target]!r} is not one of the labels")
    return tuple(m.labels)


def read(source: str, options: ImportOptions) -> SuiteData:
    mapping_path = _mapping_path(source, options)
    m = load_mapping(mapping_path)
    data_source = source if Path(source).expanduser() != mapping_path else (m.dataset or source)
    task = slug(m.task or Path(data_source).stem or "main")
    rows = _rows(source, mapping_path, m)
    if not rows:
        raise HarnessError(f"{source}: no rows")
    items = [_item(r, m, task) for r in rows]
    _check_ids(rows, items)
    splits, carved = _splits([(_split_of(r, m), it) for r, it in zip(rows, items, strict=True)], m, options)
    labels = _labels(rows, items, m)
    data = TaskData(task, m.kind, splits, labels, kinds.get(m.kind).metrics, m.instruction)
    record = source_record("table", source, options, **({"carved": carved} if carved else {}))
    description = m.description or f"Imported from {data_source} with the column mapping {mapping_path.name}."
    return SuiteData(options.name or task, description, m.license, (data,), record)
