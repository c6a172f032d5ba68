# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``widowx_bridge``: Cartesian pose in/out for the Interbotix xs driver (WidowX 250 6-DoF).

The xs driver (interbotix_xs_sdk) speaks joints only. This node closes the gap the executor
needs (docs/launch.md, widowx column), with the kinematics of
:mod:`openvla_ros.control.widowx_kinematics`:

* ``/<robot_name>/joint_states`` (``sensor_msgs/JointState``) -> forward kinematics ->
  ``/openvla/ee_pose`` (``PoseStamped`` in ``<robot_name>/base_link``, best effort, depth 1),
  on every joint state or at ``pose_rate_hz``.
* ``/openvla/target_pose`` (``PoseStamped``) -> IK seeded from the measured joints ->
  ``/<robot_name>/commands/joint_group`` (``interbotix_xs_msgs/JointGroupCommand``,
  ``name: arm``, 6 positions in rad).

A target that is not finite, not in the base frame, arrives before any (or with only a
stale) joint state, has no IK solution within tolerance, or would move a joint more than
``max_joint_step_rad`` is refused: logged (throttled), counted, and nothing is published, so
the arm holds its last command. No input can stop the node. ``interbotix_xs_msgs`` is
imported at start-up only; without it the node logs how to get it and exits with code 2.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState

from openvla_ros.control.se3 import Pose
from openvla_ros.control.widowx_kinematics import (
    WX250S,
    ArmKinematics,
    fk_pose,
    plan_joint_command,
)
from openvla_ros.errors import ConfigError
from openvla_ros.nodes.common import (
    COMMAND_QOS,
    POSE_QOS,
    declare_specs,
    guarded,
    ns_to_stamp,
    run_node,
)
from openvla_ros.paramspec import ParamSpec, ParamType

__all__ = ["NODE_NAME", "WIDOWX_BRIDGE_PARAMS", "WidowXBridgeNode", "main"]

NODE_NAME = "widowx_bridge"

_S, _F, _I = ParamType.STR, ParamType.FLOAT, ParamType.INT

#: The bridge's parameters, declared once (type, default, unit, range, description).
WIDOWX_BRIDGE_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("robot_name", _S, "wx250s", "Interbotix robot name: the xs driver's namespace "
              "and frame prefix (the kinematics are the wx250s's whatever the name)",
              read_only=True),
    ParamSpec("base_frame", _S, "", "Frame of ee_pose out and of accepted targets (empty: "
              "`<robot_name>/base_link`); targets in any other frame, '' included, are refused",
              read_only=True),
    ParamSpec("group_name", _S, "arm", "Joint group named in JointGroupCommand (the xs "
              "driver's group of the 6 arm joints)", read_only=True),
    ParamSpec("joint_states_topic", _S, "", "sensor_msgs/JointState input (empty: "
              "`/<robot_name>/joint_states`)", read_only=True),
    ParamSpec("joint_group_topic", _S, "", "interbotix_xs_msgs/JointGroupCommand output "
              "(empty: `/<robot_name>/commands/joint_group`)", read_only=True),
    ParamSpec("ee_pose_topic", _S, "/openvla/ee_pose", "PoseStamped end-effector pose output "
              "(best effort, depth 1), what the executor reads", read_only=True),
    ParamSpec("target_pose_topic", _S, "/openvla/target_pose", "PoseStamped target input, "
              "what the executor publishes", read_only=True),
    ParamSpec("ik_tolerance_m", _F, 0.002, "Largest position error an IK solution may have",
              unit="m", min=1e-5, max=0.05, read_only=True),
    ParamSpec("ik_tolerance_rad", _F, 0.01, "Largest orientation error an IK solution may "
              "have", unit="rad", min=1e-4, max=0.2, read_only=True),
    ParamSpec("ik_max_iterations", _I, 100, "IK iterations before the target is refused",
              min=5, max=2000, read_only=True),
    ParamSpec("max_joint_step_rad", _F, 0.5, "Largest change of any joint between the "
              "measured joints and one command; larger ones are refused", unit="rad",
              min=0.01, max=math.pi, read_only=True),
    ParamSpec("joint_limit_margin_rad", _F, 0.05, "IK keeps every joint this far inside "
              "the URDF limits", unit="rad", min=0.0, max=0.5, read_only=True),
    ParamSpec("joint_state_timeout_s", _F, 0.5, "Targets are refused while the newest joint "
              "state is older than this (receive time, steady clock)", unit="s", min=0.01, max=10.0,
              read_only=True),
    ParamSpec("pose_rate_hz", _F, 0.0, "ee_pose publishing rate; 0 = on every joint state",
              unit="Hz", min=0.0, max=1000.0, read_only=True),
    ParamSpec("stats_period_s", _F, 10.0, "Period of the counters log line; 0 disables it",
              unit="s", min=0.0, max=3600.0, read_only=True),
)  # fmt: skip


