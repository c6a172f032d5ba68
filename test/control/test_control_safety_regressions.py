# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""One regression test per finding of issue 10 ("executor safety that holds on a real
arm"), against the pure :class:`ExecutorCore` and a simulated arm. Each failed on the code
before the fix (tests that need the second clock fail there because it did not exist).
Node-level findings (clock jumps under ``use_sim_time``, heartbeat outcomes, gripper
resend) are in ``test/nodes/test_executor_safety_node.py``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from openvla_ros.control import executor_core
from openvla_ros.control.executor_core import Decision, ExecutorCore
from openvla_ros.control.profile import RobotProfile
from openvla_ros.control.safety import Outcome, orientation_violation
from openvla_ros.control.se3 import Pose, quat_angle, relative_rotvec
from test.control.sim_arm import SimArm

HOME = Pose.from_xyz_rpy([0.45, 0.0, 0.25], [math.pi, 0.0, 0.0])
CONFIG = Path(__file__).resolve().parents[2] / "config"


def _ready(p: RobotProfile, pose: Pose = HOME, now: float = 10.0) -> ExecutorCore:
    core = ExecutorCore(p)
    assert core.on_pose(pose, now - 0.002, now - 0.002).accepted  # the first pose waits
    assert not core.on_pose(pose, now, now).reason  # for a second that agrees with it
    assert core.enable().success
    return core


class Rig:
    """Core + simulated arm on one clock (``t``): poses at 50 Hz, ticks at 50 Hz."""

    def __init__(self, p: RobotProfile, start: Pose, t: float = 10.0) -> None:
        self.p, self.t = p, t
        self.arm = SimArm(start, t)
        self.core = _ready(p, start, t)
        self.step = 0
        self.decisions: list[Decision] = []

    def publish(self, d: Decision) -> None:
        self.arm.apply(self.t, d)

    def act(self, action: list[float], episode: int = 1, stamp: float | None = None) -> Decision:
        self.arm.advance(self.t)
        self.core.on_pose(self.arm.pose, self.t, self.t)
        d = self.core.on_action(action, self.t if stamp is None else stamp, self.step, episode,
                                self.t)  # fmt: skip
        self.step += 1
        self.publish(d)
        self.decisions.append(d)
        return d

    def run(self, seconds: float, poses: bool = True) -> None:
        """Ticks (and poses) every 20 ms for ``seconds``."""
        end = self.t + seconds
        while self.t + 0.02 <= end + 1e-12:
            self.t += 0.02
            self.arm.advance(self.t)
            if poses:
                self.core.on_pose(self.arm.pose, self.t, self.t)
            r = self.core.tick(self.t)
            if r.twist is not None:
                self.arm.command_twist(self.t, r.twist)
            elif r.target_pose is not None:
                self.arm.command_pose(self.t, r.target_pose)
        self.t = end


def _below_box(p: RobotProfile, pos: np.ndarray) -> float:
    return float(np.max(np.maximum(p.workspace_min - pos, pos - p.workspace_max)))


# -------------------------------------------------------------------- finding 1
def test_f1_preempted_twists_do_not_ratchet_the_arm_out_of_the_box(profile: RobotProfile) -> None:
    """+d pre-empted after 2 ms by -d, repeated: the arm ran ~0 of +d but all of -d."""
    p = profile.replace(command_type="twist")
    rig = Rig(p, HOME.with_position([0.45, 0.0, 0.06]))  # 6 cm above the box floor
    for _ in range(30):
        rig.act([0, 0, 0.05, 0, 0, 0, 1])
        rig.t += 0.002
        rig.act([0, 0, -0.05, 0, 0, 0, 1])
        rig.run(0.198)
    assert rig.arm.position[2] >= p.workspace_min[2] - 1e-6, rig.arm.position


