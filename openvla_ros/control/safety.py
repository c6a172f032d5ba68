# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The safety filter: one raw action in, a safe target (or a rejection) and a report out.

A stage of its own (Nav2 collision monitor / LeRobot style) that says what it did:
the original action, the action actually applied (as a delta from the previous
target), which clips fired (a bitmask for the state message) and why, in words.

Checks, in order:

1. shape and finiteness: not 7 finite numbers -> REJECTED (nothing applied); a
   subnormal value (|x| < 2.2e-308, not 0) is refused too: no policy outputs one, but
   memory read past a short list does (rclpy without ``ROS_PYTHON_CHECK_FIELDS=1``
   publishes a 6-value list into ``float64[7]`` with garbage as the 7th value);
2. ``action_scale`` on the 6 pose deltas, then the per-axis step limits
   (``|d_i| <= step_limit_m`` for x, y, z and ``<= step_limit_rad`` for roll, pitch,
   yaw), like Bridge's own action clipping; per-axis (not a norm) keeps each axis's
   delta exact when another axis saturates, and the box below is per-axis too;
3. composition onto the previous *target* (:func:`~openvla_ros.control.se3.apply_delta`);
4. the workspace box on the target position (per-axis clip);
5. tracking error vs the measured pose: a translation (rotation) step that would put
   the target further than ``max_tracking_error_m`` (``_rad``) from the measured pose
   *and* further than the previous target was is dropped, i.e. that part holds at the
   previous target. Chosen over "clip toward the measured pose" because holding is
   the only option that keeps the step and box invariants by construction, and over
   rejecting the whole action because the gripper must still work when the arm is
   blocked (pressing on the table while grasping is the common case);
6. the orientation bound (a cone of ``limits.max_tilt_rad`` about the nominal tool
   axis and ``limits.yaw_range_rad`` about it): a rotation step that leaves it (and
   moves further out than the previous target was) is dropped (the orientation holds);
7. the gripper value is clamped to the profile's input range.

The executor adds what needs time or history on top: the speed limits, the tracking
bound of the previous target (hold + re-seed), and a final :func:`step_within_limits`.

Invariant (property-tested): when the previous target is inside the box, every
target this returns is inside the box, differs from the previous target by at most
``step_limit_m`` per axis and by rotation angles within ``step_limit_rad`` per axis,
and has a unit quaternion, for *any* input.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from openvla_ros.control.profile import RobotProfile
from openvla_ros.control.se3 import (
    Pose,
    apply_delta,
    delta_between,
    quat_angle,
    relative_rotvec,
    rpy_to_quat,
    tilt_and_yaw,
)

__all__ = [
    "ACTION_DIM",
    "ClipFlag",
    "Outcome",
    "SafetyFilter",
    "SafetyResult",
    "orientation_violation",
    "seed_target",
    "step_within_limits",
]

#: dx dy dz (m), droll dpitch dyaw (rad), gripper (dataset convention).
ACTION_DIM = 7

#: Slack for float round-off when checking "inside the box" (m).
_BOX_EPS_M = 1e-9


class Outcome(enum.IntEnum):
    """What was done with an action (values are stable: they go into the state message)."""

    EXECUTED = 0  # sent as predicted (after the action scale)
    CLIPPED = 1  # sent after one or more clips (see ClipFlag)
    HELD = 2  # not sent: pose stale, max steps reached, ... the arm holds
    REJECTED = 3  # not sent: invalid action or no usable pose
    ESTOPPED = 4  # not sent: the e-stop latch is set
    DISABLED = 5  # not sent: the executor is disabled
    DROPPED_STALE = 6  # not sent: its image is older than max_action_age_s
    DROPPED_OLD = 7  # not sent: older than the last executed action


class ClipFlag(enum.IntFlag):
    """Which clips fired (bitmask, stable values for the state message)."""

    NONE = 0
    STEP_TRANSLATION = 1
    STEP_ROTATION = 2
    WORKSPACE = 4
    TRACKING_ERROR = 8
    GRIPPER_RANGE = 16
    SPEED = 32
    ORIENTATION = 64


@dataclass(frozen=True)
class SafetyResult:
    """The report of one :meth:`SafetyFilter.apply`.

    Attributes:
        outcome: EXECUTED, CLIPPED or REJECTED.
        clip_flags: the clips that fired.
        original_action: the input as float64 values (empty if it was not numeric).
        applied_action: float64[7] actually applied: the delta from the previous
            target to ``target`` (rotation as extrinsic XYZ angles of
            ``R_new R_prev^T``) and the clamped gripper value; ``None`` if rejected.
        target: the new target pose, or ``None`` if rejected (the arm holds).
        reason: what happened, in words (empty when executed unchanged).
    """

    outcome: Outcome
    clip_flags: ClipFlag
    original_action: tuple[float, ...]
    applied_action: npt.NDArray[np.float64] | None
    target: Pose | None
    reason: str


