# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Gripper mapping: the model's 7th action value -> a gripper command, per profile.

OpenVLA predicts the gripper as an *absolute* value in the dataset's convention
(Bridge and the OXE-standardised mixtures: ``[0, 1]``, 1 = open). The value of a
de-tokenised bin is rarely exactly 0 or 1 and can flicker around the middle, which
would make a real gripper chatter; a threshold with a hysteresis band (a Schmitt
trigger) keeps the last state until the value clearly crosses to the other side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from openvla_ros.control.profile import RobotProfile

__all__ = ["GripperCommand", "GripperMapper"]


@dataclass(frozen=True)
class GripperCommand:
    """What to send to the gripper.

    Attributes:
        is_open: binary state (continuous mode: the value is above the threshold).
        command: the robot-side command (Franka: width in m; WidowX: normalised),
            between the profile's closed and open commands.
        openness: 0 = closed .. 1 = open, after clamping and inversion.
        changed: the binary state differs from the previous command (a node driving
            an action-based gripper sends a new goal only then).
        value: the model value this came from (after clamping to the input range);
            NaN when a non-finite input kept the previous command.
    """

    is_open: bool
    command: float
    openness: float
    changed: bool
    value: float


class GripperMapper:
    """Stateful mapping of model gripper values to :class:`GripperCommand` (see module doc).

    Binary mode: with band ``[threshold - h/2, threshold + h/2]`` (in the model's units,
    before inversion), a value above the band means "high", below means "low", inside
    keeps the previous state; ``inverted`` says whether high is closed. Continuous mode:
    the clamped value maps linearly onto ``[closed_command, open_command]``.
    Non-finite values keep the last command (the safety filter rejects such actions
    before they get here; this is the second line of defence).
    """

    def __init__(self, profile: RobotProfile) -> None:
        self._profile = profile
        self._is_open = profile.gripper_initially_open
        self._openness = 1.0 if self._is_open else 0.0
        self._switched_s = -math.inf  # steady time of the last binary state change
        self.deferred = 0  # changes kept back by ``gripper.min_switch_interval_s``

    @property
    def is_open(self) -> bool:
        """The current binary state."""
        return self._is_open

    def reset(self, is_open: bool | None = None) -> None:
        """Forget the state; ``None`` restores the profile's initial state."""
        self._is_open = self._profile.gripper_initially_open if is_open is None else is_open
        self._openness = 1.0 if self._is_open else 0.0
        self._switched_s = -math.inf

    def current(self) -> GripperCommand:
        """The command for the current state, without an update."""
        return self._command(changed=False, value=math.nan)

    def update(self, value: float, now_s: float | None = None) -> GripperCommand:
        """Map one model value; returns the command to send (state kept between calls).

        ``now_s`` (steady time) enables ``gripper.min_switch_interval_s`` in binary mode: a
        state change sooner than that after the previous one is kept back (counted in
        :attr:`deferred`); ``None`` (offline tools) applies every change.
        """
        p = self._profile
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            return self._command(changed=False, value=math.nan)
        lo, hi = p.gripper_input_range
        v = min(max(v, lo), hi)
        was_open = self._is_open
        if p.gripper_mode == "binary":
            band = p.gripper_hysteresis / 2.0
            if v > p.gripper_threshold + band:
                high = True
            elif v < p.gripper_threshold - band:
                high = False
            else:  # inside the band: keep the state
                high = was_open != p.gripper_inverted
            want_open = high != p.gripper_inverted
            if want_open != was_open and now_s is not None:
                if now_s - self._switched_s < p.gripper_min_switch_interval_s:
                    self.deferred += 1
                    want_open = was_open
                else:
                    self._switched_s = now_s
            self._is_open = want_open
            self._openness = 1.0 if self._is_open else 0.0
        else:
            frac = (v - lo) / (hi - lo)
            self._openness = 1.0 - frac if p.gripper_inverted else frac
            # No band in continuous mode; hysteresis here would distort the width.
            high = v > p.gripper_threshold
            self._is_open = high != p.gripper_inverted
        return self._command(changed=self._is_open != was_open, value=v)

    def _command(self, *, changed: bool, value: float) -> GripperCommand:
        p = self._profile
        cmd = p.gripper_closed_command + self._openness * (
            p.gripper_open_command - p.gripper_closed_command
        )
        return GripperCommand(
            is_open=self._is_open,
            command=cmd,
            openness=self._openness,
            changed=changed,
            value=value,
        )
