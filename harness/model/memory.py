"""Memory arithmetic for batching: free memory on a device, KV-cache bytes per token, and the largest
evaluation batch whose cache fits (`--batch-size auto`)."""

from __future__ import annotations

from typing import Any


def free_memory_bytes(device: str = "cpu") -> int:
    """Memory free for new tensors: the CUDA device's free memory, else the RAM psutil reports available."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    import psutil

    return int(psutil.virtual_memory().available)


def kv_bytes_per_token(model: Any) -> int:
    """Bytes of keys and values one token adds to the cache: layers x kv heads x head dim x 2 x dtype bytes."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    dtype_bytes = next(model.parameters()).element_size()
    return int(config.num_hidden_layers * kv_heads * head_dim * 2 * dtype_bytes)


def auto_batch_size(model: Any, max_seq_len: int, device: str = "cpu", *, cap: int = 64,
                    memory_fraction: float = 0.5, free_bytes: int | None = None, all_logits: bool = False) -> int:
    """The largest batch (1 to `cap`) whose KV cache at `max_seq_len` tokens per row (and, with
    `all_logits`, fp32 logits at every position) fits in `memory_fraction` of the free memory
    (`free_bytes`, else measured on `device`); the rest is left for weights' workspace and activations."""
    if max_seq_len < 1 or cap < 1 or not 0 < memory_fraction <= 1:
        raise ValueError("max_seq_len and cap must be >= 1 and memory_fraction in (0, 1]")
    free = free_memory_bytes(device) if free_bytes is None else free_bytes
    per_token = kv_bytes_per_token(model) + (4 * _vocab_size(model) if all_logits else 0)
    rows = int(free * memory_fraction) // (per_token * max_seq_len)
    return max(1, min(cap, rows))


def _vocab_size(model: Any) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(config.vocab_size)
