"""A cell's work in units that do not move with the machine's load: FLOPs from the model's size and
the tokens it trained on and read, process CPU seconds, and the machine's measured throughput.

Training FLOPs per token: 2 x the matmul parameters forward, 2 x backward through the activations,
and 2 x the trainable parameters for their gradients (6N for full fine-tuning, about 4N for LoRA), the
output head's share only at the positions whose logits the training computed (the record's
`logit_positions`: the labelled ones, see harness.model.loss; every token where it is absent).
Evaluation: 2 x the matmul parameters but the output head per token read or generated, and 2 x the
head's only where logits are computed: each generated token (the first from the prompt's last
position), or one position for a scored context (the choices' few tokens are left out). A prompt's
other positions need no logits, and the head is much of a small model's matmuls (SmolLM2 21%,
Gemma-3-270M 63%; benchmarks/forward_efficiency.py). Attention's own FLOPs (which grow
with sequence length) are left out: at a few hundred tokens they are a few percent. Work reported by a
strategy itself (`extras["index_flops"]`: embedding a RAG corpus) is added to its adaptation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.core.measure import Measured
from harness.core.records import AdaptReport, Prediction
from harness.model.throughput import flops_per_second, forward_flops, head_params, matmul_params, train_flops


def cell_work(base_model: Any, adapt: AdaptReport, queries: Sequence[Prediction], adapt_m: Measured,
              eval_m: Measured, device: str) -> dict[str, float]:
    n = matmul_params(base_model)
    head = head_params(base_model)
    train = train_flops(n, head, adapt.trainable_params, adapt.train_tokens, adapt.extras.get("logit_positions"),
                        bool(adapt.extras.get("head_trained", 0.0)))
    eval_tokens = sum(p.prompt_tokens + p.output_tokens for p in queries)
    logits_at = sum(max(1, p.output_tokens) for p in queries)
    return {
        "adapt_cpu_s": adapt_m.cpu_s, "eval_cpu_s": eval_m.cpu_s, "train_tokens": float(adapt.train_tokens),
        "eval_tokens": float(eval_tokens), "queries": float(len(queries)),
        "adapt_flops": float(train + adapt.extras.get("index_flops", 0.0)),
        "eval_flops": forward_flops(n, head, eval_tokens, logits_at),
        "flops_per_s": flops_per_second(device),
    }
