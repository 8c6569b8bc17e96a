import pytest
import torch
from tokens import brute_logprob

from harness.core.records import Message, Prompt


def test_shared_prefix_loglikelihood_equals_full_forward(tiny_runtime):
    context = tiny_runtime.render(Prompt((Message("user", "Classify the text: pay all invoices."),)))
    choices = ["payment", "termination", "confidentiality", "x"]
    scored = tiny_runtime.loglikelihood(context, choices)
    for choice, lp in zip(choices, scored.logprobs, strict=True):
        assert lp == pytest.approx(brute_logprob(tiny_runtime, context, choice), abs=1e-4)
    assert scored.prompt_tokens == len(tiny_runtime.encode(context.rstrip()))


def test_batched_generation_equals_one_at_a_time(tiny_runtime):
    texts = [tiny_runtime.render(Prompt((Message("user", q),))) for q in
             ["What is the capital of France?", "Pay", "Either party may terminate this agreement on ninety"]]
    batched = tiny_runtime.generate(texts, max_new_tokens=6, batch_size=3)
    single = [tiny_runtime.generate([t], max_new_tokens=6, batch_size=1)[0] for t in texts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.prompt_tokens for g in batched] == [len(tiny_runtime.encode(t)) for t in texts]
    assert all(0 <= g.output_tokens <= 6 for g in batched)


