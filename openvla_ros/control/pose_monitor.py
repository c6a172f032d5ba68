# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Measured end-effector poses: which ones count, and whether the latest is fresh. Pure.

A pose is **accepted** when its stamp is finite, not more than
``watchdog.max_clock_skew_s`` ahead of the executor's ROS clock, not more than
``watchdog.max_pose_age_s`` behind it (when > 0), and strictly newer than
the newest accepted stamp (a repeated or re-stamped pose is not fresh). An accepted pose
is **confirmed** (used as the measured arm) when it is within the plausibility bound
(``limits.max_tracking_error_m`` / ``_rad``) of the previous confirmed pose; a pose
that jumps further waits for the next one: if that agrees with it, the arm really is
there (a robot restarted at home, another controller moved it) and the jump is
confirmed; if it agrees with the old pose instead, the jump was a glitch and is
discarded. The very first pose (and the first after a new monitor, i.e. an executor
restart) is not used on its own either: it waits for a second that agrees with it, so one
wrong sample at start-up (a TF glitch, a stale latched message) is never acted on. Only
confirmed poses
refresh the watchdog, seed targets and bound the tracking error.

Freshness is on the steady clock: the latest confirmed pose was received at most
``watchdog.pose_timeout_s`` ago (a negative age, i.e. a clock fault, is never fresh).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from openvla_ros.control.profile import RobotProfile
from openvla_ros.control.se3 import Pose, pose_distance

__all__ = ["PoseMonitor", "PoseVerdict"]


@dataclass(frozen=True)
class PoseVerdict:
    """What :meth:`PoseMonitor.update` did with one pose.

    Attributes:
        accepted: the stamp passed (the pose was recorded, possibly as unconfirmed).
        confirmed: it is now the measured arm.
        jumped: it confirmed a jump: the arm is somewhere else than before (the executor
            drops its target and re-seeds).
        reason: why it was refused or not confirmed ("" otherwise).
        first: not confirmed only because it is the first pose since none is confirmed (the
            normal start: nothing to compare it with yet; not a jump).
    """

    accepted: bool
    confirmed: bool = False
    jumped: bool = False
    reason: str = ""
    first: bool = False


class PoseMonitor:
    """Tracks the measured arm for :class:`~openvla_ros.control.executor_core.ExecutorCore`."""

    def __init__(self, profile: RobotProfile) -> None:
        self.profile = profile
        self.measured: Pose | None = None  # latest confirmed pose
        self.rx_s: float | None = None  # steady receipt time of ``measured``
        self.newest_stamp_s = -math.inf
        self._pending: Pose | None = None  # an unconfirmed jump (or the first pose)
        self.last_problem = ""  # why the latest pose did not count

    def update(self, pose: Pose, stamp_s: float, now_s: float, ros_now_s: float) -> PoseVerdict:
        """Judge one pose (``now_s`` steady, ``ros_now_s`` the executor's ROS clock)."""
        p = self.profile
        if not math.isfinite(stamp_s):
            return self._refuse(f"pose stamp {stamp_s} is not finite")
        ahead = stamp_s - ros_now_s
        if ahead > p.max_clock_skew_s:
            return self._refuse(
                f"pose stamped {ahead:.3f} s in the future of the executor's clock (max "
                f"{p.max_clock_skew_s:g} s): sync the robot and executor clocks"
            )
        if p.max_pose_age_s > 0 and -ahead > p.max_pose_age_s:
            return self._refuse(
                f"pose stamped {-ahead:.3f} s ago (max watchdog.max_pose_age_s "
                f"{p.max_pose_age_s:g} s): a lagging relay or an old bag, or the robot's and "
                "the executor's clocks differ"
            )
        if stamp_s <= self.newest_stamp_s:
            if stamp_s == self.newest_stamp_s:
                return self._refuse("pose stamp does not advance (a repeated pose is not fresh)")
            return self._refuse(
                f"pose stamp {stamp_s:.3f} s is older than the newest ({self.newest_stamp_s:.3f}"
                " s): the robot's clock restarted? ~/reset forgets the newest stamp"
            )
        self.newest_stamp_s = stamp_s
        return self._judge(pose, now_s)

    def _judge(self, pose: Pose, now_s: float) -> PoseVerdict:
        pending, self._pending = self._pending, None
        if self.measured is not None and self._plausible(self.measured, pose):
            self._confirm(pose, now_s)
            return PoseVerdict(True, True)
        if pending is not None and self._plausible(pending, pose):
            jumped = self.measured is not None
            self._confirm(pose, now_s)
            return PoseVerdict(True, True, jumped=jumped)
        self._pending = pose
        bound = (
            f"{self.profile.max_tracking_error_m:g} m / {self.profile.max_tracking_error_rad:g} rad"
        )
        if self.measured is None and pending is None:
            self.last_problem = f"the first pose waits for a second that agrees with it ({bound})"
            return PoseVerdict(True, False, reason=self.last_problem, first=True)
        if self.measured is None:
            assert pending is not None
            dm, dr = pose_distance(pending, pose)
            self.last_problem = (
                f"pose is {dm:.3f} m / {dr:.3f} rad from the one before (max {bound}): the "
                "first pose waits for a second that agrees with it"
            )
        else:
            dm, dr = pose_distance(self.measured, pose)
            self.last_problem = (
                f"pose jumped {dm:.3f} m / {dr:.3f} rad from the last one (max {bound}): "
                "not used until the next pose confirms it"
            )
        return PoseVerdict(True, False, reason=self.last_problem)

    def _plausible(self, a: Pose, b: Pose) -> bool:
        dm, dr = pose_distance(a, b)
        return dm <= self.profile.max_tracking_error_m and dr <= self.profile.max_tracking_error_rad

    def _confirm(self, pose: Pose, now_s: float) -> None:
        self.measured = pose
        self.rx_s = now_s
        self.last_problem = ""

    def _refuse(self, reason: str) -> PoseVerdict:
        self.last_problem = reason
        return PoseVerdict(False, reason=reason)

    @property
    def jump_pending(self) -> bool:
        """A pose jumped and the next one has not confirmed it yet."""
        return self._pending is not None and self.measured is not None

    def age_s(self, now_s: float) -> float:
        """Steady seconds since the measured pose was received (inf if none)."""
        return math.inf if self.rx_s is None else now_s - self.rx_s

    def fresh(self, now_s: float) -> bool:
        """The measured pose is at most ``watchdog.pose_timeout_s`` old (never if negative)."""
        age = self.age_s(now_s)
        return 0.0 <= age <= self.profile.pose_timeout_s

    def forget_stamps(self) -> None:
        """Forget the newest stamp (``~/reset``, a clock jump): older stamps count again."""
        self.newest_stamp_s = -math.inf
        self._pending = None

    def invalidate(self) -> None:
        """A clock jump: nothing received so far is fresh; keep ``measured`` only as the
        reference the next pose is checked against."""
        self.rx_s = None
        self.forget_stamps()
