# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The OpenVLA network: vision towers + fused GELU-MLP projector + a transformers Llama.

Module names mirror the published state-dict prefixes (``vision_backbone.*``, ``projector.*``,
``language_model.*``) so checkpoints load by name. Generation is a short explicit loop with a
KV cache instead of ``generate()``: the sequence layout ([BOS] + 256 image tokens + the rest of
the prompt) is then visible in one place and cannot be silently changed by a library upgrade
(the upstream regression that dropped the image came from exactly such a change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from openvla_ros.model.config import OpenVLAConfig
from openvla_ros.model.vision import VisionBackbone

if TYPE_CHECKING:
    from transformers import LlamaConfig


class Projector(nn.Module):
    """OpenVLA's projector. Fused towers: fc1 (D->4D) GELU fc2 (4D->H) GELU fc3 (H->H).

    A single tower (Prismatic ``gelu-mlp``): fc1 (D->H) GELU fc2 (H->H).
    """

    def __init__(self, vision_dim: int, llm_dim: int, fused: bool) -> None:
        super().__init__()
        self.fused = fused
        self.act_fn1 = nn.GELU()
        self.act_fn2 = nn.GELU()
        if fused:
            self.fc1 = nn.Linear(vision_dim, 4 * vision_dim, bias=True)
            self.fc2 = nn.Linear(4 * vision_dim, llm_dim, bias=True)
            self.fc3: nn.Linear | None = nn.Linear(llm_dim, llm_dim, bias=True)
        else:
            self.fc1 = nn.Linear(vision_dim, llm_dim, bias=True)
            self.fc2 = nn.Linear(llm_dim, llm_dim, bias=True)
            self.fc3 = None

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """[B, 256, D] -> [B, 256, H]."""
        x = self.act_fn1(self.fc1(patches))
        x = self.fc2(x)
        if self.fc3 is not None:
            x = self.fc3(self.act_fn2(x))
        return x


def build_llama_config(cfg: OpenVLAConfig, attn_implementation: str) -> LlamaConfig:
    """A ``transformers.LlamaConfig`` from the checkpoint's text_config (explicit defaults)."""
    from transformers import LlamaConfig

    kwargs = dict(cfg.llama)
    rope_theta = kwargs.pop("rope_theta")
    config = LlamaConfig(
        **kwargs,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
    )
    config._attn_implementation = attn_implementation
    return config


class OpenVLANetwork(nn.Module):
    """The whole model with published parameter names; built on the meta device by the loader."""

    def __init__(self, cfg: OpenVLAConfig, attn_implementation: str = "sdpa") -> None:
        super().__init__()
        from transformers import LlamaForCausalLM

        self.cfg = cfg
        self.vision_backbone = VisionBackbone(cfg.vision)
        self.projector = Projector(cfg.vision_dim, cfg.hidden_size, cfg.use_fused_vision_backbone)
        self.language_model = LlamaForCausalLM(build_llama_config(cfg, attn_implementation))

    @property
    def vision_dtype(self) -> torch.dtype:
        """dtype of the towers' input: their patch embedding (a conv, never quantised) holds
        the placement's vision dtype; a quantised projector's bias may be in another one."""
        return self.vision_backbone.featurizer.patch_embed.proj.weight.dtype

    def vision_features(
        self, pixel_values: torch.Tensor, keep: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pixels [B, C, 224, 224] -> concatenated tower patch features [B, 256, D]
        (``keep``: only those patches, see :class:`VisionTransformer`)."""
        return self.vision_backbone(pixel_values.to(self.vision_dtype), keep)

    def project(self, patches: torch.Tensor) -> torch.Tensor:
        """Tower features [B, 256, D] -> image tokens [B, 256, H] in the LLM dtype."""
        projected = self.projector(patches)
        return projected.to(self.language_model.get_input_embeddings().weight.dtype)

    def embed_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixels [B, C, 224, 224] -> projected patch embeddings [B, 256, H] in the LLM dtype."""
        return self.project(self.vision_features(pixel_values))


@dataclass
class Generation:
    """Greedy generation output for a batch."""

    token_ids: torch.Tensor  # [B, n] int64
    first_logits: torch.Tensor  # [B, vocab] float32, logits of the first generated token
    prefill_s: float
    decode_s: float


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def prefill(
    net: OpenVLANetwork, pixel_values: torch.Tensor, prompts: list[torch.Tensor]
) -> tuple[torch.Tensor, object, torch.Tensor, torch.Tensor]:
    """Run vision + projector + the LLM over [BOS] + image tokens + prompt, left-padded.

    Args:
        net: the network.
        pixel_values: [B, C, 224, 224] on the network's device.
        prompts: B 1-D int64 tensors of prompt ids (BOS first) on the same device.

    Returns:
        (last-position logits [B, vocab] float32, KV cache, attention mask [B, T],
        next position ids [B, 1]).
    """
    return prefill_with_image_tokens(net, net.embed_images(pixel_values), prompts)


@torch.inference_mode()
def prefill_with_image_tokens(
    net: OpenVLANetwork, images: torch.Tensor, prompts: list[torch.Tensor]
) -> tuple[torch.Tensor, object, torch.Tensor, torch.Tensor]:
    """:func:`prefill` from already projected image tokens [B, 256, H] (see there)."""
    inputs, mask, positions = build_prefill_inputs(net, images, prompts)
    out = net.language_model(
        inputs_embeds=inputs,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
    )
    logits = out.logits[:, -1].float()
    return logits, out.past_key_values, mask, positions[:, -1:] + 1


def build_prefill_inputs(
    net: OpenVLANetwork, images: torch.Tensor, prompts: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The language model's prefill input: ([BOS] + image tokens + prompt) embeddings
    [B, T, H] left-padded, attention mask [B, T] and position ids [B, T]."""
    embed = net.language_model.get_input_embeddings()
    device = images.device
    seqs = []
    for i, ids in enumerate(prompts):
        text = embed(ids.unsqueeze(0))[0]
        # Image tokens go right after BOS, as in OpenVLA's multimodal forward.
        seqs.append(torch.cat([text[:1], images[i], text[1:]], dim=0))
    total = max(s.shape[0] for s in seqs)
    hidden = images.shape[-1]
    batch = len(seqs)
    inputs = torch.zeros(batch, total, hidden, dtype=images.dtype, device=device)
    mask = torch.zeros(batch, total, dtype=torch.long, device=device)
    for i, s in enumerate(seqs):
        # Left padding keeps every sequence's last token at the end, where the next token is read.
        inputs[i, total - s.shape[0] :] = s
        mask[i, total - s.shape[0] :] = 1
    # Positions count only real tokens, so a padded row gets the positions it would get alone.
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return inputs, mask, positions


@torch.inference_mode()
def generate_greedy(
    net: OpenVLANetwork,
    pixel_values: torch.Tensor,
    prompts: list[torch.Tensor],
    max_new_tokens: int,
) -> Generation:
    """Greedy decoding of ``max_new_tokens`` tokens with a KV cache (OpenVLA: no early stop)."""
    import time

    device = pixel_values.device
    _sync(device)
    start = time.perf_counter()
    logits, cache, mask, next_pos = prefill(net, pixel_values, prompts)
    first_logits = logits
    token = logits.argmax(dim=-1)
    tokens = [token]
    _sync(device)
    prefill_done = time.perf_counter()
    embed = net.language_model.get_input_embeddings()
    for _ in range(max_new_tokens - 1):
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        out = net.language_model(
            inputs_embeds=embed(token[:, None]),
            attention_mask=mask,
            position_ids=next_pos,
            past_key_values=cache,
            use_cache=True,
        )
        cache = out.past_key_values
        next_pos = next_pos + 1
        token = out.logits[:, -1].float().argmax(dim=-1)
        tokens.append(token)
    result = torch.stack(tokens, dim=1)
    _sync(device)
    end = time.perf_counter()
    return Generation(
        token_ids=result.cpu(),
        first_logits=first_logits,
        prefill_s=prefill_done - start,
        decode_s=end - prefill_done,
    )
