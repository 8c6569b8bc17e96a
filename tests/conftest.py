"""Shared fixtures: a tiny Llama built from a config (with a BPE tokenizer trained on the spot and
a ChatML template), and the ten-item `mini` suite. No network, seconds to build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "The Buyer shall pay all invoices within thirty days of receipt.",
    "Either party may terminate this agreement on ninety days notice.",
    "What is the capital of France? Paris. Answer with a short phrase.",
    "Classify the text. Labels: payment, termination, confidentiality.",
] * 20


def build_tiny_model(folder: Path, seed: int = 0, base: bool = False) -> Path:
    """Write a 2-layer Llama (about 150k parameters; 64 wide so 4-bit blocks fit) and its tokenizer: a
    chat tokenizer (ChatML template), or with `base` one like Llama's and Gemma's base tokenizers: no
    chat template, and a BOS put before every encoded text."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    if base:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", tok.token_to_id("<s>"))])
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<|endoftext|>",
                                       bos_token="<s>", unk_token="<|endoftext|>")
    else:
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                       bos_token="<|im_start|>", unk_token="<|endoftext|>")
        fast.chat_template = CHATML
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         bos_token_id=fast.bos_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def _fp32_with_the_fp32_fixtures(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test on the fp32 tiny runtimes trains and evaluates in fp32 too (HARNESS_PRECISION), whatever this
    machine computes in by default (bf16 where its CPU has it natively: harness.core.precision)."""
    if {"tiny_runtime", "tiny_base_runtime"} & set(request.fixturenames):
        monkeypatch.setenv("HARNESS_PRECISION", "fp32")


@pytest.fixture(scope="session")
def tiny_base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama behind a base tokenizer: no chat template, BOS before every text."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-base"), base=True)


@pytest.fixture(scope="session")
def tiny_base_runtime(tiny_base_model_dir: Path):
    """fp32 whatever the machine computes in: tests of exact equivalences compare these to plain forwards."""
    from harness.model.load import load_runtime
    from harness.model.spec import resolve_model

    return load_runtime(resolve_model(str(tiny_base_model_dir)), device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_runtime(tiny_model_dir: Path):
    from harness.model.load import load_runtime
    from harness.model.spec import resolve_model

    return load_runtime(resolve_model(str(tiny_model_dir)), device="cpu", dtype="float32")


@pytest.fixture()
def mini_suite_dir() -> Path:
    return FIXTURES / "mini"


@pytest.fixture()
def mini_suite(mini_suite_dir: Path):
    from harness.data.suites import load_suite_dir

    return load_suite_dir(mini_suite_dir)


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One harness cache per test session, so no result depends on what ran before (a user's
    compare, an earlier test run). Only models are shared with the user's cache (converted weights and
    GGUF files assembled from chunk packages): they are a pure function of the model package and
    expensive to rebuild (the default model takes ~40 s)."""
    from harness.core.cache import cache_root

    root = tmp_path_factory.mktemp("harness-cache")
    for name in ("models", "gguf"):
        user = cache_root() / name
        user.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(user, target_is_directory=True)
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(_session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, and the session's own harness cache (tests may point HARNESS_CACHE elsewhere)."""
    monkeypatch.setenv("HARNESS_CACHE", str(_session_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
