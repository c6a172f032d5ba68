# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Which topics the recorder reads on each supported robot (pure; one place).

The robot's frames and gripper convention come from its profile (``config/<robot>.yaml``);
this table adds what only the recorder needs: the camera, end-effector pose and finger
joint-state topics and the finger travel. Every entry can be overridden per run
(``record-demos --camera-topic ...``, node parameters), e.g. for a remapped camera.
"""

from __future__ import annotations

from dataclasses import dataclass

from openvla_ros.errors import ConfigError

__all__ = ["RECORDER_TOPICS", "TopicMap", "topic_map"]


@dataclass(frozen=True)
class TopicMap:
    """Recorder inputs. ``gripper`` empty: no gripper feedback (labels say open)."""

    camera: str = "/camera/image_raw"
    pose: str = "/openvla/ee_pose"
    gripper: str = "/joint_states"
    instruction: str = "/instruction"
    gripper_joints: tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
    gripper_open_position: float = 0.04  #: finger joint position when fully open (m)
    gripper_closed_position: float = 0.0  #: finger joint position when fully closed (m)


RECORDER_TOPICS: dict[str, TopicMap] = {
    # The simulated Panda (sim_arm): everything it publishes.
    "sim": TopicMap(),
    # franka_ros2: franka_robot_state_broadcaster's TCP pose (in fr3_link0) and the gripper
    # node's finger joint states; a RealSense on /camera/color/image_raw.
    "franka": TopicMap(
        camera="/camera/color/image_raw",
        pose="/franka_robot_state_broadcaster/current_pose",
        gripper="/franka_gripper/joint_states",
        gripper_joints=("fr3_finger_joint1", "fr3_finger_joint2"),
        gripper_open_position=0.04,
    ),
    # interbotix_xsarm_control (wx250s): finger joints in the arm's joint states (0.015 m
    # closed .. 0.037 m open each); the EE pose from this package's widowx_bridge (FK).
    "widowx": TopicMap(
        camera="/camera/color/image_raw",
        pose="/openvla/ee_pose",
        gripper="/wx250s/joint_states",
        gripper_joints=("left_finger", "right_finger"),
        gripper_open_position=0.037,
        gripper_closed_position=0.015,
    ),
}


def topic_map(robot: str) -> TopicMap:
    """The recorder topics of ``robot`` (sim, franka, widowx); defaults for other profiles."""
    if robot in RECORDER_TOPICS:
        return RECORDER_TOPICS[robot]
    if robot.endswith((".yaml", ".yml")):
        return TopicMap()
    raise ConfigError(f"no recorder topics for robot {robot!r}; use one of {list(RECORDER_TOPICS)}")
