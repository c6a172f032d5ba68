# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``sim_arm``: the simulated Franka Panda as a ROS 2 node (thin adapter over :class:`PandaSim`).

Commands in (the executor's outputs): ``/openvla/target_pose`` (PoseStamped),
``/openvla/target_twist`` (TwistStamped), ``/openvla/gripper_command`` (Float64, 0 = closed ..
1 = open). Observations out: ``/camera/image_raw`` (rgb8 Image, sensor-data QoS) at
``camera_hz``, ``/openvla/ee_pose`` (PoseStamped, best effort) and ``/joint_states``
(JointState: 7 arm joints + 2 fingers, as franka_ros2 names them) at ``pose_hz``. Service
``~/reset`` puts the arm home and the cubes back.

Tasks (``task`` parameter, :mod:`openvla_ros.sim.tasks`): the scene is drawn from
``scene_seed``; ``~/reset_scene`` (Trigger) puts the arm home and draws the next seed's scene,
answering JSON ``{task, seed, instruction, ...}``; ``~/task_state`` (String, JSON) reports the
privileged state at the camera rate: objects, success (now and latched since the last reset),
the reached colour and the step, so an eval harness scores from simulator state.

``real_time:=true`` steps the physics by the wall time elapsed; ``false`` steps as fast as the
CPU allows and publishes ``/clock`` with the simulated time (launch the other nodes with
``use_sim_time:=true`` then). Bad commands (non-finite, wrong frame) are rejected with a
counted, throttled warning; nothing a publisher sends can stop the node.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

from openvla_ros.image_codec import rgb_to_image_fields
from openvla_ros.nodes.common import (
    COMMAND_QOS,
    INSTRUCTION_LATCHED_QOS,
    INSTRUCTION_QOS,
    POSE_QOS,
    SENSOR_QOS,
    changed_values,
    declare_specs,
    guarded,
    ns_to_stamp,
    quiet_incompatible_qos,
    run_node,
)
from openvla_ros.paramspec import ParamSpec, ParamType
from openvla_ros.sim.panda_sim import (
    ARM_JOINT_NAMES,
    BASE_FRAME,
    FINGER_JOINT_NAMES,
    PandaSim,
    SimConfig,
    SimError,
)
from openvla_ros.sim.tasks import (
    Scene,
    instructed_colour,
    is_success,
    reached_object,
    sample_scene,
    task_names,
)

NODE_NAME = "sim_arm"

_B, _I, _F, _S = ParamType.BOOL, ParamType.INT, ParamType.FLOAT, ParamType.STR

#: The node's parameters, declared once (type, default, unit, range, description).
SIM_ARM_PARAMS: list[ParamSpec] = [
    ParamSpec("seed", _I, 0, "Seeds the object placement (same seed, same scene).",
              min=0, max=2**31 - 1, read_only=True),
    ParamSpec("num_objects", _I, 3, "Coloured cubes on the table.", min=0, max=4,
              read_only=True),
    ParamSpec("physics_hz", _F, 240.0, "Physics substep rate (PyBullet is tuned for 240).",
              unit="Hz", min=60.0, max=2000.0, read_only=True),
    ParamSpec("pose_hz", _F, 50.0, "End-effector pose publishing rate (simulated time).",
              unit="Hz", min=1.0, max=500.0, read_only=True),
    ParamSpec("camera_hz", _F, 10.0,
              "Camera frame rate (simulated time); each 224x224 frame costs ~30 ms of CPU.",
              unit="Hz", min=0.5, max=60.0, read_only=True),
    ParamSpec("image_width", _I, 224, "Camera image width (OpenVLA's input is 224).",
              unit="px", min=16, max=2048, read_only=True),
    ParamSpec("image_height", _I, 224, "Camera image height.", unit="px", min=16, max=2048,
              read_only=True),
    ParamSpec("real_time", _B, True,
              "true: step physics by elapsed wall time; false: as fast as possible, publishing "
              "/clock (use use_sim_time:=true for the other nodes).", read_only=True),
    ParamSpec("base_frame", _S, BASE_FRAME,
              "Frame of poses in and out; commands in other frames are rejected ('' is taken "
              "as this frame).", read_only=True),
    ParamSpec("camera_frame", _S, "sim_camera_optical_frame", "frame_id of camera images.",
              read_only=True),
    ParamSpec("task", _S, "",
              "Task scene (openvla_ros.sim.tasks): reach_cube, reach_colour, pick_colour; '' "
              "keeps the plain num_objects scene placed by seed.",
              choices=("", *task_names()), read_only=True),
    ParamSpec("scene_seed", _I, 0, "Seed of the first task scene; each ~/reset_scene draws "
              "the next seed's scene.", min=0, max=2**31 - 1, read_only=True),
    ParamSpec("cube_size_m", _F, SimConfig().cube_size_m, "Cube edge length.", unit="m",
              min=0.01, max=0.07, read_only=True),
    ParamSpec("follow_instruction", _B, True,
              "Colour tasks: an instruction on /instruction naming another cube of the scene "
              "(the task's wording) makes that cube the target; success and the latched "
              "success are then judged for it. Other texts leave the target as it is.",
              read_only=True),
    ParamSpec("twist_timeout_s", _F, 0.5,
              "A twist older than this is replaced by zero, as MoveIt Servo halts without a "
              "command stream (0 disables).", unit="s", min=0.0, max=10.0),
]  # fmt: skip

_SPECS = {s.name: s for s in SIM_ARM_PARAMS}


class SimArmNode(Node):
    """The simulated Panda: command subscribers, observation publishers, a stepping timer."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        # A bad params file raises ConfigError here: no half-configured simulator runs.
        values = declare_specs(self, SIM_ARM_PARAMS)
        self._params = values
        self.add_post_set_parameters_callback(self._on_parameters_set)

        config = SimConfig(
            seed=values["seed"],
            physics_hz=values["physics_hz"],
            num_objects=values["num_objects"],
            cube_size_m=values["cube_size_m"],
        )
        self._task: str = values["task"]
        self._scene_seed: int = values["scene_seed"]
        self._scene: Scene | None = None
        if self._task:
            self._scene = sample_scene(self._task, self._scene_seed, config.cube_size_m)
        self.sim = PandaSim(config, scene=self._scene)
        self._succeeded = False
        self._task_step = 0
        self._base_frame: str = values["base_frame"]
        self._camera_frame: str = values["camera_frame"]
        self._width: int = values["image_width"]
        self._height: int = values["image_height"]
        self._real_time: bool = values["real_time"]
        self._pose_period = 1.0 / values["pose_hz"]
        self._camera_period = 1.0 / values["camera_hz"]
        self._next_camera_s = 0.0
        self._twist_stamp_s: float | None = None
        self.rejected: Counter[str] = Counter()

        # The topic contract's QoS (docs/interfaces.md): the pose is best effort, as
        # franka_ros2 publishes it, so the executor's best-effort subscriber matches either.
        self.create_subscription(PoseStamped, "/openvla/target_pose", self._on_pose, COMMAND_QOS)
        self.create_subscription(TwistStamped, "/openvla/target_twist", self._on_twist, COMMAND_QOS)
        self.create_subscription(Float64, "/openvla/gripper_command", self._on_gripper, COMMAND_QOS)
        self._pose_pub = self.create_publisher(PoseStamped, "/openvla/ee_pose", POSE_QOS)
        self._image_pub = self.create_publisher(Image, "/camera/image_raw", SENSOR_QOS)
        self._joints_pub = self.create_publisher(JointState, "/joint_states", POSE_QOS)
        self._task_pub = self.create_publisher(String, "~/task_state", 10)
        self._clock_pub = None if self._real_time else self.create_publisher(Clock, "/clock", 10)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(Trigger, "~/reset_scene", self._on_reset_scene)
        if self._task and values["follow_instruction"]:
            # The policy node's two /instruction subscriptions (docs/interfaces.md), so the
            # sim hears every instruction the policy hears.
            for qos in (INSTRUCTION_QOS, INSTRUCTION_LATCHED_QOS):
                self.create_subscription(
                    String, "/instruction", guarded(self, self._on_instruction), qos,
                    event_callbacks=quiet_incompatible_qos(),
                )  # fmt: skip

        self._last_wall = time.monotonic()
        # Real time: tick at the pose rate and step by the wall time elapsed (a slow render
        # makes the next step longer, not the clock slower). Fast: tick back to back, each
        # tick one pose period of simulated time.
        period = self._pose_period if self._real_time else 0.001
        self._timer = self.create_timer(period, self._tick)
        self.get_logger().info(
            f"sim_arm ready: seed {values['seed']}, {'real time' if self._real_time else 'fast'}"
            f", camera {values['camera_hz']:g} Hz {self._width}x{self._height}, pose "
            f"{values['pose_hz']:g} Hz, frame {self._base_frame}"
        )

    # --- parameters -------------------------------------------------------------------
    def _on_parameters_set(self, params: list[Parameter]) -> None:
        # Validated by declare_specs' set-time callback; only twist_timeout_s is writable.
        self._params.update(changed_values(SIM_ARM_PARAMS, params))

    # --- commands ---------------------------------------------------------------------
    def _reject(self, kind: str, reason: str) -> None:
        self.rejected[kind] += 1
        self.get_logger().warning(
            f"rejected {kind} command #{self.rejected[kind]}: {reason}; holding the last target",
            throttle_duration_sec=1.0,
        )

    def _frame_ok(self, kind: str, frame_id: str) -> bool:
        if frame_id in ("", self._base_frame):
            return True
        self._reject(kind, f"frame_id {frame_id!r} is not the base frame {self._base_frame!r}")
        return False

    def _on_pose(self, msg: PoseStamped) -> None:
        if not self._frame_ok("pose", msg.header.frame_id):
            return
        p, o = msg.pose.position, msg.pose.orientation
        quat = (o.x, o.y, o.z, o.w)
        if all(math.isfinite(v) for v in quat) and abs(math.hypot(*quat) - 1.0) > 0.01:
            self._reject("pose", f"quaternion {quat} is not unit length")
            return
        try:
            self.sim.set_target_pose((p.x, p.y, p.z), quat)
        except SimError as exc:
            self._reject("pose", str(exc))
            return
        # A pose command takes over from a twist stream (as a controller switch would).
        self.sim.set_twist((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
        self._twist_stamp_s = None

    def _on_twist(self, msg: TwistStamped) -> None:
        if not self._frame_ok("twist", msg.header.frame_id):
            return
        lin, ang = msg.twist.linear, msg.twist.angular
        try:
            self.sim.set_twist((lin.x, lin.y, lin.z), (ang.x, ang.y, ang.z))
        except SimError as exc:
            self._reject("twist", str(exc))
            return
        self._twist_stamp_s = self.sim.time_s

    def _on_gripper(self, msg: Float64) -> None:
        value = float(msg.data)
        if not math.isfinite(value):
            self._reject("gripper", f"opening {value} is not finite")
            return
        if not -0.01 <= value <= 1.01:
            self._reject("gripper", f"opening {value:g} is outside [0, 1]; clamped")
        self.sim.set_gripper(value)

    def _on_instruction(self, msg: String) -> None:
        scene = self._scene
        colour = instructed_colour(self._task, msg.data)
        if scene is None or colour is None or colour == scene.target_colour:
            return
        self._scene = scene.with_target(colour)
        self._succeeded = False
        self.get_logger().info(
            f"instruction names the {colour} cube: it is the target now (was {scene.target_colour})"
        )

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        del request
        self.sim.reset()
        self._twist_stamp_s = None
        response.success = True
        response.message = "arm home, gripper open, cubes back at their seeded places"
        self._succeeded, self._task_step = False, 0
        return response

    def _on_reset_scene(
        self, request: Trigger.Request, response: Trigger.Response
    ) -> Trigger.Response:
        del request
        if not self._task:
            response.success = False
            response.message = json.dumps(
                {"error": "no task: start sim_arm with task:=reach_cube|reach_colour|pick_colour"}
            )
            return response
        self._scene_seed += 1
        self._scene = sample_scene(self._task, self._scene_seed, self.sim.config.cube_size_m)
        self.sim.set_scene(self._scene)
        self._twist_stamp_s = None
        self._succeeded, self._task_step = False, 0
        response.success = True
        response.message = json.dumps(self._scene.to_dict())
        self.get_logger().info(f"new scene: seed {self._scene_seed}: {self._scene.instruction}")
        return response

    # --- stepping ---------------------------------------------------------------------
    def _now_stamp(self) -> TimeMsg:
        if self._real_time:
            return self.get_clock().now().to_msg()
        return ns_to_stamp(round(self.sim.time_s * 1e9))

    def _tick(self) -> None:
        try:
            self._step_and_publish()
        except Exception as exc:  # the simulator must outlive any one bad tick
            self.get_logger().error(f"simulation tick failed: {exc!r}", throttle_duration_sec=1.0)

    def _step_and_publish(self) -> None:
        now = time.monotonic()
        # Real time: cap the catch-up so a stalled process (debugger, swap) does not teleport
        # the arm. Fast: one pose period of simulated time per tick.
        dt = min(now - self._last_wall, 0.25) if self._real_time else self._pose_period
        self._last_wall = now
        timeout = self._params["twist_timeout_s"]
        if (
            self._twist_stamp_s is not None
            and timeout > 0.0
            and self.sim.time_s - self._twist_stamp_s > timeout
        ):
            self.sim.set_twist((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
            self._twist_stamp_s = None
        self.sim.step(dt)
        if self._clock_pub is not None:
            self._clock_pub.publish(Clock(clock=ns_to_stamp(round(self.sim.time_s * 1e9))))
        self._publish_pose()
        self._publish_joints()
        if self.sim.time_s + 1e-9 >= self._next_camera_s:
            # Schedule from the previous due time so the average rate is exact.
            self._next_camera_s = max(
                self._next_camera_s + self._camera_period, self.sim.time_s - self._camera_period
            )
            self._publish_image()
            self._publish_task_state()

    def _publish_pose(self) -> None:
        pos, quat = self.sim.ee_pose()
        msg = PoseStamped()
        msg.header.stamp = self._now_stamp()
        msg.header.frame_id = self._base_frame
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pos)
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in quat)
        self._pose_pub.publish(msg)

    def _publish_joints(self) -> None:
        msg = JointState()
        msg.header.stamp = self._now_stamp()
        msg.name = [*ARM_JOINT_NAMES, *FINGER_JOINT_NAMES]
        msg.position = [*map(float, self.sim.joint_positions()),
                        *map(float, self.sim.finger_positions())]  # fmt: skip
        self._joints_pub.publish(msg)

    def _publish_task_state(self) -> None:
        if self._scene is None:
            return
        state = self.sim.task_state()
        success = is_success(self._scene, state)
        self._succeeded = self._succeeded or success
        self._task_step += 1
        payload = {
            **self._scene.to_dict(),
            "stamp": self.sim.time_s,
            "step": self._task_step,
            "success": success,
            "succeeded": self._succeeded,
            "reached": reached_object(state),
            "ee_position": list(state.ee_position),
            "gripper_opening": state.gripper_opening,
            "objects": [
                {"colour": c, "position": list(p), "yaw": state.cube_yaws.get(c, 0.0)}
                for c, p in state.cubes.items()
            ],
        }
        self._task_pub.publish(String(data=json.dumps(payload)))

    def _publish_image(self) -> None:
        # The stamp is taken at render time: it is the capture time the policy's DeltaAction
        # carries and the executor's max_action_age watchdog measures against.
        stamp = self._now_stamp()
        rgb = self.sim.render(self._width, self._height)
        fields = rgb_to_image_fields(rgb)
        msg = Image()
        msg.header.stamp = stamp
        msg.header.frame_id = self._camera_frame
        msg.height = fields["height"]
        msg.width = fields["width"]
        msg.encoding = fields["encoding"]
        msg.is_bigendian = fields["is_bigendian"]
        msg.step = fields["step"]
        msg.data = fields["data"]
        self._image_pub.publish(msg)

    def destroy_node(self) -> None:
        """Report the rejection counts and release the physics client."""
        if self.rejected:
            self.get_logger().info(f"rejected commands: {dict(self.rejected)}")
        self.sim.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run openvla_ros sim_arm_node``."""
    return run_node(SimArmNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
