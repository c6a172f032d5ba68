# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Decode the recorder's input messages by attribute (pure: no rclpy).

Works on rclpy messages and on ``rosbags`` messages alike (same field names), so the live
recorder and ``bag-to-dataset`` share one decoder. Every failure is a :class:`DatasetError`
that says what was wrong; the recorder counts it per topic and goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from openvla_ros.control.se3 import Pose
from openvla_ros.errors import DatasetError, OpenVLARosError
from openvla_ros.image_codec import SUPPORTED_ENCODINGS, compressed_to_rgb, image_to_rgb

__all__ = ["check_image_encoding", "decode_image", "decode_pose", "gripper_opening", "stamp_ns"]


def stamp_ns(msg: Any) -> int:
    """``header.stamp`` in integer nanoseconds."""
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def check_image_encoding(msg: Any) -> None:
    """Refuse a raw ``sensor_msgs/Image`` whose encoding the decoder cannot read (a depth,
    Bayer or YUV stream on the camera topic) when it arrives, not when the episode ends.

    Frames are decoded only when an episode is written; this cheap check makes a wrong camera
    stream show up at its first frame.

    Raises:
        DatasetError: naming the encoding and the supported ones.
    """
    encoding = getattr(msg, "encoding", None)
    if encoding is not None and str(encoding).lower() not in SUPPORTED_ENCODINGS:
        raise DatasetError(
            f"camera frame unusable: encoding {encoding!r} is not one of "
            f"{sorted(SUPPORTED_ENCODINGS)} (is --camera-topic the colour stream?)"
        )


def decode_image(msg: Any) -> npt.NDArray[np.uint8]:
    """HxWx3 uint8 RGB of a ``sensor_msgs/Image`` or ``CompressedImage``."""
    try:
        if hasattr(msg, "encoding"):
            return image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data)
        return compressed_to_rgb(msg.format, msg.data)
    except OpenVLARosError as exc:
        raise DatasetError(f"camera frame unusable: {exc}") from exc


def decode_pose(msg: Any, base_frame: str) -> Pose:
    """The pose of a ``geometry_msgs/PoseStamped`` in ``base_frame``.

    Raises:
        DatasetError: another frame (the recorder does not transform: labels must be in the
            executor's base frame), or non-finite / non-unit values.
    """
    frame = str(msg.header.frame_id)
    if frame not in ("", base_frame):
        raise DatasetError(
            f"pose frame_id {frame!r} is not the robot base frame {base_frame!r}: publish the "
            "end-effector pose in the base frame (labels are base-frame deltas) or set the "
            "recorder's base_frame"
        )
    p, o = msg.pose.position, msg.pose.orientation
    try:
        return Pose(np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]))
    except ValueError as exc:
        raise DatasetError(f"pose unusable: {exc}") from exc


def gripper_opening(
    msg: Any, joints: Sequence[str], open_position: float, closed_position: float = 0.0
) -> float:
    """Gripper opening 0 = closed .. 1 = open from finger joints of a ``sensor_msgs/JointState``.

    The mean of the named joints' positions mapped linearly from ``closed_position`` to
    ``open_position`` (Franka: 0 .. 0.04 m per finger) and clamped into [0, 1].

    Raises:
        DatasetError: a named joint is missing or its position non-finite.
    """
    names = list(msg.name)
    positions = list(msg.position)
    values = []
    for j in joints:
        if j not in names or names.index(j) >= len(positions):
            raise DatasetError(
                f"joint state has no position for gripper joint {j!r} (joints: {names}); set "
                "the recorder's gripper_joints"
            )
        values.append(float(positions[names.index(j)]))
    mean = float(np.mean(values))
    if not np.isfinite(mean):
        raise DatasetError(f"gripper joint positions are not finite: {values}")
    span = open_position - closed_position
    return float(np.clip((mean - closed_position) / span, 0.0, 1.0))
