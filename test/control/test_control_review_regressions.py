# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Regression tests from an independent safety review of the executor (after issue 10):
hostile timing, pose streams and services against the pure :class:`ExecutorCore` on a
simulated arm. Each failed on the code before its fix."""

from __future__ import annotations

import math
from pathlib import Path

from openvla_ros.control.executor_core import Decision, ExecutorCore, Twist
from openvla_ros.control.profile import RobotProfile, load_profile_yaml
from openvla_ros.control.safety import Outcome, orientation_violation
from openvla_ros.control.se3 import Pose, rotate_by_rotvec
from test.control.sim_arm import SimArm

CONFIG = Path(__file__).resolve().parents[2] / "config"
FRANKA = load_profile_yaml(CONFIG / "franka.yaml")
DOWN = [math.pi, 0.0, 0.0]


class Node:
    """Plays the executor node around a core and a simulated arm on one clock: the caller
    decides when ticks and poses happen (late ticks, stalls)."""

    def __init__(self, p: RobotProfile, start: Pose, t: float = 10.0) -> None:
        self.p, self.t = p, t
        self.arm = SimArm(start, t)
        self.core = ExecutorCore(p)
        self.step = 0
        self.t -= 0.002
        self.pose()  # the executor confirms a first pose by a second that agrees
        self.t += 0.002
        self.pose()
        assert self.core.enable().success

    def pose(self) -> None:
        self.arm.advance(self.t)
        u = self.core.on_pose(self.arm.pose, self.t, self.t)
        if u.stop_twist:
            self.arm.command_twist(self.t, Twist.zero())

    def publish(self, d: Decision) -> None:
        self.arm.apply(self.t, d)

    def act(self, action: list[float], episode: int = 1) -> Decision:
        self.pose()
        d = self.core.on_action(action, self.t, self.step, episode, self.t)
        self.step += 1
        self.publish(d)
        return d

    def tick(self, dt: float = 0.02) -> None:
        """One servo period: a pose, then the tick ``dt`` later."""
        self.t += dt
        self.pose()
        r = self.core.tick(self.t)
        if r.twist is not None:
            self.arm.command_twist(self.t, r.twist)
        elif r.target_pose is not None:
            self.arm.command_pose(self.t, r.target_pose)


# ------------------------------------------------------ twist overrun at the box face
def test_a_late_zero_twist_at_the_box_face_does_not_lock_the_executor() -> None:
    """Twist mode, pushing onto the box floor: the tick that publishes the zero comes
    30 ms late (timer jitter, a loaded PC), so the arm ran past its goal, below the
    floor. The executor used to keep that integrated target and REJECT every later
    action ("previous target ... is outside the workspace box; reset") until ~/reset.
    It must re-seed from the measured arm and carry on."""
    p = FRANKA.replace(command_type="twist")
    node = Node(p, Pose.from_xyz_rpy([0.5, 0.0, 0.06], DOWN))
    assert node.act([0.0, 0.0, -0.03, 0.0, 0.0, 0.0, 1.0]).command is not None
    for _ in range(9):
        node.tick()
    node.tick(0.03)  # the zero comes late: the arm overran the floor by a few mm
    assert node.arm.position[2] < p.workspace_min[2]
    outcomes = []
    for _ in range(5):
        node.t += 0.2
        d = node.act([0.0, 0.0, 0.01, 0.0, 0.0, 0.0, 1.0])
        outcomes.append(d.outcome)
        for _ in range(9):
            node.tick()
    assert Outcome.REJECTED not in outcomes, outcomes
    assert outcomes.count(Outcome.EXECUTED) + outcomes.count(Outcome.CLIPPED) >= 4
    assert node.arm.position[2] >= p.workspace_min[2]  # driven back up into the box


# ------------------------------------------- republish while a pose jump is unconfirmed
def test_republish_does_not_send_the_old_target_to_an_arm_that_jumped() -> None:
    """Pose mode with ``republish_target``: the robot restarts at home, 0.3 m from the
    target; its first pose is a jump waiting for confirmation. The tick used to
    re-publish the old target in that window, and a position controller holds the last
    target it got: the restarted arm would drive 0.3 m back (issue 10 finding 2, via the
    re-publish path). No target may go out until the jump is confirmed or discarded."""
    p = FRANKA.replace(republish_target=True)
    node = Node(p, Pose.from_xyz_rpy([0.6, 0.2, 0.4], DOWN))
    assert node.act([0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]).command is not None
    node.tick()
    home = Pose.from_xyz_rpy([0.4, 0.0, 0.2], DOWN)
    node.arm.teleport(node.t, home)  # the controller restarted: no target
    node.t += 0.005
    update = node.core.on_pose(node.arm.pose, node.t, node.t)
    assert update.accepted and update.reason  # a jump, not used yet
    r = node.core.tick(node.t + 0.001)
    assert r.target_pose is None, r.target_pose
    assert r.holding


# ------------------------------------- a clock jump seen in a pose/action: zero twist now
def test_a_clock_jump_seen_in_a_pose_or_action_stops_the_twist_at_once() -> None:
    """An NTP step of the system clock is not reported by rclpy's jump callback; the core
    notices it from the two clocks in the next pose or action. docs/control.md promises a
    zero twist *now*; the pose/action answer did not ask for one (``stop_twist``
    False), so the twist ran on until the next tick."""
    p = FRANKA.replace(command_type="twist")
    for via in ("pose", "action"):
        core = ExecutorCore(p)
        t = 10.0
        for dt in (0.002, 0.0):  # a first pose and the one that confirms it
            core.on_pose(Pose.from_xyz_rpy([0.5, 0.0, 0.3], DOWN), t - dt, t - dt,
                         ros_now_s=t - dt)  # fmt: skip
        core.enable()
        d = core.on_action([0.02, 0, 0, 0, 0, 0, 1], t, 0, 1, t, ros_now_s=t)
        assert d.command is not None and d.command.twist is not None
        assert not d.command.twist.is_zero
        t += 0.005
        ros = t - 30.0  # the ROS clock stepped back 30 s
        if via == "pose":
            u = core.on_pose(Pose.from_xyz_rpy([0.5, 0.0, 0.3], DOWN), ros, t, ros_now_s=ros)
            assert u.stop_twist, via
        else:
            d = core.on_action([0.02, 0, 0, 0, 0, 0, 1], ros, 1, 1, t, ros_now_s=ros)
            assert d.command is None and d.stop_twist, (via, d.outcome, d.reason)
        assert core.state().counters.clock_jumps == 1


# ------------------------------ unsynchronised camera clock: a jump must not lock it out
def test_a_clock_jump_does_not_lock_out_a_camera_on_its_own_clock() -> None:
    """``watchdog.max_action_age_s: 0`` is for a camera stamping on its own clock (device
    time, another PC). After any executor clock jump the core used to drop every action
    stamped before the executor's ROS time at the jump (``DROPPED_OLD``, "an in-flight
    action"), i.e. every action of a camera whose clock is behind, until ~/reset. With
    stamps on a foreign clock the cut-off means nothing; a fresh pose after the jump is
    what protects the arm."""
    p = FRANKA.replace(max_action_age_s=0.0)
    core = ExecutorCore(p)
    t, ros, cam = 10.0, 5000.0, 120.0  # the camera's clock is 4880 s behind
    home = Pose.from_xyz_rpy([0.5, 0.0, 0.3], DOWN)
    core.on_pose(home, ros - 0.002, t - 0.002, ros_now_s=ros - 0.002)
    core.on_pose(home, ros, t, ros_now_s=ros)
    core.enable()
    assert core.on_action([0.01, 0, 0, 0, 0, 0, 1], cam, 0, 1, t, ros_now_s=ros).command
    t, ros, cam = t + 0.02, ros + 3600.0, cam + 0.02  # NTP steps the executor's clock
    core.on_clock_jump(t, ros, 3600.0)
    d = core.on_action([0.01, 0, 0, 0, 0, 0, 1], cam, 1, 1, t, ros_now_s=ros)
    assert d.command is None  # no pose since the jump: held
    outcomes = []
    for k in range(2, 6):
        t, ros, cam = t + 0.2, ros + 0.2, cam + 0.2
        core.on_pose(home, ros, t, ros_now_s=ros)
        d = core.on_action([0.01, 0, 0, 0, 0, 0, 1], cam, k, 1, t, ros_now_s=ros)
        outcomes.append(d.outcome)
    assert outcomes.count(Outcome.EXECUTED) == 4, (outcomes, d.reason)


# ------------------------- twist mode: the measured arm, not the target, in the orientation
def test_twist_rotations_keep_the_measured_arm_in_the_orientation_bound() -> None:
    """Twist mode rotates the *arm* by each delta. The operator turned the wrist 0.45 rad
    (hand guiding, within the tracking bound: no re-seed), then the policy rolls on: the
    target stayed inside the cone but the twists took the arm, 0.45 rad ahead of it, to
    0.25 rad outside the orientation bound (the box had this check on the measured arm,
    the orientation did not)."""
    p = FRANKA.replace(command_type="twist")
    start = Pose.from_xyz_rpy([0.5, 0.0, 0.3], DOWN)
    node = Node(p, start)
    assert node.act([0.0] * 6 + [1.0]).command is not None  # a target exists
    for _ in range(10):
        node.tick()
    for k in range(1, 10):  # the wrist is turned by hand, 0.05 rad per pose
        turned = Pose(node.arm.position, rotate_by_rotvec(start.orientation, [0.05 * k, 0, 0]))
        node.arm.teleport(node.t, turned, restart=False)
        node.tick()
    assert orientation_violation(node.arm.orientation, p) == 0.0  # inside, 0.45 rad tilted
    worst = 0.0
    for _ in range(8):
        node.t += 0.2
        node.act([0.0, 0.0, 0.0, 0.2, 0.0, 0.0, 1.0])
        for _ in range(10):
            node.tick()
            worst = max(worst, orientation_violation(node.arm.orientation, p))
    assert worst <= 1e-6, worst
