"""Evaluation: prompts in, per-item predictions and task metrics out, through the shared runtime.

One function per task kind. Generative tasks are scored on the answer extracted from the output;
label and choice tasks by ranked loglikelihood of each candidate after the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from harness.core import metrics as M
from harness.core.records import Example, Prediction, Prompt, TaskResult
from harness.model.runtime import ModelRuntime
from harness.data.suites import Task

Evaluator = Callable[[ModelRuntime, Task, Sequence[Example], Sequence[Prompt], int | None], list[Prediction]]


_LEAD_IN = re.compile(r"^(the\s+)?(short\s+)?(final\s+)?answer(\s+to\s+(this|the|your)\s+question)?(\s+is)?\s*[:\-]\s*",
                      re.IGNORECASE)


def extract_answer(text: str) -> str:
    """The answer in a generated reply: the first non-empty line that is not a bare lead-in ("The
    answer is:"), without an "Answer:" prefix, surrounding quotes or a final period. Applied the
    same way to every strategy."""
    for line in (ln.strip() for ln in text.splitlines()):
        if not line or line.endswith(":"):
            continue
        line = _LEAD_IN.sub("", line).strip().strip("\"'*").strip()
        return line[:-1] if line.endswith(".") else line
    return ""


def _meta(example: Example, prompt: Prompt) -> dict[str, Any]:
    """Example fields kept for breakdowns, plus what the strategy attached to the prompt."""
    kept: dict[str, Any] = {k: example.meta[k] for k in ("coverage", "doc_id", "evidence_spans") if k in example.meta}
    return {**kept, **prompt.meta}


def _short_answer(
    rt: ModelRuntime, task: Task, examples: Sequence[Example], prompts: Sequence[Prompt], batch_size: int | None
) -> list[Prediction]:
    gens = rt.generate([rt.render(p) for p in prompts], task.max_new_tokens, batch_size)
    preds = []
    for ex, p, g in zip(examples, prompts, gens, strict=True):
        answer, targets = extract_answer(g.text), (ex.target, *ex.aliases)
        scores = {"exact_match": M.exact_match(answer, targets), "f1": M.token_f1(answer, targets)}
        preds.append(Prediction(ex.id, task.name, answer, ex.target, scores, g.latency_s, g.prompt_tokens,
                                g.output_tokens, meta={**_meta(ex, p), "raw_output": g.text}))
    return preds


def _ranked_choice(
    rt: ModelRuntime, task: Task, examples: Sequence[Example], prompts: Sequence[Prompt], batch_size: int | None
) -> list[Prediction]:
    preds = []
    requests = [(rt.render(p) + rt.answer_prefix(), ex.choices) for ex, p in zip(examples, prompts, strict=True)]
    for ex, p, scored in zip(examples, prompts, rt.loglikelihood_batch(requests, batch_size), strict=True):
        best = max(range(len(ex.choices)), key=lambda i: scored.logprobs[i])
        choice = ex.choices[best]
        preds.append(Prediction(ex.id, task.name, choice, ex.target, {"accuracy": M.accuracy(choice, ex.target)},
                                scored.latency_s, scored.prompt_tokens, 0, scored.logprobs, _meta(ex, p)))
    return preds


def _language_modeling(
    rt: ModelRuntime, task: Task, examples: Sequence[Example], prompts: Sequence[Prompt], batch_size: int | None
) -> list[Prediction]:
    import time

    t0 = time.perf_counter()
    nll = rt.token_nll([ex.input for ex in examples], batch_size)
    per_item = (time.perf_counter() - t0) / max(1, len(examples))
    return [
        Prediction(ex.id, task.name, f"{s / n:.4f}", "", {"cross_entropy": s / n}, per_item, n, 0,
                   meta=_meta(ex, p))
        for ex, p, (s, n) in zip(examples, prompts, nll, strict=True)
    ]


EVALUATORS: dict[str, Evaluator] = {
    "short-answer": _short_answer,
    "classification": _ranked_choice,
    "multiple-choice": _ranked_choice,
    "language-modeling": _language_modeling,
}


def retrieval_metrics(preds: Sequence[Prediction]) -> dict[str, float]:
    """recall@1/@k and MRR of the gold document, over items that have both a gold doc_id and a
    `retrieved` list from the strategy (items whose retrieval was confined to their own document
    are left out: they would score 1 by construction), then evidence recall; empty when the
    strategy retrieves nothing."""
    scored = [p for p in preds if "retrieved" in p.meta and "doc_id" in p.meta and p.meta.get("scope") != "document"]
    if not scored:
        return evidence_metrics(preds)
    k = max(len(p.meta["retrieved"]) for p in scored)
    return {
        "recall@1": M.mean([M.recall_at_k(p.meta["retrieved"], p.meta["doc_id"], 1) for p in scored]),
        f"recall@{k}": M.mean([M.recall_at_k(p.meta["retrieved"], p.meta["doc_id"], k) for p in scored]),
        "mrr": M.mean([M.reciprocal_rank(p.meta["retrieved"], p.meta["doc_id"]) for p in scored]),
        **evidence_metrics(preds),
    }


def _item_evidence(p: Prediction, n: int) -> tuple[float, float] | None:
    """(found, covered) shares of the item's gold spans among its first n retrieved chunks that
    belong to its own document."""
    from harness.model.retrieval import evidence_recall

    pairs = zip(p.meta["chunk_spans"][:n], p.meta["retrieved"][:n], strict=True)
    own = [(int(s), int(e)) for (s, e), doc in pairs if doc == p.meta.get("doc_id")]
    return evidence_recall(p.meta["evidence_spans"], own)


def evidence_metrics(preds: Sequence[Prediction]) -> dict[str, float]:
    """Recall of the gold evidence spans (harness.model.retrieval.evidence_recall) by the chunks put in
    the prompt (k) and by all chunks retrieved (depth): `evidence_recall@n`, the mean over items
    with gold spans of the share of their spans a chunk overlaps, and `evidence_covered@k`, the
    share fully inside the prompt's chunks. Items without gold spans (NotMentioned) are left out."""
    scored = [p for p in preds if p.meta.get("evidence_spans") and "chunk_spans" in p.meta]
    if not scored:
        return {}
    k = max(len(p.meta.get("chunks", p.meta["chunk_spans"])) for p in scored)
    depth = max(len(p.meta["chunk_spans"]) for p in scored)
    at = {n: [r for p in scored if (r := _item_evidence(p, n)) is not None] for n in dict.fromkeys((k, depth))}
    if not at[k]:
        return {}
    out = {f"evidence_recall@{n}": M.mean([found for found, _ in rows]) for n, rows in at.items()}
    return {**out, f"evidence_covered@{k}": M.mean([covered for _, covered in at[k]])}


def aggregate(task: Task, preds: Sequence[Prediction]) -> TaskResult:
    """Task-level metrics: the mean of each per-item score, balanced accuracy over labels, and
    retrieval metrics when the strategy reported what it retrieved."""
    out: dict[str, float] = {}
    for metric in task.metrics:
        if metric == "balanced_accuracy":
            out[metric] = M.balanced_accuracy([p.output for p in preds], [p.target for p in preds])
        else:
            out[metric] = M.mean([p.scores[metric] for p in preds])
    return TaskResult(task.name, task.kind, len(preds), {**out, **retrieval_metrics(preds)})


def evaluate_task(
    rt: ModelRuntime, task: Task, examples: Sequence[Example], prompts: Sequence[Prompt], batch_size: int | None = 8
) -> tuple[list[Prediction], TaskResult]:
    if len(prompts) != len(examples):
        raise ValueError(f"strategy returned {len(prompts)} prompts for {len(examples)} examples")
    preds = EVALUATORS[task.kind](rt, task, examples, prompts, batch_size)
    return preds, aggregate(task, preds)
