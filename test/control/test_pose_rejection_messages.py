# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Poses that arrive but are refused are reported with the reason, not as "none received"
(issue 11 item 3: with_sim launches sent poses in the sim's frame, every one was refused, and
the executor said no pose had arrived and that enable re-seeds from it)."""

from __future__ import annotations

import math

from openvla_ros.control.executor_core import ExecutorCore
from openvla_ros.control.profile import RobotProfile
from openvla_ros.control.safety import Outcome
from openvla_ros.control.se3 import Pose

HOME = Pose.from_xyz_rpy([0.45, 0.0, 0.25], [math.pi, 0.0, 0.0])
SMALL = [0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
WHY = "pose frame 'panda_link0' is not the base frame 'base'"


def test_refused_poses_are_named_in_the_enable_answer_and_the_rejection(
    profile: RobotProfile,
) -> None:
    core = ExecutorCore(profile)
    assert not core.on_pose(HOME, 10.0, 10.0, frame_id="panda_link0").accepted
    answer = core.enable()
    assert answer.success and "re-seeds from the measured pose" not in answer.message
    assert WHY in answer.message, answer.message
    d = core.on_action(SMALL, 10.0, 0, 1, 10.0)
    assert d.outcome is Outcome.REJECTED and WHY in d.reason, d.reason


def test_enable_answers_whether_a_confirmed_pose_exists_also_when_already_enabled(
    profile: RobotProfile,
) -> None:
    core = ExecutorCore(profile)
    first = core.enable()
    assert first.success and "no confirmed end-effector pose yet" in first.message
    again = core.enable()  # nothing changes while enabled, but the answer says what is missing
    assert again.success and "already enabled" in again.message
    assert "no confirmed end-effector pose yet" in again.message
    core.on_pose(HOME, 10.0, 10.0, frame_id=profile.base_frame)
    assert "no confirmed end-effector pose yet" in core.enable().message  # one sample only
    core.on_pose(HOME, 10.02, 10.02, frame_id=profile.base_frame)  # a second, agreeing one
    confirmed = core.enable()
    assert confirmed.success and "already enabled" in confirmed.message
    assert "no confirmed" not in confirmed.message and "confirmed" in confirmed.message
    assert core.on_action(SMALL, 10.02, 0, 1, 10.02).outcome is not Outcome.REJECTED
