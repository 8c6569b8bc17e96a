"""Soft prompts (peft): prompt tuning, P-tuning and prefix tuning, trained through the same loop, data
and budget as every weight strategy (harness.strategy.train_weights: right-padded rows, which peft
handles exactly).

Evaluation goes through the shared runtime unchanged. All three methods amount to the same thing
at inference: a fixed run of V virtual tokens before every input, the real tokens at positions
V, V+1, ... and attending to all of them. Prefix tuning learns the virtual tokens' keys and values
directly; prompt and P-tuning learn their input embeddings, whose keys and values the frozen model
computes once here (positions 0..V-1, as peft places them). `PrefixedLM` wraps the frozen model and
puts that cache in front of every forward and generation, shifting position ids and masks by V, so
batched, left-padded generation, right-padded scoring and packed continuations stay exact (peft's
own forward discards position ids for prompt and P-tuning, so its left-padded batches are off).
tests/test_soft_prompts.py checks log-probs and greedy text against peft's own model, one prompt
at a time.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

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
    train_weights,
)


def prefix_cache(prefix: list[tuple[Any, Any]], rows: int, config: Any) -> Any:
    """A fresh cache holding `prefix` for `rows` rows (forwards extend a cache in place)."""
    from transformers import DynamicCache

    data = [(k.expand(rows, -1, -1, -1).contiguous(), v.expand(rows, -1, -1, -1).contiguous()) for k, v in prefix]
    return DynamicCache(ddp_cache_data=data, config=config)


def prefix_mask(mask: Any, n_virtual: int) -> Any:
    """`mask` with the prefix's columns prepended, visible to every row and slot: 2D (1 = see),
    4D boolean (True = see, sdpa) or 4D additive (0 = see, eager)."""
    import torch

    shape = (*mask.shape[:-1], n_virtual)
    if mask.dim() == 2:
        visible = torch.ones(shape, dtype=mask.dtype, device=mask.device)
    elif mask.dtype == torch.bool:
        visible = torch.ones(shape, dtype=torch.bool, device=mask.device)
    else:
        visible = torch.zeros(shape, dtype=mask.dtype, device=mask.device)
    return torch.cat([visible, mask], dim=-1)


def prefixed_lm(base: Any, prefix: list[tuple[Any, Any]]) -> Any:
    """`base` (a frozen causal LM) behind a fixed cache `prefix`: one (keys, values) pair per layer,
    each (1, kv heads, V, head dim). The result is a torch module the runtime can use as its model."""
    import torch

    class PrefixedLM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base
            self.prefix = [(k.detach(), v.detach()) for k, v in prefix]
            self.n_virtual = int(prefix[0][0].shape[-2])

        @property
        def config(self) -> Any:
            return self.base.config

        @property
        def dtype(self) -> Any:
            return self.base.dtype

        def forward(self, input_ids: Any = None, attention_mask: Any = None, position_ids: Any = None,
                    cache: Any = None, **kwargs: Any) -> Any:
            """The base model's forward after the prefix; a given cache already holds it."""
            if cache is None:
                cache = prefix_cache(self.prefix, input_ids.shape[0], self.base.config)
            if attention_mask is not None:
                attention_mask = prefix_mask(attention_mask, self.n_virtual)
            if position_ids is not None:
                position_ids = position_ids + self.n_virtual
            return self.base(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             cache=cache, **kwargs)

        def generate(self, input_ids: Any, attention_mask: Any, **kwargs: Any) -> Any:
            """The base model's own generate after the prefix: V placeholder ids stand for the cached
            virtual tokens (generate runs only the ids the cache does not cover), and position ids
            come from the mask as usual, so a left-padded row's real tokens sit at V, V+1, ..."""
            rows, v = input_ids.shape[0], self.n_virtual
            held = torch.full((rows, v), int(kwargs.get("pad_token_id") or 0), dtype=input_ids.dtype,
                              device=input_ids.device)
            out = self.base.generate(input_ids=torch.cat([held, input_ids], dim=1),
                                     attention_mask=prefix_mask(attention_mask, v),
                                     cache=prefix_cache(self.prefix, rows, self.base.config), **kwargs)
            if hasattr(out, "sequences"):  # return_dict_in_generate: the same, as an output object
                out.sequences = out.sequences[:, v:]
                return out
            return out[:, v:]

    return PrefixedLM().eval()


def _cache_pairs(cache: Any) -> list[tuple[Any, Any]]:
    """(keys, values) of every layer of a transformers cache."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def virtual_prefix(peft_model: Any) -> list[tuple[Any, Any]]:
    """The virtual tokens' keys and values, per layer, for batch 1 (eval mode, no gradients)."""
    import torch

    config = peft_model.active_peft_config
    base = peft_model.get_base_model()
    with torch.inference_mode():
        if config.peft_type.value in ("PREFIX_TUNING",):
            cache = peft_model.get_prompt(batch_size=1, max_cache_len=config.num_virtual_tokens)
            return [(k.clone(), v.clone()) for k, v in _cache_pairs(cache)]
        embeds = peft_model.get_prompt(batch_size=1).to(base.dtype)
        out = base(inputs_embeds=embeds, use_cache=True)
        return [(k.clone(), v.clone()) for k, v in _cache_pairs(out.cache)]


