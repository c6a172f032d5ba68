# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Labels: hand-computed deltas, gripper conventions, and the ExecutorCore round trip."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from openvla_ros.bag.evaluate import load_robot_profile
from openvla_ros.control.executor_core import ExecutorCore
from openvla_ros.control.se3 import Pose, pose_distance
from openvla_ros.data.labels import (
    delta_labels,
    gripper_from_openings,
    gripper_label,
    idle_mask,
    state_vector,
)
from openvla_ros.sim.expert_demos import run_expert_episode
from openvla_ros.sim.panda_sim import PandaSim
from openvla_ros.sim.tasks import sample_scene

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # gripper pointing down (180 deg about x)


def test_delta_is_base_frame_translation_and_premultiplied_rotation() -> None:
    # From "down", a yaw of +0.1 rad about the BASE z axis: R1 = Rz(0.1) R0. In the hand's own
    # frame that is a yaw of -0.1 (the hand's z points down), so a post-multiplied (EE-frame)
    # convention would give dyaw = -0.1 here.
    a = Pose(np.array([0.4, 0.0, 0.2]), DOWN)
    qz = np.array([0.0, 0.0, math.sin(0.05), math.cos(0.05)])
    x, y, z, w = qz
    bx, by, bz, bw = DOWN
    q1 = np.array(
        [
            w * bx + x * bw + y * bz - z * by,
            w * by - x * bz + y * bw + z * bx,
            w * bz + x * by - y * bx + z * bw,
            w * bw - x * bx - y * by - z * bz,
        ]
    )
    b = Pose(np.array([0.43, -0.01, 0.18]), q1)
    d = delta_labels([a, b])[0]
    np.testing.assert_allclose(d, [0.03, -0.01, -0.02, 0.0, 0.0, 0.1], atol=1e-12)


def test_gripper_label_follows_the_profile_convention() -> None:
    sim = load_robot_profile("sim")
    assert gripper_label(1.0, sim) == 1.0 and gripper_label(0.2, sim) == 0.0
    inverted = dataclasses.replace(sim, gripper_inverted=True)
    assert gripper_label(1.0, inverted) == 0.0 and gripper_label(0.0, inverted) == 1.0
    wide = dataclasses.replace(sim, gripper_input_range=(-1.0, 1.0))
    assert gripper_label(0.0, wide) == -1.0


def test_gripper_from_measured_openings() -> None:
    # open, closing, stalled on a 4 cm cube (0.5), held, opening again, fully open.
    openings = [1.0, 1.0, 0.6, 0.5, 0.5, 0.8, 1.0, 1.0]
    assert gripper_from_openings(openings).tolist() == [1, 0, 0, 0, 1, 1, 1]


def test_idle_mask_keeps_motion_and_gripper_changes() -> None:
    acts = np.array(
        [
            [0.0] * 6 + [1.0],
            [0.01, 0, 0, 0, 0, 0, 1.0],
            [0.0] * 6 + [0.0],
            [0.0] * 6 + [0.0],
            [0, 0, 0, 0, 0, 0.02, 0.0],
        ]
    )
    assert idle_mask(acts).tolist() == [True, False, False, True, False]


def test_state_vector_layout() -> None:
    s = state_vector(Pose(np.array([0.4, 0.1, 0.2]), DOWN), 1.0)
    np.testing.assert_allclose(s, [0.4, 0.1, 0.2, math.pi, 0.0, 0.0, 0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("task,seed", [("pick_colour", 3), ("reach_colour", 8)])
def test_labels_through_executor_core_reproduce_the_recorded_trajectory(
    task: str, seed: int
) -> None:
    with PandaSim() as sim:
        run = run_expert_episode(sim, sample_scene(task, seed), render=False)
    assert run.success
    poses = run.poses
    labels = delta_labels(poses)
    grip = gripper_from_openings(run.openings)
    # The sim profile's box would clip the pick's lowest point (z 0.02): widen it so the test
    # checks the composition, not the box.
    profile = dataclasses.replace(load_robot_profile("sim"), workspace_min_m=(0.2, -0.4, -0.1))
    core = ExecutorCore(profile)
    assert core.enable().success
    core.on_pose(poses[0], 99.999, 99.999, profile.base_frame)  # confirmed by the next pose
    targets = []
    for t, (delta, g) in enumerate(zip(labels, grip, strict=True)):
        now = 100.0 + 0.2 * t
        core.on_pose(poses[t], now, now, profile.base_frame)
        decision = core.on_action([*delta, g], now, t, 1, now, profile.base_frame)
        assert decision.command is not None, decision.reason
        assert decision.applied_action is not None
        np.testing.assert_allclose(decision.applied_action[:6], delta, atol=1e-9)  # no clip
        targets.append(decision.command.target_pose)
    # Composed from the first measured pose, the targets retrace the measured poses.
    for target, measured in zip(targets, poses[1:], strict=True):
        dist, angle = pose_distance(target, measured)
        assert dist < 1e-9 and angle < 1e-6
