"""Soft prompts against peft's own model: the runtime (batched, left-padded generation; right-padded
scoring with packed continuations; token NLL) gives the log-probs and greedy text peft's forward
and generate give one prompt at a time, for prompt tuning, P-tuning and prefix tuning."""

import pytest
import torch
from harness_strategies.soft_prompts import PrefixTuning, PromptTuning, PTuning, prefixed_runtime
from tokens import joint_split

from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext

CLASSES = [PromptTuning, PTuning, PrefixTuning]
CONTEXTS = ["What is the capital of France?", "Classify: the Buyer shall pay all invoices within thirty days.",
            "terminate"]
CONTINUATIONS = ["Paris", " payment", "Either party may terminate this agreement", "x"]


def peft_model(cls, rt, seed=0):
    """An untrained soft-prompt model whose virtual tokens are moved well away from their init."""
    torch.manual_seed(seed)
    model = cls(cls.Options(virtual_tokens=6)).trainable_model(None, rt)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 2.0)
    return model.eval()


def peft_logprob(model, rt, context, continuation):
    """log P(continuation | context) from peft's forward on the unpadded sequence."""
    ctx, cont = joint_split(rt.tokenizer, context, continuation, rt.chat)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ctx + cont])).logits[0].float()
    logits = logits[-(len(ctx) + len(cont)) :]  # prompt and P-tuning return the virtual positions too
    logp = torch.log_softmax(logits, dim=-1)
    return sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))


def peft_greedy(model, rt, text, n):
    """Greedy text from peft's own forward, one full forward per token (no cache, no generate: under
    transformers 5.24 peft's generate hands the prefix over as `past_key_values`, which is ignored)."""
    ids = rt.encode(text)
    out: list[int] = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(input_ids=torch.tensor([ids + out])).logits[0, -1].argmax())
            if nxt in rt._stop_ids():
                break
            out.append(nxt)
    return rt.tokenizer.decode(out, skip_special_tokens=True)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.name)
def test_generation_sees_the_prefix(cls, tiny_runtime):
    """The first generated token's logits come from the prefixed model: equal to peft's forward at the
    last position, and far from the base model's (a dropped prefix fails here, whatever the text)."""
    model = peft_model(cls, tiny_runtime)
    rt = prefixed_runtime(model, tiny_runtime)
    ids = torch.tensor([tiny_runtime.encode(CONTEXTS[0])])
    kw = dict(attention_mask=torch.ones_like(ids), max_new_tokens=1, do_sample=False, output_logits=True,
              return_dict_in_generate=True, pad_token_id=tiny_runtime.tokenizer.pad_token_id)
    with torch.no_grad():
        prefixed = rt.model.generate(ids, **kw).logits[0][0]
        base = tiny_runtime.model.generate(input_ids=ids, **kw).logits[0][0]
        want = model(input_ids=ids).logits[0, -1]
    assert torch.allclose(prefixed, want, atol=1e-4)
    assert (prefixed - base).abs().max() > 1e-2


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.name)
def test_scores_equal_peft_forward(cls, tiny_runtime):
    model = peft_model(cls, tiny_runtime)
    rt = prefixed_runtime(model, tiny_runtime)
    prompts = CONTEXTS
    got = rt.loglikelihood_batch([(c, CONTINUATIONS) for c in prompts], batch_size=3)
    for context, scored in zip(prompts, got, strict=True):
        want = [peft_logprob(model, tiny_runtime, context, c) for c in CONTINUATIONS]
        assert scored.logprobs == pytest.approx(want, abs=1e-4)
    # the base model scores differently: the virtual tokens do matter
    base = tiny_runtime.loglikelihood(prompts[0], CONTINUATIONS).logprobs
    assert max(abs(a - b) for a, b in zip(base, got[0].logprobs, strict=True)) > 1e-2


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.name)
def test_token_nll_equals_peft_forward(cls, tiny_runtime):
    model = peft_model(cls, tiny_runtime)
    rt = prefixed_runtime(model, tiny_runtime)
    texts = ["The Buyer shall pay all invoices within thirty days of receipt.", "Paris is the capital."]
    for (nll, n), text in zip(rt.token_nll(texts, batch_size=2), texts, strict=True):
        ids = tiny_runtime.encode(text)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -len(ids) :].float()
        want = -torch.log_softmax(logits[:-1], dim=-1).gather(-1, torch.tensor(ids[1:])[:, None]).sum().item()
        assert n == len(ids) - 1 and nll == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.name)
def test_batched_greedy_text_equals_peft_generate(cls, tiny_runtime):
    model = peft_model(cls, tiny_runtime, seed=2)
    rt = prefixed_runtime(model, tiny_runtime)
    got = [g.text for g in rt.generate(CONTEXTS, max_new_tokens=12, batch_size=3)]  # left-padded batch
    want = [peft_greedy(model, tiny_runtime, c, 12) for c in CONTEXTS]
    assert got == want
    assert len(set(got)) > 1 and all(got), "empty or identical outputs would prove little"


def test_adapt_trains_the_virtual_tokens_only(tmp_path, mini_suite, tiny_runtime, tiny_model_dir):
    for cls in CLASSES:
        run = RunContext(0, "cpu", tmp_path / cls.name, tmp_path / "cache", resolve_model(str(tiny_model_dir)),
                         lambda: tiny_runtime)
        adapted = cls(cls.Options(max_steps=2, eval_every=2, batch_size=2, virtual_tokens=4)).adapt(run, mini_suite)
        report = adapted.report
        assert 0 < report.trainable_params < report.total_params // 2 and report.extras["train_steps"] == 2
        assert (run.work_dir / "artifact" / "adapter_config.json").is_file()
        assert adapted.runtime.model.n_virtual == 4


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.name)
def test_eager_attention_scores_equal_peft_forward(cls, tiny_runtime):
    """Eager attention takes the packed continuations' mask as additive: the prefix columns add 0."""
    model = peft_model(cls, tiny_runtime)
    model.get_base_model().set_attn_implementation("eager")
    rt = prefixed_runtime(model, tiny_runtime)
    assert rt.model.config._attn_implementation == "eager"
    got = rt.loglikelihood(CONTEXTS[1], CONTINUATIONS).logprobs
    want = [peft_logprob(model, tiny_runtime, CONTEXTS[1], c) for c in CONTINUATIONS]
    assert got == pytest.approx(want, abs=1e-4)
