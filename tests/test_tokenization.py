"""One tokenization policy for scoring and training, checked off the default path: a base tokenizer
that adds BOS and has no chat template (like Llama's and Gemma's base models), beside the chat one."""

import pytest
from tokens import joint_split, plain_logprob

from harness.core.records import Message, Prompt
from harness.strategy.training import tokenize_pairs

CHOICES = ["payment", "termination", "confidentiality", "x"]


def _prompt(rt):
    return rt.render(Prompt((Message("user", "Classify the text: the Buyer shall pay all invoices."),)))


def test_a_base_tokenizer_adds_bos_and_has_no_template(tiny_base_runtime):
    tok = tiny_base_runtime.tokenizer
    assert not tiny_base_runtime.chat and tok("pay")["input_ids"][0] == tok.bos_token_id
    assert tiny_base_runtime.start_ids == [tok.bos_token_id]


@pytest.mark.parametrize("which", ["tiny_base_runtime", "tiny_runtime"])
def test_no_special_token_in_the_middle(which, request):
    rt = request.getfixturevalue(which)
    context = _prompt(rt) + rt.answer_prefix()
    specials = set(rt.tokenizer.all_special_ids)
    for choice in CHOICES:
        ctx, cont = rt.encode_pair(context, choice)
        assert not specials & set(cont) and ctx[: len(rt.start_ids)] == rt.start_ids
        if not rt.chat:  # a chat template writes its own special tokens into the context
            assert not specials & set(ctx[len(rt.start_ids):])


@pytest.mark.parametrize("which", ["tiny_base_runtime", "tiny_runtime"])
def test_scores_equal_a_plain_forward_over_the_jointly_encoded_text(which, request):
    """The answer after "Answer:" is scored as the tokens of the joint text (the space belongs to the
    label, as in lm-eval), within 1e-4 of one plain forward, batched with contexts of other lengths."""
    rt = request.getfixturevalue(which)
    contexts = [_prompt(rt) + rt.answer_prefix(), "Pay" + rt.answer_prefix(), "Either party may terminate "]
    scored = rt.loglikelihood_batch([(c, CHOICES) for c in contexts], batch_size=3)
    for context, s in zip(contexts, scored, strict=True):
        for choice, lp in zip(CHOICES, s.logprobs, strict=True):
            ctx, cont = joint_split(rt.tokenizer, context, choice, rt.chat)
            assert lp == pytest.approx(plain_logprob(rt.model, ctx, cont), abs=1e-4)


def test_the_space_joins_the_label_for_a_base_model(tiny_base_runtime):
    rt = tiny_base_runtime
    _, cont = rt.encode_pair("Answer: ", "payment")
    assert cont == rt.tokenizer(" payment", add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("which", ["tiny_base_runtime", "tiny_runtime"])
def test_training_rows_tokenize_as_scoring_does(which, request):
    """A training row for (prompt, answer) is the scoring request's context and continuation, then EOS."""
    rt = request.getfixturevalue(which)
    prompt = _prompt(rt)
    for answer in CHOICES:
        row = tokenize_pairs(rt, [(prompt, answer)], max_len=512)[0]
        ctx, cont = rt._encode_request(prompt + rt.answer_prefix(), [answer])
        assert row["input_ids"] == ctx + cont[0] + [rt.tokenizer.eos_token_id]
        assert row["labels"] == [-100] * len(ctx) + cont[0] + [rt.tokenizer.eos_token_id]


def test_generation_prompt_starts_with_bos_once(tiny_base_runtime):
    rt = tiny_base_runtime
    ids = rt.encode(_prompt(rt))
    assert ids[0] == rt.tokenizer.bos_token_id and ids.count(rt.tokenizer.bos_token_id) == 1
    out = rt.generate([_prompt(rt)], max_new_tokens=4, batch_size=1)[0]
    assert out.prompt_tokens == len(ids)
