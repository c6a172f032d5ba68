# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Optional gripper drivers for the executor node, loaded only when their interface
packages import (neither ``franka_msgs`` nor ``interbotix_xs_msgs`` is on PyPI).

* ``franka``: franka_ros2's gripper action servers, ``<ns>/move`` (``franka_msgs/action/Move``)
  to open and ``<ns>/grasp`` (``franka_msgs/action/Grasp``) to close with a force, so an
  object of any width in between counts as grasped.
* ``interbotix``: the Interbotix X-series SDK's ``<ns>/commands/joint_single``
  (``interbotix_xs_msgs/msg/JointSingleCommand``, joint ``gripper``), a PWM effort
  command: +pressure opens, -pressure closes (the SDK's own gripper convention).

The executor calls :meth:`send` only when the gripper's binary state changes; the Float64
``gripper_topic`` is published for every executed action regardless. A command that finds
its driver not ready yet (action server not up, no subscriber on the command topic) is
kept, and :meth:`poll` (called by the executor's tick, 5 times a second) sends the
**latest** kept command once the driver is ready: a gripper started after the executor
still gets the state the policy asked for, and only the newest one. The executor polls
only while no fault holds the arm and an action has executed since the last service call
(e-stop, enable, disable, reset, release): a kept command never moves the gripper after a
fault before its recovery.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from rclpy.node import Node

from openvla_ros.control.gripper import GripperCommand
from openvla_ros.control.profile import RobotProfile

__all__ = [
    "FrankaGripperAdapter",
    "GripperAdapter",
    "InterbotixGripperAdapter",
    "make_gripper_adapter",
]

#: Franka Grasp epsilon (m): how far the final width may lie below / above the goal width.
#: Closing to the closed width with a generous outer epsilon accepts any object in the hand.
GRASP_EPSILON_INNER_M = 0.005


class GripperAdapter(Protocol):
    """Sends a gripper state change to a robot-specific driver."""

    def send(self, command: GripperCommand) -> None:
        """Forward one state change (never blocks); kept for later if the driver is not
        ready."""
        ...

    def poll(self) -> None:
        """Send the kept command if the driver has become ready (never blocks)."""
        ...


class FrankaGripperAdapter:
    """franka_ros2 gripper via ``Move`` (open) and ``Grasp`` (close) actions."""

    def __init__(self, node: Node, namespace: str, profile: RobotProfile, *, speed: float,
                 force: float) -> None:  # fmt: skip
        from franka_msgs.action import Grasp, Move
        from rclpy.action import ActionClient

        ns = namespace.rstrip("/")
        self._node = node
        self._profile = profile
        self._speed = float(speed)
        self._force = float(force)
        self._move_type, self._grasp_type = Move, Grasp
        self.move: Any = ActionClient(node, Move, f"{ns}/move")
        self.grasp: Any = ActionClient(node, Grasp, f"{ns}/grasp")
        self._names = {id(self.move): f"{ns}/move", id(self.grasp): f"{ns}/grasp"}
        self.sent: list[Any] = []  # goals sent (diagnostics and tests)
        self._pending: tuple[Any, Any] | None = None  # (client, goal) not sent yet
        self._lock = threading.Lock()

    def send(self, command: GripperCommand) -> None:
        """Open with Move to the open width, close with Grasp at the configured force."""
        p = self._profile
        if command.is_open:
            client, goal = self.move, self._move_type.Goal()
            goal.width = float(p.gripper_open_command)
            goal.speed = self._speed
        else:
            client, goal = self.grasp, self._grasp_type.Goal()
            goal.width = float(p.gripper_closed_command)
            goal.epsilon.inner = GRASP_EPSILON_INNER_M
            goal.epsilon.outer = abs(p.gripper_open_command - p.gripper_closed_command)
            goal.speed = self._speed
            goal.force = self._force
        with self._lock:
            self._pending = (client, goal)  # the latest command replaces an unsent one
            self._flush(first_try=True)

    def poll(self) -> None:
        """Send the kept goal once its action server is ready."""
        with self._lock:
            if self._pending is not None:
                self._flush(first_try=False)

    def _flush(self, *, first_try: bool) -> None:
        assert self._pending is not None
        client, goal = self._pending
        name = self._names[id(client)]
        if not client.server_is_ready():
            if first_try:
                self._node.get_logger().warning(
                    f"franka gripper action server {name} is not available; the command is "
                    "kept and sent when it comes up",
                    throttle_duration_sec=5.0,
                )
            return
        client.send_goal_async(goal)
        self.sent.append(goal)
        self._pending = None
        if not first_try:
            self._node.get_logger().info(f"franka gripper: {name} is up; latest command sent")


class InterbotixGripperAdapter:
    """Interbotix X-series gripper via ``JointSingleCommand`` PWM commands."""

    def __init__(self, node: Node, namespace: str, *, pressure: float) -> None:
        from interbotix_xs_msgs.msg import JointSingleCommand

        from openvla_ros.nodes.common import COMMAND_QOS

        self._node = node
        self._msg_type = JointSingleCommand
        self._pressure = float(pressure)
        self._topic = f"{namespace.rstrip('/')}/commands/joint_single"
        self.pub = node.create_publisher(JointSingleCommand, self._topic, COMMAND_QOS)
        self._pending: Any = None  # a command published before the driver subscribed
        self._lock = threading.Lock()

    def send(self, command: GripperCommand) -> None:
        """+pressure to open, -pressure to close."""
        msg = self._msg_type()
        msg.name = "gripper"
        msg.cmd = self._pressure if command.is_open else -self._pressure
        with self._lock:
            if self.pub.get_subscription_count() > 0:
                self.pub.publish(msg)
                self._pending = None
                return
            self._pending = msg  # volatile topic: nobody would get it now
        self._node.get_logger().warning(
            f"interbotix gripper: nothing subscribes to {self._topic}; the command is kept "
            "and sent when the driver subscribes",
            throttle_duration_sec=5.0,
        )

    def poll(self) -> None:
        """Publish the kept command once the driver subscribes."""
        with self._lock:
            if self._pending is None or self.pub.get_subscription_count() == 0:
                return
            self.pub.publish(self._pending)
            self._pending = None
        self._node.get_logger().info(f"interbotix gripper: {self._topic} has a subscriber; "
                                     "latest command sent")  # fmt: skip


def make_gripper_adapter(
    node: Node, kind: str, params: dict[str, Any], profile: RobotProfile
) -> GripperAdapter | None:
    """The adapter ``kind`` names, or None when its interface package is not installed."""
    ns = params.get("gripper_namespace", "")
    try:
        if kind == "franka":
            return FrankaGripperAdapter(
                node,
                ns or "/fr3_gripper",
                profile,
                speed=params["gripper_speed"],
                force=params["franka_grasp_force_n"],
            )
        if kind == "interbotix":
            return InterbotixGripperAdapter(
                node, ns or "/wx250s", pressure=params["interbotix_gripper_pressure"]
            )
    except ImportError:
        return None
    raise ValueError(f"unknown gripper adapter '{kind}'")
