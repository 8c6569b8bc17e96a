"""What each strategy trains, as a `Method` with its trainable parameters counted from the model's
shape (no peft, no weights): the built-in strategies by name, a hybrid by its weights side, any other
context strategy as inference only. Weight strategies the formulas do not model exactly (the preference
and RL strategies and ewc: the lora or full-ft they train plus uncounted state; reft and adapter; any
plugin) get the closest modelled method flagged `approximate`, with a note: shown, never a reason to skip.

Counts, per targeted linear layer of fan-in a and fan-out b: LoRA r (a + b); DoRA adds its magnitude
vector (b); IA3 one scaling vector (b, or a for a feed-forward target); QLoRA is LoRA on a 4-bit base.
Layer freezing trains the top layers and the final norm; norm-bias the norm weights and biases; prompt
tuning V x hidden; P-tuning that plus its MLP encoder; prefix tuning V x layers x 2 x kv width.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.model.plan.footprint import Method
from harness.model.plan.shape import ModelShape

LORA_DEFAULTS: dict[str, Any] = {"r": 8, "target_modules": ["q_proj", "v_proj"], "dropout": 0.05}
IA3_DEFAULTS: dict[str, Any] = {"target_modules": ["k_proj", "v_proj", "down_proj"],
                                "feedforward_modules": ["down_proj"]}


def _targets(shape: ModelShape, names: list[str]) -> list[Any]:
    return [x for x in shape.linears if x.name.rsplit(".", 1)[-1] in set(names)]


def lora(shape: ModelShape, options: dict[str, Any], name: str = "lora", quantized: bool = False) -> Method:
    """LoRA (or DoRA, QLoRA) with rank r on the target projections."""
    o = {**LORA_DEFAULTS, **options}
    targets = _targets(shape, list(o["target_modules"]))
    trainable = sum(o["r"] * (x.fan_in + x.fan_out) for x in targets)
    layer0 = [x for x in targets if x.layer == 0]
    fan_in = sum(x.fan_in for x in layer0) if o["dropout"] else 0  # dropout's output is a new saved tensor
    if name == "dora":
        trainable += sum(x.fan_out for x in targets)
        fan_in += sum(x.fan_out for x in layer0)  # the base output, kept for the magnitude's gradient
    return Method(name, trainable, copy=True, quantized=quantized, adapter_fan_in=fan_in)


def full(shape: ModelShape, note: str = "") -> Method:
    return Method("full", shape.params, copy=True, trains_linears=True, trains_embedding=True, note=note)


def ia3(shape: ModelShape, options: dict[str, Any]) -> Method:
    o = {**IA3_DEFAULTS, **options}
    feedforward = set(o["feedforward_modules"])
    targets = _targets(shape, list(o["target_modules"]))
    count = sum(x.fan_in if x.name.rsplit(".", 1)[-1] in feedforward else x.fan_out for x in targets)
    return Method("ia3", count, copy=True)


def selective(shape: ModelShape, strategy: str, options: dict[str, Any]) -> Method:
    if strategy == "layer-freeze":
        top = min(shape.layers, int(options.get("top_layers", 4)))
        return Method("selective", sum(shape.layer_params[shape.layers - top:]) + shape.final_norm_params, copy=True,
                      trains_linears=True, saved_layers=top)
    return Method("selective", shape.norm_params + shape.bias_params, copy=True)


def soft_prompt(shape: ModelShape, strategy: str, options: dict[str, Any]) -> Method:
    v = int(options.get("virtual_tokens", 16))
    h = shape.hidden
    if strategy == "p-tuning":
        e = int(options.get("encoder_hidden", 128))
        count = v * h + h * e + e + e * e + e + e * h + h
    elif strategy == "prefix-tuning":
        count = v * shape.layers * 2 * shape.kv_dim
        if options.get("projection"):
            e = int(options.get("projection_hidden", 128))
            count += v * h + h * e + e + e * shape.layers * 2 * shape.kv_dim
    else:
        count = v * h
    return Method("soft-prompt", count, copy=True, virtual_tokens=0 if strategy == "prefix-tuning" else v)


def context(strategy: str, options: dict[str, Any]) -> Method:
    """Nothing trains; few-shot by similarity and dense or hybrid RAG load the sentence embedder."""
    embeds = (strategy == "few-shot" and options.get("selection", "similar") == "similar") or (
        strategy == "rag" and options.get("retriever", "bm25") != "bm25") or bool(options.get("shots"))
    return Method("inference", 0, embedder=embeds)


def method_for(strategy: str, family: str, options: dict[str, Any], shape: ModelShape) -> Method:
    """The Method of a cell: strategy name, its family and its validated options (module docstring)."""
    if "+" in strategy and family == "hybrid":
        side, weights = strategy.split("+", 1)
        trained = method_for(weights, "weights", dict(options.get("weights", {})), shape)
        ctx = context(side, dict(options.get("context", {})))
        return replace(trained, embedder=ctx.embedder)
    if family == "context":
        return context(strategy, options)
    if strategy in ("lora", "dora", "qlora"):
        return lora(shape, options, strategy, quantized=strategy == "qlora")
    if strategy in ("rehearsal", "continued-pretraining"):  # plain-text rows: every position takes the loss
        return replace(full(shape) if options.get("method") == "full-ft" else lora(shape, options), all_logits=True)
    if strategy == "full-ft":
        return full(shape)
    if strategy == "ia3":
        return ia3(shape, options)
    if strategy in ("layer-freeze", "norm-bias"):
        return selective(shape, strategy, options)
    if strategy in ("prompt-tuning", "p-tuning", "prefix-tuning"):
        return soft_prompt(shape, strategy, options)
    return approximate(strategy, options, shape)


def approximate(strategy: str, options: dict[str, Any], shape: ModelShape) -> Method:
    """Weight strategies the formulas do not model exactly: the closest modelled method, flagged."""
    if strategy in EXTRA_STATE:
        base = full(shape) if options.get("method") == "full-ft" else lora(shape, options)
        trl = strategy != "ewc"  # TRL's trainers compute every position's logits; ewc trains in harness's loop
        return replace(base, approximate=True, all_logits=trl, note=f"{strategy}: planned as {base.name} without "
                       f"{EXTRA_STATE[strategy]} (not modelled: never skipped on this prediction)")
    if strategy in ("reft", "adapter"):
        return replace(lora(shape, {}), approximate=True, note=f"{strategy}: planned as LoRA r=8 on q,v "
                       "(its own trainable count is smaller; not modelled: never skipped on this prediction)")
    return replace(full(shape), approximate=True, note=f"{strategy}: planned as full fine-tuning "
                   "(an unknown weight strategy; indicative only: never skipped on this prediction)")

EXTRA_STATE = {
    "ewc": "its Fisher and anchor copies of the trained parameters",
    "dpo": "its frozen reference copy", "rlaif": "its frozen reference copy and the judge's sampling",
    "grpo": "its reference model and sampled completions",
    "rlhf": "its reward model (a full copy that trains) and the reference model",
}
"""Weight strategies that train as lora or full-ft (their `method`) plus state the formulas do not count."""