def _inside_box(position: npt.NDArray[np.float64], profile: RobotProfile) -> bool:
    return bool(
        np.all(position >= profile.workspace_min - _BOX_EPS_M)
        and np.all(position <= profile.workspace_max + _BOX_EPS_M)
    )


@functools.lru_cache(maxsize=64)
def _nominal(rpy: tuple[float, ...]) -> npt.NDArray[np.float64]:
    q = rpy_to_quat(rpy[0], rpy[1], rpy[2])
    q.flags.writeable = False
    return q


@functools.lru_cache(maxsize=64)
def _unit(axis: tuple[float, ...]) -> tuple[float, float, float]:
    n = math.sqrt(sum(v * v for v in axis))
    return (axis[0] / n, axis[1] / n, axis[2] / n)


def nominal_quat(profile: RobotProfile) -> npt.NDArray[np.float64]:
    """The profile's nominal tool orientation (``limits.nominal_rpy_rad``) as a quaternion."""
    return _nominal(tuple(profile.nominal_rpy_rad))


def orientation_violation(orientation: npt.NDArray[np.float64], profile: RobotProfile) -> float:
    """How far (rad) ``orientation`` is outside the profile's orientation bound (0 inside).

    The bound: the tool axis within ``limits.max_tilt_rad`` of its nominal direction, and
    the rotation about it within ``limits.yaw_range_rad`` of the nominal orientation.
    """
    axis = np.asarray(_unit(tuple(profile.tool_axis)))
    tilt, yaw = tilt_and_yaw(orientation, nominal_quat(profile), axis)
    lo, hi = profile.yaw_range_rad
    return max(0.0, tilt - profile.max_tilt_rad, lo - yaw, yaw - hi)


def seed_target(measured: Pose, profile: RobotProfile) -> tuple[Pose | None, str]:
    """The first target of an episode, from the measured pose.

    The measured position is clipped into the workspace box when it is outside by at
    most one step per axis (sensor noise, a grasp pressed onto the table); further
    out, the operator must move the arm back in: ``(None, reason)``. Likewise the
    measured orientation may be outside the orientation bound by at most one rotation
    step (then only steps back toward the bound are allowed).
    """
    bad = orientation_violation(measured.orientation, profile)
    if bad > profile.step_limit_rad:
        tilt, yaw = tilt_and_yaw(
            measured.orientation, nominal_quat(profile), profile.tool_axis_unit
        )
        return None, (
            f"end-effector orientation is {bad:.3f} rad outside the orientation bound (tilt "
            f"{tilt:.3f} rad, max {profile.max_tilt_rad:g}; yaw {yaw:.3f} rad, range "
            f"{list(profile.yaw_range_rad)}); rotate the arm back toward "
            f"limits.nominal_rpy_rad {list(profile.nominal_rpy_rad)}, then reset"
        )
    pos = measured.position
    clipped = np.clip(pos, profile.workspace_min, profile.workspace_max)
    outside = float(np.max(np.abs(clipped - pos)))
    if outside > profile.step_limit_m:
        return None, (
            f"end-effector position {np.round(pos, 3).tolist()} m is {outside:.3f} m outside "
            f"the workspace box {list(profile.workspace_min_m)}..{list(profile.workspace_max_m)}"
            " m; move the arm into the workspace, then reset"
        )
    return measured.with_position(clipped), ""


