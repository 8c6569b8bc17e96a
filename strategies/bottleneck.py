"""`adapter`: bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021) on a frozen copy of the
base: in each decoder layer, a sublayer's output x becomes x + up(act(down(x))), with the
up-projection initialised to zero, so before training the model computes exactly what the base does.

- `placement = "pfeiffer"`: after the MLP only (one adapter per layer);
- `placement = "houlsby"`: after the attention block and after the MLP (two per layer).

The bottleneck width is the hidden size over `reduction_factor` (16, AdapterHub's default). The
adapters are applied by forward hooks on the copy's sublayers; `AdapterLM` holds the copy and the
adapters, so checkpoints and the artifact hold the adapters alone.

Why not AdapterHub's `adapters` library: every release pins transformers 4.x (adapters 1.3.0:
transformers ~=4.57.6); installing it here would downgrade transformers from 5.24 to 4.57.6 (with
tokenizers and huggingface_hub), which pip refuses under the project's pins. peft has no
Houlsby/Pfeiffer bottleneck adapter. So: this small module (measured in /work/notes/libs.md).
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
    save_trainable,
    search,
    train_weights,
)

Placement = Literal["pfeiffer", "houlsby"]
SITES: dict[str, tuple[str, ...]] = {"pfeiffer": ("mlp",), "houlsby": ("self_attn", "mlp")}
"""Which sublayers of a decoder layer get an adapter after them."""


def bottleneck(dim: int, width: int, activation: str) -> Any:
    """x -> x + up(act(down(x))), `up` zero: the identity until it trains."""
    import torch

    class Bottleneck(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = torch.nn.Linear(dim, width)
            self.act = {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "silu": torch.nn.SiLU}[activation]()
            self.up = torch.nn.Linear(width, dim)
            torch.nn.init.zeros_(self.up.weight)
            torch.nn.init.zeros_(self.up.bias)

        def forward(self, x: Any) -> Any:
            return x + self.up(self.act(self.down(x)))

    return Bottleneck()


def _after(adapter: Any) -> Any:
    """A forward hook replacing a sublayer's output (a tensor, or a tuple whose first item is) by the
    adapter's, computed in the adapter's precision."""

    def hook(module: Any, args: Any, output: Any) -> Any:
        h = output[0] if isinstance(output, tuple) else output
        new = adapter(h.to(adapter.up.weight.dtype)).to(h.dtype)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return hook


class Wrapped:
    """What a torch module wrapping a frozen causal LM (`self.base`) with a few trainable modules
    (`self.trained`, a ModuleDict named `trained_name`) shares with the runtime and the training loop:
    the base's config, dtype and device, its forward and generate, and a state dict of the trained
    modules alone (the loop's checkpoints and best-checkpoint reload; the base never changes)."""

    base: Any
    trained_name: ClassVar[str]

    @property
    def config(self) -> Any:
        return self.base.config

    @property
    def dtype(self) -> Any:
        return self.base.dtype

    @property
    def device(self) -> Any:
        return self.base.device

    def forward(self, input_ids: Any = None, attention_mask: Any = None, labels: Any = None, **kwargs: Any) -> Any:
        """The base's forward (named arguments: the training loop keeps the dataset columns they name)."""
        return self.base(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self.base.generate(*args, **kwargs)

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        state = getattr(self, self.trained_name).state_dict(*args, prefix=f"{self.trained_name}.", **kwargs)
        return {k: v.contiguous() for k, v in state.items()}

    def load_state_dict(self, state: Any, strict: bool = True, assign: bool = False) -> Any:
        inner = {k.removeprefix(f"{self.trained_name}."): v for k, v in state.items()}
        return getattr(self, self.trained_name).load_state_dict(inner, strict=strict, assign=assign)


def adapter_lm(base: Any, placement: Placement, reduction_factor: int, activation: str) -> Any:
    """`base` (frozen, owned: hooks go on its layers) with bottleneck adapters; a torch module the
    runtime can serve and the training loop can train."""
    import torch

    dim = base.config.get_text_config().hidden_size
    width = max(1, dim // reduction_factor)

    class AdapterLM(Wrapped, torch.nn.Module):
        trained_name: ClassVar[str] = "adapters"

        def __init__(self) -> None:
            torch.nn.Module.__init__(self)
            self.base = base
            self.adapters = torch.nn.ModuleDict()
            for i, layer in enumerate(base.model.layers):
                for site in SITES[placement]:
                    adapter = bottleneck(dim, width, activation).to(base.device)
                    self.adapters[f"{i}-{site}"] = adapter
                    getattr(layer, site).register_forward_hook(_after(adapter))

    return AdapterLM()


class AdapterOptions(TrainOptions):
    learning_rate: float = Field(1e-3, gt=0, le=1.0, description="Houlsby et al.'s range (3e-5 to 3e-3) for "
                                 "small adapters.")
    cpu_learning_rate: float | None = Field(3e-3, gt=0, le=1.0, description="Under the CPU step cap.")
    placement: Placement = Field("pfeiffer", description="pfeiffer: after each MLP; houlsby: after each "
                                 "attention block and each MLP.")
    reduction_factor: int = Field(16, ge=1, le=4096, description="Hidden size / bottleneck width.")
    activation: Literal["relu", "gelu", "silu"] = "relu"


class Adapter:
    """Bottleneck adapters in every decoder layer of a frozen copy; only the adapters train."""

    name: ClassVar[str] = "adapter"
    family: ClassVar[str] = "weights"
    description: ClassVar[str] = ("Bottleneck adapters (Houlsby/Pfeiffer): down-project, nonlinearity, "
                                  "zero-initialised up-project, residual; the model frozen.")
    Options: ClassVar[type[AdapterOptions]] = AdapterOptions

    def __init__(self, options: AdapterOptions):
        self.options = options

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {**search.learning_rate(trial, 1e-4, 1e-2),
                "reduction_factor": trial.suggest_categorical("reduction_factor", [8, 16, 32]), **search.budget(trial)}

    def trainable_model(self, run: RunContext, base: ModelRuntime) -> Any:
        model = copy.deepcopy(base.model)  # hooks go on its layers: never on the shared base
        model.requires_grad_(False)
        o = self.options
        return adapter_lm(model, o.placement, o.reduction_factor, o.activation)

    def adapt(self, run: RunContext, suite: Suite) -> Adapted:
        return train_weights(self, run, suite, save=save_trainable)

    def prompts(self, run: RunContext, task: Task, examples: Sequence[Example]) -> list[Prompt]:
        return prompts_as_trained(self.options, task, examples)
