"""Training batches and their loss: right-padded token rows, and the causal LM loss computed from logits
at the positions that take a loss only (the output head is much of a small model's training work)."""

from __future__ import annotations

from typing import Any


class PadCollator:
    """Right-pads a batch (no position-id trouble for any peft method); pads are masked and ignored.
    With `keep_logits`, it also passes the model `logits_to_keep`: the positions whose logits the loss
    needs (loss_positions), so the output head runs there only (see KeptLogitsLoss)."""

    def __init__(self, pad_id: int, keep_logits: bool = False):
        self.pad_id = pad_id
        self.keep_logits = keep_logits

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = [r["input_ids"] + [self.pad_id] * (width - len(r["input_ids"])) for r in rows]
        labels = [r["labels"] + [-100] * (width - len(r["labels"])) for r in rows]
        mask = [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows]
        batch = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}
        if self.keep_logits:
            batch["logits_to_keep"] = loss_positions(batch["labels"])
        return batch


def loss_positions(labels: Any) -> Any:
    """The positions of a batch whose logits a causal LM loss needs: those whose next token is labelled in
    some row (a task row's answer; every position of a text row). One index set for the whole batch, as
    transformers' `logits_to_keep` takes it."""
    return (labels[:, 1:] != -100).any(0).nonzero().squeeze(1)


class KeptLogitsLoss:
    """transformers' causal LM loss from logits computed only at loss_positions: the same sum of token
    cross-entropies (in fp32), over `num_items_in_batch` labelled tokens (the whole accumulated batch, as
    the trainer counts them) or, at evaluation, over this batch's. A prompt's other positions take no loss,
    and the head is much of a small model's training FLOPs (SmolLM2's vocabulary is 85 x its hidden size,
    Gemma-3's 410 x) and its largest tensors: benchmarks/train_logits.py measures both ways side by side.
    Counts the positions whose logits training computed (`positions`, for the work basis)."""

    def __init__(self) -> None:
        self.positions: int | None = 0
        """None: unknown (resumed from a checkpoint that did not record it)."""

    def __call__(self, outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        import torch.nn.functional as F

        logits = outputs.logits.float()
        target = labels[:, 1:][:, loss_positions(labels)].to(logits.device)
        if logits.requires_grad and self.positions is not None:  # a training step, not a dev evaluation
            self.positions += logits.shape[0] * logits.shape[1]
        total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100,
                                reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else (target != -100).sum()
        return total / count


def keeps_logits(model: Any) -> bool:
    """Whether training can compute logits only where the loss needs them: the model's forward takes
    `logits_to_keep` (transformers' causal LMs) and no prompt-learning adapter shifts every position by
    its virtual tokens (prefix and prompt tuning train with all logits, as transformers computes them)."""
    import inspect

    config = getattr(model, "active_peft_config", None)
    if config is not None and config.is_prompt_learning:
        return False
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters
