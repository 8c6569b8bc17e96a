"""Third-party messages the harness knows to be harmless, silenced on the command line by narrow
filters (each one a specific message from a specific place, with the reason); real warnings stay.

- bitsandbytes logs "Failed to load CPU gemm_4bit_forward from kernels-community" when its optional
  `kernels` package (fetched from a hub) is missing: it then uses its own CPU kernel, and QLoRA trains
  and scores correctly (tests/test_weights.py).
- transformers warns that `is_gradient_checkpointing` is deprecated when peft reads that attribute
  while wrapping a model: peft's call, not ours, and nothing to act on.
- transformers' Trainer logs "There were missing keys in the checkpoint model loaded: ['lm_head.weight']"
  when it reloads the best checkpoint of a model whose output head shares the input embedding (tied
  weights are saved once): the training loop checks the head is still tied after training
  (harness.model.training.check_tied), so the message would only alarm.
- transformers logs "mtime may not be reliable on this filesystem, falling back to numerical ordering"
  when it sorts checkpoints: numerical order (checkpoint-<step>) is the right one.
"""

from __future__ import annotations

import logging
import re
import warnings

_LOGGED = {
    "bitsandbytes.backends.cpu.ops": re.compile(r"Failed to load CPU gemm_4bit_forward from kernels-community"),
    "transformers.trainer": re.compile(
        r"There were missing keys in the checkpoint model loaded: \['lm_head\.weight'\]"),
    "transformers.trainer_utils": re.compile(r"mtime may not be reliable on this filesystem"),
}


class _Drop(logging.Filter):
    def __init__(self, pattern: re.Pattern[str]):
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def silence_known_noise() -> None:
    """Install the filters above (idempotent). Called by the CLI; library users keep every message."""
    for name, pattern in _LOGGED.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) for f in logger.filters):
            logger.addFilter(_Drop(pattern))
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
