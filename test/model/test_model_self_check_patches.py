# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The self-check's patch subset: which patches, and that the towers run on them correctly
(each kept patch with its own position embedding; all patches = the full forward)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from openvla_ros.model.config import KNOWN_VITS
from openvla_ros.model.inference import self_check_patches
from openvla_ros.model.vision import VisionTransformer

TOWERS = ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"]


def test_self_check_patches_are_a_spread_grid() -> None:
    # 16x16 patch grid, 4x4 cells of 4x4 patches: the patch at (2, 2) of each cell.
    want = [34, 38, 42, 46, 98, 102, 106, 110, 162, 166, 170, 174, 226, 230, 234, 238]
    got = self_check_patches(256)
    assert got is not None and got.tolist() == want
    assert self_check_patches(16) is None  # no smaller grid to take: all patches
    assert self_check_patches(250) is None  # not square
    # 7x7 (the embedded default's 32 px patches): rows/columns 0, 2, 4, 6 (cell centres
    # 0.875, 2.625, 4.375, 6.125 floored), not the top-left 4x4 corner.
    corner = self_check_patches(49)
    assert corner is not None
    assert corner.tolist() == [r * 7 + c for r in (0, 2, 4, 6) for c in (0, 2, 4, 6)]


def _random_tower(timm_id: str) -> VisionTransformer:
    spec = replace(KNOWN_VITS[timm_id], embed_dim=64, depth=4, num_heads=4, mlp_hidden=256)
    torch.manual_seed(0)
    tower = VisionTransformer(spec).eval()
    with torch.no_grad():
        for p in tower.parameters():  # position embedding and prefix tokens included
            p.add_(torch.randn_like(p) * 0.1)
    return tower


@pytest.mark.parametrize("timm_id", TOWERS)
def test_keeping_every_patch_is_the_full_forward(timm_id: str) -> None:
    tower = _random_tower(timm_id)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(tower(x, torch.arange(256)), tower(x))


@pytest.mark.parametrize("timm_id", TOWERS)
def test_kept_patches_carry_their_own_position_embedding(timm_id: str) -> None:
    # Attention is permutation-equivariant, so if each kept patch travels with its own
    # position embedding, permuting the kept indices permutes the output; pairing the kept
    # patches with the first len(keep) position rows (or any fixed rows) would break this.
    tower = _random_tower(timm_id)
    x = torch.randn(1, 3, 224, 224)
    keep = self_check_patches(256)
    assert keep is not None
    perm = torch.randperm(len(keep), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = tower(x, keep)
        permuted = tower(x, keep[perm])
        full = tower(x)
    assert out.shape == (1, 16, 64)
    torch.testing.assert_close(permuted, out[:, perm], rtol=1e-5, atol=1e-5)
    # The kept patches attend only to each other: not the full forward's features.
    assert not torch.allclose(out, full[:, keep], atol=1e-3)
