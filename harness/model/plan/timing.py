"""Predicted wall time of a cell: the FLOPs of its planned work (harness.run.work's accounting: training
4N + 2T per token, N the matmul parameters and T the trainable ones; a forward 2N per token) at this
machine's measured matmul throughput F (harness.model.throughput.flops_per_second), divided by an
efficiency (the share of that peak the work reaches), plus what FLOPs do not see: generation reads
every weight once per new token, and a weight cell copies the model, starts the trainer and writes
checkpoints.

    adapt = setup + params x SETUP_S_PER_PARAM
            + steps x batch x (padded tokens x (4(N - H) + 2T) + kept positions x 4H) / (F x train efficiency)
            + dev evaluations x (dev tokens x 2(N - H) + labelled positions x 2H) / (F x forward efficiency)
            + checkpoints x 12 T bytes (fp32 weights and AdamW moments) / DISK_BYTES_PER_S
            + embedded tokens x 2 x embedder parameters / (F x embed efficiency)   (few-shot, RAG: cold index)
    eval  = (prompt tokens x 2(N - H) + kept positions x 2H) / (F x forward efficiency)
            + generation steps x (weight bytes / decode bytes per s + batch x 2N / (F x forward efficiency))

H is the output head (vocabulary x hidden): a forward over a prompt computes logits only at the
positions it keeps (a prompt's last token, a choice's tokens; every token of a scored text), and a
training step only where the loss is taken (a row's answer tokens, the union over its batch;
harness.model.throughput.train_flops, also 2H more there when the head trains), which matters for
large vocabularies (Gemma-3's head is 63% of its matmul parameters, SmolLM2's 21%).

Generation steps: per evaluation batch, the task's max_new_tokens, or for a model trained on the task's
answers the longest train answer plus its end tokens (trained models stop there; prompted ones mostly
run to the limit). F and the efficiencies are per compute precision (EFFICIENCY): calibrated on the
development machine's CPU in fp32 and in bf16 (one torch thread, against process CPU time, so that
other jobs sharing the machine do not count), separately from the compare benchmarks/plan_accuracy.py
checks against. On CUDA they are unmeasured (no GPU was available to this project) and the bf16
figures stand as a stated guess. Attention's own FLOPs are left
out, as in harness.run.work.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.model.plan.footprint import Method
from harness.model.plan.shape import ModelShape
from harness.model.throughput import forward_flops
from harness.model.throughput import train_flops as flops_in_training


@dataclass(frozen=True)
class Efficiency:
    """Shares of the matmul peak (in the same precision) the planned work reaches, and generation's rate."""

    train: float
    """Training steps (forward, backward, AdamW)."""
    quantized_train: float
    """QLoRA: on a CPU its steps cost what LoRA's do (the 4-bit weights are dequantized per matmul)."""
    forward: float
    """Forwards over whole rows (dev loss, prompt prefill, choice scoring), the head counted only where
    logits are kept."""
    embed: float
    """The sentence embedder (few-shot by similarity, RAG's index; it computes in fp32 in every
    configuration), counted at 2 x all its parameters per token though half of them are a lookup table."""
    decode_bytes_per_s: float
    """Weight bytes a generation step streams per second."""


EFFICIENCY = {
    "float32": Efficiency(train=0.75, quantized_train=0.75, forward=0.75, embed=0.8, decode_bytes_per_s=12e9),
    "bfloat16": Efficiency(train=0.40, quantized_train=0.40, forward=0.55, embed=0.18, decode_bytes_per_s=8e9),
}
"""Per compute precision (harness.core.precision), from benchmarks/forward_efficiency.py (one thread, CPU
time, each precision against its own matmul peak: 86 to 96 GFLOP/s fp32, 378 to 445 bf16 on this CPU).
fp32: training 0.77 and 0.78 (SmolLM2 LoRA, full fine-tuning at batch 8 x 100 tokens), forwards 0.72 to
0.82 (SmolLM2, Gemma-3-270M), a generation step streams 9.7 to 13.5 GB/s of weights. bf16: the matmuls
run 4.4x faster but the rest (norms, softmax, the fp32 loss, AdamW) does not, so the shares are lower:
training 0.43 and 0.45 on SmolLM2 (Gemma-3 0.31 and 0.20 with logits at every position, which the
harness's training does not compute), forwards 0.48 to 0.59, generation 6.2 to 9.8 GB/s; the embedder
computes in fp32 in both, 0.8 of the fp32 peak, so 0.18 of the bf16 one; QLoRA's steps unmeasured in bf16,
taken as LoRA's."""
TRAIN_SETUP_S = 6.0
SETUP_S_PER_PARAM = 5e-8
"""A weight cell's fixed cost: the copy of the base, tokenizing the rows, the trainer, the saved artifact."""
QUANTIZE_S_PER_PARAM = 2e-8
"""QLoRA: loading and quantizing the base to 4-bit, per parameter."""
EMBEDDER_LOAD_S = 2.0
"""Loading the sentence embedder."""
DISK_BYTES_PER_S = 0.4e9
"""Checkpoint writes (safetensors and optimizer state)."""


