"""Predicted peak memory of a cell, term by term, from the model's shape (harness.model.plan.shape),
what it trains (`Method`), the precision, and the batch and sequence lengths of training and evaluation.

A cell's memory peaks in one of its two phases, and the breakdown is that phase's terms (they add up
to the peak exactly; the other phase's total is kept beside it):

- training: runtime + weights + gradients + optimizer states + activations + logits;
- evaluation: runtime + weights + KV cache + evaluation work (one forward's transient tensors).

Terms, in bytes (b batch, s tokens per row, L layers, h hidden, i MLP width, q = heads x head dim,
kv = kv heads x head dim, V vocabulary, e bytes per saved activation: 4 in fp32, 2 under bf16 autocast):

- runtime: the process before any model (Python, torch, transformers, the training libraries: measured
  on a CPU, CPU_RUNTIME_BYTES) or, on CUDA, a reserve for the context and cuBLAS workspace that
  `torch.cuda.max_memory_allocated` does not count (CUDA_RUNTIME_BYTES); plus, once a cell has loaded
  the sentence embedder (few-shot by similarity, RAG), its libraries and weights (EMBEDDER_BYTES), kept
  by the process for the cells after it.
- weights: the shared base model the runner keeps loaded (in the device's compute precision: bf16 on
  CUDA and on a CPU with native bf16, else fp32) plus, for a
  weight strategy, the copy it trains (harness copies the base; QLoRA loads a 4-bit NF4 copy:
  0.5 byte per linear weight plus 1/64 for the block scales, its embeddings upcast to fp32 by peft's
  prepare_model_for_kbit_training; on a CPU the full-precision checkpoint it quantizes from stays
  mapped in the process too); trainable parameters are fp32 master weights (4 bytes) in every precision
  (harness.model.training.master_weights).
- gradients: 4 bytes per trainable parameter; optimizer: AdamW's two fp32 moments (8 bytes), or 2
  bytes for 8-bit paged AdamW (QLoRA on CUDA).
- activations: what autograd saves for backward, per decoder layer and token, for a Llama-style layer
  (RMSNorm, attention by SDPA with grouped keys and values repeated to every head, gated MLP), as
  counted with torch's saved-tensor hooks on SmolLM2 and Gemma 3 layers:
      A = n x (sum of the layer's norm widths) + 4 q (queries, keys and values after the repeat,
          attention output) + m x i (gate, activation, up, and their product as down_proj's input)
          + the adapters' saved inputs
  with n = 3, m = 4 and one more h (o_proj's input) when the layer's linear weights train (full
  fine-tuning), and n = 2, m = 3 when they are frozen (LoRA, DoRA, QLoRA, IA3, soft prompts, norms:
  a frozen weight needs no saved input); so L' x b x s x A x e bytes, L' the layers gradients pass
  through (all of them, or layer freezing's top layers only: nothing below the lowest trainable
  parameter is saved). Korthikanti et al. (2022) count the same tensors for GPT (34 h + 5 a s bytes
  per token at 16 bits, their s x s term being the unfused attention probabilities, added here with
  `fused_attention=False`). A LoRA adapter with dropout keeps its dropout's output per targeted
  projection (its fan-in); DoRA also the base output (its fan-out). With gradient checkpointing only
  each layer's input is kept (L' x b x s x h x e) and one layer's A is recomputed at a time. Plus
  b x s x 3h x 4 outside the layers (embedding output, final norm, head input).
- logits: b x k x V fp32 logits, cross-entropy's saved log-softmax and the gradient of the logits:
  3 x 4 bytes per element (plus 2 for the bf16 head output under autocast), k the positions of the batch
  whose logits the loss needs (its rows' answer tokens: harness.model.loss; every position s for soft
  prompts). A small model's vocabulary is large (SmolLM2: V = 49,152 is 85 x h): at every position this
  was the largest term.
- embedding gradient: when a tied embedding trains (full fine-tuning), the backward holds the head's
  gradient of the shared table until the lookup's arrives, and then their sum: 2 x V x h x 4 bytes
  above the gradients term at the end of the backward (measured: 1.34 GB on Gemma-3-270M, 0.23 GB on
  SmolLM2, benchmarks/memory_timeline.py).
- KV cache: the evaluation batch x its longest row (prompt + new tokens) x L x kv x 2 x dtype bytes.
- evaluation work: one forward without gradients at the evaluation batch: b x s x (2h + 3i) x e, the
  attention probabilities when not fused, and fp32 logits at the scored positions (all positions for a
  task that scores a text's own tokens).

- allocator (CPU only): a CPU peak is process RSS (harness.core.measure), and the heap keeps blocks
  that training steps free unless live states reuse them: ALLOCATOR_RETENTION of the activations, less
  the gradients and optimizer states (SmolLM2 at batch 4: LoRA's RSS rose 0.9 GB above its live tensors
  over three steps, full fine-tuning's not at all). The logits are not retained: a copy (b x s x V x 4
  bytes) is hundreds of MB at a real vocabulary, above glibc's mmap threshold (at most 32 MB), so it is
  mapped on its own and returned to the system when freed (measured on Gemma-3-270M, whose logits are
  3.1 GB of a LoRA step: counting them here put the plan 1.3 GB above the measured peak).

The terms are not all live at one instant, and the sum is what was validated. benchmarks/memory_timeline.py
follows full fine-tuning through its steps at the planned shape. With logits at every position the RSS
peaked between the forward and the logits' gradient (the cross-entropy backward holding two logits-sized
buffers); with logits at the labelled positions only (harness.model.loss) it peaks at the end of the
backward, where the tied embedding's two gradients meet. It is the worst step's peak: the first step has
no optimizer states yet, and the trainer's length-grouped sampler runs the longest batch first, so a
training shorter than an epoch may never reach the planned peak.

The constants were calibrated on the development machine (benchmarks/plan_accuracy.py measures the
result on both real models).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.model.plan.shape import ModelShape

GB = 1e9
CPU_RUNTIME_BYTES = 0.45e9
"""RSS of a harness process with its libraries and no model (Python, torch, transformers, peft, datasets,
accelerate: 0.27 GB imported, 0.44 GB once a model has loaded and run, less the model's weights)."""
EMBEDDER_BYTES = 0.3e9
"""sentence-transformers, FAISS and all-MiniLM-L6-v2 in the process once loaded (measured 0.2 to 0.34 GB)."""
ALLOCATOR_RETENTION = 0.4
"""CPU heap kept from freed activations (calibrated: SmolLM2 LoRA and full fine-tuning, batch 4)."""
CUDA_RUNTIME_BYTES = 0.5e9
"""CUDA context and workspace reserve (not measured here: no GPU was available to this project)."""
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
"""A 4-bit NF4 weight with double quantization: half a byte, an 8-bit scale per 64 weights, an fp32 scale
per 256 of those."""


@dataclass(frozen=True)
class Method:
    """What a cell trains, as the memory and time formulas see it."""

    name: str
    """full, lora, dora, qlora, ia3, selective, soft-prompt or inference (nothing trains)."""
    trainable: int = 0
    """Parameters with gradients and optimizer states."""
    copy: bool = False
    """The cell trains a copy of the base model (the base stays loaded beside it)."""
    quantized: bool = False
    """The copy's linear layers are 4-bit NF4 (QLoRA)."""
    adapter_fan_in: int = 0
    """Per layer: elements an adapter saves per token (its dropout's outputs, DoRA's base outputs)."""
    trains_linears: bool = False
    """The layers' linear weights train (full fine-tuning, layer freezing): their inputs are saved."""
    saved_layers: int | None = None
    """Layers gradients pass through (None: all; layer freezing: the top ones)."""
    embedder: bool = False
    """A sentence embedder is in the process (loaded by this cell or an earlier one: few-shot, RAG)."""
    virtual_tokens: int = 0
    """Soft prompts: tokens prepended to every row."""
    all_logits: bool = False
    """Trains with logits at every position (plain-text rows, TRL's trainers), not only the labelled ones."""
    trains_embedding: bool = False
    """The token embedding and the output head train (full fine-tuning)."""
    note: str = ""
    approximate: bool = False
    """The formulas do not model this strategy exactly (state they do not count, an unknown plugin): its
    prediction is shown with the note, and a cell is never skipped on it."""


@dataclass(frozen=True)
class Shapes:
    """The batch and sequence lengths memory is planned at (the longest batch: padding included)."""

    train_batch: int = 8
    train_seq: int = 384
    train_logits: int | None = None
    """Positions of a training batch whose logits the loss needs (harness.model.loss; None: every one)."""
    eval_batch: int = 8
    eval_seq: int = 512
    """The longest evaluation row: prompt plus new tokens."""
    eval_all_logits: bool = False
    """Some task scores every position of a text (language modeling): logits at every position."""
    gradient_checkpointing: bool = False
    fused_attention: bool = True
    """Attention by a fused kernel (SDPA flash or memory-efficient): no s x s probabilities kept."""


@dataclass(frozen=True)
class Footprint:
    """Predicted peak memory, in bytes, by term; `terms` are those of the phase that peaks."""

    train: dict[str, float]
    eval: dict[str, float]
    notes: tuple[str, ...] = field(default=())

    @property
    def train_peak(self) -> float:
        return sum(self.train.values())

    @property
    def eval_peak(self) -> float:
        return sum(self.eval.values())

    @property
    def phase(self) -> str:
        return "train" if self.train and self.train_peak >= self.eval_peak else "eval"

    @property
    def terms(self) -> dict[str, float]:
        return self.train if self.phase == "train" else self.eval

    @property
    def peak(self) -> float:
        return sum(self.terms.values())

    def describe(self) -> str:
        """The peak's terms in GB, largest first, and the other phase's total."""
        terms = sorted(self.terms.items(), key=lambda kv: -kv[1])
        parts = ", ".join(f"{k} {v / GB:.2f}" for k, v in terms if v >= 0.005 * GB)
        other = (f"; eval peak {self.eval_peak / GB:.2f}" if self.phase == "train"
                 else f"; train peak {self.train_peak / GB:.2f}" if self.train else "")
        return f"{self.phase}: {parts}{other}"


def layer_saved_elements(shape: ModelShape, seq: int, fused_attention: bool = True, adapter_fan_in: int = 0,
                         trains_linears: bool = False) -> float:
    """Elements autograd saves per decoder layer and token (the formula in the module docstring)."""
    n, m = (3, 4) if trains_linears else (2, 3)
    norms = n * (sum(width for _, width in shape.norm_widths) or 2 * shape.hidden)
    attention = 4 * shape.q_dim + (0 if fused_attention else shape.heads * seq)
    return norms + attention + m * shape.intermediate + adapter_fan_in + (shape.hidden if trains_linears else 0)


def activation_bytes(shape: ModelShape, batch: int, seq: int, act_bytes: int, *, checkpointing: bool = False,
                     fused_attention: bool = True, adapter_fan_in: int = 0, trains_linears: bool = False,
                     layers: int | None = None) -> float:
    """Saved activations of one training step (module docstring): the layers gradients pass through, or with
    gradient checkpointing each one's input plus one layer recomputed; plus the embedding output, final norm
    and head input."""
    per_layer = layer_saved_elements(shape, seq, fused_attention, adapter_fan_in, trains_linears) * act_bytes
    depth = shape.layers if layers is None else min(layers, shape.layers)
    tokens = batch * seq
    outside = tokens * 3 * shape.hidden * 4
    if checkpointing:
        return tokens * (depth * shape.hidden * act_bytes + per_layer) + outside
    return tokens * depth * per_layer + outside


def logits_bytes(shape: ModelShape, batch: int, seq: int, autocast: bool) -> float:
    """Training logits: fp32 logits, the saved log-softmax and the logits' gradient (+ the bf16 head output)."""
    return batch * seq * shape.vocab * (3 * 4 + (2 if autocast else 0))


def weight_bytes(shape: ModelShape, method: Method, cuda: bool, bf16: bool | None = None) -> float:
    """The base the runner keeps loaded, plus the trained copy (module docstring); `bf16`: the base in
    bf16 (default: on CUDA)."""
    dtype = 2 if (cuda if bf16 is None else bf16) else 4
    base = shape.params * dtype
    if not method.copy:
        return float(base)
    if method.quantized:
        linear = sum(x.fan_in * x.fan_out for x in shape.linears)
        checkpoint = 0 if cuda else shape.params * 4
        return base + linear * NF4_BYTES + (shape.params - linear) * 4 + method.trainable * 4 + checkpoint
    frozen = shape.params - min(method.trainable, shape.params)
    return float(base + frozen * dtype + method.trainable * 4)


def footprint(shape: ModelShape, method: Method, shapes: Shapes, cuda: bool = False, bf16: bool | None = None
              ) -> Footprint:
    """The predicted peak memory of one cell (module docstring); `bf16`: the device computes in bf16 (a bf16
    base, bf16-mixed training; harness.core.precision), by default on CUDA."""
    autocast = cuda if bf16 is None else bf16
    e = 2 if autocast else 4
    runtime = (CUDA_RUNTIME_BYTES if cuda else CPU_RUNTIME_BYTES) + (EMBEDDER_BYTES if method.embedder else 0)
    weights = weight_bytes(shape, method, cuda, autocast)
    eval_terms = {"runtime": runtime, "weights": weights, "kv cache": _kv(shape, shapes, autocast),
                  "eval work": _eval_work(shape, shapes, e)}
    train_terms: dict[str, float] = {}
    if method.trainable:
        seq = shapes.train_seq + method.virtual_tokens
        optimizer = 2 if method.quantized and cuda else 8
        train_terms = {
            "runtime": runtime, "weights": weights, "gradients": method.trainable * 4.0,
            "optimizer": method.trainable * float(optimizer),
            "activations": activation_bytes(shape, shapes.train_batch, seq, e,
                                            checkpointing=shapes.gradient_checkpointing,
                                            fused_attention=shapes.fused_attention,
                                            adapter_fan_in=method.adapter_fan_in,
                                            trains_linears=method.trains_linears, layers=method.saved_layers),
            "logits": logits_bytes(shape, shapes.train_batch, seq if shapes.train_logits is None
                                   else min(seq, shapes.train_logits), autocast),
        }
        if method.trains_embedding and shape.tied:
            train_terms["embedding gradient"] = 2.0 * shape.vocab * shape.hidden * 4
        if not cuda:
            states = train_terms["gradients"] + train_terms["optimizer"]
            train_terms["allocator"] = max(0.0, ALLOCATOR_RETENTION * train_terms["activations"] - states)
    return Footprint(train_terms, eval_terms, (method.note,) if method.note else ())


def _kv(shape: ModelShape, shapes: Shapes, bf16: bool) -> float:
    return float(shapes.eval_batch * shapes.eval_seq * shape.kv_bytes_per_token(2 if bf16 else 4))


def _eval_work(shape: ModelShape, shapes: Shapes, e: int) -> float:
    tokens = shapes.eval_batch * shapes.eval_seq
    work = tokens * (2 * shape.hidden + 3 * shape.intermediate) * e
    if not shapes.fused_attention:
        work += shapes.eval_batch * shape.heads * shapes.eval_seq**2 * 4
    scored = tokens if shapes.eval_all_logits else shapes.eval_batch
    return float(work + scored * shape.vocab * 4 * 2)
