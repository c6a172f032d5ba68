# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``openvla_policy`` played by the sim's scripted expert: the ceiling of ``eval-sim``.

It takes the policy node's place in the graph (same node name, ``~/enable`` and ``~/reset``
services, ``DeltaAction`` on ``/openvla/delta_action``), but reads the simulator's privileged
``/sim_arm/task_state`` instead of the camera: the cube poses go into
:class:`openvla_ros.sim.expert.ScriptedExpert` and the difference between its consecutive
targets is published as the delta action. The executor, its safety filter and the simulated
arm are the ones a model runs through, so the expert's success rate through the harness is
what the graph allows at best (clipping, latency, tracking), not what the planner does
in-process.

Each action is stamped with the newest camera frame's stamp (the executor's action-age
watchdog measures from it, as for a model). Non-blocking only waits ``1 / control_hz``
between actions; blocking waits for the executor's ``action_done`` as well.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from openvla_ros.control.se3 import Pose, delta_between
from openvla_ros.msg import DeltaAction, ExecutorState
from openvla_ros.nodes.common import (
    ACTION_QOS,
    INSTRUCTION_QOS,
    POSE_QOS,
    SENSOR_QOS,
    STATE_QOS,
    declare_specs,
    guarded,
    run_node,
    stamp_to_ns,
)
from openvla_ros.paramspec import ParamSpec, ParamType
from openvla_ros.sim.evaluate import EvalError, parse_task_state
from openvla_ros.sim.expert import ScriptedExpert
from openvla_ros.sim.panda_sim import BASE_FRAME
from openvla_ros.sim.tasks import CubeSpec, Scene, SimState

NODE_NAME = "openvla_policy"

_B, _F, _S = ParamType.BOOL, ParamType.FLOAT, ParamType.STR

#: The node's parameters (a subset of the policy node's names, same meaning).
SIM_EXPERT_PARAMS: list[ParamSpec] = [
    ParamSpec("control_hz", _F, 5.0, "Action rate (non-blocking; blocking waits for done too).",
              unit="Hz", min=0.1, max=50.0, read_only=True),
    ParamSpec("mode", _S, "non_blocking", "non_blocking or blocking (must equal the "
              "executor's).", choices=("non_blocking", "blocking"), read_only=True),
    ParamSpec("base_frame", _S, BASE_FRAME, "frame_id of the actions.", read_only=True),
    ParamSpec("task_state_topic", _S, "/sim_arm/task_state",
              "The simulator's privileged task state (JSON).", read_only=True),
    ParamSpec("camera_topic", _S, "/camera/image_raw", "Camera topic (stamps only).",
              read_only=True),
    ParamSpec("pose_topic", _S, "/openvla/ee_pose", "Measured end-effector pose.",
              read_only=True),
    ParamSpec("action_topic", _S, "/openvla/delta_action", "DeltaAction output.",
              read_only=True),
    ParamSpec("state_topic", _S, "/openvla/executor_state", "Executor state (blocking mode).",
              read_only=True),
    ParamSpec("instruction_topic", _S, "/instruction", "Instruction input (echoed in the "
              "actions; the expert follows the scene's target).", read_only=True),
    ParamSpec("enable_on_start", _B, False, "Start enabled.", read_only=True),
]  # fmt: skip


def scene_from_state(data: dict[str, Any]) -> Scene:
    """The :class:`Scene` a ``task_state`` / ``reset_scene`` JSON describes."""
    cubes = tuple(
        CubeSpec(str(c["colour"]), tuple(float(v) for v in c["position"]), float(c["yaw"]))  # type: ignore[arg-type]
        for c in data["cubes"]
    )
    return Scene(
        task=str(data["task"]),
        seed=int(data["seed"]),
        cubes=cubes,
        target_colour=str(data["target_colour"]),
        instruction=str(data["instruction"]),
        cube_size_m=float(data["cube_size_m"]),
    )


def sim_state_from_json(data: dict[str, Any]) -> SimState:
    """The detectors' :class:`SimState` from a ``task_state`` JSON (current object poses)."""
    objects = data.get("objects", data["cubes"])
    return SimState(
        ee_position=tuple(float(v) for v in data["ee_position"]),  # type: ignore[arg-type]
        gripper_opening=float(data.get("gripper_opening", 1.0)),
        cubes={str(o["colour"]): tuple(float(v) for v in o["position"]) for o in objects},  # type: ignore[misc]
        cube_yaws={str(o["colour"]): float(o.get("yaw", 0.0)) for o in objects},
        cube_size_m=float(data["cube_size_m"]),
    )