def prefixed_runtime(peft_model: Any, rt: ModelRuntime) -> ModelRuntime:
    """The runtime to evaluate a trained soft-prompt model: its frozen base behind the virtual prefix."""
    peft_model.eval()
    model = prefixed_lm(peft_model.get_base_model(), virtual_prefix(peft_model))
    object.__setattr__(model, "trained_from", peft_model)  # not a submodule: its parameters stay out of `model`
    return ModelRuntime(model, rt.tokenizer, rt.spec, rt.device, rt.compute_dtype)


class SoftPromptOptions(TrainOptions):
    learning_rate: float = Field(3e-2, gt=0, le=1.0, description="Soft prompts start far from useful and need "
                                 "a large rate in the short CPU budget.")
    virtual_tokens: int = Field(16, ge=1, le=512, description="Number of virtual tokens.")


class PromptTuningOptions(SoftPromptOptions):
    init: Literal["random", "text"] = Field("text", description="Start from the embeddings of `init_text`, "
                                            "or at random.")
    init_text: str = Field("Answer the question with a short phrase.", min_length=1,
                           description="Text whose token embeddings initialise the virtual tokens.")


class PTuningOptions(SoftPromptOptions):
    learning_rate: float = Field(1e-2, gt=0, le=1.0)
    encoder: Literal["MLP", "LSTM"] = Field("MLP", description="The prompt encoder that reparametrises the "
                                            "virtual tokens.")
    encoder_hidden: int = Field(128, ge=1, le=65536, description="Prompt encoder hidden size.")


class PrefixOptions(SoftPromptOptions):
    learning_rate: float = Field(1e-2, gt=0, le=1.0)
    projection: bool = Field(False, description="Reparametrise the prefix through a two-layer MLP (peft "
                             "prefix_projection).")
    projection_hidden: int = Field(128, ge=1, le=65536)


class _SoftPrompt:
    """The three methods differ only in their peft config (and prompt tuning's text init); this
    built-in base shares the rest. The plumbing itself is the public train_weights."""

    family: ClassVar[str] = "weights"
    options: Any

    def __init__(self, options: Any):
        self.options = options

    def peft_config(self, tokenizer: Any) -> Any:
        raise NotImplementedError

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        from peft import get_peft_model

        return get_peft_model(copy.deepcopy(base.model), self.peft_config(base.tokenizer))

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return train_weights(self, run, suite, serve=prefixed_runtime)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)


class PromptTuning(_SoftPrompt):
    """Learned input embeddings of V virtual tokens before every input (Lester et al.)."""

    name: ClassVar[str] = "prompt-tuning"
    description: ClassVar[str] = "Prompt tuning (peft): learned embeddings of virtual tokens before the input."
    Options: ClassVar[type[PromptTuningOptions]] = PromptTuningOptions

    def peft_config(self, tokenizer: Any) -> Any:
        from peft import PromptTuningConfig

        return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=self.options.virtual_tokens)

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        """peft's TEXT init loads a tokenizer by name; the same init from the runtime's tokenizer:
        the text's token embeddings, repeated or cut to V tokens."""
        import torch

        model = super().trainable_model(run, base)
        o = self.options
        if o.init == "text":
            ids = base.tokenizer(o.init_text, add_special_tokens=False)["input_ids"] or [base.tokenizer.eos_token_id]
            ids = (ids * (o.virtual_tokens // len(ids) + 1))[: o.virtual_tokens]
            with torch.no_grad():
                words = model.get_input_embeddings()(torch.tensor(ids, device=model.device))
                model.prompt_encoder["default"].embedding.weight.copy_(words)
        return model


class PTuning(_SoftPrompt):
    """Virtual-token embeddings produced by a small trained encoder (Liu et al., P-tuning)."""

    name: ClassVar[str] = "p-tuning"
    description: ClassVar[str] = "P-tuning (peft): virtual tokens from a trained MLP/LSTM prompt encoder."
    Options: ClassVar[type[PTuningOptions]] = PTuningOptions

    def peft_config(self, tokenizer: Any) -> Any:
        from peft import PromptEncoderConfig

        o = self.options
        return PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=o.virtual_tokens,
                                   encoder_reparameterization_type=o.encoder, encoder_hidden_size=o.encoder_hidden)


class PrefixTuning(_SoftPrompt):
    """Learned keys and values of V virtual tokens in every layer (Li and Liang)."""

    name: ClassVar[str] = "prefix-tuning"
    description: ClassVar[str] = "Prefix tuning (peft): learned keys and values of virtual tokens in every layer."
    Options: ClassVar[type[PrefixOptions]] = PrefixOptions

    def peft_config(self, tokenizer: Any) -> Any:
        from peft import PrefixTuningConfig

        o = self.options
        return PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=o.virtual_tokens,
                                  prefix_projection=o.projection, encoder_hidden_size=o.projection_hidden)