def test_f1_action_chunks_do_not_drive_the_arm_out_of_the_box(profile: RobotProfile) -> None:
    """Chunks of 4 actions from one image, 1 ms apart, alternating down and up."""
    p = profile.replace(command_type="twist")
    rig = Rig(p, HOME.with_position([0.45, 0.0, 0.06]))
    for k in range(30):
        stamp = rig.t
        for j in range(4):
            dz = 0.05 if (k % 2 == 0 and j < 3) else -0.05
            rig.act([0, 0, dz, 0, 0, 0, 1], stamp=stamp)
            rig.t += 0.001
        rig.run(0.196)
        assert _below_box(p, rig.arm.position) <= 1e-6, (k, rig.arm.position)


# -------------------------------------------------------------------- finding 2
def _walk_to_x(rig: Rig, x: float) -> None:
    while rig.core.state().target_pose is None or rig.core.state().target_pose.position[0] < x:
        rig.act([0.05, 0, 0, 0, 0, 0, 1])
        rig.run(0.2)


def test_f2_arm_restarted_during_a_pose_outage_is_not_sent_the_old_target(
    profile: RobotProfile,
) -> None:
    p = profile.replace(max_tracking_error_m=0.1, max_tracking_error_rad=0.5)
    rig = Rig(p, HOME.with_position([0.3, 0.0, 0.25]))
    _walk_to_x(rig, 0.65)
    rig.run(1.0, poses=False)  # the pose stream stops: stale
    rig.arm.teleport(rig.t, HOME.with_position([0.3, 0.0, 0.25]))  # restarted at home
    rig.run(0.1)
    for _ in range(5):
        d = rig.act([0, 0, 0, 0, 0, 0, 1])
        if d.command is not None:
            dist = np.linalg.norm(d.command.target_pose.position - rig.arm.position)
            assert dist <= p.step_limit_m * math.sqrt(3) + 1e-9, (d.outcome, d.reason, dist)
        rig.run(0.2)


def test_f2_twist_mode_restart_does_not_drive_the_arm_out_of_the_box(
    profile: RobotProfile,
) -> None:
    p = profile.replace(command_type="twist", max_tracking_error_m=0.1)
    rig = Rig(p, HOME.with_position([0.45, 0.0, 0.25]))
    _walk_to_x(rig, 0.65)
    rig.arm.teleport(rig.t, HOME.with_position([0.3, 0.0, 0.25]))  # restarted, 0.35 m back
    rig.run(0.1)
    for _ in range(14):
        rig.act([-0.05, 0, 0, 0, 0, 0, 1])
        rig.run(0.2)
        assert _below_box(p, rig.arm.position) <= 1e-6, rig.arm.position


def test_f2_target_far_from_a_moved_arm_is_not_republished_as_executed(
    profile: RobotProfile,
) -> None:
    """Hand-guided 0.33 m in small increments (no pose jump), then a zero action."""
    p = profile.replace(max_tracking_error_m=0.1, max_tracking_error_rad=0.5)
    core = _ready(p, HOME.with_position([0.3, 0.0, 0.25]))
    t = 10.0
    assert core.on_action([0, 0, 0, 0, 0, 0, 1], t, 0, 1, t).command is not None
    for k in range(1, 34):
        t += 0.02
        core.on_pose(HOME.with_position([0.3 + 0.01 * k, 0.0, 0.25]), t, t)
    d = core.on_action([0, 0, 0, 0, 0, 0, 1], t, 1, 1, t)
    assert d.outcome is not Outcome.EXECUTED and d.command is None
    assert "re-seeded" in d.reason
    d = core.on_action([0, 0, 0, 0, 0, 0, 1], t + 0.2, 2, 1, t + 0.2)
    assert d.command is not None
    np.testing.assert_allclose(d.command.target_pose.position, [0.63, 0.0, 0.25], atol=1e-9)


# -------------------------------------------------------------------- finding 3
def test_f3_actions_at_1khz_are_held_to_the_speed_limit(profile: RobotProfile) -> None:
    start = HOME.with_position([0.2, 0.0, 0.25])
    core = _ready(profile, start)
    t0 = t = 10.0
    last = start.position
    for k in range(200):  # 1 kHz, each at the step limit; the arm follows exactly
        d = core.on_action([0.05, 0, 0, 0, 0, 0, 1], t, k, 1, t)
        if d.command is not None:
            core.on_pose(d.command.target_pose, t, t)
            last = d.command.target_pose.position
        t += 0.001
    moved = float(np.linalg.norm(last - start.position))
    # Token bucket: at most one control period's worth plus the speed over the window.
    bound = profile.max_linear_speed_m_s * (t - t0 + profile.control_period_s)
    assert moved <= bound + 1e-9, (moved, bound)


