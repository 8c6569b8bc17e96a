"""A model's shape from its configuration alone: the model is instantiated on torch's meta device
(`AutoModelForCausalLM.from_config` under `torch.device("meta")`), so its modules and parameter
shapes exist and no weight is allocated or read: an 8B configuration plans on a laptop in about a
second. Everything the memory and time formulas need comes from here: dimensions, unique parameter
counts (tied embeddings counted once), every linear layer's (in, out) features (for adapter counts),
and which parameters are norms and biases."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.cache import cache_root
from harness.model.spec import ModelSpec

_LAYER = re.compile(r"\.layers\.(\d+)\.")


@dataclass(frozen=True)
class Linear:
    name: str
    """The module path, e.g. model.layers.3.self_attn.q_proj."""
    fan_in: int
    fan_out: int
    layer: int
    """The decoder layer it belongs to (-1: outside the layers)."""


@dataclass(frozen=True)
class ModelShape:
    """What the planner knows of a model (no weights)."""

    name: str
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    """The output head shares the input embedding table."""
    params: int
    """Unique parameters (a tied head counted once)."""
    embed_params: int
    linears: tuple[Linear, ...]
    """Every linear layer but the output head."""
    norm_params: int
    bias_params: int
    layer_params: tuple[int, ...]
    """Parameters of each decoder layer, bottom to top."""
    final_norm_params: int
    norm_widths: tuple[tuple[str, int], ...]
    """Layer 0's normalization modules: (name, width of the vectors it normalizes)."""

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def matmul_params(self) -> int:
        """Parameters taking part in a matmul per token (harness.model.throughput.matmul_params): all but
        the input embedding lookup, plus the output head (the same table when tied)."""
        return self.params if self.tied else self.params - self.embed_params

    @property
    def head_params(self) -> int:
        return self.vocab * self.hidden

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        """Keys and values one token adds to a cache (harness.model.memory.kv_bytes_per_token)."""
        return self.layers * self.kv_dim * 2 * dtype_bytes


def text_config(config: Any) -> Any:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def meta_model(config: Any) -> Any:
    """The model of `config` on the meta device: shapes without storage (nothing is allocated)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(text_config(config))


def _norm_widths(model: Any, hidden: int, q_dim: int, kv_dim: int) -> tuple[tuple[str, int], ...]:
    """Layer 0's norms and the width each normalizes per token: a hidden-size norm the residual stream,
    a per-head norm (Gemma's q_norm, k_norm) the queries or the keys."""
    layers = [m for n, m in model.named_modules() if n.endswith("layers.0")]
    out = []
    for name, module in (layers[0].named_modules() if layers else []):
        weight = getattr(module, "weight", None)
        if "norm" not in type(module).__name__.lower() or weight is None:
            continue
        width = hidden if weight.numel() == hidden else (kv_dim if "k_norm" in name else q_dim)
        out.append((name, width))
    return tuple(out)


def shape_of(config: Any, name: str = "") -> ModelShape:
    """The shape of a causal LM configuration (transformers' PretrainedConfig), read off a meta-device
    instance."""
    import torch

    cfg = text_config(config)
    model = meta_model(cfg)
    heads = int(cfg.num_attention_heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
    named = dict(model.named_parameters())  # unique: a tied head appears once
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    head_module = next((n for n, m in model.named_modules() if m is head), "")
    linears = tuple(Linear(n, m.in_features, m.out_features, _layer_of(n)) for n, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and n != head_module)
    per_layer = [0] * int(cfg.num_hidden_layers)
    for n, p in named.items():
        if _layer_of(n) >= 0:
            per_layer[_layer_of(n)] += p.numel()
    final_norm = sum(p.numel() for n, p in named.items() if _layer_of(n) < 0 and "norm" in n)
    return ModelShape(
        name=name or str(getattr(cfg, "_name_or_path", "") or cfg.model_type), hidden=int(cfg.hidden_size),
        layers=int(cfg.num_hidden_layers), intermediate=int(getattr(cfg, "intermediate_size", 4 * cfg.hidden_size)),
        heads=heads, kv_heads=kv_heads, head_dim=head_dim, vocab=int(cfg.vocab_size),
        tied=head is not None and head.weight is embed, params=sum(p.numel() for p in named.values()),
        embed_params=embed.numel(), linears=linears,
        norm_params=sum(p.numel() for n, p in named.items() if "norm" in n),
        bias_params=sum(p.numel() for n, p in named.items() if n.endswith(".bias")), layer_params=tuple(per_layer),
        final_norm_params=final_norm, norm_widths=_norm_widths(model, int(cfg.hidden_size), heads * head_dim,
                                                               kv_heads * head_dim),
    )


def _layer_of(name: str) -> int:
    m = _LAYER.search(f".{name}.")
    return int(m.group(1)) if m else -1


def config_of(spec: ModelSpec, trust_remote_code: bool = False) -> Any:
    """A resolved model's configuration, without weights: the folder's or the hub cache's config.json, the
    converted GGUF folder's when it exists, else the GGUF file's header (read, not converted)."""
    from transformers import AutoConfig

    if spec.source != "gguf":
        return AutoConfig.from_pretrained(spec.location, trust_remote_code=trust_remote_code)
    converted = converted_folder(spec)
    if (converted / "config.json").is_file():
        return AutoConfig.from_pretrained(str(converted))
    gguf = Path(spec.location)
    if not gguf.is_file():  # a package that ships the file in chunks, not yet assembled
        from harness.model.load import assemble_gguf

        gguf = assemble_gguf(spec)
    return AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def converted_folder(spec: ModelSpec) -> Path:
    """Where harness.model.load.local_weights keeps a converted GGUF model."""
    return cache_root() / "models" / spec.identity.replace(":", "-")


def tokenizer_of(spec: ModelSpec) -> Any | None:
    """The model's tokenizer when it is on disk already (a folder, a converted GGUF model, the hub cache);
    None otherwise (token counts are then estimated from characters)."""
    from transformers import AutoTokenizer

    where = str(converted_folder(spec)) if spec.source == "gguf" else spec.location
    if spec.source == "gguf" and not (converted_folder(spec) / "config.json").is_file():
        return None
    try:
        return AutoTokenizer.from_pretrained(where, local_files_only=spec.source == "hub")
    except (OSError, ValueError):
        return None
