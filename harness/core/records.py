"""Typed, frozen records. Everything a run produces is one of these, serialized as JSON.

Records are plain dataclasses inside the program; pydantic's TypeAdapter turns them into JSON
and back (validating on the way in), so the schema lives in one place: the field annotations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

SCHEMA_VERSION = 1

T = TypeVar("T")


@dataclass(frozen=True)
class Example:
    """One item of a task."""

    id: str
    task: str
    input: str
    """The question (short-answer, multiple-choice) or the text to classify or score."""
    target: str
    """The gold answer, label or choice text."""
    aliases: tuple[str, ...] = ()
    """Other acceptable answers (short-answer only)."""
    choices: tuple[str, ...] = ()
    """Candidate continuations scored by loglikelihood (classification labels, multiple-choice options)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Every other field of the JSONL line (doc_id, evidence, coverage...)."""


@dataclass(frozen=True)
class Document:
    """One document of a suite's retrieval corpus; its id is the file stem."""

    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Prompt:
    """What the model sees for one example: a chat that ends with a user turn."""

    messages: tuple[Message, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    """What the strategy wants kept with the prediction, e.g. `retrieved` (document ids, best
    first) and `retrieval_s`; the harness scores retrieval from it."""


@dataclass(frozen=True)
class Prediction:
    """The model's answer to one example, with its per-item scores and cost."""

    example_id: str
    task: str
    output: str
    """Generated text, or the chosen label/choice for loglikelihood tasks."""
    target: str
    scores: dict[str, float]
    """Per-item metric scores (exact_match, f1, accuracy...)."""
    latency_s: float
    """Wall time of the batch this item was answered in: what a query waited in batched serving."""
    prompt_tokens: int
    output_tokens: int
    choice_logprobs: tuple[float, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    """Example metadata kept for breakdowns (coverage tag, doc id)."""


@dataclass(frozen=True)
class TaskResult:
    task: str
    kind: str
    n: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class KnowledgeUpdate:
    """What it cost to absorb new documents after adapting: re-indexing for retrieval strategies,
    further training for weight strategies. Same fields for both, so the report can compare them."""

    n_docs: int
    wall_s: float
    method: str
    """e.g. "index-add" or "continued-training"."""
    n_items: int
    """Test items whose gold document is one of the new documents."""
    recall_after: float | None = None
    """Share of those items whose gold document is retrieved after the update (retrieval only)."""


@dataclass(frozen=True)
class AdaptReport:
    """What adapting cost. Prompt-only strategies report zero trainable parameters."""

    trainable_params: int = 0
    total_params: int = 0
    wall_s: float = 0.0
    peak_mem_bytes: int = 0
    artifact_bytes: int = 0
    artifact_sha256: str | None = None
    """sha256 of the saved weights when they were not kept (full fine-tuning with keep_weights off)."""
    train_tokens: int = 0
    notes: str = ""
    extras: dict[str, float] = field(default_factory=dict)
    """Strategy-specific costs, e.g. index_build_s, index_chunks, train_steps."""
    update: KnowledgeUpdate | None = None
    curve: tuple[dict[str, float], ...] = ()
    """Training curve: one row per logging or evaluation step (step, train_loss or dev_loss)."""


@dataclass(frozen=True)
class LatencySummary:
    p50_s: float
    p95_s: float
    mean_s: float
    items_per_s: float
    prompt_tokens_mean: float
    output_tokens_mean: float
    batch_size: int | None
    """None: chosen automatically from free memory for each task."""


@dataclass(frozen=True)
class Provenance:
    harness_version: str
    packages: dict[str, str]
    git_commit: str | None
    git_dirty: bool | None
    python: str
    platform: str
    cpu_count: int
    device: str
    accelerator: str | None
    started_at: str
    finished_at: str
    trust_remote_code: bool = False
    """Whether model code from the model folder was allowed to run (off unless the user asked)."""


@dataclass(frozen=True)
class Retention:
    """General-ability figures of the adapted model next to the untouched base model's, on the same
    items and prompts: what adapting cost outside the domain (forgetting)."""

    suite: str
    tasks: tuple[TaskResult, ...]
    base: tuple[TaskResult, ...]


CellStatus = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class CellRecord:
    """Everything one (strategy, seed) cell produced. Its id is the hash of its inputs."""

    cell_id: str
    suite: str
    suite_hash: str
    strategy: str
    options: dict[str, Any]
    seed: int
    model: str
    limit: int | None
    status: CellStatus
    error: str | None = None
    """The failure message (failed) or the reason the strategy cannot run here (skipped)."""
    tasks: tuple[TaskResult, ...] = ()
    predictions: tuple[Prediction, ...] = ()
    adapt: AdaptReport = field(default_factory=AdaptReport)
    latency: LatencySummary | None = None
    retention: Retention | None = None
    eval_wall_s: float = 0.0
    eval_peak_mem_bytes: int = 0
    provenance: Provenance | None = None
    schema_version: int = SCHEMA_VERSION


_ADAPTERS: dict[type, Any] = {}


def _adapter(cls: type) -> Any:
    if cls not in _ADAPTERS:
        from pydantic import TypeAdapter

        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


def to_json(record: Any) -> str:
    """Serialize a record to indented JSON."""
    return str(_adapter(type(record)).dump_json(record, indent=1).decode())


def from_json(cls: type[T], text: str | bytes) -> T:
    """Parse and validate JSON into a record of type `cls`."""
    result: T = _adapter(cls).validate_json(text)
    return result
