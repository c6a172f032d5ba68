# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""make-checkpoint's size flags reach the loader: patch size -> image tokens, LLM dims."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from openvla_ros.cli import main
from openvla_ros.model.inference import OpenVLAPolicy


def test_patch_size_and_llm_dims_round_trip_through_the_loader(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    code = main(["make-checkpoint", str(out), "--patch-size", "32", "--vision-dim", "32",
                 "--llm-hidden", "96", "--llm-layers", "3", "--shards", "1"])  # fmt: skip
    assert code == 0
    overrides = json.loads((out / "config.json").read_text())["vision_tower_overrides"]
    assert [o["patch_size"] for o in overrides] == [32, 32]
    policy = OpenVLAPolicy.from_checkpoint(out, precision="fp32", device="cpu")
    # 224 / 32 = 7 patches per side: 49 image tokens per tower instead of 256.
    assert policy.config.num_patches == 49
    emb = policy.network.vision_backbone.featurizer.patch_embed.proj.weight
    assert tuple(emb.shape) == (32, 3, 32, 32)
    assert policy.network.language_model.config.hidden_size == 96
    assert policy.network.language_model.config.num_hidden_layers == 3
    frame = np.zeros((224, 224, 3), dtype=np.uint8)
    assert len(policy.predict(frame, "reach the cube", unnorm_key="bridge_orig").action) == 7


def test_patch_size_must_divide_224(tmp_path: Path) -> None:
    assert main(["make-checkpoint", str(tmp_path / "x"), "--patch-size", "30"]) == 2
