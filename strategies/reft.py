"""LoReFT (Wu et al. 2024, "ReFT: Representation Finetuning for Language Models"): a low-rank
intervention on the hidden states of chosen layers at chosen prompt positions, the model frozen:

    Φ(h) = h + Rᵀ(W h + b − R h),   R (rank × hidden) with orthonormal rows, W and b learned.

A small module of forward hooks, not pyreft: pyreft 0.1.0 pins transformers 4.45 and needs four
workarounds on transformers 5 (/work/notes/libs.md); this is the paper's definition, checked
against a direct computation of the formula (tests/test_reft.py). One intervention per chosen layer,
shared by all its positions, applied to the layer's output (pyreft's `block_output`).

Positions are prompt positions only, as in the paper: the first k and/or last k tokens of each
row's prompt (`positions`, e.g. "first:4+last:4"). `ReftLM` wraps a frozen copy of the base and
works out, for every forward, where each row's prompt lies: in training, the tokens before the
first label; in scoring, each context (the runtime right-pads contexts and passes no mask, so
`ReftRuntime` hands their lengths over); in generation, the non-padding tokens of the left-padded
prompt, less trailing whitespace tokens (scoring and training move a prompt's trailing whitespace
into the answer, so the intervened tokens are the same in all three); for plain text (retention
cross-entropy), the text. Continuations scored after a context's cache and generated tokens are
never intervened on. Batched and padded evaluation therefore equals one-at-a-time evaluation
(tests/test_reft.py). The artifact is the intervention tensors alone.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from harness_strategies.bottleneck import Wrapped
from pydantic import Field, field_validator

from harness.strategy import (
    Adapted,
    Example,
    ModelRuntime,
    Prompt,
    RunContext,
    Suite,
    Task,
    TrainOptions,
    prompts_as_trained,
    search,
    train_weights,
)

_POSITIONS = re.compile(r"(first|last):(\d+)")


def parse_positions(spec: str) -> tuple[int, int]:
    """("first:4+last:4") -> (4, 4): how many first and last prompt tokens are intervened on."""
    counts = {"first": 0, "last": 0}
    for term in spec.split("+"):
        m = _POSITIONS.fullmatch(term.strip())
        if m is None:
            raise ValueError(f"positions {spec!r}: each term is first:<k> or last:<k>, joined by '+'")
        if counts[m[1]]:
            raise ValueError(f"positions {spec!r}: {m[1]} is given twice")
        counts[m[1]] = int(m[2])
    if not any(counts.values()):
        raise ValueError(f"positions {spec!r}: no token to intervene on (at least one of first:<k>, last:<k> above 0)")
    return counts["first"], counts["last"]


def loreft(dim: int, rank: int) -> Any:
    """Φ(h) = h + Rᵀ(W h + b − R h) as a torch module; R's rows orthonormal by parametrization."""
    import torch
    from torch.nn.utils.parametrizations import orthogonal

    class LoReFT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rotate = orthogonal(torch.nn.Linear(dim, rank, bias=False))  # weight: R, rank x dim
            self.learned = torch.nn.Linear(dim, rank)  # W h + b

        def forward(self, h: Any) -> Any:
            r = self.rotate.weight
            return h + (self.learned(h) - h @ r.T) @ r

    return LoReFT()


def prompt_mask(starts: Any, lengths: Any, width: int, first: int, last: int) -> Any:
    """(rows, width) booleans: the first `first` and last `last` tokens of each row's prompt, which
    occupies columns start .. start + length - 1."""
    import torch

    rel = torch.arange(width, device=starts.device)[None, :] - starts[:, None]
    inside = (rel >= 0) & (rel < lengths[:, None])
    return inside & ((rel < first) | (rel >= lengths[:, None] - last))


def _hook(owner: Any, key: str) -> Any:
    def apply(module: Any, args: Any, output: Any) -> Any:
        mask = owner.mask
        h = output[0] if isinstance(output, tuple) else output
        if mask is None or h.shape[1] != mask.shape[1]:
            return output
        new = owner.interventions[key](h.float()).to(h.dtype)
        new = h.where(~mask[..., None], new)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return apply