@dataclass(frozen=True)
class Workload:
    """The planned work of one cell, in tokens (from the suite, the options and the tokenizer)."""

    steps: int = 0
    """Optimizer steps (the CPU cap and the epochs applied)."""
    rows_per_step: int = 8
    train_tokens_per_row: float = 0.0
    """Mean row length, padding to the batch's longest included."""
    train_logits_per_row: float | None = None
    """Of those, the positions whose logits the loss needs (harness.model.loss); None: all."""
    dev_evaluations: int = 0
    dev_tokens: float = 0.0
    """Tokens of one pass over the dev rows."""
    dev_logits: float | None = None
    """Of those, the labelled positions (None: all)."""
    checkpoints: int = 0
    prompt_tokens: float = 0.0
    """Every evaluation prompt's tokens, choice continuations included."""
    head_tokens: float | None = None
    """Of those, the positions whose logits are computed (the output head runs there only); None: all."""
    decode_steps: int = 0
    """Generation steps summed over evaluation batches (max new tokens per batch)."""
    eval_batch: int = 8
    embed_tokens: float = 0.0
    """Texts the sentence embedder reads (few-shot's train and test inputs, RAG's corpus and questions)."""


@dataclass(frozen=True)
class Timing:
    adapt_s: float
    eval_s: float
    adapt_flops: float
    eval_flops: float

    @property
    def total_s(self) -> float:
        return self.adapt_s + self.eval_s


EMBEDDER_PARAMS = 22_713_216
"""all-MiniLM-L6-v2, the default embedder."""


def predict_time(shape: ModelShape, method: Method, work: Workload, flops_per_s: float,
                 dtype: str = "float32") -> Timing:
    """Predicted adaptation and evaluation wall time (module docstring) in compute precision `dtype`, at
    `flops_per_s`, the matmul peak in that precision."""
    n, f, rows = shape.matmul_params, flops_per_s, work.steps * work.rows_per_step
    eff, weight_bytes = EFFICIENCY[dtype], (2 if dtype == "bfloat16" else 4)
    kept = None if work.train_logits_per_row is None else rows * work.train_logits_per_row
    train_flops = flops_in_training(n, shape.head_params, method.trainable, rows * work.train_tokens_per_row, kept,
                                    method.trains_embedding)
    dev_flops = work.dev_evaluations * forward_flops(n, shape.head_params, work.dev_tokens,
                                                     work.dev_tokens if work.dev_logits is None else work.dev_logits)
    embed_flops = work.embed_tokens * 2 * EMBEDDER_PARAMS
    train_eff = eff.quantized_train if method.quantized else eff.train
    adapt = train_flops / (f * train_eff) + dev_flops / (f * eff.forward) + embed_flops / (f * eff.embed)
    if method.trainable:
        adapt += TRAIN_SETUP_S + shape.params * SETUP_S_PER_PARAM
        adapt += work.checkpoints * method.trainable * 12 / DISK_BYTES_PER_S
        adapt += shape.params * QUANTIZE_S_PER_PARAM if method.quantized else 0.0
    if work.embed_tokens:
        adapt += EMBEDDER_LOAD_S
    head = work.prompt_tokens if work.head_tokens is None else work.head_tokens
    prefill_flops = forward_flops(n, shape.head_params, work.prompt_tokens, head)
    step_flops = work.eval_batch * 2 * n
    step_s = shape.params * weight_bytes / eff.decode_bytes_per_s + step_flops / (f * eff.forward)
    evaluation = prefill_flops / (f * eff.forward) + work.decode_steps * step_s
    return Timing(adapt, evaluation, train_flops + dev_flops + embed_flops,
                  prefill_flops + work.decode_steps * step_flops)