def _fmt(values: npt.NDArray[np.float64]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


class SafetyFilter:
    """Validates, clips and composes actions for one :class:`RobotProfile` (stateless)."""

    def __init__(self, profile: RobotProfile) -> None:
        self.profile = profile

    def _reject(self, original: tuple[float, ...], reason: str) -> SafetyResult:
        return SafetyResult(Outcome.REJECTED, ClipFlag.NONE, original, None, None, reason)

    def apply(
        self,
        action: Sequence[float] | npt.NDArray[Any] | Any,
        previous_target: Pose,
        measured: Pose | None = None,
    ) -> SafetyResult:
        """Filter one raw action against the previous target (and the measured pose).

        Args:
            action: the policy's 7 values (anything; bad input is rejected, not raised).
            previous_target: the last target sent (or the seed); must be in the box.
            measured: the current measured end-effector pose; ``None`` skips the
                tracking-error check (callers with a pose should always pass it).

        Returns:
            The report; never raises for bad actions.
        """
        p = self.profile
        try:
            raw = np.asarray(action, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            return self._reject(
                (), f"action is not a sequence of numbers ({type(action).__name__})"
            )
        original = tuple(float(v) for v in raw)
        if raw.shape != (ACTION_DIM,):
            return self._reject(original, f"action has {raw.size} values; expected {ACTION_DIM}")
        bad = np.flatnonzero(~np.isfinite(raw))
        if bad.size:
            return self._reject(original, f"action has non-finite values at indices {bad.tolist()}")
        tiny = np.flatnonzero((raw != 0.0) & (np.abs(raw) < np.finfo(np.float64).tiny))
        if tiny.size:
            return self._reject(
                original,
                f"action has subnormal values at indices {tiny.tolist()} (e.g. "
                f"{raw[tiny[0]]:.3g}): memory past a short list, not a prediction; the "
                "publisher sent fewer than 7 values (run it with ROS_PYTHON_CHECK_FIELDS=1)",
            )
        if not _inside_box(previous_target.position, p):
            return self._reject(
                original,
                f"previous target {_fmt(previous_target.position)} m is outside the workspace "
                "box; reset to re-seed from the measured pose",
            )

        flags = ClipFlag.NONE
        reasons: list[str] = []
        delta = raw[:6] * p.action_scale
        lim = np.array([p.step_limit_m] * 3 + [p.step_limit_rad] * 3)
        clipped = np.clip(delta, -lim, lim)
        if np.any(clipped[:3] != delta[:3]):
            flags |= ClipFlag.STEP_TRANSLATION
            reasons.append(
                f"translation step {_fmt(delta[:3])} m clipped to {_fmt(clipped[:3])} m "
                f"(+-{p.step_limit_m:g} m per axis)"
            )
        if np.any(clipped[3:] != delta[3:]):
            flags |= ClipFlag.STEP_ROTATION
            reasons.append(
                f"rotation step {_fmt(delta[3:])} rad clipped to {_fmt(clipped[3:])} rad "
                f"(+-{p.step_limit_rad:g} rad per axis)"
            )

        candidate = apply_delta(previous_target, clipped)
        position = candidate.position
        in_box = np.clip(position, p.workspace_min, p.workspace_max)
        if np.any(in_box != position):
            flags |= ClipFlag.WORKSPACE
            reasons.append(f"target {_fmt(position)} m clipped into the workspace box")
            position = in_box
        orientation = candidate.orientation

        if measured is not None:
            err_new = float(np.linalg.norm(position - measured.position))
            err_prev = float(np.linalg.norm(previous_target.position - measured.position))
            if err_new > p.max_tracking_error_m and err_new > err_prev:
                flags |= ClipFlag.TRACKING_ERROR
                reasons.append(
                    f"translation held: target would be {err_new:.3f} m from the measured "
                    f"position (max {p.max_tracking_error_m:g} m)"
                )
                position = previous_target.position
            ang_new = quat_angle(orientation, measured.orientation)
            ang_prev = quat_angle(previous_target.orientation, measured.orientation)
            if ang_new > p.max_tracking_error_rad and ang_new > ang_prev:
                flags |= ClipFlag.TRACKING_ERROR
                reasons.append(
                    f"rotation held: target would be {ang_new:.3f} rad from the measured "
                    f"orientation (max {p.max_tracking_error_rad:g} rad)"
                )
                orientation = previous_target.orientation

        if (
            orientation_violation(orientation, p)
            > max(0.0, orientation_violation(previous_target.orientation, p)) + 1e-9
        ):
            flags |= ClipFlag.ORIENTATION
            reasons.append(
                "rotation held: the target would leave the orientation bound (tilt <= "
                f"{p.max_tilt_rad:g} rad, yaw in {list(p.yaw_range_rad)} rad)"
            )
            orientation = previous_target.orientation

        g_lo, g_hi = p.gripper_input_range
        gripper = min(max(float(raw[6]), g_lo), g_hi)
        if gripper != raw[6]:
            flags |= ClipFlag.GRIPPER_RANGE
            reasons.append(f"gripper {raw[6]:.4g} clamped to [{g_lo:g}, {g_hi:g}]")

        target = Pose(position, orientation)
        applied = np.empty(ACTION_DIM, dtype=np.float64)
        applied[:6] = delta_between(previous_target, target)
        applied[6] = gripper
        outcome = Outcome.CLIPPED if flags else Outcome.EXECUTED
        return SafetyResult(outcome, flags, original, applied, target, "; ".join(reasons))


def step_within_limits(
    previous: Pose,
    new: Pose,
    profile: RobotProfile,
    eps: float = 1e-9,
    *,
    rotation: str = "rpy",
) -> bool:
    """True when ``new`` is one legal step from ``previous``: per-axis step limits, inside
    the box, a unit quaternion, and not further outside the orientation bound.

    ``rotation="rpy"`` checks the rotation step as extrinsic XYZ angles (pose mode, the
    dataset's convention); ``"rotvec"`` as the rotation vector a twist integrates (twist
    mode). The executor's final check before it emits any target.
    """
    if rotation == "rotvec":
        rot = relative_rotvec(previous.orientation, new.orientation)
    else:
        rot = delta_between(previous, new)[3:]
    d = new.position - previous.position
    orientation_ok = (
        orientation_violation(new.orientation, profile)
        <= max(0.0, orientation_violation(previous.orientation, profile)) + 1e-6
    )
    return bool(
        np.all(np.abs(d) <= profile.step_limit_m + eps)
        and np.all(np.abs(rot) <= profile.step_limit_rad + eps)
        and _inside_box(new.position, profile)
        and math.isclose(float(np.linalg.norm(new.orientation)), 1.0, abs_tol=1e-9)
        and orientation_ok
    )
