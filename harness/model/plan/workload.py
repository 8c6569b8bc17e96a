"""A cell's planned work in tokens, read from the suite before anything runs: training rows (the train
split as the weight strategies render it: system prompt, instruction, input, answer), the steps the
budget allows (harness.model.training.step_budget: the CPU cap, the epochs), the dev passes and
checkpoints, and the evaluation prompts each strategy builds (few-shot's solved turns, RAG's chunks,
soft prompts' virtual tokens).

Tokens are counted with the model's tokenizer when it is on disk already, else estimated as characters
/ CHARS_PER_TOKEN; each chat message adds MESSAGE_TOKENS of template. The suite is read by attribute
(`tasks`, each with `train`, `dev`, `test` examples and a `spec`), so this layer needs no import of the
data layer above it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from harness.model.plan.footprint import Shapes
from harness.model.plan.timing import Workload
from harness.model.training import LoopOptions, step_budget

CHARS_PER_TOKEN = 4.0
"""Without a tokenizer (legal-qa measured 3.7 for SmolLM2, 4.2 for Gemma 3)."""
MESSAGE_TOKENS = 5
"""Chat template tokens per message (ChatML: <|im_start|>role, newline, <|im_end|>, newline)."""
ANSWER_END_TOKENS = 2
"""End of turn and end of text after a trained model's answer."""
WORDS_TO_TOKENS = 1.35
"""RAG chunk sizes are in words."""

Counter = Callable[[str], int]


def token_counter(tokenizer: Any | None) -> Counter:
    if tokenizer is None:
        return lambda text: math.ceil(len(text) / CHARS_PER_TOKEN)
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class TaskTokens:
    """One task's items in tokens (user turn = instruction + input; answer = the target)."""

    trains: bool
    generates: bool
    scores_text: bool
    max_new: int
    train_rows: tuple[int, ...]
    dev_rows: tuple[int, ...]
    test_users: tuple[int, ...]
    test_choices: tuple[int, ...]
    """Tokens of each test item's choices, summed (0 for generation)."""
    shot_tokens: float
    """Mean user turn + answer of a train item (a few-shot example)."""
    max_answer: int
    """The longest train answer: where a model trained on them stops generating."""
    test_chars: int
    train_labels: tuple[int, ...] = ()
    """Labelled tokens (the answer turn) of each train row, as train_rows (empty: every token)."""
    dev_labels: tuple[int, ...] = ()


def task_tokens(task: Any, count: Counter, limit: int | None) -> TaskTokens:
    """A task's items in tokens, the system prompt left out (each cell adds its own)."""
    spec = task.spec
    instruction = count(task.instruction) if task.instruction else 0

    def user(ex: Any) -> int:
        return instruction + count(spec.show(ex)) + MESSAGE_TOKENS

    def row(ex: Any) -> int:  # user and answer turns and the end-of-sequence token
        return user(ex) + count(spec.answer(ex)) + MESSAGE_TOKENS + 1

    def labelled(ex: Any) -> int:  # the answer and its end tokens take the loss
        return count(spec.answer(ex)) + ANSWER_END_TOKENS

    test = list(task.test[:limit])
    shots = [user(ex) + count(spec.answer(ex)) + MESSAGE_TOKENS for ex in task.train] or [0]
    return TaskTokens(
        trains=bool(spec.trains), generates=not spec.ranks_choices and not spec.measures_text,
        scores_text=bool(spec.measures_text), max_new=int(task.max_new_tokens),
        train_rows=tuple(row(ex) for ex in task.train) if spec.trains else (),
        dev_rows=tuple(row(ex) for ex in task.dev) if spec.trains else (),
        test_users=tuple(user(ex) for ex in test),
        test_choices=tuple(sum(count(c) for c in ex.choices) for ex in test),
        shot_tokens=sum(shots) / len(shots), test_chars=sum(len(ex.input) for ex in test),
        max_answer=max((count(spec.answer(ex)) for ex in task.train), default=0),
        train_labels=tuple(labelled(ex) for ex in task.train) if spec.trains else (),
        dev_labels=tuple(labelled(ex) for ex in task.dev) if spec.trains else (),
    )


@dataclass(frozen=True)
class SuiteTokens:
    tasks: tuple[tuple[str, TaskTokens], ...]
    """(task kind, its tokens)."""
    corpus_chars: int
    train_chars: int

    @property
    def train_rows(self) -> list[int]:
        return [n for _, t in self.tasks for n in t.train_rows]

    @property
    def dev_rows(self) -> list[int]:
        return [n for _, t in self.tasks for n in t.dev_rows]


