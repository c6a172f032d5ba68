# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``openvla-ros serve`` (a real server process, real HTTP) with a base + adapter answers
exactly what the merged fine-tuned checkpoint computes in process."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(120)


def test_serve_answers_with_the_adapter_what_the_merged_checkpoint_computes(
    finetune, base_ckpt, tmp_path
) -> None:
    import numpy as np

    from openvla_ros.model.inference import OpenVLAPolicy
    from openvla_ros.model.make_checkpoint import synthetic_scene
    from openvla_ros.serving.client import RemotePolicy
    from test.serving.conftest import ServerProcess

    result, _ = finetune("serve-adapter", steps=3, val_episodes=0, save_adapter=True, lr=2e-3)
    args = ["-m", "openvla_ros.cli", "serve", "--checkpoint", str(base_ckpt)]
    args += ["--adapter", str(result.adapter), "--precision", "fp32", "--device", "cpu"]
    server = ServerProcess(args, tmp_path / "server.log")
    try:
        server.wait_ready()
        remote = RemotePolicy(server.url, timeout_s=30.0)
        merged = OpenVLAPolicy.from_checkpoint(result.out, precision="fp32", device="cpu")
        for seed in (1, 2):
            frame = synthetic_scene(seed, 224, 224)
            got = remote.predict(frame, "pick up the red block")
            want = merged.predict(frame, "pick up the red block")
            assert np.array_equal(got.action, want.action) and got.unnorm_key == "toy_lab"
    finally:
        server.proc.stop()