def test_token_nll_matches_brute_force(tiny_runtime):
    texts = ["The Buyer shall pay.", "Either party may terminate this agreement on ninety days notice."]
    for text, (nll, n) in zip(texts, tiny_runtime.token_nll(texts), strict=True):
        ids = tiny_runtime.encode(text)
        with torch.no_grad():
            logp = torch.log_softmax(tiny_runtime.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        expected = -sum(float(logp[j - 1, ids[j]]) for j in range(1, len(ids)))
        assert n == len(ids) - 1
        assert nll == pytest.approx(expected, abs=1e-3)


def test_render_uses_the_chat_template(tiny_runtime):
    text = tiny_runtime.render(Prompt((Message("system", "S"), Message("user", "Q"))))
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"


def test_plain_render_without_chat_template():
    from harness.model.runtime import _plain_render

    prompt = Prompt((Message("system", "S"), Message("user", "Q1"), Message("assistant", "A1"),
                     Message("user", "Q2")))
    assert _plain_render(prompt) == "S\n\nQuestion: Q1\n\nAnswer: A1\n\nQuestion: Q2\n\nAnswer:"


def test_batched_loglikelihood_equals_one_request_at_a_time(tiny_runtime):
    """Left-padded contexts of different lengths, choices of different counts and token lengths."""
    texts = ["Classify the text: pay all invoices.", "Pay", "Either party may terminate this agreement on ninety",
             "What is the capital of France? Answer with a short phrase."]
    requests = [(tiny_runtime.render(Prompt((Message("user", t),))), choices) for t, choices in zip(texts, [
        ["payment", "termination"], ["x", "Paris", "thirty days notice", "y"], ["days"], ["Paris", "France Paris"]],
        strict=True)]
    batched = tiny_runtime.loglikelihood_batch(requests, batch_size=4)
    tight = tiny_runtime.loglikelihood_batch(requests, batch_size=4, max_batch_tokens=64)
    for (context, choices), b, t in zip(requests, batched, tight, strict=True):
        for choice, lp, lt in zip(choices, b.logprobs, t.logprobs, strict=True):
            assert lp == pytest.approx(brute_logprob(tiny_runtime, context, choice), abs=1e-4)
            assert lt == pytest.approx(lp, abs=1e-4)
        assert b.prompt_tokens == len(tiny_runtime.encode(context.rstrip()))


def test_token_batches_respect_size_and_token_budget():
    from harness.model.packing import token_batches as _token_batches

    encoded = [([1] * n, [[1], [1, 2]]) for n in (50, 40, 30, 10, 10)]
    assert _token_batches([0, 1, 2, 3, 4], encoded, 2, 10_000) == [[0, 1], [2, 3], [4]]
    assert _token_batches([0, 1, 2, 3, 4], encoded, 8, 100) == [[0], [1], [2], [3, 4]]


def test_auto_batch_size_from_kv_cache_bytes(tiny_runtime, monkeypatch):
    from harness.model import memory as runtime
    model = tiny_runtime.model
    per_token = 2 * 2 * (64 // 4) * 2 * 4  # layers x kv heads x head dim x (k, v) x fp32 bytes
    assert runtime.kv_bytes_per_token(model) == per_token
    assert runtime.auto_batch_size(model, 100, free_bytes=per_token * 100 * 10, memory_fraction=1.0) == 10
    assert runtime.auto_batch_size(model, 100, free_bytes=per_token * 100 * 10) == 5  # half the memory by default
    assert runtime.auto_batch_size(model, 100, free_bytes=per_token * 100 * 1000) == 64  # capped
    assert runtime.auto_batch_size(model, 100, free_bytes=per_token * 100 * 1000, cap=16) == 16
    assert runtime.auto_batch_size(model, 100, free_bytes=1) == 1  # never below one row
    monkeypatch.setattr(runtime, "free_memory_bytes", lambda device: per_token * 50 * 8)
    assert runtime.auto_batch_size(model, 50, memory_fraction=1.0) == 8  # measured when not given
    with pytest.raises(ValueError):
        runtime.auto_batch_size(model, 0)


def test_free_memory_bytes_reads_cuda_or_ram(monkeypatch):
    import psutil

    from harness.model.memory import free_memory_bytes

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (123, 456))
    assert free_memory_bytes("cuda:0") == 123
    assert 0 < free_memory_bytes("cpu") <= psutil.virtual_memory().total


def test_right_padded_batches_equal_brute_force(tiny_runtime):
    """Contexts of very different lengths forced into one right-padded batch, continuations of 1 to 4 tokens."""
    from harness.model.packing import token_batches as _token_batches

    texts = ["Pay", "Either party may terminate this agreement on ninety days notice to the other party.",
             "What is the capital of France?"]
    requests = [(t, [" payment", " thirty days notice", " x"]) for t in texts]
    encoded = [tiny_runtime._encode_request(c, k) for c, k in requests]
    assert len(_token_batches([1, 2, 0], encoded, 8, 16384)) == 1  # no padding limit: one padded batch
    scored = tiny_runtime.loglikelihood_batch(requests, batch_size=8, max_padding=float("inf"))
    for (context, choices), s in zip(requests, scored, strict=True):
        for choice, lp in zip(choices, s.logprobs, strict=True):
            assert lp == pytest.approx(brute_logprob(tiny_runtime, context, choice), abs=1e-4)


def test_token_batches_cap_padding():
    from harness.model.packing import token_batches as _token_batches

    encoded = [([1] * n, [[1]]) for n in (50, 40, 30, 10, 10)]
    assert _token_batches([0, 1, 2, 3, 4], encoded, 8, 10_000, max_padding=0.25) == [[0, 1, 2], [3, 4]]
    assert _token_batches([0, 1, 2, 3, 4], encoded, 8, 10_000, max_padding=0.0) == [[0], [1], [2], [3, 4]]


@pytest.mark.parametrize("attention", ["sdpa", "eager", "copied-cache"])
def test_packed_and_copied_continuations_equal_brute_force(tiny_runtime, monkeypatch, attention):
    """Continuations packed behind their context under a 4D mask (sdpa, eager) and the one-row-per-continuation
    fallback give the same log-probs as a plain forward over context + continuation."""
    from harness.model import runtime
    packed = []
    pack = runtime.pack_continuations
    monkeypatch.setattr(runtime, "pack_continuations", lambda *a: packed.append(1) or pack(*a))
    if attention == "copied-cache":
        monkeypatch.setattr(runtime, "_MASKABLE", ())
    else:
        tiny_runtime.model.set_attn_implementation(attention)
    try:
        requests = [("Pay", [" payment", " thirty days notice", " x", " France Paris"]),
                    ("Either party may terminate this agreement on ninety", [" days notice", " Paris"])]
        scored = tiny_runtime.loglikelihood_batch(requests, batch_size=8, max_padding=float("inf"))
        for (context, choices), s in zip(requests, scored, strict=True):
            for choice, lp in zip(choices, s.logprobs, strict=True):
                assert lp == pytest.approx(brute_logprob(tiny_runtime, context, choice), abs=1e-4)
        assert bool(packed) == (attention != "copied-cache")
    finally:
        tiny_runtime.model.set_attn_implementation("sdpa")


def test_automatic_batch_size_gives_the_same_results(tiny_runtime, monkeypatch):
    """batch_size None picks the batch from free memory (here: 80 tokens' cache in half of it) and changes
    no result."""
    from harness.model import memory, runtime
    chosen = []
    auto = memory.auto_batch_size
    monkeypatch.setattr(runtime, "auto_batch_size", lambda *a, **k: chosen.append(auto(*a, **k)) or chosen[-1])
    monkeypatch.setattr(memory, "free_memory_bytes", lambda device: 2 * 2 * 40 * memory.kv_bytes_per_token(
        tiny_runtime.model))
    texts = ["Pay", "Either party may terminate this agreement.", "What is the capital of France?"]
    auto_gen, one_gen = tiny_runtime.generate(texts, 5, batch_size=None), tiny_runtime.generate(texts, 5, batch_size=1)
    assert [g.text for g in auto_gen] == [g.text for g in one_gen]
    requests = [(t, [" a", " b c"]) for t in texts]
    auto_lp = [lp for s in tiny_runtime.loglikelihood_batch(requests, batch_size=None) for lp in s.logprobs]
    one_lp = [lp for s in tiny_runtime.loglikelihood_batch(requests, batch_size=1) for lp in s.logprobs]
    assert auto_lp == pytest.approx(one_lp, abs=1e-4)
    auto_nll = [s for s, _ in tiny_runtime.token_nll(texts, batch_size=None)]
    assert auto_nll == pytest.approx([s for s, _ in tiny_runtime.token_nll(texts, 1)], abs=1e-3)
    longest = max(len(tiny_runtime.encode(t)) for t in texts)
    assert chosen[0] == (2 * 40) // (longest + 5) > 1  # generation: rows of the longest prompt + 5 new tokens


def test_packed_row_holds_only_tokens_whose_output_is_scored():
    """A continuation's last token predicts nothing scored and a one-token continuation is scored from its
    context's last logit, so the packed row holds tokens 1..n-1 of each continuation, each predicting the next."""
    from harness.model.packing import pack_continuations

    ids, pos, seg, target = pack_continuations([([5, 6, 7], [[10], [11, 12, 13], [14, 15]])], pad=0, device="cpu")
    assert ids.tolist() == [[11, 12, 14]]
    assert target.tolist() == [[12, 13, 15]]
    assert pos.tolist() == [[3, 4, 3]]
    assert seg.tolist() == [[1, 1, 2]]
