"""Shared prompt pieces: how an example is shown to the model and what a correct answer looks like.

Strategies compose these; keeping them in one place makes every strategy ask the same question.
"""

from __future__ import annotations

from harness.core.records import Example, Message, Prompt
from harness.data.suites import Task

DEFAULT_SYSTEM = "You are a precise legal assistant. Reply with the answer only, no explanation."


def user_text(task: Task, example: Example) -> str:
    """The user turn for one example: the task's instruction, then the example as its kind shows it
    (label and choice candidates are never listed: each is scored as the answer)."""
    body = task.spec.show(example)
    return f"{task.instruction}\n\n{body}" if task.instruction else body


def answer_text(task: Task, example: Example) -> str:
    """The assistant turn a perfect model would write (used for shots and for training)."""
    return task.spec.answer(example)


def zero_shot_prompt(task: Task, example: Example, system: str) -> Prompt:
    msgs = [Message("system", system)] if system else []
    return Prompt((*msgs, Message("user", user_text(task, example))))


def shots_prompt(task: Task, example: Example, shots: list[Example], system: str) -> Prompt:
    """A multi-turn chat: each shot as a user turn and its answer, then the example."""
    msgs = [Message("system", system)] if system else []
    for s in shots:
        msgs += [Message("user", user_text(task, s)), Message("assistant", answer_text(task, s))]
    return Prompt((*msgs, Message("user", user_text(task, example))))


def context_prompt(task: Task, example: Example, passages: list[tuple[str, str]], system: str) -> Prompt:
    """The example preceded by retrieved passages, each tagged with its id so answers can cite it."""
    msgs = [Message("system", system)] if system else []
    context = "\n\n".join(f"[{pid}] {text}" for pid, text in passages)
    user = f"Context passages:\n{context}\n\n{user_text(task, example)}"
    return Prompt((*msgs, Message("user", user)))
