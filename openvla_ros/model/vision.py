# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The two ViT towers, written natively in torch with timm's architecture and key names.

Why not timm itself: timm imports torchvision at import time, and torchvision has no wheel that
works with the CPU torch this project pins, so ``import timm`` fails on CPU-only machines (and
OpenVLA's own code refuses timm >= 1.0 anyway). Only the inference path of two fixed ViTs is
needed, so this module reproduces exactly what OpenVLA runs:
``timm.create_model(id, pretrained=False, num_classes=0, img_size=224)`` followed by
``get_intermediate_layers(n={depth - 2})``: patch embedding, position embedding (patch grid only
for the DINOv2 ``no_embed_class`` models, prefix tokens prepended after it), pre-norm blocks with
optional LayerScale, and the output of the second-to-last block with the prefix tokens dropped
and no final norm. Parameter names match the checkpoint (``blocks.N.ls1.scale_factor`` etc.).
``test/model/test_vision_timm.py`` compares against timm wherever timm imports.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from openvla_ros.model.config import ViTSpec


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens (timm ``patch_embed.proj``: a strided conv with bias)."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, spec.embed_dim, spec.patch_size, stride=spec.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, N, D]."""
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """timm ``Attention``: fused qkv (q, k, v blocks, heads-major inside each), SDPA, proj."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Full (non-causal) self-attention over all tokens."""
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class LayerScale(nn.Module):
    """Per-channel scale; OpenVLA renamed timm's ``gamma`` to ``scale_factor`` before saving."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale_factor = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x * scale_factor."""
        return x * self.scale_factor


class Mlp(nn.Module):
    """timm ``Mlp``: fc1 -> GELU -> fc2."""

    def __init__(self, dim: int, hidden: int, act: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=True)
        self.act = nn.GELU(approximate="tanh" if act == "gelu_tanh" else "none")
        self.fc2 = nn.Linear(hidden, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Two-layer MLP."""
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1 x)); x + ls2(mlp(norm2 x))."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        dim = spec.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=spec.ln_eps)
        self.attn = Attention(dim, spec.num_heads)
        self.ls1: nn.Module = LayerScale(dim) if spec.layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=spec.ln_eps)
        self.mlp = Mlp(dim, spec.mlp_hidden, spec.act)
        self.ls2: nn.Module = LayerScale(dim) if spec.layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One block."""
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class AttentionPoolLatent(nn.Module):
    """Parameters of timm's MAP head (SigLIP). Stored in checkpoints, never run by OpenVLA.

    Kept only so the published ``attn_pool.*`` keys load into named parameters instead of
    being reported as unknown.
    """

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        dim = spec.embed_dim
        self.latent = nn.Parameter(torch.zeros(1, 1, dim))
        self.q = nn.Linear(dim, dim, bias=True)
        self.kv = nn.Linear(dim, dim * 2, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)
        self.norm = nn.LayerNorm(dim, eps=spec.ln_eps)
        self.mlp = Mlp(dim, spec.mlp_hidden, spec.act)


class VisionTransformer(nn.Module):
    """A timm-layout ViT that returns OpenVLA's features: block ``depth-2`` output, patches only."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.spec = spec
        dim = spec.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if spec.class_token else None
        self.reg_token = (
            nn.Parameter(torch.zeros(1, spec.reg_tokens, dim)) if spec.reg_tokens else None
        )
        self.pos_embed = nn.Parameter(torch.zeros(1, spec.pos_embed_len, dim))
        self.patch_embed = PatchEmbed(spec)
        self.blocks = nn.ModuleList([Block(spec) for _ in range(spec.depth)])
        # The final norm and the MAP head are part of the checkpoint but not of OpenVLA's features.
        self.norm = nn.LayerNorm(dim, eps=spec.ln_eps)
        self.attn_pool = AttentionPoolLatent(spec) if spec.attn_pool else None

    def _prefix(self, batch: int) -> list[torch.Tensor]:
        tokens = []
        if self.cls_token is not None:
            tokens.append(self.cls_token.expand(batch, -1, -1))
        if self.reg_token is not None:
            tokens.append(self.reg_token.expand(batch, -1, -1))
        return tokens

    def forward(self, pixel_values: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """[B, 3, 224, 224] -> [B, 256, D] patch features of block ``depth - 2``.

        ``keep`` (patch indices into the 256) runs the blocks on those patches only, each with
        its own position embedding (plus the prefix tokens): [B, len(keep), D]. Every block's
        weights still take part, at a fraction of the cost; the self-check uses it. Not
        OpenVLA's features (the patches attend only to each other).
        """
        x = self.patch_embed(pixel_values)
        prefix = self._prefix(x.shape[0])
        if self.spec.no_embed_class:
            x = x + self.pos_embed
            x = torch.cat([*prefix, x if keep is None else x[:, keep]], dim=1)
        else:
            x = torch.cat([*prefix, x], dim=1) + self.pos_embed
            if keep is not None:
                n = self.spec.num_prefix_tokens
                x = torch.cat([x[:, :n], x[:, n + keep]], dim=1)
        # timm runs every block and keeps the requested one; the last block's output is unused,
        # so stopping after block depth-2 gives identical features for one block less work.
        for block in self.blocks[: self.spec.feature_block + 1]:
            x = block(x)
        return x[:, self.spec.num_prefix_tokens :]


class VisionBackbone(nn.Module):
    """``vision_backbone.featurizer`` (+ ``fused_featurizer``): features concatenated on channels.

    The 6-channel pixel tensor carries the DINOv2-normalised image in channels 0-2 and the
    SigLIP-normalised one in 3-5 (OpenVLA's fused processor output).
    """

    def __init__(self, specs: tuple[ViTSpec, ...]) -> None:
        super().__init__()
        self.featurizer = VisionTransformer(specs[0])
        self.fused_featurizer = VisionTransformer(specs[1]) if len(specs) > 1 else None

    def forward(self, pixel_values: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """[B, 3 or 6, 224, 224] -> [B, 256, sum of tower widths] (``keep``: see the tower)."""
        if self.fused_featurizer is None:
            return self.featurizer(pixel_values[:, :3], keep)
        first = self.featurizer(pixel_values[:, :3], keep)
        second = self.fused_featurizer(pixel_values[:, 3:], keep)
        return torch.cat([first, second], dim=2)