def prompt_extent(ids: Any, attention_mask: Any, labels: Any, context_lengths: list[int] | None) -> tuple[Any, Any]:
    """(start, length) of each row's prompt in a forward that starts a sequence: training rows (the
    tokens before the first label), masked rows (the unmasked run: plain text, or a left-padded
    prompt), scored contexts (their lengths, handed over by ReftRuntime), else the whole row."""
    import torch

    rows, width = ids.shape
    starts = torch.zeros(rows, dtype=torch.long, device=ids.device)
    if labels is not None:
        has = labels != -100
        real = attention_mask.sum(1) if attention_mask is not None else torch.full_like(starts, width)
        return starts, torch.where(has.any(1), has.int().argmax(1), real)
    if attention_mask is not None and attention_mask.dim() == 2:
        return attention_mask.int().argmax(1), attention_mask.sum(1)
    if context_lengths is not None:
        return starts, torch.tensor(context_lengths, device=ids.device)
    return starts, torch.full_like(starts, width)


def without_trailing_space(ids: Any, starts: Any, lengths: Any, tokenizer: Any) -> Any:
    """Each prompt's length less its trailing whitespace tokens (scoring and training put a prompt's
    trailing whitespace in the answer, so generation intervenes on the same tokens they do)."""
    lengths = lengths.clone()
    for row in range(ids.shape[0]):
        end = int(starts[row] + lengths[row])
        while lengths[row] > 1 and not tokenizer.decode([int(ids[row, end - 1])]).strip():
            lengths[row] -= 1
            end -= 1
    return lengths


class _Reft(Wrapped):
    """ReftLM's behaviour (see reft_lm): where to intervene in each forward and generation."""

    trained_name: ClassVar[str] = "interventions"
    mask: Any
    context_lengths: list[int] | None
    clear_after_forward: bool
    positions: tuple[int, int]
    tokenizer: Any

    def after_stack(self, module: Any, args: Any, output: Any) -> None:
        if self.clear_after_forward:  # generation: the prompt pass is the first forward only
            self.mask, self.clear_after_forward = None, False

    def forward(self, input_ids: Any = None, attention_mask: Any = None, labels: Any = None, cache: Any = None,
                **kwargs: Any) -> Any:
        if cache is None or cache.get_seq_length() == 0:  # a prompt pass (a continuation runs on a cache)
            starts, lengths = prompt_extent(input_ids, attention_mask, labels, self.context_lengths)
            self.mask = prompt_mask(starts, lengths, input_ids.shape[1], *self.positions)
        try:
            return self.base(input_ids=input_ids, attention_mask=attention_mask, labels=labels, cache=cache, **kwargs)
        finally:
            self.mask = None

    def generate(self, input_ids: Any, attention_mask: Any, **kwargs: Any) -> Any:
        starts, lengths = attention_mask.int().argmax(1), attention_mask.sum(1)
        lengths = without_trailing_space(input_ids, starts, lengths, self.tokenizer)
        self.mask = prompt_mask(starts, lengths, input_ids.shape[1], *self.positions)
        self.clear_after_forward = True
        try:
            return self.base.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        finally:
            self.mask, self.clear_after_forward = None, False


def reft_lm(base: Any, layers: Sequence[int], rank: int, first: int, last: int, tokenizer: Any) -> Any:
    """`base` (a frozen causal LM, owned: hooks go on its layers) with a LoReFT intervention on the
    output of each of `layers` at the prompt positions; a torch module the runtime can serve."""
    import torch

    class ReftLM(_Reft, torch.nn.Module):
        def __init__(self) -> None:
            torch.nn.Module.__init__(self)
            self.base = base
            dim = base.config.get_text_config().hidden_size
            self.interventions = torch.nn.ModuleDict({str(i): loreft(dim, rank) for i in layers}).to(base.device)
            self.mask, self.context_lengths, self.clear_after_forward = None, None, False
            self.positions, self.tokenizer = (first, last), tokenizer
            for i in layers:
                base.model.layers[i].register_forward_hook(_hook(self, str(i)))
            base.model.register_forward_hook(self.after_stack)

    return ReftLM()


