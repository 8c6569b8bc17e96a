"""How scoring requests are laid out for the forward passes of `ModelRuntime.loglikelihood_batch`:
contexts grouped into batches of similar length within a token and a padding budget, and every
context's continuations packed end to end into one row behind its cached keys and values, with the
4D mask that keeps each continuation to its own context and its own earlier tokens."""

from __future__ import annotations

from typing import Any


def pack_continuations(items: list[tuple[list[int], list[list[int]]]], pad: int, device: str
                       ) -> tuple[Any, Any, Any, Any]:
    """Each item's continuations end to end in one row, each without its last token (whose output
    predicts nothing scored; a one-token continuation takes no slot, its context's last logit scores it):
    token ids, position ids (each continuation starts at its context's length), the continuation index
    of every slot (-1 for padding) and the token each slot predicts (its continuation's next token)."""
    import torch

    width = max(1, max(sum(len(c) - 1 for c in conts) for _, conts in items))
    ids = torch.full((len(items), width), pad, dtype=torch.long)
    pos = torch.zeros((len(items), width), dtype=torch.long)
    seg = torch.full((len(items), width), -1, dtype=torch.long)
    target = torch.full((len(items), width), pad, dtype=torch.long)
    for b, (ctx, conts) in enumerate(items):
        start = 0
        for j, cont in enumerate(conts):
            end = start + len(cont) - 1
            ids[b, start:end] = torch.tensor(cont[:-1], dtype=torch.long)
            target[b, start:end] = torch.tensor(cont[1:], dtype=torch.long)
            pos[b, start:end] = torch.arange(len(ctx), len(ctx) + len(cont) - 1)
            seg[b, start:end] = j
            start = end
    return ids.to(device), pos.to(device), seg.to(device), target.to(device)


def packed_attention(ctx_mask: Any, seg: Any) -> Any:
    """(rows, packed, context + packed) booleans: a slot sees its context's real tokens, and the
    earlier slots of its own continuation (padding slots see the context only)."""
    import torch

    n = seg.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool, device=seg.device).tril()
    own = (seg[:, :, None] == seg[:, None, :]) & (seg[:, :, None] >= 0) & causal
    return torch.cat([ctx_mask[:, None, :].expand(-1, n, -1), own], dim=2)


def fits(cur: list[int], i: int, encoded: list[tuple[list[int], list[list[int]]]], max_tokens: int,
          max_padding: float) -> bool:
    """Whether request `i` may join batch `cur` (longest context first) within the token and padding budgets."""
    width = len(encoded[cur[0]][0])  # the longest context of the batch is its first
    rows = sum(len(encoded[j][1]) for j in cur) + len(encoded[i][1])
    cont_w = max(len(c) for j in [*cur, i] for c in encoded[j][1])
    real = sum(len(encoded[j][0]) for j in [*cur, i])
    return ((len(cur) + 1) * width <= max_tokens and rows * (width + cont_w) <= max_tokens
            and (len(cur) + 1) * width <= (1 + max_padding) * real)


def token_batches(order: list[int], encoded: list[tuple[list[int], list[list[int]]]], batch_size: int,
                   max_tokens: int, max_padding: float = float("inf")) -> list[list[int]]:
    """Consecutive groups of `order` (longest context first) of at most `batch_size` requests whose
    padded width times rows (contexts, or continuations with their context) stays within `max_tokens`
    and whose context padding stays within `max_padding` times their real context tokens."""
    batches: list[list[int]] = []
    for i in order:
        cur = batches[-1] if batches else None
        if cur is not None and len(cur) < batch_size and fits(cur, i, encoded, max_tokens, max_padding):
            cur.append(i)
        else:
            batches.append([i])
    return batches
