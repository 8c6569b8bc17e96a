"""Suites: a folder with `suite.toml`, JSONL splits and an optional `corpus/` of documents.

`load_suite_dir` validates everything before anything runs, and reports every problem with its
file, line and field (`SuiteError`). Finding a suite by name or importing one from a public
format is harness.data.catalog's job. See the README for the format.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.core.errors import SuiteError, validation_problems
from harness.core.records import Document, Example
from harness.data import kinds
from harness.data.kinds import TaskKind
from harness.data.kinds.preference import SPLIT as PAIRS_SPLIT
from harness.data.kinds.preference import PreferencePair, read_pairs

MAX_LINE_BYTES = 1 << 20
SPLITS = ("train", "dev", "test")
CORPUS_SUFFIXES = (".md", ".txt")

# ---------------------------------------------------------------- suite.toml schema
class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    """A registered task kind (harness.data.kinds)."""
    splits: dict[Literal["train", "dev", "test", "pairs"], str]
    """train, dev, test: items of the kind; pairs: preference pairs (harness.data.kinds.preference)."""
    metrics: list[str] | None = None
    labels: list[str] | None = None
    instruction: str | None = None
    max_new_tokens: int = Field(32, ge=1, le=2048)
    normalize: Literal["bytes", "none"] | None = None
    """Choice kinds: pick the choice by log-likelihood per byte (bytes) or summed (none); default: the
    kind's (harness.data.kinds)."""
    main_metric: str | None = None
    """The per-item metric the task is judged by (one of the kind's headline metrics); default: the kind's."""

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, name: str) -> str:
        if name not in kinds.names():
            raise ValueError(f"unknown kind {name!r} (known: {', '.join(kinds.names())})")
        return name

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        kind = kinds.get(self.kind)
        allowed = kind.metrics
        for m in self.metrics or []:
            if m not in allowed:
                raise ValueError(f"unknown metric {m!r} for kind {self.kind!r} (allowed: {', '.join(allowed)})")
        if "test" not in self.splits:
            raise ValueError("splits must include 'test'")
        if kind.needs_labels and not self.labels:
            raise ValueError(f"a {self.kind} task needs 'labels'")
        if self.labels and len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be distinct")
        if self.normalize is not None and not kind.ranks_choices:
            raise ValueError(f"'normalize' applies to tasks that rank choices, not to {self.kind}")
        if self.main_metric is not None and self.main_metric not in kind.headline:
            raise ValueError(f"main_metric {self.main_metric!r} cannot judge a {self.kind} task "
                             f"(one of: {', '.join(kind.headline) or 'none'})")
        return self


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    license: str = ""
    corpus: str | None = None
    retention: str | None = None
    source: dict[str, str | int | float | bool | list[str]] | None = None
    """Where an imported suite came from (format, path, options, carving): written by the adapters."""
    tasks: dict[str, TaskSpec] = Field(min_length=1)


# ---------------------------------------------------------------- loaded suite
@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    """The name of its TaskKind (see `spec`)."""
    instruction: str
    metrics: tuple[str, ...]
    labels: tuple[str, ...]
    max_new_tokens: int
    train: tuple[Example, ...]
    dev: tuple[Example, ...]
    test: tuple[Example, ...]
    normalize: str = "none"
    """How a choice task picks its answer: by summed log-likelihood ("none") or per byte ("bytes")."""
    main_metric: str | None = None
    """The per-item metric the task is judged by (None: it does not count in the score)."""
    pairs: tuple[PreferencePair, ...] = ()
    """Preference pairs of the optional `pairs` split (preference strategies; harness.data.pairs)."""

    @property
    def spec(self) -> TaskKind:
        """Everything the harness does with this task's kind (harness.data.kinds)."""
        return kinds.get(self.kind)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    license: str
    root: Path
    tasks: tuple[Task, ...]
    corpus: tuple[Document, ...]
    retention: str | None
    data_hash: str
    """sha256 of every file the suite reads: part of each cell's identity."""
    source: dict[str, Any] = field(default_factory=dict)
    """suite.toml's `[source]` table (imported suites): format, path, options, carving."""
    notes: tuple[str, ...] = ()
    """What loading changed, in words (e.g. duplicate items dropped by `load_suite`)."""

    def task(self, name: str) -> Task:
        return next(t for t in self.tasks if t.name == name)


def _read_spec(path: Path) -> SuiteSpec:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise SuiteError([f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})"]) from None
    except tomllib.TOMLDecodeError as e:
        raise SuiteError([f"{path}: invalid TOML: {e}"]) from None
    try:
        return SuiteSpec.model_validate(raw)
    except ValidationError as e:
        raise SuiteError(validation_problems(str(path), e)) from None


