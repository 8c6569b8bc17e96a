"""What every adapter shares: the records an adapter returns, readers that locate every problem
(file, line, field), and the writer that turns a `SuiteData` into a normal suite folder.

An adapter never writes files itself: it returns a `SuiteData`, and `write_suite` writes
`suite.toml`, one JSONL file per task and split, and `corpus/<doc id>.txt`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

CSV_FIELD_LIMIT = 1 << 24


@dataclass(frozen=True)
class ImportOptions:
    """How to import: the same options give the same suite (and the same cache folder)."""

    name: str | None = None
    """Suite name; by default `<format>-<source name>`."""
    carve: bool = False
    """Carve train/dev/test splits out of the evaluation rows (for strategies that train)."""
    seed: int = 0
    """Seed of the carving shuffle."""
    subjects: tuple[str, ...] = ()
    """MMLU subjects or LegalBench task names to keep (default: all found)."""
    mapping: Path | None = None
    """The column-mapping TOML of the `table` format."""

    def describe(self) -> dict[str, Any]:
        """The options as plain values, for suite.toml's `[source]` table and the cache key."""
        out: dict[str, Any] = {"carve": self.carve, "seed": self.seed}
        if self.subjects:
            out["subjects"] = list(self.subjects)
        if self.mapping:
            out["mapping"] = str(self.mapping.resolve())
        return out


@dataclass(frozen=True)
class TaskData:
    """One task being imported: its suite.toml entry and its JSONL objects per split."""

    name: str
    kind: str
    """A task kind's name (harness.data.kinds)."""
    splits: dict[str, list[dict[str, Any]]]
    """train / dev / test -> the JSONL objects, in the fields the task kind requires."""
    labels: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    instruction: str | None = None
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class SuiteData:
    """A whole suite in memory, as an adapter returns it."""

    name: str
    description: str
    license: str
    tasks: tuple[TaskData, ...]
    source: dict[str, Any]
    """Where it came from: format, path, options, carving, counts of what was changed."""
    corpus: dict[str, str] = field(default_factory=dict)
    """Document id -> text, written as corpus/<id>.txt."""


# ---------------------------------------------------------------- small helpers
def slug(text: str) -> str:
    """A file- and TOML-friendly name: runs of other characters become one '-'."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return out or "x"


def require_path(source: str) -> Path:
    path = Path(source).expanduser()
    if not path.exists():
        raise HarnessError(f"{path}: no such file or folder")
    return path


def distinct(values: list[str]) -> list[str]:
    """The values without repeats, in first-seen order."""
    return list(dict.fromkeys(values))


# ---------------------------------------------------------------- readers
def read_text(path: Path) -> str:
    """A UTF-8 file (a leading BOM is dropped); a decoding error names the line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise HarnessError(f"{path}:{line}: not valid UTF-8 ({e.reason})") from None


def read_delimited(path: Path, delimiter: str, header: bool = True) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) of a CSV/TSV file, quotes as in RFC 4180; malformed quoting and
    rows whose field count differs from the first row's raise HarnessError with the line."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter=delimiter, strict=True)
    kind = "TSV" if delimiter == "\t" else "CSV"
    width = None
    try:
        for fields in reader:
            if not fields or fields == [""]:
                continue
            width = width or len(fields)
            if len(fields) != width:
                what = "the header" if header else "the first row"
                raise HarnessError(f"{path}:{reader.line_num}: {len(fields)} fields, but {what} has {width}")
            yield reader.line_num, fields
    except csv.Error as e:
        reason = str(e).replace("\t", "\\t")
        raise HarnessError(f"{path}:{reader.line_num}: malformed {kind}: {reason}") from None


def read_table(path: Path, delimiter: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A delimited file with a header: its columns and (line number, row) pairs."""
    rows = read_delimited(path, delimiter)
    first = next(rows, None)
    if first is None:
        raise HarnessError(f"{path}:1: the file is empty (a header row is expected)")
    columns = [c.strip() for c in first[1]]
    return columns, [(n, dict(zip(columns, fields, strict=True))) for n, fields in rows]


def require_columns(path: Path, columns: list[str], wanted: list[str]) -> None:
    for col in wanted:
        if col not in columns:
            raise HarnessError(f"{path}:1: field '{col}': no such column (columns: {', '.join(columns)})")


def read_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise HarnessError(f"{path}:{e.lineno}: invalid JSON: {e.msg} at column {e.colno}") from None


# ---------------------------------------------------------------- writer
def _toml_str(text: str) -> str:
    # A JSON string is a TOML basic string, except that TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_str(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _split_path(task: TaskData, split: str) -> str:
    return f"{slug(task.name)}/{split}.jsonl"


def suite_toml(data: SuiteData) -> str:
    lines = [f"name = {_toml_str(data.name)}", f"description = {_toml_str(data.description)}",
             f"license = {_toml_str(data.license)}"]
    if data.corpus:
        lines.append('corpus = "corpus/"')
    lines += ["", "[source]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.source.items())]
    for t in data.tasks:
        entry: dict[str, Any] = {"kind": t.kind}
        for key in ("labels", "metrics", "instruction", "max_new_tokens"):
            if getattr(t, key):
                entry[key] = getattr(t, key)
        entry["splits"] = {s: _split_path(t, s) for s, items in t.splits.items() if items or s == "test"}
        lines += ["", f"[tasks.{_toml_key(t.name)}]", *(f"{k} = {_toml_value(v)}" for k, v in entry.items())]
    return "\n".join(lines) + "\n"


def write_suite(data: SuiteData, out: Path) -> None:
    """Write `data` as a suite folder in `out` (which must not exist yet)."""
    out.mkdir(parents=True)
    (out / "suite.toml").write_text(suite_toml(data), encoding="utf-8")
    for t in data.tasks:
        for split, items in t.splits.items():
            if items or split == "test":
                path = out / _split_path(t, split)
                path.parent.mkdir(exist_ok=True)
                text = "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items)
                path.write_text(text, encoding="utf-8")
    if data.corpus:
        (out / "corpus").mkdir()
        for doc_id, text in data.corpus.items():
            (out / "corpus" / f"{doc_id}.txt").write_text(text, encoding="utf-8")


def source_record(fmt: str, source: str, options: ImportOptions, **more: Any) -> dict[str, Any]:
    """suite.toml's `[source]` table: format, resolved path (or the dataset id), options, and `more`."""
    path = Path(source).expanduser()
    where = str(path.resolve()) if path.exists() else source
    return {"format": fmt, "path": where, **options.describe(), **more}