def test_f3_twist_speed_is_within_the_limit(profile: RobotProfile) -> None:
    core = _ready(profile.replace(command_type="twist"))
    d = core.on_action([0.05, 0.05, 0.05, 0.25, 0.25, 0.25, 1], 10.0, 0, 1, 10.0)
    assert d.command is not None and d.command.twist is not None
    assert np.linalg.norm(d.command.twist.linear_mps) <= profile.max_linear_speed_m_s + 1e-9
    assert np.linalg.norm(d.command.twist.angular_radps) <= profile.max_angular_speed_rad_s + 1e-9


# -------------------------------------------------------------------- finding 4
def test_f4_a_glitched_pose_is_not_used_to_seed_a_new_episode(profile: RobotProfile) -> None:
    core = _ready(profile)
    t = 10.0
    assert core.on_action([0, 0, 0, 0, 0, 0, 1], t, 0, 1, t).command is not None
    glitch = HOME.with_position([0.45, 0.25, 0.45])  # 0.32 m away, inside the box
    t += 0.02
    core.on_pose(glitch, t, t)
    for episode in (2, 3):
        d = core.on_action([0.01, 0, 0, 0, 0, 0, 1], t, 0, episode, t)
        if d.command is not None:
            dist = np.linalg.norm(d.command.target_pose.position - HOME.position)
            assert dist <= profile.step_limit_m * math.sqrt(3) + 1e-9, (d.reason, dist)
        t += 0.02
        core.on_pose(HOME, t, t)  # the true arm again: the glitch is discarded
    d = core.on_action([0.01, 0, 0, 0, 0, 0, 1], t, 0, 4, t)
    assert d.command is not None
    want = HOME.position + np.array([0.01, 0, 0])
    np.testing.assert_allclose(d.command.target_pose.position, want)


def test_f4_rotation_only_episodes_stay_in_the_orientation_bound(profile: RobotProfile) -> None:
    rig = Rig(profile, HOME)
    for episode in range(1, 60):
        rig.act([0, 0, 0, 0.25, 0.1, 0.25, 1], episode=episode)
        rig.run(0.2)
        assert orientation_violation(rig.arm.orientation, profile) <= profile.step_limit_rad
        assert _below_box(profile, rig.arm.position) <= 1e-6


# -------------------------------------------------------------------- finding 5
def test_f5_backward_clock_jump_stops_the_twist_within_one_tick(profile: RobotProfile) -> None:
    p = profile.replace(command_type="twist")
    core = ExecutorCore(p)
    steady, ros = 10.0, 1000.0
    core.on_pose(HOME, ros - 0.002, steady - 0.002, ros_now_s=ros - 0.002)  # confirmed by
    core.on_pose(HOME, ros, steady, ros_now_s=ros)  # the next pose that agrees
    core.enable()
    d = core.on_action([0.02, 0, 0, 0, 0, 0, 1], ros, 0, 1, steady, ros_now_s=ros)
    assert d.command is not None and d.command.twist is not None
    steady += 0.02
    r = core.tick(steady, ros_now_s=ros + 0.02)
    assert not r.twist.is_zero
    steady += 0.02
    ros = 970.0  # the simulator restarted: ROS time 30 s back
    r = core.tick(steady, ros_now_s=ros)
    assert r.twist is not None and r.twist.is_zero and r.holding
    assert any("clock jumped backwards" in e for e in r.events)
    assert core.state().counters.clock_jumps == 1
    # In flight: stamped on the old timeline (now in the future): dropped.
    d = core.on_action([0.02, 0, 0, 0, 0, 0, 1], 1000.05, 1, 1, steady, ros_now_s=ros)
    assert d.command is None and d.outcome is Outcome.DROPPED_STALE
    # No pose since the jump: held, even for an action stamped after it.
    d = core.on_action([0.02, 0, 0, 0, 0, 0, 1], ros, 2, 1, steady, ros_now_s=ros)
    assert d.command is None and "clock jump" in d.reason
    steady, ros = steady + 0.02, ros + 0.02
    assert core.on_pose(HOME, ros, steady, ros_now_s=ros).accepted
    d = core.on_action([0.02, 0, 0, 0, 0, 0, 1], ros, 3, 1, steady, ros_now_s=ros)
    assert d.command is not None and d.command.reseeded  # recovered, from the measured pose


