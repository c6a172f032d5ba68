# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""SE(3) helpers for OpenVLA's delta end-effector actions (numpy only).

Conventions (one place, used everywhere in ``openvla_ros.control``):

* A :class:`Pose` is a position float64[3] in metres and a unit quaternion
  float64[4] in **ROS order (x, y, z, w)**, both expressed in the robot base frame.
* Roll/pitch/yaw are **extrinsic XYZ** about the fixed base axes:
  ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (roll applied first, then pitch, then yaw,
  each about a base axis). This is the ``sxyz`` convention of ``tf.transformations``
  / ``transforms3d.euler`` that BridgeData's WidowX controller uses, and equals
  ``tf2``'s ``Quaternion.setRPY``.
* A delta action ``[dx, dy, dz, droll, dpitch, dyaw]`` composes onto the previous
  *target* pose: translation is added in the base frame; the rotation delta is a
  rotation about base axes applied at the end-effector, i.e. pre-multiplied:
  ``R_new = R_delta @ R_prev`` with the end-effector position unchanged by the
  rotation. Bridge computes its actions exactly this way (``R_delta = R_{t+1} R_t^T``
  from base-frame poses), so post-multiplying (an end-effector-frame delta) would
  rotate about the wrong axes whenever the gripper is not aligned with the base.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Pose",
    "apply_delta",
    "delta_between",
    "matrix_to_quat",
    "matrix_to_rpy",
    "pose_distance",
    "quat_angle",
    "quat_conjugate",
    "quat_multiply",
    "quat_normalize",
    "quat_to_matrix",
    "quat_to_rotvec",
    "quat_to_rpy",
    "relative_rotvec",
    "rotate_by_rotvec",
    "rotvec_to_quat",
    "rpy_to_matrix",
    "rpy_to_quat",
    "tilt_and_yaw",
]

FloatArray = npt.NDArray[np.float64]

#: A quaternion whose norm is further than this from 1 is treated as corrupt rather
#: than silently normalised (a zero quaternion from an unset message, for instance).
QUAT_NORM_TOLERANCE = 0.1


def _vec(values: Sequence[float] | FloatArray, n: int, what: str) -> FloatArray:
    arr = np.array(values, dtype=np.float64).reshape(-1)
    if arr.shape != (n,):
        raise ValueError(f"{what} needs {n} values, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} has non-finite values: {arr.tolist()}")
    return arr


def quat_normalize(q: Sequence[float] | FloatArray) -> FloatArray:
    """Return ``q`` (x, y, z, w) scaled to unit norm.

    Raises:
        ValueError: ``q`` is not 4 finite values or its norm is (near) zero.
    """
    arr = _vec(q, 4, "quaternion")
    norm = float(np.linalg.norm(arr))
    if norm < 1e-9:
        raise ValueError("quaternion has zero norm (an unset orientation?)")
    return arr / norm


def quat_multiply(a: FloatArray, b: FloatArray) -> FloatArray:
    """Hamilton product ``a ⊗ b`` of (x, y, z, w) quaternions (rotation ``b`` first, then ``a``)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        dtype=np.float64,
    )


def quat_conjugate(q: FloatArray) -> FloatArray:
    """The inverse rotation of a unit quaternion."""
    return np.array([-q[0], -q[1], -q[2], q[3]], dtype=np.float64)


def rpy_to_quat(roll: float, pitch: float, yaw: float) -> FloatArray:
    """Unit quaternion (x, y, z, w) of extrinsic XYZ angles: ``Rz(yaw) Ry(pitch) Rx(roll)``."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array(
        [
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
            cr * cp * cy + sr * sp * sy,
        ],
        dtype=np.float64,
    )