def suite_tokens(suite: Any, count: Counter, limit: int | None) -> SuiteTokens:
    """Every task of `suite` in tokens (test items cut to `limit`)."""
    tasks = tuple((t.kind, task_tokens(t, count, limit)) for t in suite.tasks)
    corpus = sum(len(getattr(d, "text", "")) for d in getattr(suite, "corpus", ()))
    train = sum(len(ex.input) for t in suite.tasks for ex in t.train)
    return SuiteTokens(tasks, corpus, train)


def loop_options(options: dict[str, Any]) -> LoopOptions:
    """The training loop's options among a weight strategy's (the rest are the strategy's own); a None is a
    strategy's "the method's default" (ewc's, dpo's learning rates) and leaves the loop's default."""
    return LoopOptions.model_validate({k: v for k, v in options.items()
                                       if k in LoopOptions.model_fields and v is not None})


def batched(lengths: Sequence[int], labels: Sequence[int], batch: int, cap: int) -> tuple[float, int, float, int]:
    """Rows batched by length (the trainer's group_by_length sampling; exact while the rows fit one of its
    megabatches, 50 batches): (mean padded row length, the longest row, mean positions per row whose logits
    the loss needs, the most such positions in one batch). A row's labelled tokens end it (cut from the left
    at `cap`); a batch computes logits at the union of its rows' positions before them
    (harness.model.loss.loss_positions). Without `labels`, every position takes the loss."""
    rows = sorted((min(n, cap), min(a, n, cap) if labels else min(n, cap))
                  for n, a in zip(lengths, labels or lengths, strict=True))
    if not rows:
        return 0.0, 0, 0.0, 0
    widths, kept = [], []
    for i in range(0, len(rows), batch):
        group = rows[i:i + batch]
        widths.append(group[-1][0] * len(group))
        union = set().union(*(range(max(0, n - a - 1), n - 1) for n, a in group))
        kept.append(len(union))
    sizes = [len(rows[i:i + batch]) for i in range(0, len(rows), batch)]
    per_row = sum(k * m for k, m in zip(kept, sizes, strict=True)) / len(rows)
    return sum(widths) / len(rows), rows[-1][0], per_row, max(kept)


def training(tokens: SuiteTokens, options: dict[str, Any], device: str, system: int = 0,
             virtual: int = 0, context: tuple[str, dict[str, Any]] | None = None,
             all_logits: bool = False) -> dict[str, Any]:
    """The training part of a Workload and the training shapes (steps, rows, widths, dev, checkpoints).
    `context`: (hybrid name, its options) when its weights train on its context prompts
    (harness.strategy.compose): each row grows by the context the task's prompts get (the longer row limit
    that needs is in the hybrid's validated weights options)."""
    o = loop_options(options)

    def grown(rows: str) -> list[int]:
        return [n + system + int(extra_prompt(*context, kind, t) if context else 0)
                for kind, t in tokens.tasks for n in getattr(t, rows)]

    rows = grown("train_rows")
    if not rows:
        return {}
    steps = step_budget(o, device, len(rows))
    if steps < 0:
        steps = math.ceil(o.epochs * max(1, math.ceil(len(rows) / (o.batch_size * o.grad_accum))))
    # soft prompts' virtual tokens shift every position: they train with logits everywhere, as all_logits does
    labels = [] if virtual or all_logits else [a for _, t in tokens.tasks for a in t.train_labels]
    labels = labels if len(labels) == len(rows) else []
    width, longest, kept, worst = batched(rows, labels, o.batch_size, o.max_seq_len)
    dev = grown("dev_rows")
    dev_labels = [a for _, t in tokens.tasks for a in t.dev_labels] if labels else []
    evaluations = steps // o.eval_every if dev else 0
    return {"steps": steps, "rows_per_step": o.batch_size * o.grad_accum, "train_tokens_per_row": width + virtual,
            "train_logits_per_row": kept if labels else None,
            "dev_evaluations": evaluations, "dev_tokens": float(sum(min(n, o.max_seq_len) for n in dev)),
            "dev_logits": float(sum(dev_labels)) if len(dev_labels) == len(dev) else None,
            "checkpoints": steps // o.eval_every + (1 if steps % o.eval_every else 0),
            "train_batch": o.batch_size, "train_seq": min(longest, o.max_seq_len),
            "train_logits": worst if labels else None}


