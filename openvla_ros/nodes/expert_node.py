# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``sim_expert``: the scripted expert driving the simulated arm over its command topics.

Reads the privileged scene from sim_arm's ``~/task_state`` (JSON) and the measured pose, and at
``control_hz`` publishes what a teleoperator's MoveIt Servo pose target would: a ``PoseStamped``
TCP target on ``/openvla/target_pose`` and a ``Float64`` gripper opening on
``/openvla/gripper_command``. It starts on a scene when an instruction arrives on
``/instruction`` (as an operator would), restarting from the measured pose; a new scene (seed)
waits for the next instruction.
``~/status`` (String, JSON: seed, phase, done, step, success) tells an orchestrator when the
expert is done. All decisions are :class:`openvla_ros.sim.expert.ScriptedExpert`'s.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import Float64, String

from openvla_ros.control.se3 import Pose
from openvla_ros.nodes.common import (
    COMMAND_QOS,
    INSTRUCTION_QOS,
    POSE_QOS,
    declare_specs,
    run_node,
)
from openvla_ros.paramspec import ParamSpec, ParamType
from openvla_ros.sim.expert import ScriptedExpert
from openvla_ros.sim.tasks import Scene, SimState

NODE_NAME = "sim_expert"
_S, _F = ParamType.STR, ParamType.FLOAT

EXPERT_PARAMS: list[ParamSpec] = [
    ParamSpec("control_hz", _F, 5.0, "Expert step rate (ROS time: simulated with "
              "use_sim_time).", unit="Hz", min=0.5, max=50.0, read_only=True),
    ParamSpec("task_state_topic", _S, "/sim_arm/task_state", "sim_arm's privileged task "
              "state (JSON String).", read_only=True),
    ParamSpec("pose_topic", _S, "/openvla/ee_pose", "Measured TCP PoseStamped.",
              read_only=True),
    ParamSpec("target_pose_topic", _S, "/openvla/target_pose", "PoseStamped target output.",
              read_only=True),
    ParamSpec("gripper_topic", _S, "/openvla/gripper_command", "Float64 opening output "
              "(0 = closed .. 1 = open).", read_only=True),
    ParamSpec("base_frame", _S, "panda_link0", "frame_id of the targets.", read_only=True),
    ParamSpec("instruction_topic", _S, "/instruction", "An instruction starts the expert on "
              "the current scene.", read_only=True),
]  # fmt: skip


def _sim_state(state: dict[str, Any]) -> SimState:
    """The expert's view of ``sim_arm``'s task state JSON (KeyError/TypeError/ValueError when
    a field is missing or malformed)."""
    return SimState(
        ee_position=tuple(float(v) for v in state["ee_position"]),  # type: ignore[arg-type]
        gripper_opening=float(state["gripper_opening"]),
        cubes={str(o["colour"]): tuple(float(v) for v in o["position"]) for o in state["objects"]},  # type: ignore[misc]
        cube_yaws={str(o["colour"]): float(o["yaw"]) for o in state["objects"]},
        cube_size_m=float(state["cube_size_m"]),
    )


class ExpertNode(Node):
    """Thin adapter over :class:`ScriptedExpert`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        p = declare_specs(self, EXPERT_PARAMS)
        self._frame: str = p["base_frame"]
        self._state: dict[str, Any] | None = None
        self._pose: Pose | None = None
        self._expert: ScriptedExpert | None = None
        self._seed: int | None = None
        self._step = 0
        self._armed_seed: int | None = None
        self.create_subscription(String, p["task_state_topic"], self._on_task_state, 10)
        self.create_subscription(String, p["instruction_topic"], self._on_instruction,
                                 INSTRUCTION_QOS)  # fmt: skip
        self.create_subscription(PoseStamped, p["pose_topic"], self._on_pose, POSE_QOS)
        self._target_pub = self.create_publisher(PoseStamped, p["target_pose_topic"], COMMAND_QOS)
        self._grip_pub = self.create_publisher(Float64, p["gripper_topic"], COMMAND_QOS)
        self._status_pub = self.create_publisher(String, "~/status", 10)
        self.create_timer(1.0 / p["control_hz"], self._tick)
        # Wakes the executor on the steady clock so Ctrl-C is handled even before /clock runs.
        self.create_timer(0.5, lambda: None, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _on_task_state(self, msg: String) -> None:
        try:
            state = json.loads(msg.data)
            if not isinstance(state, dict):
                raise ValueError(f"a JSON {type(state).__name__}, not an object")
            Scene.from_dict(state)
            _sim_state(state)
        except (ValueError, KeyError, TypeError) as exc:  # bad input must not stop the node
            self.get_logger().warning(
                f"malformed task_state ignored ({type(exc).__name__}: {exc})",
                throttle_duration_sec=2.0,
            )
            return
        self._state = state

    def _on_instruction(self, msg: String) -> None:
        del msg  # the scene's own instruction is what the expert solves
        if self._state is not None:
            self._armed_seed = self._state.get("seed")
            self._expert = None  # restart from the measured pose

    def _on_pose(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        try:
            self._pose = Pose(np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]))
        except ValueError:
            self.get_logger().warning("bad measured pose ignored", throttle_duration_sec=2.0)

    def _tick(self) -> None:
        state, pose = self._state, self._pose
        if state is None or pose is None:
            return
        if state.get("seed") != self._armed_seed:
            idle = {"seed": state.get("seed"), "phase": "waiting for an instruction",
                    "done": False, "step": 0, "armed": False}  # fmt: skip
            self._status_pub.publish(String(data=json.dumps(idle)))
            return
        if state.get("seed") != self._seed or self._expert is None:
            self._seed = state.get("seed")
            self._expert = ScriptedExpert(Scene.from_dict(state), pose)
            self._step = 0
        cmd = self._expert.step(_sim_state(state), pose.orientation)
        self._step += 1
        if not cmd.done:
            self._publish(cmd.target, cmd.gripper_opening)
        status = {"seed": self._seed, "phase": cmd.phase, "done": cmd.done, "step": self._step,
                  "armed": True, "succeeded": bool(state.get("succeeded"))}  # fmt: skip
        self._status_pub.publish(String(data=json.dumps(status)))

    def _publish(self, target: Pose, gripper: float) -> None:
        msg = PoseStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self._frame
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (
            float(v) for v in target.position
        )
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in target.orientation)
        self._target_pub.publish(msg)
        self._grip_pub.publish(Float64(data=float(gripper)))


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run openvla_ros expert_node``."""
    return run_node(ExpertNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