class WidowXBridgeNode(Node):
    """Joint states -> EE pose (FK); target pose -> joint group command (IK), with refusals."""

    def __init__(self, command_type: Any, **kwargs: Any) -> None:
        """Create the node; ``command_type`` is ``interbotix_xs_msgs.msg.JointGroupCommand``.

        Raises:
            ConfigError: a bad parameter value (launch override or params file).
        """
        super().__init__(NODE_NAME, **kwargs)
        p = declare_specs(self, WIDOWX_BRIDGE_PARAMS)
        robot = str(p["robot_name"]).strip("/")
        # robot_name is only the driver's namespace/frame prefix (two arms may run as
        # "arm_left"/"arm_right"); the kinematics are always the wx250s's.
        self.arm: ArmKinematics = WX250S.with_margin(p["joint_limit_margin_rad"])
        self.base_frame = p["base_frame"] or f"{robot}/base_link"
        self.group_name = p["group_name"]
        self.tol_m, self.tol_rad = p["ik_tolerance_m"], p["ik_tolerance_rad"]
        self.max_iterations = p["ik_max_iterations"]
        self.max_step = p["max_joint_step_rad"]
        self.state_timeout_ns = int(p["joint_state_timeout_s"] * 1e9)
        self.stats_period_s = p["stats_period_s"]
        self._command_type = command_type
        self.counts: Counter[str] = Counter()
        self._last_log: dict[str, float] = {}  # rejection kind -> last warning (monotonic s)
        self._joints: np.ndarray | None = None  # newest measured arm joints (rad)
        self._joints_stamp_ns = 0  # header stamp of that joint state (0: none given)
        self._joints_rx_ns = 0  # when it arrived, on this node's clock
        # ... and on the steady clock: its age must not follow a ROS clock jump or pause.
        self._joints_rx_steady_ns = 0
        self._published_rx_ns = -1  # rx time of the joint state last turned into ee_pose
        self._index: dict[str, int] = {}  # joint name -> index in the last names list
        self._names_key: tuple[str, ...] = ()

        topics = {
            "joint_states": p["joint_states_topic"] or f"/{robot}/joint_states",
            "joint_group": p["joint_group_topic"] or f"/{robot}/commands/joint_group",
        }
        self.pose_pub = self.create_publisher(PoseStamped, p["ee_pose_topic"], POSE_QOS)
        self.cmd_pub = self.create_publisher(command_type, topics["joint_group"], COMMAND_QOS)
        # The xs driver publishes joint states reliably at ~100 Hz; best effort depth 1 takes
        # the newest and matches reliable and best-effort publishers alike.
        self.create_subscription(
            JointState, topics["joint_states"], guarded(self, self.on_joint_state), POSE_QOS
        )
        self.create_subscription(
            PoseStamped, p["target_pose_topic"], guarded(self, self.on_target), COMMAND_QOS
        )
        self.pose_every_state = p["pose_rate_hz"] <= 0.0
        if not self.pose_every_state:
            self.create_timer(1.0 / p["pose_rate_hz"], guarded(self, self.publish_pose))
        if self.stats_period_s > 0:
            self.create_timer(self.stats_period_s, guarded(self, self.log_stats))
        self.get_logger().info(
            f"{robot} bridge: {topics['joint_states']} -> {p['ee_pose_topic']} "
            f"({self.base_frame}); {p['target_pose_topic']} -> {topics['joint_group']} "
            f"(group '{self.group_name}', max step {self.max_step:.2f} rad)"
        )

    # -- joint states -> ee_pose -----------------------------------------------------------

    def on_joint_state(self, msg: JointState) -> None:
        """Keep the arm joints of a joint state; publish its FK pose unless rate-limited."""
        names = tuple(msg.name)
        if names != self._names_key:  # the driver's order is fixed: index once per layout
            self._names_key, self._index = names, {n: i for i, n in enumerate(names)}
        try:
            idx = [self._index[n] for n in self.arm.joint_names]
            q = np.array([msg.position[i] for i in idx], dtype=np.float64)
        except (KeyError, IndexError):
            self._reject("bad_joint_state", f"joint state lacks the arm joints "
                         f"{list(self.arm.joint_names)} (has {list(names)})")  # fmt: skip
            return
        if not np.all(np.isfinite(q)):
            self._reject("bad_joint_state", f"non-finite arm joint positions {q.tolist()}")
            return
        self._joints = q
        self._joints_stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self._joints_rx_ns = self.get_clock().now().nanoseconds
        self._joints_rx_steady_ns = time.monotonic_ns()
        self.counts["joint_states"] += 1
        if self.pose_every_state:
            self.publish_pose()

    def publish_pose(self) -> None:
        """Publish the FK pose of the newest joint state (once per joint state)."""
        if self._joints is None or self._joints_rx_ns == self._published_rx_ns:
            return
        self._published_rx_ns = self._joints_rx_ns
        pose = fk_pose(self._joints, self.arm)
        msg = PoseStamped()
        # The measurement's time: the joint state's stamp, or its arrival if unstamped.
        msg.header.stamp = ns_to_stamp(self._joints_stamp_ns or self._joints_rx_ns)
        msg.header.frame_id = self.base_frame
        pos, q = pose.position, pose.orientation
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pos)
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in q)
        self.pose_pub.publish(msg)
        self.counts["poses"] += 1

    # -- target pose -> joint group command ------------------------------------------------

    def on_target(self, msg: PoseStamped) -> None:
        """Solve a target and command the arm, or refuse it (nothing published)."""
        self.counts["targets"] += 1
        if msg.header.frame_id != self.base_frame:
            self._reject("wrong_frame", f"target frame '{msg.header.frame_id}' is not "
                         f"'{self.base_frame}' (no transforms are applied)")  # fmt: skip
            return
        p, o = msg.pose.position, msg.pose.orientation
        try:
            target = Pose(np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]))
        except ValueError as exc:  # non-finite values or a non-unit quaternion
            self._reject("bad_target", f"target refused: {exc}")
            return
        if self._joints is None:
            self._reject("no_joint_state", "no joint state received yet: cannot seed IK")
            return
        age_ns = time.monotonic_ns() - self._joints_rx_steady_ns
        if age_ns > self.state_timeout_ns:
            self._reject("stale_joint_state", f"newest joint state is {age_ns / 1e9:.2f} s "
                         "old: is the xs driver running?")  # fmt: skip
            return
        plan = plan_joint_command(
            target,
            self._joints,
            self.arm,
            tolerance_m=self.tol_m,
            tolerance_rad=self.tol_rad,
            max_joint_step_rad=self.max_step,
            max_iterations=self.max_iterations,
        )
        if not plan.ok:
            self._reject(plan.kind, f"target {np.round(target.position, 4).tolist()} refused: "
                         f"{plan.reason}")  # fmt: skip
            return
        cmd = self._command_type()
        cmd.name = self.group_name
        cmd.cmd = [float(v) for v in plan.joints]
        self.cmd_pub.publish(cmd)
        self.counts["commands"] += 1

    # -- bookkeeping -----------------------------------------------------------------------

    def _reject(self, kind: str, reason: str) -> None:
        key = f"rejected_{kind}"
        self.counts[key] += 1
        # Throttled per kind (rclpy throttles per call site, which would let a flood of one
        # kind hide every other): at most 2 lines/s each, the count says how many there were.
        now = time.monotonic()
        if now - self._last_log.get(kind, -math.inf) >= 0.5:
            self._last_log[kind] = now
            self.get_logger().warning(f"{reason} [{kind} #{self.counts[key]}]")

    def log_stats(self) -> None:
        """One line with every counter."""
        text = ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items())) or "no traffic"
        self.get_logger().info(f"counters: {text}")


def _make_node() -> WidowXBridgeNode:
    try:
        from interbotix_xs_msgs.msg import JointGroupCommand
    except ImportError as exc:
        raise ConfigError(
            f"interbotix_xs_msgs is not importable ({exc}). Install the Interbotix ROS 2 "
            "packages (interbotix_ros_core) and source their workspace."
        ) from exc
    return WidowXBridgeNode(JointGroupCommand)


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run openvla_ros widowx_bridge_node``; returns the exit code
    (2 when interbotix_xs_msgs is missing or a parameter is invalid)."""
    return run_node(_make_node, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
