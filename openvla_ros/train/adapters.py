# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Which parameters train: LoRA through peft, or a full fine-tune.

LoRA follows the official recipe: rank 32, ``lora_alpha = min(rank, 16)``, dropout 0,
``init_lora_weights="gaussian"``, on all linear layers. peft's ``"all-linear"`` shortcut finds
the output layer to skip through ``get_output_embeddings()``, which our native network (a plain
``nn.Module``) does not have, so it would also wrap ``lm_head``; the explicit list built here is
what ``"all-linear"`` selects on the official Hugging Face model (vision towers, projector,
every Llama projection; not ``lm_head``), minus SigLIP's ``attn_pool`` head, which OpenVLA
stores but never runs (adapters there would never receive a gradient).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from openvla_ros.errors import TrainingError
from openvla_ros.model.network import OpenVLANetwork

#: The language model's output layer; never adapted, as in the official recipe.
LM_HEAD = "language_model.lm_head"


@dataclass(frozen=True)
class LoraSettings:
    """LoRA hyper-parameters (official defaults)."""

    rank: int = 32
    alpha: float | None = None  # None: min(rank, 16)
    dropout: float = 0.0
    train_vision: bool = True  # adapters on the vision towers too (official all-linear)

    @property
    def lora_alpha(self) -> float:
        """The effective alpha."""
        return float(min(self.rank, 16) if self.alpha is None else self.alpha)


def linear_targets(net: nn.Module, include_vision: bool = True) -> list[str]:
    """Names of every Linear layer LoRA adapts (see the module docstring)."""
    names = []
    for name, module in net.named_modules():
        # bitsandbytes' Linear4bit / Linear8bitLt subclass nn.Linear (QLoRA bases).
        if not isinstance(module, nn.Linear):
            continue
        if name == LM_HEAD or ".attn_pool." in name:
            continue
        if not include_vision and name.startswith("vision_backbone."):
            continue
        names.append(name)
    return names


def apply_lora(net: OpenVLANetwork, settings: LoraSettings) -> Any:
    """Freeze the base and add LoRA adapters in place; returns the peft model wrapper.

    The adapters' initial values come from torch's global generator (seed it first).

    Raises:
        TrainingError: a rank below 1.
    """
    from peft import LoraConfig, get_peft_model

    if settings.rank < 1:
        raise TrainingError(f"--lora-rank must be >= 1, got {settings.rank}")
    for p in net.parameters():
        p.requires_grad_(False)
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.lora_alpha,  # type: ignore[arg-type]
        lora_dropout=settings.dropout,
        target_modules=linear_targets(net, settings.train_vision),
        init_lora_weights="gaussian",
        bias="none",
    )
    return get_peft_model(net, config)


def set_full_trainable(net: OpenVLANetwork, train_vision: bool) -> None:
    """Full fine-tune: the language model and projector train; the towers only if asked
    (the official ``vla-train`` stage freezes them, ``vla-full-train`` does not)."""
    for name, p in net.named_parameters():
        frozen_vision = name.startswith("vision_backbone.") and not train_vision
        # attn_pool is stored but never run: it gets no gradient, so it does not train.
        p.requires_grad_(not frozen_vision and ".attn_pool." not in name)


def trainable_parameters(net: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) of everything that trains, in a stable order."""
    return [(n, p) for n, p in net.named_parameters() if p.requires_grad]
