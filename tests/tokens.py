"""Reference tokenization and scoring for tests, written independently of the runtime: the lm-eval
split (the context's trailing whitespace moves to the continuation; both encoded together; the
continuation is what follows the context's own encoding) and a plain forward in float64."""

from __future__ import annotations

import torch


def plain_ids(tokenizer, text: str, chat: bool) -> list[int]:
    """The tokenizer's own encoding of a whole sequence (BOS from the tokenizer itself for base models)."""
    return list(tokenizer(text, add_special_tokens=not chat)["input_ids"])


def joint_split(tokenizer, context: str, continuation: str, chat: bool) -> tuple[list[int], list[int]]:
    stripped = context.rstrip()
    moved = context[len(stripped):] + continuation
    ctx, whole = plain_ids(tokenizer, stripped, chat), plain_ids(tokenizer, stripped + moved, chat)
    if whole[: len(ctx)] == ctx:
        return ctx, whole[len(ctx):]
    return ctx, list(tokenizer(moved, add_special_tokens=False)["input_ids"])  # a token straddles the boundary


def plain_logprob(model, ctx: list[int], cont: list[int]) -> float:
    """Sum of the continuation's log-probs from one plain forward over context + continuation (float64)."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ctx + cont])).logits[0].double()
    logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    return sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))


def brute_logprob(rt, context: str, continuation: str) -> float:
    ctx, cont = joint_split(rt.tokenizer, context, continuation, rt.chat)
    return plain_logprob(rt.model, ctx, cont)