class SimExpertPolicyNode(Node):
    """The scripted expert behind the policy node's interface (see module doc)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        v = declare_specs(self, SIM_EXPERT_PARAMS)
        self._frame = str(v["base_frame"])
        self._blocking = v["mode"] == "blocking"
        self._enabled = bool(v["enable_on_start"])
        self._episode = 0
        self._step = 0
        self._expert: ScriptedExpert | None = None
        self._expert_key: tuple[int, str] = (-1, "")
        self._last_target: Pose | None = None
        self._exec_target: Pose | None = None
        self._state: dict[str, Any] | None = None
        self._pose: Pose | None = None
        self._image_ns = 0
        self._instruction = ""
        self._done_step: int | None = None
        self._pub = self.create_publisher(DeltaAction, v["action_topic"], ACTION_QOS)
        # Guarded: a malformed message or a failing plan is logged, the node lives on.
        g = functools.partial(guarded, self)
        self.create_subscription(String, v["task_state_topic"], g(self._on_task_state), 10)
        self.create_subscription(Image, v["camera_topic"], g(self._on_image), SENSOR_QOS)
        self.create_subscription(PoseStamped, v["pose_topic"], g(self._on_pose), POSE_QOS)
        self.create_subscription(ExecutorState, v["state_topic"], g(self._on_exec), STATE_QOS)
        self.create_subscription(String, v["instruction_topic"], g(self._on_instruction),
                                 INSTRUCTION_QOS)  # fmt: skip
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_timer(1.0 / float(v["control_hz"]), g(self._tick))
        self.get_logger().info("sim expert in the policy's place: privileged task_state in")

    def _on_task_state(self, msg: String) -> None:
        try:
            state = parse_task_state(msg.data)
        except EvalError as exc:
            self.get_logger().warning(f"{exc}: ignored", throttle_duration_sec=1.0)
            return
        if "target_colour" in state:
            self._state = state

    def _on_image(self, msg: Image) -> None:
        self._image_ns = stamp_to_ns(msg.header.stamp)

    def _on_pose(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        self._pose = Pose(np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]))

    def _on_exec(self, msg: ExecutorState) -> None:
        if int(msg.episode_id) != self._episode:
            return
        if msg.action_done:
            self._done_step = int(msg.step)
        p, o = msg.target_pose.position, msg.target_pose.orientation
        if msg.enabled and any(v != 0.0 for v in (o.x, o.y, o.z, o.w)):
            # The executor's own target: deltas are sent relative to it, so a step the safety
            # filter clipped is made up for by the next one instead of offsetting the plan.
            self._exec_target = Pose(np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]))

    def _on_instruction(self, msg: String) -> None:
        if self._instruction and msg.data != self._instruction:
            # As the policy node: another instruction is a new episode (id + 1, step 0), which
            # the executor starts from the measured pose.
            self._new_episode()
        self._instruction = msg.data

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> Any:
        self._enabled = bool(request.data)
        response.success, response.message = True, "enabled" if self._enabled else "disabled"
        return response

    def _new_episode(self) -> None:
        self._episode += 1
        self._step = 0
        self._expert = None
        self._done_step = None
        self._exec_target = None

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        del request
        self._new_episode()
        response.success, response.message = True, f"episode {self._episode}"
        return response

    def _tick(self) -> None:
        if not (self._enabled and self._instruction and self._state and self._pose):
            return
        if self._blocking and self._step > 0 and self._done_step != self._step - 1:
            return  # the executor has not finished the previous action
        state = self._state
        key = (int(state["seed"]), str(state["target_colour"]))
        if self._expert is None or key != self._expert_key:
            # A new scene, episode or target (the sim follows /instruction): plan from the
            # measured pose, which the executor's target is seeded from at the first action.
            self._expert = ScriptedExpert(scene_from_state(state), self._pose)
            self._expert_key = key
            self._last_target = self._pose
        assert self._last_target is not None
        cmd = self._expert.step(sim_state_from_json(state), self._pose.orientation)
        base = self._exec_target if self._step > 0 and self._exec_target else self._last_target
        delta = delta_between(base, cmd.target)
        self._last_target = cmd.target
        msg = DeltaAction()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(self._image_ns, 10**9)
        msg.header.frame_id = self._frame
        msg.step = self._step
        msg.episode_id = self._episode
        msg.instruction = self._instruction
        msg.action = [*map(float, delta), float(cmd.gripper_opening)]
        msg.normalized_action = [0.0] * 7
        self._pub.publish(msg)
        self._step += 1


def main(args: list[str] | None = None) -> int:
    """Entry point: ``python -m openvla_ros.nodes.sim_expert_policy_node``."""
    return run_node(SimExpertPolicyNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
