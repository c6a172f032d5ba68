# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Fine-tuning on a CUDA GPU (skipped without one): LoRA on a bf16 base, QLoRA on an NF4 base
and a full fine-tune each train, export, and load through the real loader."""

from __future__ import annotations

import pytest
import torch

from openvla_ros.model.inference import OpenVLAPolicy
from openvla_ros.model.make_checkpoint import synthetic_scene

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.timeout(300),
]


@pytest.mark.parametrize(
    "options",
    [{}, {"quantize_base": "4bit", "save_adapter": True}, {"full": True, "train_vision": True}],
    ids=["lora-bf16", "qlora-nf4", "full"],
)
def test_gpu_modes_train_and_export(finetune, options: dict) -> None:
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes")
    result, lines = finetune("gpu", device="cuda", steps=3, val_every=3, **options)
    assert any("autocast: bfloat16" in line for line in lines)
    assert all(torch.isfinite(torch.tensor(float(r["loss"]))) for r in result.rows if "loss" in r)
    policy = OpenVLAPolicy.from_checkpoint(result.out, precision="bf16", device="cuda")
    out = policy.predict(synthetic_scene(0, 224, 224), "pick up the red block")
    assert out.unnorm_key == "toy_lab" and len(out.token_ids) == 7
