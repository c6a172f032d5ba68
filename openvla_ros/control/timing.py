# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Time-based safety pieces of the executor, pure: a ROS-clock jump detector and a speed
budget, both on the steady clock (``time.monotonic`` in the node, any float in tests).

Why two clocks: stamps (image capture, pose measurement) are ROS time, which can jump
(``use_sim_time`` with a restarted simulator, ``ros2 bag play --loop --clock``, an NTP
step) or stall (a paused ``/clock``). Watchdogs, timeouts and rate limits must measure
real elapsed time, so they run on the steady clock, and ROS time is only compared with
ROS stamps. :class:`ClockJumpDetector` notices when the two clocks disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BACKWARD_TOLERANCE_S", "ClockJump", "ClockJumpDetector", "SpeedBudget"]

#: ROS time may step back this little without counting as a jump (float round-off of
#: nanosecond stamps through float seconds).
BACKWARD_TOLERANCE_S = 1e-3


@dataclass(frozen=True)
class ClockJump:
    """A detected ROS-time jump: ``delta_s`` is how far ROS time moved beyond steady time
    (negative: backwards)."""

    delta_s: float
    ros_now_s: float

    def describe(self) -> str:
        """One line for logs and the state message."""
        way = "backwards" if self.delta_s < 0 else "forwards"
        return f"ROS clock jumped {way} by {abs(self.delta_s):.3f} s"


class ClockJumpDetector:
    """Compares successive ``(steady, ros)`` readings.

    A jump: ROS time went backwards (by more than :data:`BACKWARD_TOLERANCE_S`), or
    advanced more than ``threshold_s`` beyond the steady time that passed. A stalled ROS
    clock (paused ``/clock``) is *not* a jump: the steady-clock watchdogs handle it.

    Args:
        threshold_s: the forward tolerance (``watchdog.clock_jump_threshold_s``).
    """

    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = float(threshold_s)
        self._last: tuple[float, float] | None = None

    def check(self, steady_s: float, ros_s: float) -> ClockJump | None:
        """Record a reading; the jump since the previous one, if any."""
        last, self._last = self._last, (steady_s, ros_s)
        if last is None or not (math.isfinite(ros_s) and math.isfinite(steady_s)):
            return None
        d_ros = ros_s - last[1]
        d_steady = max(0.0, steady_s - last[0])
        if d_ros < -BACKWARD_TOLERANCE_S:
            return ClockJump(d_ros - d_steady, ros_s)
        if d_ros - d_steady > self.threshold_s:
            return ClockJump(d_ros - d_steady, ros_s)
        return None

    def rebase(self, steady_s: float, ros_s: float) -> None:
        """Take ``(steady, ros)`` as the new reference (after a jump reported elsewhere)."""
        self._last = (steady_s, ros_s)


class SpeedBudget:
    """A token bucket on commanded motion: fills at ``rate`` per steady second up to
    ``capacity``; each command spends what it moves.

    Guarantee: over any steady interval ``[t_a, t_b]`` the commands issued in it move at
    most ``capacity + rate * (t_b - t_a)`` in total (so the mean speed over any window of
    length ``w`` is at most ``rate + capacity / w``). With ``capacity = rate x one
    control period`` a policy at its trained rate is never slowed, while a burst, a replay
    tool or a raised rate is held to ``rate``.
    """

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._level = self.capacity
        self._last_s: float | None = None

    def available(self, now_s: float) -> float:
        """The budget at ``now_s`` (refilled; time never runs backwards here)."""
        if self._last_s is not None:
            dt = max(0.0, now_s - self._last_s)
            self._level = min(self.capacity, self._level + self.rate * dt)
        self._last_s = now_s if self._last_s is None else max(self._last_s, now_s)
        return self._level

    def spend(self, amount: float) -> None:
        """Consume ``amount`` (never below zero: float round-off)."""
        self._level = max(0.0, self._level - max(0.0, amount))
