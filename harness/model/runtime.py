"""ModelRuntime: the one inference path every strategy is evaluated through.

Two batched operations, as in lm-evaluation-harness: greedy `generate` and `loglikelihood` of continuations
after a context (its keys and values computed once, shared by all its continuations). Differences in latency
between strategies therefore come from the strategy."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.core.precision import autocast
from harness.core.records import Prompt
from harness.model.memory import auto_batch_size
from harness.model.packing import pack_continuations, packed_attention, token_batches

if TYPE_CHECKING:
    from harness.model.spec import ModelSpec


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    output_tokens: int
    latency_s: float
    """Wall time of the batch that produced this text."""


@dataclass(frozen=True)
class Scored:
    logprobs: tuple[float, ...]
    """Sum of log-probabilities of each continuation's tokens."""
    prompt_tokens: int
    latency_s: float


def _plain_render(prompt: Prompt) -> str:
    """Prompt text for a tokenizer without a chat template (base models)."""
    parts = []
    for m in prompt.messages:
        if m.role == "system":
            parts.append(m.content)
        elif m.role == "user":
            parts.append(f"Question: {m.content}")
        else:
            parts.append(f"Answer: {m.content}")
    return "\n\n".join(parts) + "\n\nAnswer:"


_MASKABLE = ("sdpa", "eager")
"""Attention implementations that take a custom 4D mask as is: boolean for sdpa, additive for eager."""


def _log_softmax(logits: Any) -> Any:
    """log-softmax in fp32 as x - logsumexp(x): over a 262k vocabulary torch.log_softmax is off by up to
    6e-5 per token, this by under 1e-6."""
    import torch

    x = logits.float()
    return x - torch.logsumexp(x, dim=-1, keepdim=True)


def _token_logprobs(logits: Any, targets: Any) -> Any:
    """log P(target) at each position, in fp32, without a vocabulary-wide copy: the target's logit minus
    the logsumexp of its row (`logits` [..., V], `targets` [...])."""
    import torch

    x = logits.float()
    return x.gather(-1, targets[..., None])[..., 0] - torch.logsumexp(x, dim=-1)


def start_of_sequence(tokenizer: Any) -> list[int]:
    """The special tokens `tokenizer` puts before a text when asked to (BOS for Llama and Gemma base
    tokenizers, none for GPT-2 style ones); tokens it would append (an EOS) are not included."""
    probe = "a"
    with_special = list(tokenizer(probe, add_special_tokens=True)["input_ids"])
    plain = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    for i in range(len(with_special) - len(plain) + 1):
        if with_special[i : i + len(plain)] == plain:
            return with_special[:i]
    return []


