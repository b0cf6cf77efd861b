"""Pfeiffer-style bottleneck adapters (Pfeiffer et al. 2021), as Han et al. trained with adapter-transformers.

peft 0.21 has no bottleneck adapter and adapter-transformers does not support transformers 5, so vdata
carries this small implementation: one adapter after the feed-forward block of every layer,
``h + W_up(ReLU(W_down h))`` with bottleneck ``hidden_size // reduction_factor`` (16 by default), the
up-projection initialised to zero so training starts from the base model.

Placement: the output of each decoder layer's ``mlp`` module (Llama/GPT-2 style), or BERT's FFN output
projection ``layer.N.output.dense`` (before its dropout, residual and LayerNorm), which is where
adapter-transformers' Pfeiffer configuration puts it.

Saved format, in the output directory:
  * ``bottleneck_config.json``: ``{"format": "vdata-bottleneck-1", "reduction_factor": 16, "hidden_size": d,
    "non_linearity": "relu", "modules": [names of the wrapped modules]}``;
  * ``bottleneck_adapter.safetensors``: tensors ``<module name>.down.weight``, ``.down.bias``, ``.up.weight``,
    ``.up.bias``.
`load_bottleneck(model, dir)` applies a saved adapter to a freshly loaded base model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

CONFIG_FILE = "bottleneck_config.json"
WEIGHTS_FILE = "bottleneck_adapter.safetensors"
FORMAT = "vdata-bottleneck-1"
_FFN_NAME = re.compile(r"(?:\.layers?\.\d+\.mlp|\.h\.\d+\.mlp|\.layer\.\d+\.output\.dense)$")


class Bottleneck(nn.Module):
    def __init__(self, hidden_size: int, reduction_factor: int) -> None:
        super().__init__()
        width = max(1, hidden_size // reduction_factor)
        self.down = nn.Linear(hidden_size, width)
        self.up = nn.Linear(width, hidden_size)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.enabled = True

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return hidden
        return hidden + self.up(torch.relu(self.down(hidden)))


def ffn_module_names(model: nn.Module) -> list[str]:
    names = [name for name, _ in model.named_modules() if _FFN_NAME.search("." + name)]
    if not names:
        raise ValueError(f"no feed-forward blocks found in {type(model).__name__} for a bottleneck adapter")
    return names


class BottleneckAdapters(nn.Module):
    """The adapters of one model, applied by forward hooks on its FFN modules."""

    def __init__(self, model: nn.Module, reduction_factor: int = 16) -> None:
        super().__init__()
        self.reduction_factor = reduction_factor
        self.hidden_size = int(model.config.hidden_size)
        self.names = ffn_module_names(model)
        self.adapters = nn.ModuleDict(
            {name.replace(".", "__"): Bottleneck(self.hidden_size, reduction_factor) for name in self.names}
        )
        modules = dict(model.named_modules())
        ref = next(model.parameters())
        self.to(device=ref.device, dtype=ref.dtype)
        for name in self.names:
            adapter = self.adapters[name.replace(".", "__")]
            modules[name].register_forward_hook(_hook(adapter))

    def set_enabled(self, enabled: bool) -> None:
        for adapter in self.adapters.values():
            adapter.enabled = enabled

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            f"{key.replace('__', '.')}.{param}": value.detach().cpu().contiguous()
            for key, adapter in self.adapters.items()
            for param, value in adapter.state_dict().items()
        }

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        save_file(self.tensors(), str(directory / WEIGHTS_FILE))
        config = {
            "format": FORMAT,
            "reduction_factor": self.reduction_factor,
            "hidden_size": self.hidden_size,
            "non_linearity": "relu",
            "modules": self.names,
        }
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2))


def _hook(adapter: Bottleneck) -> Any:
    def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (adapter(output[0]), *output[1:])
        return adapter(output)

    return hook


def attach_bottleneck(model: nn.Module, reduction_factor: int = 16) -> BottleneckAdapters:
    adapters = BottleneckAdapters(model, reduction_factor)
    model.vdata_bottleneck = adapters  # registered as a submodule, so .parameters() and .to() include it
    return adapters


def load_bottleneck(model: nn.Module, directory: str | Path) -> BottleneckAdapters:
    from safetensors.torch import load_file

    directory = Path(directory)
    config = json.loads((directory / CONFIG_FILE).read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{directory / CONFIG_FILE}: unknown bottleneck format {config.get('format')!r}")
    adapters = attach_bottleneck(model, int(config["reduction_factor"]))
    tensors = load_file(str(directory / WEIGHTS_FILE))
    state: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        name, layer, param = key.rsplit(".", 2)
        state[f"{name.replace('.', '__')}.{layer}.{param}"] = value
    adapters.adapters.load_state_dict(state)
    return adapters
