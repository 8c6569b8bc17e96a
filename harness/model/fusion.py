"""Combining and reordering retrieval results: reciprocal rank fusion of several rankings, and a
language model's own relevance judgement as a reranker.

Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009) scores each candidate by
sum over rankings of 1 / (k + rank), rank counted from 1, a candidate absent from a ranking adding
nothing; k = 60 is the paper's constant (it damps the weight of the very first ranks). Only ranks
count, so a dense retriever's cosine similarities and BM25's unbounded scores need no calibration.

The model reranker asks the evaluated model, for each (query, passage) pair, whether the passage
answers the query, and scores the pair by log P(yes) - log P(no) of its answer (each the
log-sum-exp over "yes"/"Yes" and "no"/"No"), all pairs in one batched `loglikelihood_batch` call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.core.records import Message, Prompt

if TYPE_CHECKING:
    from harness.model.runtime import ModelRuntime

RRF_K = 60
"""Reciprocal rank fusion's constant, as in the paper."""

RELEVANCE_QUESTION = "Does the passage answer the question? Answer yes or no."
YES, NO = ("yes", "Yes"), ("no", "No")


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[int]:
    """The candidates of all `rankings` (best first each) ordered by their fused score
    sum(1 / (k + rank)); ties go to the candidate seen first (earlier ranking, better rank)."""
    if k < 1:
        raise ValueError("the fusion constant k must be at least 1")
    score: dict[int, float] = {}
    for ranking in rankings:
        for rank, cand in enumerate(ranking, start=1):
            score[cand] = score.get(cand, 0.0) + 1.0 / (k + rank)
    first_seen = {c: i for i, c in enumerate(dict.fromkeys(c for r in rankings for c in r))}
    return sorted(score, key=lambda c: (-score[c], first_seen[c]))


def relevance_request(runtime: ModelRuntime, query: str, passage: str) -> tuple[str, list[str]]:
    """(rendered context, continuations) of the relevance judgement of one (query, passage) pair:
    the yes answers first, then the no answers."""
    user = f"Passage: {passage}\n\nQuestion: {query}\n\n{RELEVANCE_QUESTION}"
    context = runtime.render(Prompt((Message("user", user),)))
    prefix = runtime.answer_prefix()
    return context, [prefix + a for a in (*YES, *NO)]


def _logsumexp(xs: Sequence[float]) -> float:
    top = max(xs)
    return top + math.log(sum(math.exp(x - top) for x in xs))


def relevance(logprobs: Sequence[float]) -> float:
    """log P(yes) - log P(no) from the log-likelihoods of `relevance_request`'s continuations."""
    n = len(YES)
    return _logsumexp(logprobs[:n]) - _logsumexp(logprobs[n:])


def rerank(runtime: ModelRuntime, queries: Sequence[str], candidates: Sequence[Sequence[tuple[int, str]]],
           batch_size: int | None = 8) -> list[list[int]]:
    """Each query's candidates ((id, passage text), in first-stage order) reordered by the model's
    relevance judgement, most relevant first; ties keep the first-stage order."""
    pairs = [(qi, ci) for qi, cands in enumerate(candidates) for ci in range(len(cands))]
    if not pairs:
        return [[] for _ in queries]
    requests = [relevance_request(runtime, queries[qi], candidates[qi][ci][1]) for qi, ci in pairs]
    scored = runtime.loglikelihood_batch(requests, batch_size=batch_size)
    judged: list[list[tuple[float, int, int]]] = [[] for _ in queries]
    for (qi, ci), s in zip(pairs, scored, strict=True):
        judged[qi].append((-relevance(s.logprobs), ci, candidates[qi][ci][0]))
    return [[cid for _, _, cid in sorted(row)] for row in judged]