def test_f5_a_stalled_ros_clock_does_not_stop_the_watchdogs(profile: RobotProfile) -> None:
    p = profile.replace(command_type="twist")
    core = ExecutorCore(p)
    core.on_pose(HOME, 99.998, 9.998, ros_now_s=99.998)  # a first pose, confirmed by
    core.on_pose(HOME, 100.0, 10.0, ros_now_s=100.0)  # the next that agrees
    core.enable()
    assert core.on_action(SMALL, 100.0, 0, 1, 10.0, ros_now_s=100.0).command is not None
    # /clock stalls at 100.0 and poses stop; steady time goes on.
    r = core.tick(10.0 + p.pose_timeout_s + 0.01, ros_now_s=100.0)
    assert r.holding and r.twist.is_zero and "pose" in r.hold_reason


def test_f5_a_future_pose_is_rejected_and_does_not_poison_the_guard(profile: RobotProfile) -> None:
    core = _ready(profile)
    u = core.on_pose(HOME, 110.0, 10.01)  # stamped 100 s ahead
    assert not u.accepted and "future" in u.reason
    assert core.on_pose(HOME, 10.02, 10.02).accepted
    assert core.on_action(SMALL, 10.03, 0, 1, 10.03).command is not None
    # With nothing but future poses the state says why it holds.
    core.on_pose(HOME, 500.0, 10.04)
    d = core.on_action(SMALL, 10.5, 1, 1, 10.5)
    assert d.outcome is Outcome.HELD and "future" in d.reason


def test_f5_a_negative_pose_age_is_never_fresh(profile: RobotProfile) -> None:
    core = _ready(profile, now=100.0)
    r = core.tick(50.0)  # the clock the ages are measured on went back
    assert r.holding and core.state().pose_stale


SMALL = [0.01, 0.0, -0.01, 0.0, 0.0, 0.05, 1.0]


# -------------------------------------------------------------------- finding 6
def test_f6_reset_and_reenable_clear_the_action_stamp_guard(profile: RobotProfile) -> None:
    core = _ready(profile, now=1000.0)
    assert core.on_action(SMALL, 1000.0, 0, 1, 1000.0).command is not None
    core.on_pose(HOME, 1000.1, 1000.1)
    # The policy's clock restarted (sim restart): its stamps are far behind.
    core.reset()
    core.on_pose(HOME, 1000.2, 1000.2)
    d = core.on_action(SMALL, 999.5, 0, 1, 1000.2)
    assert d.command is not None, d.reason
    assert core.disable().success and core.enable().success
    core.on_pose(HOME, 1000.3, 1000.3)
    d = core.on_action(SMALL, 999.4, 1, 1, 1000.3)
    assert d.command is not None, d.reason


def test_f6_a_restarted_policy_session_starts_a_new_episode(profile: RobotProfile) -> None:
    core = _ready(profile)
    t = 10.0
    for k in range(3):
        assert core.on_action(SMALL, t, k, 1, t, session="a").command is not None
        t += 0.2
        core.on_pose(core.state().target_pose, t, t)
    assert core.state().episode_steps == 3
    d = core.on_action(SMALL, t, 0, 1, t, session="b")  # same episode id, new process
    assert d.command is not None and d.command.reseeded
    assert core.state().episode_steps == 1


def test_f6_a_pose_whose_stamp_does_not_advance_is_not_fresh(profile: RobotProfile) -> None:
    core = _ready(profile)
    for now in (10.1, 10.2, 10.3, 10.4):
        u = core.on_pose(HOME, 10.0, now)  # a driver re-sending a cached pose
        assert not u.accepted and "does not advance" in u.reason
    d = core.on_action(SMALL, 10.4, 0, 1, 10.4)
    assert d.outcome is Outcome.HELD and d.command is None


