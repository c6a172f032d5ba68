# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The recorder's parameters, declared once (node, ``record-demos`` and ``bag-to-dataset``).

Pure: the live node declares them as ROS parameters, the CLIs map their flags onto the same
names, so one topic mapping serves a live recording and a bag of the same run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from openvla_ros.data.labels import IdleFilter
from openvla_ros.data.recorder import RecorderConfig
from openvla_ros.data.robots import topic_map
from openvla_ros.errors import ConfigError
from openvla_ros.paramspec import ParamSpec, ParamType, validate_params

__all__ = ["RECORDER_PARAMS", "camera_type", "config_from_params"]

_S, _F, _B = ParamType.STR, ParamType.FLOAT, ParamType.BOOL

RECORDER_PARAMS: list[ParamSpec] = [
    ParamSpec("out", _S, "", "Dataset directory (created, or appended to); required.",
              read_only=True),
    ParamSpec("robot", _S, "sim", "Robot: sim, franka, widowx (config/<robot>.yaml: base frame "
              "and gripper convention; recorder topic preset), or a params .yaml path.",
              read_only=True),
    ParamSpec("camera_topic", _S, "", "Camera Image (or CompressedImage if the name ends in "
              "/compressed); empty: the robot preset.", read_only=True),
    ParamSpec("pose_topic", _S, "", "Measured end-effector PoseStamped in the base frame; "
              "empty: the robot preset.", read_only=True),
    ParamSpec("gripper_topic", _S, "", "Finger JointState; empty: the robot preset; 'none': "
              "no gripper feedback (labels say open).", read_only=True),
    ParamSpec("instruction_topic", _S, "/instruction", "std_msgs/String; each message starts "
              "an episode.", read_only=True),
    ParamSpec("control_hz", _F, 5.0, "Sampling / label rate (Bridge: 5 Hz).", unit="Hz",
              min=0.5, max=50.0, read_only=True),
    ParamSpec("stale_warn_factor", _F, 2.0, "Count a stream as stale past this many sample "
              "intervals.", min=1.0, max=100.0, read_only=True),
    ParamSpec("stale_drop_factor", _F, 4.0, "Drop the frame when a stream is staler than this "
              "many sample intervals.", min=1.0, max=100.0, read_only=True),
    ParamSpec("filter_idle", _B, True, "Drop frames without motion or gripper change "
              "(counted per episode).", read_only=True),
    ParamSpec("unnorm_key", _S, "", "dataset_statistics.json key; empty: the directory name.",
              read_only=True),
]  # fmt: skip


def camera_type(camera_topic: str) -> str:
    """The camera's message type from its topic name (image_transport's convention)."""
    if camera_topic.rstrip("/").endswith("/compressed"):
        return "sensor_msgs/msg/CompressedImage"
    return "sensor_msgs/msg/Image"


def config_from_params(values: Mapping[str, Any]) -> tuple[RecorderConfig, dict[str, str]]:
    """A :class:`RecorderConfig` and ``{topic: message type}`` from parameter values.

    Values are checked against :data:`RECORDER_PARAMS` (types, ranges; absent names take the
    spec's default), so the CLIs get the same limits as the node's declared parameters.

    Raises:
        ConfigError: an unknown parameter or a value out of its range, no ``out``, an unknown
            robot, or a bad profile.
    """
    from openvla_ros.bag.evaluate import load_robot_profile
    from openvla_ros.errors import BagError

    values = validate_params(RECORDER_PARAMS, values)
    if not values.get("out"):
        raise ConfigError("the recorder needs a dataset directory: set out (--out DIR)")
    robot = str(values.get("robot") or "sim")
    try:
        profile = load_robot_profile(robot)
    except BagError as exc:
        raise ConfigError(str(exc)) from exc
    topics = topic_map(robot)
    overrides: dict[str, Any] = {}
    for name in ("camera", "pose", "gripper", "instruction"):
        value = str(values.get(f"{name}_topic") or "")
        if value:
            overrides[name] = "" if value == "none" else value
    topics = replace(topics, **overrides)
    warn = float(values["stale_warn_factor"])
    drop = float(values["stale_drop_factor"])
    if warn > drop:
        raise ConfigError(f"stale_warn_factor {warn} must not exceed stale_drop_factor {drop}")
    config = RecorderConfig(
        out=Path(str(values["out"])),
        topics=topics,
        profile=profile,
        control_hz=float(values["control_hz"]),
        warn_factor=warn,
        drop_factor=drop,
        filter_idle=bool(values["filter_idle"]),
        idle=IdleFilter(),
        unnorm_key=str(values.get("unnorm_key") or ""),
        robot_type=profile.name,
    )
    types = {
        topics.camera: camera_type(topics.camera),
        topics.pose: "geometry_msgs/msg/PoseStamped",
        topics.instruction: "std_msgs/msg/String",
    }
    if topics.gripper:
        types[topics.gripper] = "sensor_msgs/msg/JointState"
    return config, types