def rpy_to_matrix(roll: float, pitch: float, yaw: float) -> FloatArray:
    """Rotation matrix ``Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (extrinsic XYZ about base axes)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ],
        dtype=np.float64,
    )


def matrix_to_rpy(r: FloatArray) -> FloatArray:
    """Extrinsic XYZ angles (roll, pitch, yaw) of a rotation matrix; pitch in [-pi/2, pi/2].

    Unique for |pitch| < pi/2; at gimbal lock roll is set to 0 and yaw carries the rest.
    """
    sp = -float(r[2, 0])
    sp = max(-1.0, min(1.0, sp))
    pitch = math.asin(sp)
    if abs(sp) < 1.0 - 1e-12:
        roll = math.atan2(float(r[2, 1]), float(r[2, 2]))
        yaw = math.atan2(float(r[1, 0]), float(r[0, 0]))
    else:
        roll = 0.0
        yaw = math.atan2(-float(r[0, 1]), float(r[1, 1]))
    return np.array([roll, pitch, yaw], dtype=np.float64)


def quat_to_matrix(q: FloatArray) -> FloatArray:
    """Rotation matrix of a unit quaternion (x, y, z, w)."""
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ],
        dtype=np.float64,
    )


def matrix_to_quat(r: FloatArray) -> FloatArray:
    """Unit quaternion (x, y, z, w) of a rotation matrix, w >= 0 (Shepperd's method)."""
    m = np.asarray(r, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    # Pick the largest of w, x, y, z to divide by: numerically stable for every rotation.
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    out = np.array(q, dtype=np.float64)
    if out[3] < 0:
        out = -out
    return out / np.linalg.norm(out)


def quat_to_rpy(q: FloatArray) -> FloatArray:
    """Extrinsic XYZ angles (roll, pitch, yaw) of a unit quaternion (x, y, z, w)."""
    return matrix_to_rpy(quat_to_matrix(q))


def quat_angle(a: FloatArray, b: FloatArray) -> float:
    """Geodesic angle in rad, in [0, pi], between two unit-quaternion rotations."""
    # |<a, b>| handles the double cover (q and -q are the same rotation).
    d = abs(float(np.dot(a, b)))
    return 2.0 * math.acos(min(1.0, d))


def quat_to_rotvec(q: FloatArray) -> FloatArray:
    """Rotation vector (axis * angle, rad) of a unit quaternion, angle in [0, pi]."""
    qq = q if q[3] >= 0 else -q
    s = float(np.linalg.norm(qq[:3]))
    if s < 1e-12:
        return 2.0 * qq[:3]  # small-angle limit: angle * axis ~= 2 * vector part
    angle = 2.0 * math.atan2(s, float(qq[3]))
    return qq[:3] * (angle / s)


def rotvec_to_quat(rotvec: Sequence[float] | FloatArray) -> FloatArray:
    """Unit quaternion (x, y, z, w) of a rotation vector (axis * angle, rad)."""
    v = _vec(rotvec, 3, "rotation vector")
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        q = np.array([0.5 * v[0], 0.5 * v[1], 0.5 * v[2], 1.0])
        return q / np.linalg.norm(q)
    s = math.sin(angle / 2.0) / angle
    return np.array([v[0] * s, v[1] * s, v[2] * s, math.cos(angle / 2.0)])


def relative_rotvec(previous: FloatArray, new: FloatArray) -> FloatArray:
    """Rotation vector (base frame) of ``R_new R_prev^T``: what a twist's angular part
    integrates to when it turns ``previous`` into ``new``."""
    q = quat_multiply(new, quat_conjugate(previous))
    return quat_to_rotvec(q / np.linalg.norm(q))


def rotate_by_rotvec(q: FloatArray, rotvec: Sequence[float] | FloatArray) -> FloatArray:
    """``exp(rotvec) * q``: ``q`` rotated about the base axes (unit quaternion)."""
    out = quat_multiply(rotvec_to_quat(rotvec), q)
    return out / np.linalg.norm(out)


def _rotate(q: Sequence[float] | FloatArray, v: Sequence[float]) -> tuple[float, float, float]:
    """``R(q) v`` for a unit quaternion (x, y, z, w), on plain floats (hot path)."""
    x, y, z, w = (float(c) for c in q)
    vx, vy, vz = (float(c) for c in v)
    # t = 2 u x v; v' = v + w t + u x t
    tx, ty, tz = 2.0 * (y * vz - z * vy), 2.0 * (z * vx - x * vz), 2.0 * (x * vy - y * vx)
    return (
        vx + w * tx + (y * tz - z * ty),
        vy + w * ty + (z * tx - x * tz),
        vz + w * tz + (x * ty - y * tx),
    )


def tilt_and_yaw(q: FloatArray, nominal: FloatArray, tool_axis: FloatArray) -> tuple[float, float]:
    """How far orientation ``q`` is from ``nominal`` about a tool axis (EE frame, unit).

    Returns ``(tilt, yaw)``: tilt in [0, pi] is the angle between the tool axis of ``q``
    and that of ``nominal`` (both in the base frame); yaw in (-pi, pi] is the twist of
    the swing-twist decomposition of ``nominal^-1 q`` about the tool axis (rotation of
    the tool about its own axis relative to the nominal orientation).
    """
    a = (float(tool_axis[0]), float(tool_axis[1]), float(tool_axis[2]))
    now = _rotate(q, a)
    nom = _rotate(nominal, a)
    dot = now[0] * nom[0] + now[1] * nom[1] + now[2] * nom[2]
    tilt = math.acos(max(-1.0, min(1.0, dot)))
    # rel = conj(nominal) * q
    bx, by, bz, bw = (float(c) for c in q)
    ax, ay, az, aw = -float(nominal[0]), -float(nominal[1]), -float(nominal[2]), float(nominal[3])
    rx = aw * bx + ax * bw + ay * bz - az * by
    ry = aw * by - ax * bz + ay * bw + az * bx
    rz = aw * bz + ax * by - ay * bx + az * bw
    rw = aw * bw - ax * bx - ay * by - az * bz
    yaw = 2.0 * math.atan2(rx * a[0] + ry * a[1] + rz * a[2], rw)
    if yaw > math.pi:
        yaw -= 2.0 * math.pi
    elif yaw <= -math.pi:
        yaw += 2.0 * math.pi
    return tilt, yaw


@dataclass(frozen=True, eq=False)
class Pose:
    """End-effector pose in the robot base frame: position (m) and unit quaternion (x, y, z, w).

    The arrays are copied, checked finite, the quaternion normalised and both made
    read-only, so a Pose can be shared freely.

    Raises:
        ValueError: wrong sizes, non-finite values or a quaternion whose norm is not
            within :data:`QUAT_NORM_TOLERANCE` of 1.
    """

    position: FloatArray
    orientation: FloatArray

    def __post_init__(self) -> None:
        p = _vec(self.position, 3, "position")
        q = _vec(self.orientation, 4, "orientation quaternion")
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
            raise ValueError(
                f"orientation quaternion has norm {norm:.3g}; expected a unit quaternion "
                "(x, y, z, w)"
            )
        q = q / norm
        p.flags.writeable = False
        q.flags.writeable = False
        object.__setattr__(self, "position", p)
        object.__setattr__(self, "orientation", q)

    def __eq__(self, other: object) -> bool:
        # Exact equality (numpy arrays make the generated __eq__ ambiguous).
        if not isinstance(other, Pose):
            return NotImplemented
        return bool(
            np.array_equal(self.position, other.position)
            and np.array_equal(self.orientation, other.orientation)
        )

    def __hash__(self) -> int:
        return hash((self.position.tobytes(), self.orientation.tobytes()))

    @classmethod
    def from_xyz_rpy(
        cls, xyz: Sequence[float] | FloatArray, rpy: Sequence[float] | FloatArray
    ) -> Pose:
        """Pose from a position (m) and extrinsic XYZ roll/pitch/yaw (rad)."""
        r, p, y = (float(v) for v in np.asarray(rpy, dtype=np.float64).reshape(3))
        return cls(np.asarray(xyz, dtype=np.float64), rpy_to_quat(r, p, y))

    def rpy(self) -> FloatArray:
        """Orientation as extrinsic XYZ (roll, pitch, yaw) in rad."""
        return quat_to_rpy(self.orientation)

    def matrix(self) -> FloatArray:
        """Orientation as a 3x3 rotation matrix."""
        return quat_to_matrix(self.orientation)

    def with_position(self, position: Sequence[float] | FloatArray) -> Pose:
        """Copy with another position, same orientation."""
        return Pose(np.asarray(position, dtype=np.float64), self.orientation)

    def with_orientation(self, orientation: Sequence[float] | FloatArray) -> Pose:
        """Copy with another orientation, same position."""
        return Pose(self.position, np.asarray(orientation, dtype=np.float64))


def apply_delta(pose: Pose, delta: Sequence[float] | FloatArray) -> Pose:
    """Compose a 6-D delta ``[dx, dy, dz (m), droll, dpitch, dyaw (rad)]`` onto ``pose``.

    Translation is added in the base frame; the rotation ``Rz(dyaw) Ry(dpitch) Rx(droll)``
    (about base axes) is pre-multiplied: ``R_new = R_delta @ R_prev``, leaving the
    end-effector position where the translation put it (rotation about the EE point).
    """
    d = _vec(delta, 6, "delta")
    q_delta = rpy_to_quat(float(d[3]), float(d[4]), float(d[5]))
    q_new = quat_multiply(q_delta, pose.orientation)
    return Pose(pose.position + d[:3], q_new / np.linalg.norm(q_new))


def delta_between(previous: Pose, new: Pose) -> FloatArray:
    """The 6-D delta that :func:`apply_delta` needs to turn ``previous`` into ``new``.

    Rotation part: extrinsic XYZ angles of ``R_new @ R_prev^T`` (unique for deltas
    with |pitch| < pi/2, which every step limit here guarantees).
    """
    q_delta = quat_multiply(new.orientation, quat_conjugate(previous.orientation))
    out = np.empty(6, dtype=np.float64)
    out[:3] = new.position - previous.position
    out[3:] = quat_to_rpy(q_delta / np.linalg.norm(q_delta))
    return out


def pose_distance(a: Pose, b: Pose) -> tuple[float, float]:
    """Translation distance (m, Euclidean) and rotation angle (rad, geodesic) between poses."""
    return float(np.linalg.norm(a.position - b.position)), quat_angle(a.orientation, b.orientation)
