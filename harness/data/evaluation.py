"""Evaluation: prompts in, per-item predictions and task metrics out, through the shared runtime.

Each task kind predicts and scores its items (harness.data.kinds); this module runs it, checks the
strategy's prompts, and aggregates: task metrics, retrieval and evidence recall.

Two ways a strategy may ask for more than its prompts, both opt-in and without effect otherwise:
- prompts whose meta holds `REASON` ({"answer_line": "Answer:", "max_new_tokens": N}) are evaluated
  by generating a reply and parsing the answer from its last answer line, scored by the kind's
  `score_answer` whatever the kind (chain of thought: `evaluate_reasoned`);
- a runtime with a `for_task(task name)` method is asked for the runtime of each task before its
  items run (one adapter per task: strategies/schedules.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from harness.core import metrics as M
from harness.core.records import Example, Prediction, Prompt, TaskResult
from harness.data.kinds.base import prediction_meta
from harness.data.suites import Task
from harness.model.runtime import ModelRuntime

REASON = "reason"
"""Prompt.meta key asking for generate-then-parse evaluation (see the module docstring)."""
UNPARSED = "unparsed_answers"
"""Task metric of a reasoned evaluation: how many replies had no valid answer (each counted wrong)."""
log = logging.getLogger(__name__)


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
    main = () if task.main_metric is None or task.main_metric in task.metrics else (task.main_metric,)
    for metric in (*task.metrics, *main):
        if metric == "balanced_accuracy":
            out[metric] = M.balanced_accuracy([p.output for p in preds], [p.target for p in preds])
        else:
            out[metric] = M.mean([p.scores[metric] for p in preds])
    return TaskResult(task.name, task.kind, len(preds), {**out, **retrieval_metrics(preds)}, task.main_metric)


def answer_line(text: str, marker: str) -> str | None:
    """The answer on the reply's last line that starts with `marker` (case, markdown emphasis, quotes
    and a final period aside); None when no line does."""
    found = None
    for line in text.splitlines():
        body = line.strip().lstrip("*#> ").strip()
        if body.lower().startswith(marker.lower()):
            found = body[len(marker):].strip(" \t*\"'`")
    if found is None:
        return None
    return found[:-1].strip(" \t*\"'`") if found.endswith(".") else found


def evaluate_reasoned(rt: ModelRuntime, task: Task, examples: Sequence[Example], prompts: Sequence[Prompt],
                      batch_size: int | None, ask: dict[str, Any]) -> list[Prediction]:
    """Generate each reply (reasoning, then the answer line), parse the answer and score it with the
    kind's `score_answer`; a reply without a valid answer (no answer line, or for choice kinds not one
    of the choices) is scored 0 on every metric, flagged `answer_parsed: False`, and logged."""
    score = task.spec.score_answer
    assert score is not None
    plain = not rt.chat  # a base model's prompt ends with "Answer:" (harness.model.runtime._plain_render)
    texts = [rt.render(p) for p in prompts]
    n = int(ask.get("max_new_tokens", 256))
    gens = rt.generate(texts, n, batch_size, stop=["\nQuestion:"]) if plain else rt.generate(texts, n, batch_size)
    zero = {m: 0.0 for m in (*task.spec.metrics, *task.metrics, task.main_metric) if m and m != "balanced_accuracy"}
    preds, unparsed = [], []
    for ex, p, g in zip(examples, prompts, gens, strict=True):
        reply = f"Answer:{g.text}" if plain else g.text  # reasoning on; the last answer line wins
        answer = answer_line(reply, str(ask.get("answer_line", "Answer:")))
        scored = None if answer is None else score(task, ex, answer)
        if scored is None:
            unparsed.append(ex.id)
        output, scores = scored or ("", zero)
        meta = {k: v for k, v in prediction_meta(ex, p).items() if k != REASON}
        meta |= {"raw_output": g.text, "answer_parsed": scored is not None}
        preds.append(Prediction(ex.id, task.name, output, ex.target, scores, g.latency_s, g.prompt_tokens,
                                g.output_tokens, meta=meta))
    if unparsed:
        log.warning("%s: %d of %d replies had no valid answer line (counted wrong): %s", task.name, len(unparsed),
                    len(preds), ", ".join(unparsed[:5]) + (" ..." if len(unparsed) > 5 else ""))
    return preds


def evaluate_task(
    rt: ModelRuntime, task: Task, examples: Sequence[Example], prompts: Sequence[Prompt], batch_size: int | None = 8
) -> tuple[list[Prediction], TaskResult]:
    if len(prompts) != len(examples):
        raise ValueError(f"strategy returned {len(prompts)} prompts for {len(examples)} examples")
    route = getattr(rt, "for_task", None)
    if callable(route):  # a runtime serving each task through its own weights
        rt = route(task.name)
    asks = [p.meta.get(REASON) for p in prompts]
    if any(asks) and task.spec.score_answer is not None:
        preds = evaluate_reasoned(rt, task, examples, prompts, batch_size, next(a for a in asks if a))
        result = aggregate(task, preds)
        unparsed = sum(1 for p in preds if not p.meta["answer_parsed"])
        return preds, TaskResult(result.task, result.kind, result.n, {**result.metrics, UNPARSED: float(unparsed)},
                                 result.main_metric)
    preds = task.spec.evaluate(rt, task, examples, prompts, batch_size)
    return preds, aggregate(task, preds)
