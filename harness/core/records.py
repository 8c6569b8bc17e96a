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
    main_metric: str | None = None
    """The per-item metric the task is judged by (its suite.toml `main_metric`, else its kind's)."""


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
class TrainingBudget:
    """How much a weight strategy trained, and what stopped it: part of the result, since a capped
    fine-tune is not a converged one."""

    steps: int
    """Optimizer steps run."""
    planned_steps: int
    """Steps the epoch (or max_steps) budget asks for, before any CPU cap."""
    epochs: float
    """Passes over the training rows actually made."""
    stopped_by: Literal["epochs", "max_steps", "cpu_max_steps", "early_stopping"]
    reason: str
    """The same in words, with the numbers."""
    precision: str
    """fp32, or bf16-mixed (fp32 trainable weights, bf16 autocast)."""
    effective_batch: int
    """Rows per optimizer step (batch size x gradient accumulation, over all processes)."""
    learning_rate: float
    """The peak rate used (the CPU default when the CPU cap applies)."""

    @property
    def capped(self) -> bool:
        """Stopped by the CPU step cap before the planned budget."""
        return self.stopped_by == "cpu_max_steps"


@dataclass(frozen=True)
class ContinualMatrix:
    """Sequential training's forgetting matrix (continual learning): row i is the model after stage i
    (the first row, `before`, is the model before any stage), column j is task j in the suite's order,
    scored on its dev split (its test split when it has no dev) with its main per-item metric."""

    stages: tuple[str, ...]
    """Row names: "before", then the task trained in each stage, in training order."""
    tasks: tuple[str, ...]
    metrics: tuple[str, ...]
    """Each column's metric (the task's main metric)."""
    splits: tuple[str, ...]
    """Each column's split: dev, or test when the task has no dev split."""
    scores: tuple[tuple[float, ...], ...]
    """scores[i][j]: task j's mean after stage i."""
    items: tuple[tuple[tuple[float, ...], ...], ...] = ()
    """items[i][j]: task j's per-item scores after stage i (same items in every row: paired intervals)."""


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
    """Strategy-specific costs, e.g. index_build_s, index_chunks, train_steps. `measure_s`: seconds of
    wall_s spent measuring for the report (sequential training's scores after each stage), not on
    adapting: the cost model leaves them out."""
    update: KnowledgeUpdate | None = None
    curve: tuple[dict[str, float], ...] = ()
    """Training curve: one row per logging or evaluation step (step, train_loss or dev_loss)."""
    budget: TrainingBudget | None = None
    """Weight strategies: the training budget and what stopped it."""
    cached: dict[str, float] = field(default_factory=dict)
    """Provenance, never a result: work this adaptation loaded from a cache instead of doing, e.g.
    `index_load_s`, and `reused_s`, the seconds that work took when it was done (the cost model adds
    them back, so a warm cache never makes a strategy look free)."""
    continual: ContinualMatrix | None = None
    """Sequential training (`schedule = "sequential"`): every task's score after every stage."""


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
    compute_dtype: str | None = None
    """What the models computed in: float32, or bfloat16 (bf16 weights and autocast; harness.core.precision)."""


@dataclass(frozen=True)
class Retention:
    """General-ability figures of the adapted model next to the untouched base model's, on the same
    items and byte-identical requests: what adapting cost outside the domain (forgetting)."""

    suite: str
    tasks: tuple[TaskResult, ...]
    base: tuple[TaskResult, ...]
    ids: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """task -> item ids, in the order of `items` and `base_items`."""
    items: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """task -> per-item score of the adapted model (choices: 1/0 correct; text: cross-entropy)."""
    base_items: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """task -> per-item score of the base model."""
    method: str = ""
    """How the items were scored (harness.run.retention.METHOD)."""
    shared_weights: bool = False
    """The strategy does not change the weights: retention is the base's by construction, not re-scored."""


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
    family: str = ""
    """The strategy's family: context (the base's weights), weights or hybrid."""
    work: dict[str, float] = field(default_factory=dict)
    """The work the cell did, measured so that it does not move with the machine's load: process CPU
    seconds (adapt_cpu_s, eval_cpu_s), tokens trained and evaluated, queries answered, FLOPs estimated
    from the model's size (adapt_flops, eval_flops; see harness.run.work) and the machine's measured
    matmul throughput (flops_per_s)."""
    phase_s: dict[str, float] = field(default_factory=dict)
    """Wall seconds per phase: adapt, each task's evaluation (eval:<task>), retention."""
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