def test_f6_first_command_after_enable_is_one_step_from_the_arm(profile: RobotProfile) -> None:
    outside = HOME.with_position([0.74, 0.0, 0.25])  # 4 cm past x max (0.7), < one step
    core = _ready(profile, outside)
    d = core.on_action([-0.05, 0, 0, 0, 0, 0, 1], 10.0, 0, 1, 10.0)
    assert d.command is not None
    gap = np.abs(d.command.target_pose.position - outside.position)
    assert np.all(gap <= profile.step_limit_m + 1e-9), gap


def test_f6_orientation_is_bounded(profile: RobotProfile) -> None:
    core = _ready(profile)
    t = 10.0
    for k in range(40):
        d = core.on_action([0, 0, 0, 0.25, 0, 0.25, 1], t, k, 1, t)
        if d.command is not None:
            core.on_pose(d.command.target_pose, t + 0.01, t + 0.01)
        t += 0.2
    target = core.state().target_pose
    assert target is not None
    assert orientation_violation(target.orientation, profile) <= 1e-9


def test_f6_twist_angular_components_within_the_per_axis_limit(profile: RobotProfile) -> None:
    p = profile.replace(command_type="twist", max_angular_speed_rad_s=10.0)
    core = _ready(p)
    d = core.on_action([0, 0, 0, 0.25, 0.25, 0.25, 1], 10.0, 0, 1, 10.0)
    assert d.command is not None and d.command.twist is not None
    per_step = d.command.twist.angular_radps / p.control_hz
    assert np.all(np.abs(per_step) <= p.step_limit_rad + 1e-9), per_step
    rv = relative_rotvec(d.command.reference_pose.orientation, d.command.target_pose.orientation)
    np.testing.assert_allclose(per_step, rv, atol=1e-12)  # the twist integrates to the target


def test_f6_step_within_limits_is_the_final_check(
    profile: RobotProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executor_core, "step_within_limits", lambda *a, **k: False)
    core = _ready(profile)
    d = core.on_action(SMALL, 10.0, 0, 1, 10.0)
    assert d.outcome is Outcome.REJECTED and d.command is None and "internal" in d.reason


# -------------------------------------------------------------------- finding 7
@pytest.mark.parametrize(("robot", "adapter"), [("franka", "franka"), ("widowx", "interbotix")])
def test_f7_robot_configs_name_their_gripper_adapter(robot: str, adapter: str) -> None:
    doc = yaml.safe_load((CONFIG / f"{robot}.yaml").read_text())
    assert doc["openvla_executor"]["ros__parameters"]["gripper_adapter"] == adapter


# -------------------------------------------------------------------- finding 8
def test_f8_a_short_list_read_past_its_end_is_refused(profile: RobotProfile) -> None:
    core = _ready(profile)
    garbage: list[Any] = [0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 4.7e-322]  # what rclpy sent
    d = core.on_action(garbage, 10.0, 0, 1, 10.0)
    assert d.outcome is Outcome.REJECTED and d.command is None
    assert "ROS_PYTHON_CHECK_FIELDS" in d.reason
    assert core.on_action(SMALL, 10.1, 1, 1, 10.1).command is not None  # and it recovers


def test_every_robot_profile_seeds_at_its_nominal_orientation(robot_profile: RobotProfile) -> None:
    p = robot_profile
    r, pi, y = p.nominal_rpy_rad
    centre = (p.workspace_min + p.workspace_max) / 2
    nominal = Pose.from_xyz_rpy(centre, [r, pi, y])
    assert orientation_violation(nominal.orientation, p) == pytest.approx(0.0, abs=1e-6)
    core = _ready(p, nominal)
    d = core.on_action([0.0] * 6 + [1.0], 10.0, 0, 1, 10.0)
    assert d.command is not None, d.reason
    assert quat_angle(d.command.target_pose.orientation, nominal.orientation) < 1e-9
