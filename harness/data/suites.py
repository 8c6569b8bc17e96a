"""Suites: a folder with `suite.toml`, JSONL splits and an optional `corpus/` of documents.

`load_suite` validates everything before anything runs, and reports every problem with its
file, line and field (`SuiteError`). See the README for the format.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.core.errors import HarnessError, SuiteError
from harness.core.records import Document, Example

MAX_LINE_BYTES = 1 << 20
SPLITS = ("train", "dev", "test")
CORPUS_SUFFIXES = (".md", ".txt")

Kind = Literal["short-answer", "classification", "multiple-choice", "language-modeling"]


# ---------------------------------------------------------------- item schemas (one per kind)
class _Item(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    id: str = Field(min_length=1)


class ShortAnswerItem(_Item):
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    aliases: list[str] = []


class ClassificationItem(_Item):
    text: str = Field(min_length=1)
    label: str = Field(min_length=1)


class MultipleChoiceItem(_Item):
    question: str = Field(min_length=1)
    choices: list[str] = Field(min_length=2)
    answer: str = Field(min_length=1)

    @model_validator(mode="after")
    def _answer_in_choices(self) -> MultipleChoiceItem:
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("choices must be distinct")
        if self.answer not in self.choices:
            raise ValueError(f"answer {self.answer!r} is not one of the choices")
        return self


class TextItem(_Item):
    text: str = Field(min_length=1)


def _meta(item: BaseModel) -> dict[str, Any]:
    return dict(item.model_extra or {})


def _short_answer(task: str, it: ShortAnswerItem, _: tuple[str, ...]) -> Example:
    return Example(it.id, task, it.question, it.answer, tuple(it.aliases), (), _meta(it))


def _classification(task: str, it: ClassificationItem, labels: tuple[str, ...]) -> Example:
    return Example(it.id, task, it.text, it.label, (), labels, _meta(it))


def _multiple_choice(task: str, it: MultipleChoiceItem, _: tuple[str, ...]) -> Example:
    return Example(it.id, task, it.question, it.answer, (), tuple(it.choices), _meta(it))


def _text(task: str, it: TextItem, _: tuple[str, ...]) -> Example:
    return Example(it.id, task, it.text, "", (), (), _meta(it))


@dataclass(frozen=True)
class KindSpec:
    item: type[_Item]
    to_example: Callable[[str, Any, tuple[str, ...]], Example]
    metrics: tuple[str, ...]
    """Allowed metrics; the first ones are the defaults."""
    instruction: str


KINDS: dict[str, KindSpec] = {
    "short-answer": KindSpec(
        ShortAnswerItem, _short_answer, ("exact_match", "f1"), "Answer the question with a short phrase."
    ),
    "classification": KindSpec(
        ClassificationItem, _classification, ("accuracy", "balanced_accuracy"),
        "Classify the text. Answer with one label.",
    ),
    "multiple-choice": KindSpec(
        MultipleChoiceItem, _multiple_choice, ("accuracy",), "Answer the question."
    ),
    "language-modeling": KindSpec(TextItem, _text, ("cross_entropy",), ""),
}


# ---------------------------------------------------------------- suite.toml schema
class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    splits: dict[Literal["train", "dev", "test"], str]
    metrics: list[str] | None = None
    labels: list[str] | None = None
    instruction: str | None = None
    max_new_tokens: int = Field(32, ge=1, le=2048)

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        allowed = KINDS[self.kind].metrics
        for m in self.metrics or []:
            if m not in allowed:
                raise ValueError(f"unknown metric {m!r} for kind {self.kind!r} (allowed: {', '.join(allowed)})")
        if "test" not in self.splits:
            raise ValueError("splits must include 'test'")
        if self.kind == "classification" and not self.labels:
            raise ValueError("a classification task needs 'labels'")
        if self.labels and len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be distinct")
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
    kind: Kind
    instruction: str
    metrics: tuple[str, ...]
    labels: tuple[str, ...]
    max_new_tokens: int
    train: tuple[Example, ...]
    dev: tuple[Example, ...]
    test: tuple[Example, ...]


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


def _pydantic_problems(where: str, err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        out.append(f"{where}: field '{loc}': {e['msg']}")
    return out


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
        raise SuiteError(_pydantic_problems(str(path), e)) from None


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
    kind = KINDS[spec.kind]
    labels = tuple(spec.labels or ())
    out: list[Example] = []
    for n, obj in _jsonl_lines(path, problems):
        try:
            item = kind.item.model_validate(obj)
        except ValidationError as e:
            problems.extend(_pydantic_problems(f"{path}:{n}", e))
            continue
        if labels and isinstance(item, ClassificationItem) and item.label not in labels:
            problems.append(f"{path}:{n}: field 'label': {item.label!r} is not one of the task's labels")
            continue
        out.append(kind.to_example(task, item, labels))
    return tuple(out)


def _load_task(root: Path, name: str, spec: TaskSpec, problems: list[str]) -> Task:
    splits: dict[str, tuple[Example, ...]] = {s: () for s in SPLITS}
    for split, rel in spec.splits.items():
        path = root / rel
        if not path.is_file():
            problems.append(f"{root / 'suite.toml'}: field 'tasks.{name}.splits.{split}': no file {path}")
            continue
        before = len(problems)
        splits[split] = _load_split(path, name, spec, problems)
        if split == "test" and not splits[split] and len(problems) == before:
            problems.append(f"{path}: the test split of task '{name}' is empty")
    _check_unique_ids(root, name, spec, splits, problems)
    return Task(
        name=name,
        kind=spec.kind,
        instruction=spec.instruction if spec.instruction is not None else KINDS[spec.kind].instruction,
        metrics=tuple(spec.metrics or KINDS[spec.kind].metrics),
        labels=tuple(spec.labels or ()),
        max_new_tokens=spec.max_new_tokens,
        train=splits["train"],
        dev=splits["dev"],
        test=splits["test"],
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


# ---------------------------------------------------------------- finding suites by name
def suite_search_path() -> list[Path]:
    """Where named suites are looked up: $HARNESS_SUITES_PATH, ./suites, then the built-in suites."""
    env = [Path(p) for p in os.environ.get("HARNESS_SUITES_PATH", "").split(os.pathsep) if p]
    builtin = Path(__file__).resolve().parent.parent / "suites"
    return [*env, Path.cwd() / "suites", builtin]


def available_suites() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in suite_search_path():
        if base.is_dir():
            for d in sorted(base.iterdir()):
                if (d / "suite.toml").is_file():
                    found.setdefault(d.name, d.resolve())
    return found


def _adapter_ref(ref: str) -> tuple[str, str] | None:
    """(format, source) for a ref like `contractnli:data/dev.json` whose format is registered."""
    fmt, sep, source = ref.partition(":")
    if not sep or Path(ref).exists():
        return None
    from harness.data.formats import formats

    return (fmt, source) if fmt in formats() else None


def resolve_suite(ref: str) -> Path:
    """A suite folder from a name (searched on the suite path), a path to a folder, or
    `<format>:<path>`: the source imported once into the cache (see harness.data.formats)."""
    path = Path(ref).expanduser()
    if (path / "suite.toml").is_file():
        return path.resolve()
    if adapter := _adapter_ref(ref):
        from harness.data.formats import cached_import

        return cached_import(*adapter)
    known = available_suites()
    if ref in known:
        return known[ref]
    if path.exists():
        raise HarnessError(f"{path}: no suite.toml in this folder")
    fmt, sep, _ = ref.partition(":")
    if sep and len(fmt) > 1:
        from harness.data.formats import formats

        raise HarnessError(f"unknown suite {ref!r}: {fmt!r} is not a known format (formats: {', '.join(formats())})")
    hint = difflib.get_close_matches(ref, list(known), n=1)
    msg = f"unknown suite {ref!r}"
    msg += f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(known) or 'none'})"
    raise HarnessError(msg)


def load_suite(ref: str, dedupe: bool = True) -> Suite:
    """The suite `ref` names (see `resolve_suite`), validated; with `dedupe`, duplicate items inside
    a split are dropped (the first kept) and counted in `Suite.notes` (see harness.data.hygiene)."""
    suite = load_suite_dir(resolve_suite(ref))
    if not dedupe:
        return suite
    from harness.data.hygiene import drop_duplicates

    return drop_duplicates(suite)
