# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Action labels from measured end-effector poses, in exactly the executor's convention.

For frames sampled at the control rate, the label of frame ``t`` is what the executor would
have to do to go from the measured pose at ``t`` to the measured pose at ``t + 1``:

* ``dx, dy, dz``: ``p_{t+1} - p_t`` in the robot base frame (m);
* ``droll, dpitch, dyaw``: extrinsic XYZ angles of ``R_{t+1} R_t^T`` (rad), as
  :func:`openvla_ros.control.se3.delta_between` computes and ``apply_delta`` composes;
* ``gripper``: the gripper value at ``t`` (commanded, or measured at ``t + 1``) in the robot
  profile's convention (:func:`gripper_label`): absolute, like Bridge's.

The last frame of an episode has no successor and is dropped. Labels of measured (not
commanded) motion are what Bridge uses; the round-trip test composes them through
``ExecutorCore`` and gets the recorded trajectory back.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from openvla_ros.control.profile import RobotProfile
from openvla_ros.control.se3 import Pose, delta_between
from openvla_ros.errors import DatasetError

__all__ = [
    "IdleFilter",
    "delta_labels",
    "gripper_from_openings",
    "gripper_label",
    "idle_mask",
    "state_vector",
    "transition_labels",
]


def delta_labels(poses: Sequence[Pose]) -> npt.NDArray[np.float64]:
    """``(T - 1, 6)`` deltas between consecutive poses (see module doc)."""
    if len(poses) < 2:
        raise DatasetError(f"labels need at least 2 poses, got {len(poses)}")
    return np.stack([delta_between(a, b) for a, b in itertools.pairwise(poses)])


def gripper_label(opening: float, profile: RobotProfile) -> float:
    """The model-side gripper value of an opening (0 = closed .. 1 = open) under ``profile``.

    Binary profiles get the end of the input range (Bridge: 1.0 open, 0.0 closed); continuous
    ones a linear map. ``gripper.inverted`` profiles map open to the low end.
    """
    lo, hi = (float(v) for v in profile.gripper_input_range)
    o = min(1.0, max(0.0, float(opening)))
    if profile.gripper_mode == "binary":
        o = 1.0 if o >= 0.5 else 0.0
    if profile.gripper_inverted:
        o = 1.0 - o
    return lo + o * (hi - lo)


def gripper_from_openings(
    openings: Sequence[float], change: float = 0.02, open_fraction: float = 0.95
) -> npt.NDArray[np.float64]:
    """The commanded gripper (1 = open, 0 = closed) behind each step of measured openings.

    For ``T`` openings, ``T - 1`` values: opening between ``t`` and ``t + 1`` -> open; closing ->
    closed; no change -> open only when fully open (``open_fraction``), so a hand stalled on
    an object reads closed. Real set-ups rarely publish the gripper command; the fingers'
    joint state they always have.
    """
    o = np.asarray(openings, dtype=np.float64)
    if o.ndim != 1 or o.size < 2:
        raise DatasetError(f"gripper labels need at least 2 openings, got {o.size}")
    d = np.diff(o)
    still = np.where(o[1:] >= open_fraction, 1.0, 0.0)
    return np.where(d > change, 1.0, np.where(d < -change, 0.0, still))


def state_vector(pose: Pose, gripper: float) -> npt.NDArray[np.float32]:
    """``observation.state``: x y z (m), roll pitch yaw (rad, extrinsic), pad 0, gripper."""
    out = np.zeros(8, dtype=np.float32)
    out[:3] = pose.position
    out[3:6] = pose.rpy()
    out[7] = gripper
    return out


def transition_labels(
    poses: Sequence[Pose],
    openings: Sequence[float],
    profile: RobotProfile,
    *,
    has_gripper: bool = True,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """``(T - 1, 7)`` actions and ``(T - 1, 8)`` states of ``T`` consecutive observations.

    The one labelling rule of every source (live recorder, bags, the sim expert): base-frame
    deltas of consecutive measured poses, the gripper commanded behind the measured openings
    (open when ``has_gripper`` is false), both gripper values in ``profile``'s convention.
    """
    deltas = delta_labels(poses)
    n = len(deltas)
    grip = gripper_from_openings(openings) if has_gripper else np.ones(n)
    grip_labels = [gripper_label(g, profile) for g in grip]
    actions = np.concatenate([deltas, np.asarray(grip_labels)[:, None]], axis=1)
    states = np.stack(
        [
            state_vector(p, gripper_label(o, profile))
            for p, o in zip(poses[:n], openings[:n], strict=True)
        ]
    )
    return actions.astype(np.float32), states


@dataclass(frozen=True)
class IdleFilter:
    """Which frames count as idle: motion below both thresholds and no gripper change.

    Pauses teach a policy to stand still (OpenVLA maintainers advise dropping them; the LIBERO
    fine-tunes were trained without no-op actions).
    """

    translation_m: float = 1e-3
    rotation_rad: float = 5e-3
    gripper_change: float = 0.05


def idle_mask(
    actions: npt.NDArray[np.floating], filt: IdleFilter | None = None
) -> npt.NDArray[np.bool_]:
    """True for each idle frame of ``(T, 7)`` labels (gripper change vs the previous frame)."""
    f = filt or IdleFilter()
    acts = np.asarray(actions, dtype=np.float64)
    still = (np.linalg.norm(acts[:, :3], axis=1) < f.translation_m) & (
        np.linalg.norm(acts[:, 3:6], axis=1) < f.rotation_rad
    )
    prev_g = np.concatenate([acts[:1, 6], acts[:-1, 6]])
    return np.asarray(still & (np.abs(acts[:, 6] - prev_g) < f.gripper_change))
