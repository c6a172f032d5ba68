# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The training forward pass: loss on the action tokens and EOS only, as the official recipe.

The sequence is the one inference builds (``[BOS] + 256 image tokens + prompt``), followed by
the action tokens and ``</s>``. Official training computes logits at every position and masks
all labels but the last ``D + 1`` with -100; here the language model's final hidden states are
gathered at just those ``D + 1`` positions and only they go through ``lm_head``. The loss is
the same number (cross entropy averaged over the same tokens), but the [T, 32064] logits
tensor, which dominates memory and time for small models, is never built.

Rows are right-padded; without an attention mask the causal SDPA path is used, and padding
after a row's last real token cannot influence any real position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from openvla_ros.model.network import OpenVLANetwork


@dataclass
class ForwardOutput:
    """One batch's loss and the argmax predictions at the labelled positions."""

    loss: torch.Tensor  # scalar, mean cross entropy over the labelled tokens
    predictions: torch.Tensor | None  # [B, D + 1] argmax ids (when asked for)
    labels: torch.Tensor  # [B, D + 1] target ids (D action tokens + EOS)


def has_trainable(module: nn.Module) -> bool:
    """Whether any parameter of ``module`` requires a gradient."""
    return any(p.requires_grad for p in module.parameters())


def embed_images(net: OpenVLANetwork, pixel_values: torch.Tensor) -> torch.Tensor:
    """:meth:`OpenVLANetwork.embed_images`, without autograd through frozen parts.

    Frozen towers then store no activations for the backward pass (a full fine-tune with the
    vision towers frozen, the official default).
    """
    if has_trainable(net.vision_backbone):
        return net.embed_images(pixel_values)
    with torch.no_grad():
        vision_dtype = net.vision_backbone.featurizer.patch_embed.proj.weight.dtype
        patches = net.vision_backbone(pixel_values.to(vision_dtype))
    if not has_trainable(net.projector):
        with torch.no_grad():
            projected = net.projector(patches)
    else:
        projected = net.projector(patches)
    return projected.to(net.language_model.get_input_embeddings().weight.dtype)


def build_inputs(
    net: OpenVLANetwork, images: torch.Tensor, sequences: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings [B, T, H] of ``[BOS] + image + rest`` per row, right-padded, and each row's
    real length [B]."""
    embed = net.language_model.get_input_embeddings()
    lengths = [int(s.shape[0]) for s in sequences]
    flat = embed(torch.cat(sequences))
    rows = []
    start = 0
    for i, n in enumerate(lengths):
        text = flat[start : start + n]
        rows.append(torch.cat([text[:1], images[i], text[1:]], dim=0))
        start += n
    inputs = nn.utils.rnn.pad_sequence(rows, batch_first=True)
    full = torch.tensor([n + images.shape[1] for n in lengths], dtype=torch.long)
    return inputs, full


def action_forward(
    net: OpenVLANetwork,
    pixel_values: torch.Tensor,
    sequences: list[torch.Tensor],
    n_labels: int,
    predictions: bool = True,
) -> ForwardOutput:
    """Loss and predictions for sequences whose last ``n_labels`` ids are the targets.

    Args:
        net: the (possibly peft-wrapped in place) network.
        pixel_values: [B, C, 224, 224] processor output on the network's device.
        sequences: B 1-D id tensors: prompt ids (BOS first, 29871 last), D action ids, EOS.
        n_labels: D + 1.
        predictions: also return the argmax ids (an argmax over 32064 logits per label costs
            as much as the loss for small models, so the loop asks only on logging steps).
    """
    device = pixel_values.device
    images = embed_images(net, pixel_values)
    inputs, lengths = build_inputs(net, images, sequences)
    hidden = net.language_model.model(inputs_embeds=inputs, use_cache=False).last_hidden_state
    # The hidden state at position p predicts the token at p + 1.
    offsets = torch.arange(n_labels, dtype=torch.long)
    positions = (lengths[:, None] - 1 - n_labels + offsets[None, :]).to(device)
    rows = torch.arange(len(sequences), device=device)[:, None]
    logits = net.language_model.lm_head(hidden[rows, positions]).float()
    labels = torch.stack([s[-n_labels:] for s in sequences]).to(device)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
    preds = logits.detach().argmax(dim=-1) if predictions else None
    return ForwardOutput(loss=loss, predictions=preds, labels=labels)