def _jsonl_lines(path: Path, problems: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; append problems for bad lines."""
    for n, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        where = f"{path}:{n}"
        if len(raw) > MAX_LINE_BYTES:
            problems.append(f"{where}: line is {len(raw):,} bytes, over the {MAX_LINE_BYTES:,}-byte limit")
            continue
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            problems.append(f"{where}: not valid UTF-8 ({e.reason} at column {e.start + 1})")
            continue
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(f"{where}: invalid JSON: {e.msg} at column {e.colno}")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object, got {type(obj).__name__}")
            continue
        yield n, obj


def _load_split(path: Path, task: str, spec: TaskSpec, problems: list[str]) -> tuple[Example, ...]:
    kind = kinds.get(spec.kind)
    labels = tuple(spec.labels or ())
    out: list[Example] = []
    for n, obj in _jsonl_lines(path, problems):
        try:
            item = kind.item.model_validate(obj)
        except ValidationError as e:
            problems.extend(validation_problems(f"{path}:{n}", e))
            continue
        target = kind.fields[1]
        if labels and kind.needs_labels and getattr(item, target) not in labels:
            problems.append(f"{path}:{n}: field '{target}': {getattr(item, target)!r} is not one of the task's labels")
            continue
        out.append(kind.to_example(task, item, labels))
    return tuple(out)


def _load_task(root: Path, name: str, spec: TaskSpec, problems: list[str]) -> Task:
    splits: dict[str, tuple[Example, ...]] = {s: () for s in SPLITS}
    pairs: tuple[PreferencePair, ...] = ()
    for split, rel in spec.splits.items():
        path = root / rel
        if not path.is_file():
            problems.append(f"{root / 'suite.toml'}: field 'tasks.{name}.splits.{split}': no file {path}")
            continue
        if split == PAIRS_SPLIT:
            pairs = read_pairs(name, _jsonl_lines(path, problems), path, problems)
            continue
        before = len(problems)
        splits[split] = _load_split(path, name, spec, problems)
        if split == "test" and not splits[split] and len(problems) == before:
            problems.append(f"{path}: the test split of task '{name}' is empty")
    _check_unique_ids(root, name, spec, splits, problems)
    kind = kinds.get(spec.kind)
    normalize = spec.normalize or kind.default_normalize
    return Task(
        normalize=normalize,
        main_metric=spec.main_metric or kind.default_main_metric(normalize),
        name=name,
        kind=spec.kind,
        instruction=spec.instruction if spec.instruction is not None else kinds.get(spec.kind).instruction,
        metrics=tuple(spec.metrics or kinds.get(spec.kind).metrics),
        labels=tuple(spec.labels or ()),
        max_new_tokens=spec.max_new_tokens,
        train=splits["train"],
        dev=splits["dev"],
        test=splits["test"],
        pairs=pairs,
    )


def _check_unique_ids(
    root: Path, name: str, spec: TaskSpec, splits: dict[str, tuple[Example, ...]], problems: list[str]
) -> None:
    seen: dict[str, str] = {}
    for split, examples in splits.items():
        for ex in examples:
            if ex.id in seen:
                where = root / spec.splits[split]  # type: ignore[index]
                problems.append(f"{where}: field 'id': duplicate id {ex.id!r} (also in {seen[ex.id]})")
            seen[ex.id] = split


def _load_corpus(root: Path, rel: str, problems: list[str]) -> tuple[Document, ...]:
    folder = root / rel
    if not folder.is_dir():
        problems.append(f"{root / 'suite.toml'}: field 'corpus': no folder {folder}")
        return ()
    docs = []
    for path in sorted(p for p in folder.iterdir() if p.suffix in CORPUS_SUFFIXES):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            problems.append(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})")
            continue
        first = text.strip().splitlines()[0] if text.strip() else path.stem
        docs.append(Document(id=path.stem, title=first.lstrip("# ").strip(), text=text))
    if not docs:
        problems.append(f"{folder}: field 'corpus': the corpus folder has no .md or .txt documents")
    return tuple(docs)


def _data_hash(root: Path, spec: SuiteSpec) -> str:
    files = [root / "suite.toml"]
    for t in spec.tasks.values():
        files += [root / rel for rel in t.splits.values()]
    if spec.corpus:
        files += sorted(p for p in (root / spec.corpus).iterdir() if p.suffix in CORPUS_SUFFIXES)
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def load_suite_dir(root: Path) -> Suite:
    """Load and validate the suite in `root`; raise SuiteError listing every problem found."""
    spec_path = root / "suite.toml"
    if not spec_path.is_file():
        raise SuiteError([f"{root}: no suite.toml in this folder"])
    spec = _read_spec(spec_path)
    problems: list[str] = []
    tasks = tuple(_load_task(root, name, t, problems) for name, t in spec.tasks.items())
    corpus = _load_corpus(root, spec.corpus, problems) if spec.corpus else ()
    if problems:
        raise SuiteError(problems)
    return Suite(
        name=spec.name,
        description=spec.description,
        license=spec.license,
        root=root,
        tasks=tasks,
        corpus=corpus,
        retention=spec.retention,
        data_hash=_data_hash(root, spec),
        source=dict(spec.source or {}),
    )
