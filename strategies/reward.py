"""The reward model of `rlhf` (strategies/rl.py): a copy of the base model's weights under a scalar
sequence-classification head, trained with TRL's RewardTrainer (Bradley-Terry loss: the chosen answer
should score above the rejected one) on preference pairs, and its pair accuracy on held-out pairs.

It sees what RLOO later shows it: the prompt as evaluation renders it, then the answer (after the
runtime's answer prefix), tokenized without special tokens; its score is read at the last token.
It is a training-time model: the cell keeps the policy only.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from harness_strategies.preference import (
    curve_rows,
    fit,
    last,
    master_weights,
    prompt_text,
    trl_config,
)

from harness.data.kinds.preference import PreferencePair
from harness.data.pairs import pair_example
from harness.strategy import ModelRuntime, Task, TrainCall, TrainResult, Unsupported

Pairs = Sequence[tuple[Task, PreferencePair]]


def heldout_split(pairs: Pairs, share: float, rng: Any) -> tuple[list[tuple[Task, PreferencePair]],
                                                                  list[tuple[Task, PreferencePair]]]:
    """(pairs to train on, pairs held out), a seeded draw: `share` of them held out, at least one when
    there are five or more, none below that."""
    n = len(pairs)
    hold = max(1, round(n * share)) if share > 0 and n >= 5 else 0
    order = [int(i) for i in rng.permutation(n)]
    held = set(order[:hold])
    return [p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held]


def pair_texts(rt: ModelRuntime, task: Task, pair: PreferencePair, system: str) -> tuple[str, str]:
    """The chosen and rejected texts a reward model scores: prompt and answer as RLOO shows them to it."""
    context = prompt_text(rt, task, pair_example(task, pair), system) + rt.answer_prefix()
    return context + pair.chosen, context + pair.rejected


def _ids(rt: ModelRuntime, text: str, max_len: int) -> list[int]:
    return list(rt.tokenizer(text, add_special_tokens=False)["input_ids"])[-max_len:]


def reward_rows(rt: ModelRuntime, pairs: Pairs, system: str, max_len: int) -> list[dict[str, list[int]]]:
    """RewardTrainer's pre-tokenized rows (chosen_ids, rejected_ids), cut from the left to `max_len`."""
    rows = []
    for task, pair in pairs:
        chosen, rejected = pair_texts(rt, task, pair, system)
        rows.append({"chosen_ids": _ids(rt, chosen, max_len), "rejected_ids": _ids(rt, rejected, max_len)})
    return rows


def reward_model(base: ModelRuntime, o: Any) -> Any:
    """The base model's weights under a new scalar head (AutoModelForSequenceClassification, one label),
    every weight trainable, or LoRA adapters plus the head with `o.reward_method` lora."""
    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(base.model.config)
    config.num_labels, config.pad_token_id = 1, base.tokenizer.pad_token_id
    try:
        model = AutoModelForSequenceClassification.from_config(config)
    except ValueError as e:
        raise Unsupported(f"no sequence-classification head for {type(base.model).__name__}: {e}") from None
    result = model.load_state_dict(base.model.state_dict(), strict=False)
    if any(not k.startswith("score.") for k in result.missing_keys):
        raise Unsupported(f"the base's weights do not fit {type(model).__name__}: missing {result.missing_keys[:3]}")
    model = model.to(base.device)
    if o.reward_method == "lora":
        from peft import LoraConfig, get_peft_model

        return get_peft_model(model, LoraConfig(r=o.r, lora_alpha=o.alpha, lora_dropout=o.dropout, task_type="SEQ_CLS",
                                                target_modules=list(o.target_modules)))
    return model  # full fine-tuning: every weight of the copy trains


def scores(model: Any, rt: ModelRuntime, texts: Sequence[str], max_len: int, batch: int = 8) -> list[float]:
    """The reward model's score of each text (right-padded batches, read at the last real token)."""
    import torch

    out: list[float] = []
    pad = rt.tokenizer.pad_token_id
    model.eval()
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            ids = [_ids(rt, t, max_len) for t in texts[i : i + batch]]
            width = max(len(x) for x in ids)
            tensor = torch.tensor([x + [pad] * (width - len(x)) for x in ids], device=rt.device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids], device=rt.device)
            logits = model(input_ids=tensor, attention_mask=mask).logits[:, 0]
            out += [float(v) for v in logits]
    return out


def pair_accuracy(model: Any, rt: ModelRuntime, pairs: Pairs, system: str, max_len: int) -> float:
    """Share of `pairs` whose chosen answer the reward model scores above the rejected one."""
    if not pairs:
        return float("nan")
    texts = [pair_texts(rt, t, p, system) for t, p in pairs]
    chosen = scores(model, rt, [c for c, _ in texts], max_len)
    rejected = scores(model, rt, [r for _, r in texts], max_len)
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs)


def train_reward_model(call: TrainCall, o: Any, pairs: Pairs, held: Pairs, steps: int
                       ) -> tuple[Any, TrainResult, float]:
    """Train a reward model on `pairs` for `steps` (-1: epochs); (the model, its phase, epochs), the
    phase's extras carrying the held-out pair accuracy."""
    from datasets import Dataset
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    set_seed(call.run.seed)  # the new head's init
    model = reward_model(call.run.load_base(), o)  # the untouched base (call.runtime serves the policy)
    master_weights(model)
    tok = copy.deepcopy(call.runtime.tokenizer)
    args = trl_config(RewardConfig, o, call.out / "reward", call.run.seed, call.run.device, steps, max_length=None)
    trainer = RewardTrainer(model=model, args=args, processing_class=tok,
                            train_dataset=Dataset.from_list(reward_rows(call.runtime, pairs, o.system, o.max_seq_len)))
    history = fit(trainer)
    accuracy = pair_accuracy(model, call.runtime, held, o.system, o.max_seq_len)
    extras = {"rm_accuracy": accuracy, "rm_heldout_pairs": float(len(held)), "rm_train_pairs": float(len(pairs)),
              "rm_steps": float(trainer.state.global_step), "rm_train_accuracy": last(history, "accuracy")}
    curve = curve_rows(history, {"loss": "rm_loss", "accuracy": "rm_batch_accuracy"})
    result = TrainResult(curve, int(last(history, "num_tokens", 0.0)), None, trainer.state.global_step, False,
                         extras=extras)
    return model.eval(), result, float(trainer.state.epoch or 0.0)