def extra_prompt(strategy: str, options: dict[str, Any], kind: str, t: TaskTokens) -> float:
    """Tokens a context strategy adds to one prompt of a task (few-shot turns, RAG chunks)."""
    base = strategy.split("+", 1)[0]
    ctx = dict(options.get("context", {})) if "+" in strategy else options
    if base == "few-shot":
        return int(ctx.get("k", 6)) * t.shot_tokens
    if base == "rag" and (kind in ctx.get("kinds", [kind]) or not t.trains):
        return (int(ctx.get("k", 3)) * int(ctx.get("chunk_size", 120)) * WORDS_TO_TOKENS
                + int(ctx.get("shots", 0)) * t.shot_tokens)
    return 0.0


def evaluation(tokens: SuiteTokens, strategy: str, options: dict[str, Any], eval_batch: int, system: int = 0,
               virtual: int = 0, trained: bool = False) -> dict[str, Any]:
    """The evaluation part of a Workload and its shapes: prompt tokens; the positions among them whose
    logits are computed (every position of a scored text, else each prompt's last and the choices'
    tokens); generation steps (per batch the task's max_new_tokens, or for a model trained on its answers
    the longest one and two end tokens); the longest row."""
    prompt, head, steps, longest, all_logits = 0.0, 0.0, 0, 0, False
    reasons = strategy.split("+", 1)[0] == "cot"  # generates a reasoned reply for every kind
    ctx = dict(options.get("context", {})) if "+" in strategy else options
    for kind, t in tokens.tasks:
        if reasons and not t.scores_text:
            t = replace(t, generates=True, max_new=int(ctx.get("max_new_tokens", 256)), max_answer=0)
        extra = extra_prompt(strategy, options, kind, t) + virtual + system
        n = len(t.test_users)
        prompt += sum(t.test_users) + n * extra + sum(t.test_choices)
        head += sum(t.test_users) + n * extra if t.scores_text else n + sum(t.test_choices)
        if t.generates:
            per_batch = min(t.max_new, t.max_answer + ANSWER_END_TOKENS) if trained and t.max_answer else t.max_new
            steps += math.ceil(n / eval_batch) * per_batch
        all_logits = all_logits or t.scores_text
        if n:
            longest = max(longest, int(max(t.test_users) + extra + (t.max_new if t.generates else max(t.test_choices))))
    return {"prompt_tokens": prompt, "head_tokens": head, "decode_steps": steps, "eval_batch": eval_batch,
            "eval_seq": longest, "eval_all_logits": all_logits}


def embedding(tokens: SuiteTokens, strategy: str, options: dict[str, Any] | None = None) -> float:
    """Tokens the sentence embedder reads: few-shot the train and test inputs; RAG its corpus and questions
    (none with bm25), plus the train inputs when it shows solved examples."""
    base = strategy.split("+", 1)[0]
    ctx = dict((options or {}).get("context", {})) if "+" in strategy else dict(options or {})
    test = sum(t.test_chars for _, t in tokens.tasks)
    if base == "few-shot":
        return (tokens.train_chars + test) / CHARS_PER_TOKEN
    if base == "rag":
        dense = (tokens.corpus_chars + test) if ctx.get("retriever", "bm25") != "bm25" else 0
        shots = (tokens.train_chars + test) if ctx.get("shots") else 0
        return (dense + shots) / CHARS_PER_TOKEN
    return 0.0


def workload(tokens: SuiteTokens, strategy: str, options: dict[str, Any], device: str, eval_batch: int,
             trains: bool, system: int = 0, virtual: int = 0, all_logits: bool = False) -> tuple[Workload, Shapes]:
    """The planned work and the memory shapes of one cell (`system`: its system prompt's tokens)."""
    on_context = "+" in strategy and options.get("train_on_context", True)
    train = (training(tokens, dict(options.get("weights", options)), device, system, virtual,
                      (strategy, options) if on_context else None, all_logits) if trains else {})
    ev = evaluation(tokens, strategy, options, eval_batch, system, virtual, trains)
    shape_keys = ("train_batch", "train_seq", "train_logits", "eval_batch", "eval_seq", "eval_all_logits")
    both = {**train, **ev}
    shapes = Shapes(**{k: both[k] for k in shape_keys if k in both})
    work = Workload(**{k: v for k, v in both.items() if k not in shape_keys or k == "eval_batch"},
                    embed_tokens=embedding(tokens, strategy, options))
    return work, shapes
