# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The fine-tuned checkpoint runs unchanged in the policy node: a real node process loads it
with the real loader, and its DeltaActions carry the new key over DDS."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("openvla_ros.msg", reason="interfaces not built")

from openvla_ros.msg import DeltaAction
from openvla_ros.nodes.common import ACTION_QOS
from test.nodes.ros_helpers import wait_until

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]


def test_finetuned_checkpoint_runs_in_the_policy_node(finetune, probe, start_policy) -> None:
    result, _ = finetune("deploy", full=True, steps=2, val_episodes=0)
    actions = probe.sub(DeltaAction, "/openvla/delta_action", ACTION_QOS)
    # No unnorm_key: the fine-tune ships one key, so the node needs none (as a lab deploys it).
    node = start_policy(
        name="policy_finetuned",
        policy="model",
        checkpoint=str(result.out),
        precision="fp32",
        device="cpu",
        control_hz=5.0,
        scripted__report_image=False,
    )
    probe.start_camera(hz=10)
    probe.instruction("pick up the red block")
    assert wait_until(lambda: len(actions) >= 2, 40.0), node.output()
    first = actions[0]
    assert first.unnorm_key == "toy_lab"
    assert all(abs(v) <= 1.0 for v in first.normalized_action)
    assert node.alive()


def test_policy_node_stacks_an_adapter_on_the_base(
    finetune, base_ckpt, probe, start_policy
) -> None:
    result, _ = finetune("deploy-adapter", steps=2, val_episodes=0, save_adapter=True)
    actions = probe.sub(DeltaAction, "/openvla/delta_action", ACTION_QOS)
    node = start_policy(
        name="policy_adapter",
        policy="model",
        checkpoint=str(base_ckpt),
        adapter=str(result.adapter),
        precision="fp32",
        device="cpu",
        control_hz=5.0,
        scripted__report_image=False,
    )
    probe.start_camera(hz=10)
    probe.instruction("push the blue block")
    assert wait_until(lambda: len(actions) >= 1, 40.0), node.output()
    # The base has two keys (bridge_orig, fractal); the adapter's single key replaced them.
    assert actions[0].unnorm_key == "toy_lab"
