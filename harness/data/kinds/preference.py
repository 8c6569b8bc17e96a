"""The preference-pair split: an optional `pairs` file of a task (`splits = { ..., pairs = "x/pairs.jsonl" }`),
one JSON object a line, validated like every split (file:line: field 'name': message):

    {"id": "st-033-pair", "prompt": "st-033", "chosen": "18,750 crowns", "rejected": "12,000 crowns",
     "source": "base-answer"}

- `prompt`: the id of the task's item the pair answers (shown exactly as that item is shown), or the
  text of a question (shown as an item with that input would be);
- `chosen`, `rejected`: two answers (the assistant turn), the better one first;
- `source` (optional): where the rejected answer came from (harness.data.pairs names its derivations).

Not a task kind: pairs belong to a task and are shown with its instruction and kind. Preference
strategies (dpo, rlhf) train on them; harness.data.pairs derives them where a task has none and
finds their problems (`harness suites check`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.core.errors import validation_problems

SPLIT = "pairs"
"""The split name under a task's `splits` in suite.toml."""


class PairItem(BaseModel):
    """One JSONL line of a pairs split (unknown fields are errors: a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    chosen: str = Field(min_length=1)
    rejected: str = Field(min_length=1)
    source: str | None = None


@dataclass(frozen=True)
class PreferencePair:
    """A preferred and a dispreferred answer to one prompt of a task."""

    id: str
    task: str
    prompt: str
    """The id of one of the task's items, or the text of a question."""
    chosen: str
    rejected: str
    source: str = ""


def read_pairs(task: str, lines: Iterable[tuple[int, dict[str, Any]]], path: Path,
               problems: list[str]) -> tuple[PreferencePair, ...]:
    """The pairs of `lines` ((line number, object), as the suite loader reads JSONL); each bad line or
    repeated id is appended to `problems` as `file:line: field 'name': message`."""
    out: list[PreferencePair] = []
    seen: dict[str, int] = {}
    for n, obj in lines:
        try:
            item = PairItem.model_validate(obj)
        except ValidationError as e:
            problems.extend(validation_problems(f"{path}:{n}", e))
            continue
        if item.id in seen:
            problems.append(f"{path}:{n}: field 'id': duplicate id {item.id!r} (also on line {seen[item.id]})")
            continue
        seen[item.id] = n
        out.append(PreferencePair(item.id, task, item.prompt, item.chosen, item.rejected, item.source or ""))
    return tuple(out)


def pair_line(pair: PreferencePair) -> dict[str, str]:
    """The JSONL object of a pair (what `read_pairs` reads back)."""
    line = {"id": pair.id, "prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected}
    return {**line, "source": pair.source} if pair.source else line
