"""The strategy API: everything a strategy plugin (and every built-in) needs, from one import.

    from harness.strategy import Adapted, RunContext, StrategyOptions, Suite, Task, unchanged_weights

The contract is `Strategy` (a Protocol: no base class to inherit). Weight strategies get the
harness's training plumbing from `train_weights` (a function, see harness.strategy.weights), and
declare what `harness tune` may search with a `search_space` static method (harness.strategy.search).
See docs/writing-a-strategy.md.
"""

from harness.core.errors import Unsupported
from harness.core.records import AdaptReport, Document, Example, KnowledgeUpdate, Message, Prompt
from harness.data.prompts import DEFAULT_SYSTEM, context_prompt, shots_prompt, zero_shot_prompt
from harness.data.suites import Suite, Task
from harness.model.runtime import ModelRuntime
from harness.model.training import TrainResult
from harness.strategy import search
from harness.strategy.protocol import (
    Adapted,
    Family,
    RunContext,
    Strategy,
    StrategyOptions,
    count_params,
    unchanged_weights,
)
from harness.strategy.training import TrainOptions, sft_pairs, sft_train, text_rows, tokenize_pairs
from harness.strategy.weights import (
    TrainCall,
    merged_for_eval,
    one_process,
    prompts_as_trained,
    save_pretrained,
    save_trainable,
    supervised,
    train_weights,
)

__all__ = [
    "DEFAULT_SYSTEM",
    "AdaptReport",
    "Adapted",
    "Document",
    "Example",
    "Family",
    "KnowledgeUpdate",
    "Message",
    "ModelRuntime",
    "Prompt",
    "RunContext",
    "Strategy",
    "StrategyOptions",
    "Suite",
    "Task",
    "TrainCall",
    "TrainOptions",
    "TrainResult",
    "Unsupported",
    "context_prompt",
    "count_params",
    "merged_for_eval",
    "one_process",
    "prompts_as_trained",
    "save_pretrained",
    "save_trainable",
    "search",
    "sft_pairs",
    "sft_train",
    "shots_prompt",
    "supervised",
    "text_rows",
    "tokenize_pairs",
    "train_weights",
    "unchanged_weights",
    "zero_shot_prompt",
]
