"""Rehearsal: LoRA or full fine-tuning with general-text replay mixed into the training data, to
mitigate forgetting. Replay rows are plain next-token-loss examples (every token a label) drawn,
seeded, from a general-text replay corpus; the task rows, dev split, loop and budget are exactly
those of `lora` / `full-ft` (harness.strategy.train_weights), so `rehearsal` against the same method
without replay isolates the effect of replay.

The replay corpus is never the retention test data: by default it is `replay.jsonl` beside the
suite's retention suite (suites/general/replay.jsonl: 81 paragraphs of encyclopedic English written
for this project, on topics that the retention suite's text task does not cover).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from harness_strategies.weights import LoraOptions, lora_or_full, method_rates
from pydantic import Field

from harness.core.errors import HarnessError
from harness.data.catalog import resolve_suite
from harness.strategy import (
    Adapted,
    Example,
    ModelRuntime,
    Prompt,
    RunContext,
    Suite,
    Task,
    TrainCall,
    TrainResult,
    prompts_as_trained,
    sft_pairs,
    sft_train,
    text_rows,
    train_weights,
)

REPLAY_FILE = "replay.jsonl"


class RehearsalOptions(LoraOptions):
    method: Literal["lora", "full-ft"] = Field("lora", description="What trains: LoRA adapters (the LoRA "
                                                "options apply) or every weight of a copy.")
    learning_rate: float | None = Field(None, gt=0, le=1.0, description="None: the method's default "
                                        "(lora 2e-4, full-ft 2e-5).")
    cpu_learning_rate: float | None = Field(None, gt=0, le=1.0, description="Under the CPU step cap; None: the "
                                            "method's default (lora 1e-3, full-ft 1e-4).")
    replay_fraction: float = Field(0.25, ge=0, lt=1, description="Share of the training rows that are "
                                   "general-text replay (0: none, the plain method).")
    replay_path: str | None = Field(None, description="JSONL of {id, text} replay paragraphs; None: "
                                    "replay.jsonl of the suite's retention suite (else of `general`).")


def replay_source(suite: Suite, path: str | None) -> Path:
    """The replay corpus file: `path`, or replay.jsonl beside the retention suite."""
    if path:
        return Path(path).expanduser()
    return resolve_suite(suite.retention or "general") / REPLAY_FILE


def read_replay(path: Path) -> list[str]:
    """Replay paragraphs from a JSONL file of objects with a non-empty `text`."""
    if not path.is_file():
        raise HarnessError(f"replay corpus not found: {path} (set replay_path to a JSONL of {{id, text}} lines)")
    texts = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            text = json.loads(line).get("text")
        except (json.JSONDecodeError, AttributeError):
            text = None
        if not isinstance(text, str) or not text.strip():
            raise HarnessError(f"{path}:{n}: a replay line must be a JSON object with a non-empty 'text'")
        texts.append(text)
    if not texts:
        raise HarnessError(f"{path}: the replay corpus is empty")
    return texts


def replay_count(n_task: int, fraction: float) -> int:
    """Replay rows so that they make up `fraction` of task + replay rows."""
    return math.ceil(n_task * fraction / (1 - fraction)) if fraction > 0 else 0


def draw_replay(texts: list[str], n: int, rng: Any) -> list[str]:
    """`n` paragraphs: whole shuffled passes over the corpus (each used before any repeats)."""
    out: list[str] = []
    while len(out) < n:
        out += [texts[i] for i in rng.permutation(len(texts))]
    return out[:n]


class Rehearsal:
    """`lora` or `full-ft` with a share of general-text replay in the training rows."""

    name: ClassVar[str] = "rehearsal"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = "LoRA or full fine-tuning with general-text replay mixed in, against forgetting."
    Options: ClassVar[type[RehearsalOptions]] = RehearsalOptions

    def __init__(self, options: RehearsalOptions):
        self.options = options

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        return lora_or_full(base, self.options)

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return train_weights(self, run, suite, train=self._train)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)

    def _train(self, call: TrainCall) -> TrainResult:
        """The method's own training, with replay rows added; the method's default learning rate
        (the lora or full-ft default) unless one is set."""
        o = self.options
        budget = o.model_copy(update=method_rates(o))
        n_task = len(sft_pairs(call.runtime, call.suite, "train", o.system))
        source = replay_source(call.suite, o.replay_path)
        n = replay_count(n_task, o.replay_fraction)
        texts = draw_replay(read_replay(source), n, call.run.rng("rehearsal", call.phase)) if n else []
        note = (f"replay: {len(texts)} general-text rows ({o.replay_fraction:.0%} of training rows) "
                f"from {source.name} sha256 {_sha256(source)[:12]}" if n else "replay: none")
        rows = text_rows(call.runtime, texts, o.max_seq_len)
        result = sft_train(call.model, call.runtime, call.suite, budget, call.out, call.run.seed, call.run.device,
                           call.optimizer, extra_train=rows, launch=call.launch)
        extras = {"replay_rows": float(len(texts)), "task_rows": float(n_task)}
        return replace(result, extras={**result.extras, **extras}, notes=note)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
