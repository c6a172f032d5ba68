# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""A simulated arm for the executor tests: what the commands do to a real arm.

Independent of the executor's own bookkeeping: it only sees what the node would publish.

* pose mode: a first-order follower (an impedance / position controller) that moves a
  fraction ``gain * dt`` of the way to the latest published target each step;
* twist mode: MoveIt Servo: it integrates the latest published twist until the next one
  (a zero twist stops it), linear in m/s, angular as a base-frame rotation-vector rate.

``teleport`` moves the arm from outside (hand guiding, a robot restart, another
controller).
"""

from __future__ import annotations

import math

import numpy as np

from openvla_ros.control.executor_core import Decision, Twist
from openvla_ros.control.se3 import Pose, quat_multiply, quat_to_rotvec, rotvec_to_quat


def _slerp_toward(q: np.ndarray, goal: np.ndarray, f: float) -> np.ndarray:
    rel = quat_multiply(goal, np.array([-q[0], -q[1], -q[2], q[3]]))
    rv = quat_to_rotvec(rel / np.linalg.norm(rel))
    out = quat_multiply(rotvec_to_quat(rv * f), q)
    return out / np.linalg.norm(out)


class SimArm:
    """The arm's true pose over time; ``advance(t)`` integrates up to time ``t`` (s)."""

    def __init__(self, pose: Pose, t: float, *, gain: float = 8.0) -> None:
        self.position = np.array(pose.position, dtype=np.float64)
        self.orientation = np.array(pose.orientation, dtype=np.float64)
        self.t = t
        self.gain = gain  # pose follower: 1/s (8/s: ~63 % of a step in 0.125 s)
        self.target: Pose | None = None
        self.twist: Twist | None = None

    @property
    def pose(self) -> Pose:
        """The true pose now."""
        return Pose(self.position.copy(), self.orientation.copy())

    def advance(self, t: float) -> None:
        """Move the arm from ``self.t`` to ``t`` under the latest command."""
        dt = t - self.t
        if dt <= 0:
            return
        if self.twist is not None and not self.twist.is_zero:
            self.position = self.position + self.twist.linear_mps * dt
            q = quat_multiply(rotvec_to_quat(self.twist.angular_radps * dt), self.orientation)
            self.orientation = q / np.linalg.norm(q)
        elif self.target is not None:
            # Exact first-order response over dt (stable for any dt).
            f = 1.0 - math.exp(-self.gain * dt)
            self.position = self.position + f * (self.target.position - self.position)
            self.orientation = _slerp_toward(self.orientation, self.target.orientation, f)
        self.t = t

    def command_pose(self, t: float, target: Pose) -> None:
        """A target pose published at ``t``."""
        self.advance(t)
        self.target = target

    def command_twist(self, t: float, twist: Twist) -> None:
        """A twist published at ``t`` (replaces the previous one)."""
        self.advance(t)
        self.twist = twist

    def apply(self, t: float, d: Decision) -> None:
        """What the executor node publishes for decision ``d`` at ``t``: its command (a twist
        or a target pose), or the zero twist when the decision stops a running twist."""
        if d.command is not None:
            if d.command.twist is not None:
                self.command_twist(t, d.command.twist)
            else:
                self.command_pose(t, d.command.target_pose)
        elif d.stop_twist:
            self.command_twist(t, Twist.zero())

    def teleport(self, t: float, pose: Pose, *, restart: bool = True) -> None:
        """Moved from outside. ``restart``: the controller restarted and forgot its command
        (target / twist); otherwise (hand guiding) the last command stays in force."""
        self.advance(t)
        self.position = np.array(pose.position, dtype=np.float64)
        self.orientation = np.array(pose.orientation, dtype=np.float64)
        if restart:
            self.target = None
            self.twist = None