class ModelRuntime:
    """A causal LM and its tokenizer on one device, with batched generate and loglikelihood."""

    def __init__(self, model: Any, tokenizer: Any, spec: ModelSpec | None = None, device: str = "cpu",
                 compute_dtype: str = "float32"):
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.device = device
        self.compute_dtype = compute_dtype
        """float32, or bfloat16: every forward runs under bf16 autocast (harness.core.precision)."""
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        self.start_ids = [] if self.chat else start_of_sequence(tokenizer)
        """Special tokens a sequence starts with (a base model's BOS); a chat template writes its own."""

    # ------------------------------------------------------------ text and tokens
    def render(self, prompt: Prompt) -> str:
        """The exact text fed to the model: the chat template when the tokenizer has one."""
        if not self.chat:
            return _plain_render(prompt)
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return str(text)

    def encode(self, text: str) -> list[int]:
        """Token ids of a whole sequence: its start-of-sequence tokens, then the text. Special tokens
        are never inserted anywhere else (see `encode_pair`)."""
        return self.start_ids + list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(context ids, continuation ids) the way lm-evaluation-harness splits them, for scoring and for
        training rows alike: the context's trailing whitespace moves to the continuation, the two are
        encoded together, and the continuation is what follows the context's own encoding. So a label
        after "Answer:" is scored as the joint token " confidentiality", not a lone space and pieces,
        and no BOS lands in front of a continuation. When a token would straddle the boundary (the joint
        encoding does not start with the context's), the continuation is encoded on its own instead,
        still without special tokens, so context + continuation is always a valid reading of the text."""
        n = len(context) - len(context.rstrip())
        if n:
            context, continuation = context[:-n], context[-n:] + continuation
        ctx, whole = self.encode(context), self.encode(context + continuation)
        if whole[: len(ctx)] == ctx:
            return ctx, whole[len(ctx):]
        return ctx, list(self.tokenizer(continuation, add_special_tokens=False)["input_ids"])

    def answer_prefix(self) -> str:
        """Text between a rendered prompt and its answer: none after a chat turn, a space after "Answer:"."""
        return "" if self.chat else " "

    def _stop_strings(self, stop: Sequence[str] | None = None) -> dict[str, Any]:
        """A base model has no end-of-turn token (it goes on with "\n\nQuestion: ..."): `stop`, or a blank line."""
        return {} if self.chat else {"stop_strings": list(stop or ["\n\n"]), "tokenizer": self.tokenizer}

    def _stop_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        for tok in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
            tid = self.tokenizer.convert_tokens_to_ids(tok)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id:
                ids.add(tid)
        return sorted(i for i in ids if i is not None)

    # ------------------------------------------------------------ generation
    def batch_for(self, batch_size: int | None, max_seq_len: int, all_logits: bool = False) -> int:
        """`batch_size`, or when None the largest batch whose cache at `max_seq_len` fits in free memory."""
        if batch_size is not None:
            return batch_size
        return auto_batch_size(self.model, max(1, max_seq_len), self.device, all_logits=all_logits)

    def generate(self, texts: Sequence[str], max_new_tokens: int, batch_size: int | None = 8,
                 stop: Sequence[str] | None = None) -> list[Generation]:
        """Greedy continuations of `texts`, batched by similar length with left padding; each row stops
        at its end of turn or end of text (the batch ends when every row has); a base model's at `stop`
        (default: a blank line). `batch_size` None: automatic."""
        encoded = [self.encode(t) for t in texts]
        batch_size = self.batch_for(batch_size, max(map(len, encoded), default=1) + max_new_tokens)
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]), reverse=True)
        strings = self._stop_strings(stop)
        out: list[Generation | None] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            for i, g in zip(idx, self._generate_batch([encoded[i] for i in idx], max_new_tokens, strings), strict=True):
                out[i] = g
        return [g for g in out if g is not None]

    def _generate_batch(self, batch: list[list[int]], max_new_tokens: int, strings: dict) -> list[Generation]:
        import torch

        width = max(len(ids) for ids in batch)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=self.device)
        stop = self._stop_ids()
        t0 = time.perf_counter()
        with torch.inference_mode(), autocast(self.device, self.compute_dtype):
            seqs = self.model.generate(
                input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                eos_token_id=stop, pad_token_id=pad, top_p=None, top_k=None, temperature=None, **strings,
            )
        latency = time.perf_counter() - t0
        results = []
        for ids, row in zip(batch, seqs[:, width:].tolist(), strict=True):
            n = next((k for k, t in enumerate(row) if t in stop), len(row))
            text = self.tokenizer.decode(row[:n], skip_special_tokens=True)
            results.append(Generation(text, len(ids), n, latency))
        return results

    # ------------------------------------------------------------ scoring
    def loglikelihood(self, context: str, continuations: Sequence[str]) -> Scored:
        """log P(continuation | context) for each continuation; the context is run once."""
        return self.loglikelihood_batch([(context, continuations)], batch_size=1)[0]

    def loglikelihood_batch(self, requests: Sequence[tuple[str, Sequence[str]]], batch_size: int | None = 8,
                            max_batch_tokens: int = 16384, max_padding: float = 0.1) -> list[Scored]:
        """Score many (context, continuations) requests. Contexts are batched by similar length with
        right padding and run once, causally and without a padding mask (so attention takes the fused
        causal path); every continuation then reuses its context's keys and values, all continuations
        of a batch in one forward. `max_batch_tokens` caps rows x width of both passes, so long
        few-shot contexts make smaller batches; `max_padding` caps the padding of a batch's contexts
        as a share of their real tokens (padding is computed like real tokens)."""
        encoded = [self._encode_request(ctx, conts) for ctx, conts in requests]
        longest = max((len(ctx) + sum(map(len, conts)) for ctx, conts in encoded), default=1)
        batch_size = self.batch_for(batch_size, longest)
        if self.sliding_window() and getattr(self.model.config, "_attn_implementation", None) not in _MASKABLE:
            batch_size = 1  # the copied-cache path cannot shift a padded row's window: no padding
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]), reverse=True)
        out: list[Scored | None] = [None] * len(encoded)
        for idx in token_batches(order, encoded, batch_size, max_batch_tokens, max_padding):
            for i, scored in zip(idx, self._score_batch([encoded[i] for i in idx]), strict=True):
                out[i] = scored
        return [s for s in out if s is not None]

    def _encode_request(self, context: str, continuations: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        pairs = [self.encode_pair(context, c) for c in continuations]
        ctx, conts = (pairs[0][0] if pairs else self.encode(context)), [cont for _, cont in pairs]
        if not ctx or not conts or any(not c for c in conts):
            raise ValueError("context and continuations must each encode to at least one token")
        return ctx, conts

    def _score_batch(self, items: list[tuple[list[int], list[list[int]]]]) -> list[Scored]:
        import torch

        width = max(len(ctx) for ctx, _ in items)
        pad = self.tokenizer.pad_token_id
        # right padding: a real token never attends to a pad (they come after it), so no mask is needed
        ids = torch.tensor([c + [pad] * (width - len(c)) for c, _ in items], device=self.device)
        mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c, _ in items], device=self.device)
        last = torch.tensor([len(c) - 1 for c, _ in items], device=self.device)
        keep, where = torch.unique(last, return_inverse=True)  # logits only at each context's last token
        rows = [(b, cont) for b, (_, conts) in enumerate(items) for cont in conts]
        t0 = time.perf_counter()
        with torch.inference_mode(), autocast(self.device, self.compute_dtype):
            first = self.model(input_ids=ids, use_cache=True, logits_to_keep=keep, **self._context_cache())
            head = _log_softmax(first.logits[torch.arange(len(items), device=self.device), where])
            tails = self._tail_logprobs(first.cache, items, mask, rows)
            firsts = head[torch.tensor([b for b, _ in rows]), torch.tensor([c[0] for _, c in rows])]
            totals = (firsts + tails).tolist()
        latency = time.perf_counter() - t0
        scored, r = [], 0
        for ctx, conts in items:
            scored.append(Scored(tuple(totals[r : r + len(conts)]), len(ctx), latency))
            r += len(conts)
        return scored

    def sliding_window(self) -> int | None:
        """The attention window of the model's sliding-window layers (Gemma 3: 512), if it has any."""
        config = self.model.config.get_text_config() if hasattr(self.model.config, "get_text_config") else None
        config = config or self.model.config
        window, types = getattr(config, "sliding_window", None), getattr(config, "layer_types", None) or ()
        return int(window) if window and "sliding_attention" in types else None

    def _context_cache(self) -> dict[str, Any]:
        """For a model with sliding-window layers, a cache that keeps every key of the context pass (the
        model's own would keep only the last window's keys of the padded width, which the packed pass's
        mask does not know about)."""
        if self.sliding_window() is None:
            return {}
        from transformers import DynamicCache

        return {"cache": DynamicCache()}

    def _packed_masks(self, full: Any, pos: Any) -> dict[str, Any]:
        """The packed pass's 4D mask per layer type: with sliding-window layers, a second mask in which
        a slot sees only keys less than the window behind its position (context keys sit at 0..W-1)."""
        import torch

        window = self.sliding_window()
        if window is None:
            return {"full_attention": full}
        width = full.shape[-1] - pos.shape[1]
        ctx_pos = torch.arange(width, device=pos.device).expand(pos.shape[0], -1)
        key_pos = torch.cat([ctx_pos, pos], dim=1)
        near = (pos[:, :, None] - key_pos[:, None, :]) < window
        return {"full_attention": full, "sliding_attention": full & near[:, None]}

    def _tail_logprobs(self, cache: Any, items: list[tuple[list[int], list[list[int]]]], ctx_mask: Any,
                       rows: list[tuple[int, list[int]]]) -> Any:
        """Sum of log-probs of tokens 2..n of each row's continuation after its context's cache: all
        continuations of a context packed into one row behind it when the attention implementation
        takes an explicit 4D mask (sdpa, eager), else one row per continuation on a copied cache."""
        import torch

        if max(len(c) for _, c in rows) == 1:
            return torch.zeros(len(rows), device=self.device)
        attention = getattr(self.model.config, "_attn_implementation", None)
        if attention in _MASKABLE:
            return self._packed_continuation_logprobs(cache, items, ctx_mask, additive=attention != "sdpa")
        return self._continuation_logprobs(cache, ctx_mask, rows)

    def _packed_continuation_logprobs(self, cache: Any, items: list[tuple[list[int], list[list[int]]]],
                                      ctx_mask: Any, additive: bool) -> Any:
        """One forward over every context's continuations laid end to end after it; a 4D mask lets
        each continuation see its context and its own earlier tokens only, and position ids restart
        at the context's length for each. Nothing is copied per continuation."""
        import torch

        ids, pos, seg, target = pack_continuations(items, self.tokenizer.pad_token_id, self.device)
        masks = self._packed_masks(packed_attention(ctx_mask.bool(), seg)[:, None], pos)
        if additive:  # eager attention adds the mask to its scores
            dtype = self.model.dtype
            masks = {k: torch.zeros(m.shape, dtype=dtype, device=self.device).masked_fill(~m, torch.finfo(dtype).min)
                     for k, m in masks.items()}
        mask: Any = masks if len(masks) > 1 else masks["full_attention"]
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache)
        valid = seg >= 0  # slot j of a continuation predicts its token j + 1
        logits = out.logits[valid]
        logp = _token_logprobs(logits, target[valid])
        first_row = torch.tensor([0] + [len(conts) for _, conts in items[:-1]], device=self.device).cumsum(0)
        row = (first_row[:, None] + seg)[valid]
        n_rows = sum(len(conts) for _, conts in items)
        return torch.zeros(n_rows, device=self.device).index_add_(0, row, logp)

    def _continuation_logprobs(self, cache: Any, ctx_mask: Any, rows: list[tuple[int, list[int]]]) -> Any:
        """One row per continuation, each on a copy of its context's cache (any attention implementation)."""
        import torch

        width = max(len(c) for _, c in rows)
        pick = torch.tensor([b for b, _ in rows], device=self.device)
        cache.batch_select_indices(pick)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([c + [pad] * (width - len(c)) for _, c in rows], device=self.device)
        cont_mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for _, c in rows], device=self.device)
        start = ctx_mask.sum(-1)[pick]
        pos = start[:, None] + torch.arange(width, device=self.device)[None, :]
        out = self.model(input_ids=ids, attention_mask=torch.cat([ctx_mask[pick], cont_mask], dim=1),
                         position_ids=pos, cache=cache)
        logits = out.logits[:, :-1]  # token j of a continuation is predicted at position j - 1
        logp = _token_logprobs(logits, ids[:, 1:])
        return (logp * cont_mask[:, 1:]).sum(-1)

    def token_nll(self, texts: Sequence[str], batch_size: int | None = 8) -> list[tuple[float, int]]:
        """(summed negative log-likelihood, number of predicted tokens) for each text; texts are batched
        longest first, so a batch's rows have similar lengths and little padding."""
        encoded = [self.encode(t) for t in texts]
        batch_size = self.batch_for(batch_size, max(map(len, encoded), default=1), all_logits=True)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        out = [(0.0, 0)] * len(encoded)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            for i, nll in zip(idx, self._nll_batch([encoded[i] for i in idx]), strict=True):
                out[i] = (nll, len(encoded[i]) - 1)
        return out

    def _nll_batch(self, batch: list[list[int]]) -> list[float]:
        import torch

        width, pad = max(len(b) for b in batch), self.tokenizer.pad_token_id
        ids = torch.tensor([b + [pad] * (width - len(b)) for b in batch], device=self.device)
        mask = torch.tensor([[1] * len(b) + [0] * (width - len(b)) for b in batch], device=self.device)
        with torch.inference_mode(), autocast(self.device, self.compute_dtype):
            logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            nll = -_token_logprobs(logits, ids[:, 1:]) * mask[:, 1:]
        return nll.sum(-1).tolist()