class ReftRuntime(ModelRuntime):
    """The shared runtime, telling the model each scored context's length (contexts are right-padded
    and run without a mask, so the model could not tell padding from prompt)."""

    def _score_batch(self, items: list[tuple[list[int], list[list[int]]]]) -> Any:
        self.model.context_lengths = [len(ctx) for ctx, _ in items]
        try:
            return super()._score_batch(items)
        finally:
            self.model.context_lengths = None


def default_layers(n_layers: int) -> list[int]:
    """Four layers evenly spaced through the stack (1/5, 2/5, 3/5 and 4/5 of the way), distinct."""
    return sorted({min(n_layers - 1, round(n_layers * k / 5)) for k in range(1, 5)})


class ReftOptions(TrainOptions):
    learning_rate: float = Field(2e-3, gt=0, le=1.0, description="The paper's range for LoReFT (9e-4 to 6e-3).")
    cpu_learning_rate: float | None = Field(1e-2, gt=0, le=1.0, description="Under the CPU step cap.")
    weight_decay: float = Field(0.0, ge=0, le=0, description="Always 0: weight decay on R collapses it to zero "
                                "(the intervention becomes the identity).")
    rank: int = Field(4, ge=1, le=1024, description="Rows of R (the subspace intervened on).")
    layers: list[int] | None = Field(None, description="Decoder layers whose output is intervened on (0-based); "
                                     "None: four evenly spaced (1/5 .. 4/5 of the depth).")
    positions: str = Field("first:4+last:4", description="Prompt tokens intervened on: first:<k>, last:<k>, or "
                           "both joined by '+'.")

    @field_validator("positions")
    @classmethod
    def _positions(cls, spec: str) -> str:
        parse_positions(spec)
        return spec

    @field_validator("layers")
    @classmethod
    def _layers(cls, layers: list[int] | None) -> list[int] | None:
        if layers is not None and (not layers or min(layers) < 0 or len(set(layers)) != len(layers)):
            raise ValueError(f"layers {layers}: distinct 0-based layer indices, at least one")
        return layers


class Reft:
    """LoReFT interventions on a frozen copy of the base; only R, W and b train."""

    name: ClassVar[str] = "reft"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = ("LoReFT: a low-rank intervention on hidden states at prompt positions of "
                                  "chosen layers; the model frozen.")
    Options: ClassVar[type[ReftOptions]] = ReftOptions

    def __init__(self, options: ReftOptions):
        self.options = options

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {**search.learning_rate(trial, 5e-4, 3e-2), "rank": trial.suggest_categorical("rank", [1, 4, 8]),
                **search.budget(trial)}

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        o = self.options
        model = copy.deepcopy(base.model)  # hooks go on its layers: never on the shared base
        model.requires_grad_(False)
        n_layers = model.config.get_text_config().num_hidden_layers
        layers = o.layers if o.layers is not None else default_layers(n_layers)
        if not layers or any(not 0 <= i < n_layers for i in layers):
            raise ValueError(f"reft layers {layers} must be between 0 and {n_layers - 1}")
        first, last = parse_positions(o.positions)
        return reft_lm(model, sorted(set(layers)), o.rank, first, last, base.tokenizer)

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return train_weights(self, run, suite, save=save_interventions, serve=serve_reft)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)


def save_interventions(model: Any, folder: Path) -> None:
    """What a deployment stores: R, W and b of every intervened layer (R materialized, so no
    parametrization is needed to use them), as safetensors."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, Any] = {}
    for layer, phi in model.interventions.items():
        tensors |= {f"layer{layer}.R": phi.rotate.weight, f"layer{layer}.W": phi.learned.weight,
                    f"layer{layer}.b": phi.learned.bias}
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(folder / "loreft.safetensors"))


def serve_reft(model: Any, rt: ModelRuntime) -> ModelRuntime:
    return ReftRuntime(model, rt.tokenizer, rt.spec, rt.device)
