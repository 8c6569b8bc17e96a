"""Preference pairs for the preference strategies (dpo, rlhf): a task's own `pairs` split
(harness.data.kinds.preference), or, where a task has none, a seeded derivation from its train split.

The derivation, per train item (items whose text is also a test item's are left out):
- chosen: the gold answer (the assistant turn a perfect model writes, as supervised training uses);
- rejected: the base model's own answer to the item, zero-shot, when it is wrong (main metric below
  0.5 and not the gold answer after normalization): `source = "base-answer"`; the base's answers are
  computed once per model and suite and cached (`base_answers`);
- else a wrong candidate (a choice task's other label or option, drawn seeded): `"wrong-choice"`;
- else another train item's answer (drawn seeded): `"other-answer"`.
Draws are seeded by (seed, task, item id), so a pair does not depend on the order or number of items.

`python -m harness.data.pairs SUITE_DIR [--model M] [--seed 0]` writes the derived pairs of every task
into `<task>/pairs.jsonl` and prints the suite.toml lines that make them the task's `pairs` split.
`pair_findings` is what `harness suites check` reports:
pairs whose chosen and rejected answers are the same, and pairs whose prompt is a test item (leakage).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.core.cache import atomic_write_text, stable_hash
from harness.core.records import Example
from harness.data.kinds.preference import SPLIT, PreferencePair, pair_line
from harness.data.overlap import normalize
from harness.data.prompts import DEFAULT_SYSTEM, answer_text, zero_shot_prompt
from harness.data.suites import Suite, Task

if TYPE_CHECKING:
    from harness.model.runtime import ModelRuntime

DERIVATION = 1
"""Version of the derivation rules above (part of the cache key of the base's answers)."""
BASE_ANSWER, WRONG_CHOICE, OTHER_ANSWER = "base-answer", "wrong-choice", "other-answer"
SAME_ANSWERS, TEST_PROMPT = "pair-same-answers", "pair-test-prompt"
WRONG_BELOW = 0.5
"""A base answer is wrong when its main-metric score is below this (0/1 metrics: when it is 0)."""

BaseAnswers = Mapping[str, Mapping[str, tuple[str, float]]]
"""task -> item id -> (the base model's answer, its main-metric score)."""


def preference_tasks(suite: Suite) -> list[Task]:
    """Tasks that preference strategies learn: those whose items train and that are scored."""
    return [t for t in suite.tasks if t.spec.trains and t.main_metric is not None]


def _rng(seed: int, *keys: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def _golds(ex: Example, chosen: str) -> set[str]:
    return {normalize(a) for a in (ex.target, *ex.aliases, chosen)}


def leak_texts(task: Task) -> set[str]:
    """The normalized identities of the task's test items (what a pair prompt must not be)."""
    return {normalize(task.spec.identity(ex)) for ex in task.test}


def derive_task_pairs(task: Task, seed: int, base: Mapping[str, tuple[str, float]] | None = None,
                      ) -> tuple[PreferencePair, ...]:
    """The derived pairs of one task (see the module docstring); `base` holds the base model's answers."""
    leaked = leak_texts(task)
    out = []
    for ex in task.train:
        if normalize(task.spec.identity(ex)) in leaked:
            continue
        chosen = answer_text(task, ex)
        golds = _golds(ex, chosen)
        rng = _rng(seed, task.name, ex.id)
        answer, score = (base or {}).get(ex.id, ("", 1.0))
        if answer.strip() and score < WRONG_BELOW and normalize(answer) not in golds:
            rejected, source = answer.strip(), BASE_ANSWER
        elif wrong := [c for c in ex.choices if normalize(c) not in golds]:
            rejected, source = wrong[int(rng.integers(len(wrong)))], WRONG_CHOICE
        else:
            others = sorted({answer_text(task, o) for o in task.train if normalize(answer_text(task, o)) not in golds})
            if not others:
                continue
            rejected, source = others[int(rng.integers(len(others)))], OTHER_ANSWER
        out.append(PreferencePair(f"{ex.id}-pair", task.name, ex.id, chosen, rejected, source))
    return tuple(out)


def base_answers(rt: ModelRuntime, suite: Suite, tasks: Sequence[Task], cache_dir: Path | None,
                 system: str = DEFAULT_SYSTEM, batch_size: int | None = 8) -> dict[str, dict[str, tuple[str, float]]]:
    """The base model's zero-shot answer to every train item of `tasks`, with its main-metric score,
    computed once and cached under `cache_dir/pairs/`, keyed by model identity, suite data and prompt."""
    identity = rt.spec.identity if rt.spec is not None else type(rt.model).__name__
    key = stable_hash([DERIVATION, identity, suite.data_hash, system, [t.name for t in tasks]])
    path = cache_dir / "pairs" / f"base-answers-{key}.json" if cache_dir is not None else None
    if path is not None and path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        return {t: {i: (a, float(s)) for i, (a, s) in items.items()} for t, items in saved.items()}
    out: dict[str, dict[str, tuple[str, float]]] = {}
    for task in tasks:
        prompts = [zero_shot_prompt(task, ex, system) for ex in task.train]
        preds = task.spec.evaluate(rt, task, task.train, prompts, batch_size) if prompts else []
        metric = task.main_metric or ""
        out[task.name] = {p.example_id: (p.output, float(p.scores.get(metric, 0.0))) for p in preds}
    if path is not None:
        atomic_write_text(path, json.dumps(out, sort_keys=True))
    return out


def suite_pairs(suite: Suite, seed: int, rt: ModelRuntime | None = None, cache_dir: Path | None = None,
                system: str = DEFAULT_SYSTEM) -> dict[str, tuple[PreferencePair, ...]]:
    """Every preference task's pairs: its `pairs` split, else derived (with the base model's own wrong
    answers when `rt`, the base runtime, is given; else from wrong candidates and other answers only)."""
    tasks = preference_tasks(suite)
    derive = [t for t in tasks if not t.pairs and t.train]
    base = base_answers(rt, suite, derive, cache_dir, system) if rt is not None and derive else {}
    return {t.name: t.pairs or derive_task_pairs(t, seed, base.get(t.name)) for t in tasks}


def pair_example(task: Task, pair: PreferencePair) -> Example:
    """The item a pair's prompt names (by id, in any split), or an item whose input is the prompt's text."""
    for ex in (*task.train, *task.dev, *task.test):
        if ex.id == pair.prompt:
            return ex
    return Example(pair.id, task.name, pair.prompt, pair.chosen, (), tuple(task.labels))


@dataclass(frozen=True)
class PairFinding:
    """A problem of a pairs split: `kind` SAME_ANSWERS or TEST_PROMPT (a leak)."""

    kind: str
    task: str
    pair_id: str
    detail: str

    @property
    def is_leak(self) -> bool:
        return self.kind == TEST_PROMPT


def _finding(task: Task, pair: PreferencePair, test_ids: set[str], leaked: set[str]) -> PairFinding | None:
    if normalize(pair.chosen) == normalize(pair.rejected):
        return PairFinding(SAME_ANSWERS, task.name, pair.id, f"chosen and rejected are both {pair.chosen!r}")
    if pair.prompt in test_ids:
        return PairFinding(TEST_PROMPT, task.name, pair.id, f"prompt is test item {pair.prompt!r}")
    if normalize(task.spec.identity(pair_example(task, pair))) in leaked:
        return PairFinding(TEST_PROMPT, task.name, pair.id, "prompt is the text of a test item")
    return None


def pair_findings(suite: Suite, pairs: Mapping[str, Sequence[PreferencePair]] | None = None) -> list[PairFinding]:
    """The problems of the suite's pairs splits (or of `pairs`, task -> pairs): same answers, test prompts."""
    found = []
    for task in suite.tasks:
        test_ids, leaked = {ex.id for ex in task.test}, leak_texts(task)
        for pair in pairs.get(task.name, ()) if pairs is not None else task.pairs:
            if (f := _finding(task, pair, test_ids, leaked)) is not None:
                found.append(f)
    return found


def usable_pairs(suite: Suite, pairs: Mapping[str, Sequence[PreferencePair]]) -> tuple[list[PreferencePair], str]:
    """The pairs fit to train on (no same answers, no test prompt) and a sentence on what was dropped."""
    bad = {(f.task, f.pair_id): f.kind for f in pair_findings(suite, pairs)}
    kept = [p for task_pairs in pairs.values() for p in task_pairs if (p.task, p.id) not in bad]
    same = sum(1 for k in bad.values() if k == SAME_ANSWERS)
    note = f"dropped {same} pairs with the same answers and {len(bad) - same} with a test prompt" if bad else ""
    return kept, note


def sources(pairs: Sequence[PreferencePair]) -> str:
    """'base-answer 40, wrong-choice 38': how many pairs came from where."""
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.source or "unspecified"] = counts.get(p.source or "unspecified", 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def write_pairs(suite: Suite, pairs: Mapping[str, Sequence[PreferencePair]]) -> list[str]:
    """Write each task's pairs to `<suite root>/<task>/pairs.jsonl`; the suite.toml lines to add."""
    lines = []
    for task, task_pairs in pairs.items():
        path = suite.root / task / f"{SPLIT}.jsonl"
        atomic_write_text(path, "".join(json.dumps(pair_line(p), ensure_ascii=False) + "\n" for p in task_pairs))
        lines.append(f'[tasks.{task}] splits: {SPLIT} = "{task}/{SPLIT}.jsonl"  ({len(task_pairs)} pairs: '
                     f"{sources(task_pairs)})")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Derive and write a suite's pairs with a model (see the module docstring)."""
    import argparse

    from harness.data.suites import load_suite_dir
    from harness.model.load import load_runtime
    from harness.model.spec import resolve_model

    parser = argparse.ArgumentParser(prog="python -m harness.data.pairs", description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", type=Path, help="the suite folder")
    parser.add_argument("--model", default=None, help="the base model (default: the default model)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    suite = load_suite_dir(args.suite)
    suite = replace(suite, tasks=tuple(replace(t, pairs=()) for t in suite.tasks))  # derive afresh
    rt = load_runtime(resolve_model(args.model), device="cpu")
    for line in write_pairs(suite, suite_pairs(suite, args.seed, rt)):
        print(line)


if __name__ == "__main__":
    main()
