# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The executor state machine, free of ROS: the executor node is a thin wrapper around it.

Two clocks, both plain float seconds: ``now_s`` is **steady** time (the node passes
``time.monotonic()``; tests pass anything) and runs every watchdog, timeout and rate
limit; ``ros_now_s`` is the node's ROS clock, compared only with message stamps (image
capture, pose measurement). Callers with a single clock (offline evaluation, tests) may
omit ``ros_now_s``: it then equals ``now_s``. Poses are
:class:`~openvla_ros.control.se3.Pose`. The node:

* calls :meth:`ExecutorCore.on_pose` for each end-effector pose message,
* calls :meth:`ExecutorCore.on_action` for each delta action and publishes
  ``decision.command`` if not ``None`` (target pose or twist, plus the gripper), and
  always the state message,
* calls :meth:`ExecutorCore.tick` at ``servo_hz`` on a steady timer and publishes what
  it returns (twist mode: the twist, zero when holding; blocking mode: the done report),
* calls :meth:`ExecutorCore.on_clock_jump` from rclpy's clock jump callback (the core
  also detects jumps itself from the two clocks),
* maps its services onto :meth:`enable`, :meth:`disable`, :meth:`estop`,
  :meth:`release_estop` and :meth:`reset`.

Safety semantics (see ``docs/control.md``): the executor starts disabled; nothing
moves before :meth:`enable`. The e-stop latch survives enable/disable/reset; only
:meth:`release_estop` clears it, and leaves the executor disabled so an explicit
enable is needed again. After enable, reset, e-stop release, a new episode, a stale
pose, a clock jump, a confirmed pose jump and whenever the target is outside the
tracking bound of the measured arm, the target is re-seeded from the (fresh, confirmed)
measured pose, so a moved or restarted arm never jumps back. See ``docs/control.md``
for the guarantees in units.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from openvla_ros.control.gripper import GripperCommand, GripperMapper
from openvla_ros.control.pose_monitor import PoseMonitor
from openvla_ros.control.profile import RobotProfile
from openvla_ros.control.safety import (
    ClipFlag,
    Outcome,
    SafetyFilter,
    _inside_box,
    orientation_violation,
    seed_target,
    step_within_limits,
)
from openvla_ros.control.se3 import (
    Pose,
    delta_between,
    pose_distance,
    relative_rotvec,
    rotate_by_rotvec,
)
from openvla_ros.control.timing import ClockJump, ClockJumpDetector, SpeedBudget
from openvla_ros.errors import ConfigError

__all__ = [
    "Command",
    "CommandResult",
    "Counters",
    "Decision",
    "DoneReport",
    "DoneStatus",
    "ExecutorCore",
    "ExecutorState",
    "PoseUpdate",
    "TickResult",
    "Twist",
]

FloatArray = npt.NDArray[np.float64]

MODES = ("non_blocking", "blocking")

#: Float slack when comparing tick times against the twist's last re-publish time.
_TICK_EPS_S = 1e-9


class DoneStatus(enum.IntEnum):
    """How an action finished in blocking mode (stable values for the done message)."""

    REACHED = 0  # measured pose within the reached tolerances of the target
    TIMED_OUT = 1  # blocking.timeout_s passed first
    ABORTED = 2  # disable, e-stop or reset while waiting (a new episode discards the report)
    NOT_EXECUTED = 3  # the action was not executed (held, rejected, dropped, ...)


@dataclass(frozen=True)
class DoneReport:
    """Blocking mode: the action of ``step`` is done; the policy may observe again."""

    step: int
    episode_id: int
    status: DoneStatus
    elapsed_s: float
    translation_error_m: float  # measured vs target when reported; NaN if unknown
    rotation_error_rad: float


@dataclass(frozen=True)
class Twist:
    """Base-frame velocity command: linear (m/s) and angular (rad/s, rotation-vector rate)."""

    linear_mps: FloatArray
    angular_radps: FloatArray

    @staticmethod
    def zero() -> Twist:
        """The hold command."""
        return Twist(np.zeros(3), np.zeros(3))

    @property
    def is_zero(self) -> bool:
        """True for the hold command."""
        return not (np.any(self.linear_mps) or np.any(self.angular_radps))


@dataclass(frozen=True)
class Command:
    """What to publish for an executed action.

    Attributes:
        target_pose: the new absolute target in ``frame_id`` (pose mode publishes it;
            twist mode publishes it only for visualisation, if at all).
        twist: twist mode only: ``applied delta * servo_hz / n`` with
            ``n = max(1, floor(control_period_s * servo_hz))``; published now and
            re-published by :meth:`ExecutorCore.tick` so that it is held for at most ``n``
            servo periods (its integral never exceeds the applied delta), then zero.
        gripper: the gripper command (send a new goal when ``gripper.changed``).
        frame_id: the base frame.
        reference_pose: what the step was taken from: the previous target (twist mode:
            what the arm executed of it), or the seed when ``reseeded``.
        reseeded: the target was (re-)seeded from the measured pose for this step.
    """

    target_pose: Pose
    twist: Twist | None
    gripper: GripperCommand
    frame_id: str
    reference_pose: Pose | None = None
    reseeded: bool = False


@dataclass(frozen=True)
class Decision:
    """What :meth:`ExecutorCore.on_action` did with one action.

    ``command`` is ``None`` whenever nothing new may be published (hold); in twist
    mode the next :meth:`ExecutorCore.tick` then returns a zero twist.
    ``done`` is set in blocking mode when the action will not move the arm, so the
    policy does not wait for a motion that never comes. ``stop_twist`` (twist mode): a
    twist was running and this decision ended it: publish a zero twist *now*.
    """

    outcome: Outcome
    clip_flags: ClipFlag
    reason: str
    command: Command | None
    original_action: tuple[float, ...]
    applied_action: tuple[float, ...] | None
    step: int
    episode_id: int
    stamp_s: float
    done: DoneReport | None = None
    stop_twist: bool = False


@dataclass(frozen=True)
class TickResult:
    """What :meth:`ExecutorCore.tick` asks the node to publish.

    Attributes:
        twist: twist mode: the twist to publish now (zero when holding); pose mode: None.
        target_pose: pose mode with ``control.republish_target``: the target to
            re-publish; pose mode after a tracking fault or a confirmed pose jump: the
            measured pose once (the controller holds where the arm is); otherwise None.
        done: blocking mode: a done report, once per action.
        holding: True when the arm is holding (no motion commanded).
        hold_reason: why, in words ("" when moving).
        events: watchdog transitions to log once (e.g. the pose went stale).
    """

    twist: Twist | None
    target_pose: Pose | None
    done: DoneReport | None
    holding: bool
    hold_reason: str
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoseUpdate:
    """Whether :meth:`ExecutorCore.on_pose` accepted a pose, and why not.

    ``reason`` is also set for an accepted pose that is not used yet (a jump waiting for
    confirmation). ``stop_twist`` (twist mode): the pose stopped a running twist (it
    jumped): publish a zero twist now.
    """

    accepted: bool
    reason: str = ""
    stop_twist: bool = False


@dataclass(frozen=True)
class CommandResult:
    """Result of a service-like call (maps onto ``std_srvs`` ``success`` + ``message``)."""

    success: bool
    message: str


@dataclass
class Counters:
    """Running counts since construction (never reset: they describe the node's life)."""

    received: int = 0
    executed: int = 0  # sent unchanged
    clipped: int = 0  # sent after clipping
    held: int = 0
    rejected: int = 0
    estopped: int = 0
    disabled: int = 0
    dropped_stale: int = 0
    dropped_old: int = 0
    poses_rejected: int = 0
    action_watchdog_trips: int = 0
    pose_watchdog_trips: int = 0
    clock_jumps: int = 0
    pose_jumps: int = 0  # poses that jumped implausibly (confirmed later or discarded)
    reseeds: int = 0  # targets (re-)seeded from the measured pose
    tracking_resets: int = 0  # holds because the target was outside the tracking bound
    gripper_deferred: int = 0  # gripper changes kept back (gripper.min_switch_interval_s)


_COUNTER_OF = {
    Outcome.EXECUTED: "executed",
    Outcome.CLIPPED: "clipped",
    Outcome.HELD: "held",
    Outcome.REJECTED: "rejected",
    Outcome.ESTOPPED: "estopped",
    Outcome.DISABLED: "disabled",
    Outcome.DROPPED_STALE: "dropped_stale",
    Outcome.DROPPED_OLD: "dropped_old",
}


@dataclass(frozen=True)
class ExecutorState:
    """Snapshot for the state message."""

    enabled: bool
    estopped: bool
    estop_reason: str
    mode: str
    command_type: str
    episode_id: int | None
    episode_steps: int
    target_pose: Pose | None
    measured_pose: Pose | None
    gripper_open: bool
    awaiting_done: bool
    pose_stale: bool
    action_stale: bool
    last_outcome: Outcome | None
    last_clip_flags: ClipFlag
    last_reason: str
    counters: Counters


@dataclass
class _Awaiting:
    step: int
    episode_id: int
    start_s: float
    deadline_s: float


@dataclass(frozen=True)
class _TwistMotion:
    """A twist sent to the arm: it moves ``origin`` toward ``goal`` at constant velocity
    from ``start_s`` until it is replaced or zeroed (the executor folds what ran)."""

    start_s: float
    duration_s: float  # n servo periods: the whole delta at the twist's velocity
    until_s: float  # the last tick time that re-publishes it
    origin: Pose
    goal: Pose
    rotvec: FloatArray
    twist: Twist

    def pose_at(self, t_s: float) -> Pose:
        """Where the twist has taken the target by ``t_s`` (not clamped at the goal: a late
        zero means the arm really ran longer)."""
        f = max(0.0, (t_s - self.start_s) / self.duration_s)
        pos = self.origin.position + f * (self.goal.position - self.origin.position)
        return Pose(pos, rotate_by_rotvec(self.origin.orientation, f * self.rotvec))


def _as_values(action: Any) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in np.asarray(action, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError, OverflowError):
        return ()


#: Why an action is rejected, and what ``enable()`` answers, until a first end-effector pose
#: has been confirmed by a second agreeing one (scripts poll ``~/enable`` for its absence).
NO_CONFIRMED_POSE = "no confirmed end-effector pose yet"


class ExecutorCore:
    """Pure executor: delta actions + measured poses in, safe commands out.

    Args:
        profile: the robot profile (limits, frames, gripper, timing).
        mode: ``"non_blocking"`` or ``"blocking"``; ``None`` takes ``profile.mode``.

    Raises:
        ConfigError: an unknown mode.
    """

    def __init__(self, profile: RobotProfile, mode: str | None = None) -> None:
        chosen = profile.mode if mode is None else mode
        if chosen not in MODES:
            raise ConfigError(f"executor mode {chosen!r} is not one of {MODES}")
        self.profile = profile
        self.mode = chosen
        self._safety = SafetyFilter(profile)
        self._gripper = GripperMapper(profile)
        self._counters = Counters()
        self._enabled = False
        self._estopped = False
        self._estop_reason = ""
        # measured arm and clocks
        self._poses = PoseMonitor(profile)
        self._clock = ClockJumpDetector(profile.clock_jump_threshold_s)
        self._events: list[str] = []  # to report at the next tick
        # speed: pose mode spends a token bucket of one control period
        period = profile.control_period_s
        self._lin_budget = SpeedBudget(
            profile.max_linear_speed_m_s, profile.max_linear_speed_m_s * period
        )
        self._rot_budget = SpeedBudget(
            profile.max_angular_speed_rad_s, profile.max_angular_speed_rad_s * period
        )
        n = max(1, math.floor(period * profile.servo_hz + 1e-9))
        self._twist_n = n
        # episode and target
        self._episode_id: int | None = None
        self._episode_steps = 0
        self._target: Pose | None = None
        self._motion: _TwistMotion | None = None
        self._seed_pending = False  # _target is a seed no step has started from yet
        # Pose mode: a hold target for the next tick to publish once (the controller's last
        # setpoint is beyond the tracking bound of the arm, or the arm was moved).
        self._hold_target: Pose | None = None
        self._pose_after_reset = False  # ~/reset: no action before a pose received after it
        self._session: Any = None
        self._last_stamp_s: float | None = None  # of the last executed action
        self._last_step: int | None = None
        self._min_action_stamp_s = -math.inf  # after a clock jump: older are in flight
        # watchdogs
        self._last_action_rx_s: float | None = None
        self._awaiting: _Awaiting | None = None
        self._pending_done: DoneReport | None = None
        self._pose_stale_reported = False
        self._action_stale_reported = True  # nothing to report before the first action
        self._last_pose_stale = True
        self._last_action_stale = True
        # last decision
        self._last_outcome: Outcome | None = None
        self._last_flags = ClipFlag.NONE
        self._last_reason = ""

    # ------------------------------------------------------------------ services
    def enable(self) -> CommandResult:
        """Allow motion. Refused while the e-stop is latched. The target is re-seeded and
        the last-action stamp forgotten (a restarted clock must not keep actions out)."""
        if self._estopped:
            return CommandResult(
                False, f"e-stop is latched ({self._estop_reason}); release it first"
            )
        if self._enabled:
            return CommandResult(
                True, "already enabled" + self._pose_note("measured pose confirmed")
            )
        self._enabled = True
        self._drop_target()
        self._last_stamp_s, self._last_step = None, None
        return CommandResult(
            True, "enabled" + self._pose_note("target re-seeds from the measured pose")
        )

    def _pose_note(self, confirmed: str) -> str:
        """Whether the next action can act: no confirmed pose yet (and why), or ``confirmed``."""
        if self._poses.measured is None:
            last = self._poses.last_problem
            return f"; {NO_CONFIRMED_POSE}" + (f" ({last})" if last else "")
        return "; " + confirmed

    def disable(self) -> CommandResult:
        """Stop motion: hold, publish nothing (zero twist). Does not touch the e-stop."""
        was = self._enabled
        self._enabled = False
        self._stop_motion("executor disabled")
        return CommandResult(True, "disabled" if was else "already disabled")

    def estop(self, reason: str = "e-stop requested") -> CommandResult:
        """Latch the e-stop: hold until :meth:`release_estop`. A software latch, not a
        hardware e-stop: it stops commands, it cannot brake the robot."""
        self._estopped = True
        self._estop_reason = reason or "e-stop requested"
        self._stop_motion(f"e-stop: {self._estop_reason}")
        return CommandResult(True, f"e-stop latched: {self._estop_reason}")

    def release_estop(self) -> CommandResult:
        """Clear the latch; the executor stays disabled until an explicit :meth:`enable`."""
        if not self._estopped:
            return CommandResult(True, "e-stop was not latched")
        self._estopped = False
        self._estop_reason = ""
        self._enabled = False
        self._drop_target()
        return CommandResult(True, "e-stop released; executor disabled, enable to move")

    def reset(self) -> CommandResult:
        """Start a new episode: step count 0, target re-seeded from the measured pose at
        the next action. The e-stop latch and enable state are kept.

        Clears every stamp guard: the newest pose stamp, the last executed action's stamp
        and step, the clock-jump cut-off and the policy session, so a robot, simulator or
        policy whose clock restarted is accepted again. Actions are held until a pose
        received after the reset is confirmed.
        """
        self._stop_motion("reset")
        self._episode_id = None
        self._episode_steps = 0
        self._poses.forget_stamps()
        # A pending pose jump was just forgotten: the pose before it must not be acted on
        # (the arm may have moved). Wait for a pose received after the reset; it is checked
        # against the last one as always (not a watchdog trip: the last pose is not stale).
        self._pose_after_reset = True
        self._last_stamp_s, self._last_step = None, None
        self._min_action_stamp_s = -math.inf
        self._session = None
        return CommandResult(True, "reset; next action starts a new episode")

    def on_clock_jump(self, now_s: float, ros_now_s: float, delta_s: float) -> str:
        """The node's ROS clock jumped by ``delta_s`` (rclpy's jump callback): hold, drop
        in-flight actions, re-seed from the next fresh pose. Returns the description."""
        jump = ClockJump(delta_s, ros_now_s)
        self._clock.rebase(now_s, ros_now_s)
        return self._clock_fault(jump)

    # ------------------------------------------------------------------ inputs
    def on_pose(
        self,
        pose: Pose | tuple[Sequence[float], Sequence[float]],
        stamp_s: float,
        now_s: float,
        frame_id: str | None = None,
        *,
        ros_now_s: float | None = None,
    ) -> PoseUpdate:
        """Record a measured end-effector pose (base frame).

        Args:
            pose: a :class:`Pose`, or ``(position, quaternion xyzw)`` to be validated here.
            stamp_s: the message's header stamp (ROS time, s).
            now_s: steady time now (s): the pose watchdog runs on receipt time.
            frame_id: the message's frame; if given it must be the profile's base frame.
            ros_now_s: the node's ROS clock now (default ``now_s``).
        """
        ros_now = now_s if ros_now_s is None else ros_now_s
        stopped = self._watch_clock(now_s, ros_now)
        u = self._judge_pose(pose, stamp_s, now_s, frame_id, ros_now)
        # A clock jump seen in this pose stopped a running twist: zero it now.
        return dataclasses.replace(u, stop_twist=True) if stopped else u

    def _judge_pose(
        self,
        pose: Pose | tuple[Sequence[float], Sequence[float]],
        stamp_s: float,
        now_s: float,
        frame_id: str | None,
        ros_now: float,
    ) -> PoseUpdate:
        if frame_id is not None and frame_id not in ("", self.profile.base_frame):
            return self._pose_rejected(
                f"pose frame '{frame_id}' is not the base frame '{self.profile.base_frame}'"
            )
        if not isinstance(pose, Pose):
            try:
                pose = Pose(
                    np.asarray(pose[0], dtype=np.float64), np.asarray(pose[1], dtype=np.float64)
                )
            except (ValueError, TypeError, IndexError) as exc:
                return self._pose_rejected(f"invalid pose: {exc}")
        verdict = self._poses.update(pose, stamp_s, now_s, ros_now)
        if not verdict.accepted:
            return self._pose_rejected(verdict.reason)
        if verdict.first:
            # The normal start (nothing to compare the first pose with): no jump, no warning.
            return PoseUpdate(True)
        if not verdict.confirmed:
            # The arm may have been moved (or the sensor glitched): stop any running twist
            # now; the target itself stays until the next pose decides.
            self._counters.pose_jumps += 1
            return PoseUpdate(True, verdict.reason, stop_twist=self._fold_motion(now_s))
        self._pose_after_reset = False
        if verdict.jumped:
            self._events.append("measured pose jump confirmed: holding, target re-seeds")
            moving = self._fold_motion(now_s)
            self._stop_motion("pose jump")
            self._hold_at(self._poses.measured)
            return PoseUpdate(True, stop_twist=moving)
        return PoseUpdate(True)

    def on_action(
        self,
        action: Sequence[float] | npt.NDArray[Any] | Any,
        stamp_s: float,
        step: int,
        episode_id: int,
        now_s: float,
        frame_id: str | None = None,
        *,
        ros_now_s: float | None = None,
        session: Any = None,
    ) -> Decision:
        """Decide what to do with one delta action; see ``docs/control.md`` for the order.

        Args:
            action: the 7 un-normalised values [dx dy dz (m) droll dpitch dyaw (rad) gripper].
            stamp_s: capture time of the image the action came from (ROS time, s).
            step: the policy's step index within the episode.
            episode_id: the policy's episode; a different one starts a new episode here.
            now_s: steady time now (s).
            frame_id: the frame the policy says the deltas are in; if given and not empty it
                must be the profile's base frame.
            ros_now_s: the node's ROS clock now (default ``now_s``).
            session: identifies the publishing policy process (the node passes the DDS
                publisher id); a change means a restarted policy: new episode, stamp
                guards cleared. ``None`` never changes it.
        """
        self._counters.received += 1
        ros_now = now_s if ros_now_s is None else ros_now_s
        stopped = self._watch_clock(now_s, ros_now)  # a clock jump stops a running twist
        was_moving = self._fold_motion(now_s) or stopped
        ctx = (_as_values(action), step, episode_id, stamp_s)
        refusal = self._admit(stamp_s, step, episode_id, ros_now, frame_id, session)
        if refusal is None:
            refusal = self._pose_problem(now_s, episode_id)
        if refusal is not None:
            d = self._finish(refusal[0], refusal[1], *ctx)
        else:
            d = self._execute(action, ctx, now_s)
        if was_moving and d.command is None:
            d = dataclasses.replace(d, stop_twist=True)
        return d

    # ------------------------------------------------------------------ timer
    def tick(self, now_s: float, *, ros_now_s: float | None = None) -> TickResult:
        """Run the watchdogs and blocking-mode done detection; call at ``servo_hz`` on a
        steady timer (``now_s`` steady; ``ros_now_s`` default ``now_s``)."""
        p = self.profile
        ros_now = now_s if ros_now_s is None else ros_now_s
        self._watch_clock(now_s, ros_now)
        events, self._events = self._events, []
        pose_stale = not self._poses.fresh(now_s)
        since_action = (
            math.inf if self._last_action_rx_s is None else now_s - self._last_action_rx_s
        )
        action_stale = not (0.0 <= since_action <= p.action_timeout_s)
        self._watchdog_events(pose_stale, action_stale, events)
        if not pose_stale and self._check_tracking(now_s, events):
            action_stale = True  # the motion was stopped: holding until the next action

        hold_reason = self._hold_reason(pose_stale, action_stale)
        done = self._pending_done
        self._pending_done = None
        if done is None and self._awaiting is not None:
            done = self._check_done(now_s, pose_stale)

        twist: Twist | None = None
        if p.command_type == "twist":
            m = self._motion
            moving = not hold_reason and m is not None and now_s <= m.until_s + _TICK_EPS_S
            if not moving:
                # Once zero is published the delta is over: never resume the old twist.
                self._fold_motion(now_s)
            twist = m.twist if moving and m is not None else Twist.zero()
            if not hold_reason and not moving:
                hold_reason = "delta executed; waiting for the next action"
        target: Pose | None = None
        faulted = self._estopped or not self._enabled or pose_stale or self._poses.jump_pending
        if self._hold_target is not None and not faulted:
            target = self._hold_target  # once: the controller's old setpoint is out of bounds
        elif p.command_type == "pose" and p.republish_target and not faulted:
            target = self._target
        if target is self._hold_target or not self._poses.jump_pending:
            # Published, or void (e-stop, disable and a stale pose also drop it); a pending
            # pose jump only defers it (a confirmed one makes a new hold).
            self._hold_target = None
        return TickResult(twist, target, done, bool(hold_reason), hold_reason, tuple(events))

    # ------------------------------------------------------------------ state
    def state(self) -> ExecutorState:
        """A snapshot for the state message (counters copied)."""
        return ExecutorState(
            enabled=self._enabled,
            estopped=self._estopped,
            estop_reason=self._estop_reason,
            mode=self.mode,
            command_type=self.profile.command_type,
            episode_id=self._episode_id,
            episode_steps=self._episode_steps,
            target_pose=self._target,
            measured_pose=self._poses.measured,
            gripper_open=self._gripper.is_open,
            awaiting_done=self._awaiting is not None,
            pose_stale=self._last_pose_stale,
            action_stale=self._last_action_stale,
            last_outcome=self._last_outcome,
            last_clip_flags=self._last_flags,
            last_reason=self._last_reason,
            counters=dataclasses.replace(self._counters, gripper_deferred=self._gripper.deferred),
        )

    # ------------------------------------------------------------------ admission
    def _admit(
        self,
        stamp_s: float,
        step: int,
        episode_id: int,
        ros_now: float,
        frame_id: str | None,
        session: Any,
    ) -> tuple[Outcome, str] | None:
        """The checks that need no pose: latches, stamp, frame, age, order, episode."""
        p = self.profile
        if self._estopped:
            return Outcome.ESTOPPED, f"e-stop latched: {self._estop_reason}"
        if not self._enabled:
            return Outcome.DISABLED, "executor disabled; call enable"
        if not math.isfinite(stamp_s):
            return Outcome.REJECTED, f"action stamp {stamp_s} is not finite"
        if frame_id is not None and frame_id not in ("", p.base_frame):
            return Outcome.REJECTED, (
                f"action frame '{frame_id}' is not the base frame '{p.base_frame}': set the "
                "policy node's base_frame to the executor's frames.base"
            )
        if p.max_action_age_s > 0:
            age = ros_now - stamp_s
            if age > p.max_action_age_s:
                return Outcome.DROPPED_STALE, (
                    f"action image is {age:.3f} s old (max {p.max_action_age_s:g} s)"
                )
            if -age > p.max_clock_skew_s:
                return Outcome.DROPPED_STALE, (
                    f"action stamp is {-age:.3f} s in the future (max "
                    f"{p.max_clock_skew_s:g} s): camera and executor clocks differ (sync "
                    "them, or set watchdog.max_action_age_s to 0)"
                )
        if stamp_s < self._min_action_stamp_s:
            return Outcome.DROPPED_OLD, (
                f"action stamp {stamp_s:.3f} s is from before the ROS clock jump "
                f"({self._min_action_stamp_s:.3f} s): an in-flight action"
            )
        new_session = session is not None and session != self._session
        if new_session:
            self._session = session
            self._last_stamp_s, self._last_step = None, None
        if self._last_stamp_s is not None and stamp_s < self._last_stamp_s:
            return Outcome.DROPPED_OLD, (
                f"action stamp {stamp_s:.3f} s is older than the last executed "
                f"({self._last_stamp_s:.3f} s)"
            )
        if new_session or episode_id != self._episode_id:
            self._start_episode(episode_id)
        elif (
            self._last_step is not None
            and stamp_s == self._last_stamp_s
            and step <= self._last_step
        ):
            # Same image twice: only a later step (an action chunk) may follow.
            return Outcome.DROPPED_OLD, (
                f"step {step} of the same image is not after the last executed step "
                f"{self._last_step}"
            )
        return None

    def _pose_problem(self, now_s: float, episode_id: int) -> tuple[Outcome, str] | None:
        """Is there a fresh, confirmed measured pose to act on? (and steps left)"""
        p = self.profile
        pm = self._poses
        if pm.measured is None:
            extra = f" ({pm.last_problem})" if pm.last_problem else ""
            return Outcome.REJECTED, f"{NO_CONFIRMED_POSE}{extra}"
        if not pm.fresh(now_s):
            self._stop_motion("pose stale")
            age = pm.age_s(now_s)
            extra = f"; last pose: {pm.last_problem}" if pm.last_problem else ""
            what = "none since the clock jump" if age == math.inf else f"{age:.3f} s old"
            return Outcome.HELD, (
                f"end-effector pose is stale ({what}, max {p.pose_timeout_s:g} s){extra}"
            )
        if pm.jump_pending:
            return Outcome.HELD, pm.last_problem
        if self._pose_after_reset:
            extra = f" (last pose: {pm.last_problem})" if pm.last_problem else ""
            return Outcome.HELD, f"reset: waiting for an end-effector pose received after it{extra}"
        if self._episode_steps >= p.max_steps_per_episode:
            return Outcome.HELD, (
                f"episode {episode_id} reached max steps ({p.max_steps_per_episode}); "
                "send a new instruction or reset"
            )
        return None

    # ------------------------------------------------------------------ execution
    def _reference(self) -> tuple[Pose | None, bool, tuple[Outcome, str] | None]:
        """The pose this step starts from: the current target if it is within the tracking
        bound of the measured arm, else (or if there is none) a fresh seed."""
        p = self.profile
        measured = self._poses.measured
        assert measured is not None
        if self._target is not None and not _inside_box(self._target.position, p):
            # Twist mode: a zero twist published late (timer jitter, a loaded PC) let the
            # arm run past its goal, out of the box; the integrated target says so. Never
            # step from it (the filter would refuse every action until ~/reset): re-seed
            # from the measured arm, clipped into the box.
            self._events.append(
                "twist ran past the workspace box (its zero was published late): target "
                "re-seeded from the measured pose"
            )
            self._drop_target()
        if self._target is not None:
            dm, dr = pose_distance(self._target, measured)
            if dm <= p.max_tracking_error_m and dr <= p.max_tracking_error_rad:
                return self._target, self._seed_pending, None
            self._counters.tracking_resets += 1
            self._drop_target()
            seed, why = seed_target(measured, p)
            if seed is None:
                return None, False, (Outcome.REJECTED, why)
            self._target = seed
            self._seed_pending = True  # the next step starts from this seed
            self._counters.reseeds += 1
            self._hold(seed)  # pose mode: the next tick has the controller hold here
            return (
                None,
                False,
                (
                    Outcome.HELD,
                    f"target was {dm:.3f} m / {dr:.3f} rad from the measured pose (max "
                    f"{p.max_tracking_error_m:g} m / {p.max_tracking_error_rad:g} rad): holding; "
                    "re-seeded from the measured pose",
                ),
            )
        seed, why = seed_target(measured, p)
        if seed is None:
            return None, False, (Outcome.REJECTED, why)
        self._counters.reseeds += 1
        # Kept even if this action is then rejected: the next step starts from the seed.
        self._target, self._seed_pending = seed, True
        return seed, True, None

    def _execute(
        self, action: Any, ctx: tuple[tuple[float, ...], int, int, float], now_s: float
    ) -> Decision:
        p = self.profile
        previous, reseeded, problem = self._reference()
        if problem is not None or previous is None:
            outcome, why = problem if problem is not None else (Outcome.REJECTED, "no target")
            return self._finish(outcome, why, *ctx)
        measured = self._poses.measured
        assert measured is not None
        result = self._safety.apply(action, previous, measured)
        if result.target is None or result.applied_action is None:
            return self._finish(Outcome.REJECTED, result.reason, *ctx)
        reasons = [result.reason] if result.reason else []
        target, flags = self._limit(
            previous, result.target, measured, now_s, reseeded, result.clip_flags, reasons
        )
        rotation = "rotvec" if p.command_type == "twist" else "rpy"
        if not step_within_limits(previous, target, p, rotation=rotation):
            # Cannot happen by construction (property-tested); never publish if it does.
            return self._finish(
                Outcome.REJECTED, "internal check failed: the target is not one legal step", *ctx
            )
        applied = np.empty(7, dtype=np.float64)
        applied[:6] = delta_between(previous, target)
        applied[6] = result.applied_action[6]
        command = self._commit(previous, target, reseeded, float(applied[6]), ctx[1:], now_s)
        return self._finish(
            Outcome.CLIPPED if flags else Outcome.EXECUTED,
            "; ".join(reasons),
            *ctx,
            flags=flags,
            command=command,
            applied=tuple(float(v) for v in applied),
        )

    def _limit(
        self,
        previous: Pose,
        candidate: Pose,
        measured: Pose,
        now_s: float,
        reseeded: bool,
        flags: ClipFlag,
        reasons: list[str],
    ) -> tuple[Pose, ClipFlag]:
        """The limits that need the measured arm, the time or the command type, applied to
        the safety filter's target (each only shrinks the step toward ``previous``)."""
        p = self.profile
        twist = p.command_type == "twist"
        pos, q = candidate.position.copy(), candidate.orientation
        step = p.step_limit_m
        if twist:
            # The twist integrates the rotation vector: limit it per axis (the filter's
            # limit is on extrinsic angles, which differ by up to ~10 %).
            rv = relative_rotvec(previous.orientation, q)
            if np.any(np.abs(rv) > p.step_limit_rad):
                rv = np.clip(rv, -p.step_limit_rad, p.step_limit_rad)
                q = rotate_by_rotvec(previous.orientation, rv)
                flags |= ClipFlag.STEP_ROTATION
                reasons.append(f"twist rotation vector clipped to +-{p.step_limit_rad:g} rad")
        if reseeded:
            # First step after a seed: within one step of the arm itself, not of the
            # (box-clipped) seed.
            lo = np.maximum(p.workspace_min, measured.position - step)
            hi = np.minimum(p.workspace_max, measured.position + step)
            clipped = np.clip(pos, lo, hi)
            if np.any(clipped != pos):
                flags |= ClipFlag.STEP_TRANSLATION
                reasons.append("first step after re-seeding: within one step of the arm")
                pos = clipped
        if twist:
            # The arm (measured) plus the motion still to come stays in the box.
            m = measured.position
            d = pos - previous.position
            d_lo = np.minimum(0.0, p.workspace_min - m)
            d_hi = np.maximum(0.0, p.workspace_max - m)
            d_ok = np.clip(d, d_lo, d_hi)
            if np.any(d_ok != d):
                flags |= ClipFlag.WORKSPACE
                reasons.append("twist clipped: the measured arm plus the motion stays in the box")
                pos = previous.position + d_ok
        pos, q, flags = self._speed_limit(previous, pos, q, now_s, flags, reasons)
        return self._recheck(previous, pos, q, measured, flags, reasons)

    def _speed_limit(
        self,
        previous: Pose,
        pos: FloatArray,
        q: FloatArray,
        now_s: float,
        flags: ClipFlag,
        reasons: list[str],
    ) -> tuple[FloatArray, FloatArray, ClipFlag]:
        """Scale the step so the commanded motion respects the speed limits (steady time)."""
        p = self.profile
        if p.command_type == "twist":
            duration = self._twist_n / p.servo_hz
            cap_lin = p.max_linear_speed_m_s * duration
            cap_rot = p.max_angular_speed_rad_s * duration
        else:
            cap_lin = self._lin_budget.available(now_s)
            cap_rot = self._rot_budget.available(now_s)
        d = pos - previous.position
        dist = float(np.linalg.norm(d))
        if dist > cap_lin:
            pos = previous.position + d * (cap_lin / dist)
            flags |= ClipFlag.SPEED
            reasons.append(
                f"translation {dist:.4f} m scaled to {cap_lin:.4f} m (max "
                f"{p.max_linear_speed_m_s:g} m/s)"
            )
        rv = relative_rotvec(previous.orientation, q)
        ang = float(np.linalg.norm(rv))
        if ang > cap_rot:
            q = rotate_by_rotvec(previous.orientation, rv * (cap_rot / ang))
            flags |= ClipFlag.SPEED
            reasons.append(
                f"rotation {ang:.4f} rad scaled to {cap_rot:.4f} rad (max "
                f"{p.max_angular_speed_rad_s:g} rad/s)"
            )
        return pos, q, flags

    def _recheck(
        self,
        previous: Pose,
        pos: FloatArray,
        q: FloatArray,
        measured: Pose,
        flags: ClipFlag,
        reasons: list[str],
    ) -> tuple[Pose, ClipFlag]:
        """Scaling and per-axis clips can leave the orientation or tracking bound where the
        filter's target was inside: hold that part (``previous`` satisfies both)."""
        p = self.profile
        if (
            orientation_violation(q, p)
            > max(0.0, orientation_violation(previous.orientation, p)) + 1e-9
        ):
            q = previous.orientation
            flags |= ClipFlag.ORIENTATION
            reasons.append("rotation held: the orientation bound")
        if p.command_type == "twist":
            # A twist turns the *arm* by the delta, and the arm may be up to the tracking
            # bound from the target (hand guided, lagging): like the box, the measured arm
            # turned by it must not move further outside the orientation bound.
            arm_q = measured.orientation
            turned = rotate_by_rotvec(arm_q, relative_rotvec(previous.orientation, q))
            if orientation_violation(turned, p) > max(0.0, orientation_violation(arm_q, p)) + 1e-9:
                q = previous.orientation
                flags |= ClipFlag.ORIENTATION
                reasons.append(
                    "twist rotation held: the measured arm would leave the orientation bound"
                )
        err = float(np.linalg.norm(pos - measured.position))
        if err > p.max_tracking_error_m:
            pos = previous.position
            flags |= ClipFlag.TRACKING_ERROR
            reasons.append("translation held: the tracking bound")
        target = Pose(pos, q)
        if pose_distance(target, measured)[1] > p.max_tracking_error_rad:
            target = target.with_orientation(previous.orientation)
            flags |= ClipFlag.TRACKING_ERROR
            reasons.append("rotation held: the tracking bound")
        return target, flags

    def _commit(
        self,
        previous: Pose,
        target: Pose,
        reseeded: bool,
        gripper_value: float,
        ident: tuple[int, int, float],
        now_s: float,
    ) -> Command:
        """From here the action is executed (possibly clipped)."""
        p = self.profile
        step, episode_id, stamp_s = ident
        self._target = target
        self._seed_pending = False
        self._hold_target = None  # this action's target supersedes a hold not yet published
        self._last_stamp_s = stamp_s
        self._last_step = step
        self._episode_steps += 1
        self._last_action_rx_s = now_s
        gripper = self._gripper.update(gripper_value, now_s)
        twist: Twist | None = None
        if p.command_type == "twist":
            # Servo holds a twist from one publish to the next. Publish it n times (now
            # counts as the first) over n servo periods: its integral is at most the
            # applied delta whatever the action's phase vs the tick grid. A twist cut
            # short (next action, hold) counts only for the time it ran (_fold_motion).
            duration = self._twist_n / p.servo_hz
            rv = relative_rotvec(previous.orientation, target.orientation)
            twist = Twist((target.position - previous.position) / duration, rv / duration)
            self._motion = _TwistMotion(
                now_s,
                duration,
                now_s + (self._twist_n - 1) / p.servo_hz,
                previous,
                target,
                rv,
                twist,
            )
        else:
            self._lin_budget.spend(float(np.linalg.norm(target.position - previous.position)))
            self._rot_budget.spend(pose_distance(previous, target)[1])
        if self.mode == "blocking":
            self._awaiting = _Awaiting(step, episode_id, now_s, now_s + p.blocking_timeout_s)
        return Command(target, twist, gripper, p.base_frame, previous, reseeded)

    # ------------------------------------------------------------------ watchdogs
    def _watch_clock(self, now_s: float, ros_now_s: float) -> bool:
        """Detect a clock jump; True when it stopped a running twist (zero it now)."""
        jump = self._clock.check(now_s, ros_now_s)
        if jump is None:
            return False
        moving = self._motion is not None
        self._events.append(self._clock_fault(jump))
        return moving

    def _clock_fault(self, jump: ClockJump) -> str:
        """Hold, drop in-flight actions and everything timed on the old clock, re-seed."""
        self._counters.clock_jumps += 1
        text = (
            f"{jump.describe()}: holding; in-flight actions dropped; re-seeding from the "
            "next fresh pose"
        )
        self._stop_motion(text)
        self._poses.invalidate()
        self._last_stamp_s, self._last_step = None, None
        # Action stamps before the jump are in flight, when they are on this clock at all:
        # with max_action_age_s 0 they are on the camera's own clock, which did not jump
        # (a cut-off from ours would drop all of them until ~/reset); a fresh pose after
        # the jump is then what holds the arm.
        synced = self.profile.max_action_age_s > 0
        self._min_action_stamp_s = jump.ros_now_s if synced else -math.inf
        self._last_outcome, self._last_flags, self._last_reason = Outcome.HELD, ClipFlag.NONE, text
        return text

    def _watchdog_events(self, pose_stale: bool, action_stale: bool, events: list[str]) -> None:
        p = self.profile
        if pose_stale and not self._pose_stale_reported:
            self._counters.pose_watchdog_trips += 1
            why = f" (last pose: {self._poses.last_problem})" if self._poses.last_problem else ""
            events.append(
                f"pose watchdog: no fresh end-effector pose for > {p.pose_timeout_s:g} s{why}; "
                "holding, target re-seeds"
            )
            self._stop_motion("pose stale")
        elif not pose_stale and self._pose_stale_reported:
            events.append("pose watchdog: pose fresh again")
        self._pose_stale_reported = pose_stale
        if action_stale and not self._action_stale_reported:
            self._counters.action_watchdog_trips += 1
            events.append(f"action watchdog: no new action for > {p.action_timeout_s:g} s; holding")
        self._action_stale_reported = action_stale
        self._last_pose_stale, self._last_action_stale = pose_stale, action_stale

    def _check_tracking(self, now_s: float, events: list[str]) -> bool:
        """The (effective) target left the tracking bound of the measured arm (pushed,
        blocked, moved by someone else): stop and re-seed at the next action. True if so."""
        p = self.profile
        measured = self._poses.measured
        target = self._motion.pose_at(now_s) if self._motion is not None else self._target
        if measured is None or target is None:
            return False
        dm, dr = pose_distance(target, measured)
        if dm > p.max_tracking_error_m or dr > p.max_tracking_error_rad:
            self._counters.tracking_resets += 1
            events.append(
                f"tracking: target {dm:.3f} m / {dr:.3f} rad from the measured pose (max "
                f"{p.max_tracking_error_m:g} m / {p.max_tracking_error_rad:g} rad); holding, "
                "target re-seeds"
            )
            self._stop_motion("tracking bound")
            self._hold_at(measured)
            return True
        return False

    def _hold_at(self, measured: Pose | None) -> None:
        """Pose mode: the arm left the tracking bound of the last published target (pushed,
        blocked, moved by another controller), so the controller would pull it back there.
        Have the next tick publish the measured pose (clipped into the box, as a seed) once:
        the controller then holds where the arm is (twist mode publishes zero instead). The
        target stays dropped: the next action re-seeds from the pose measured then. An arm
        outside the workspace box by more than one step gets nothing (nothing outside the
        box is ever commanded)."""
        if measured is not None:
            self._hold(seed_target(measured, self.profile)[0])

    def _hold(self, seed: Pose | None) -> None:
        """Pose mode: the next tick publishes ``seed`` once (see :meth:`_hold_at`)."""
        if self.profile.command_type == "pose":
            self._hold_target = seed

    def _hold_reason(self, pose_stale: bool, action_stale: bool) -> str:
        if self._estopped:
            return f"e-stop latched: {self._estop_reason}"
        if not self._enabled:
            return "executor disabled"
        if pose_stale:
            why = f" ({self._poses.last_problem})" if self._poses.last_problem else ""
            return f"end-effector pose stale{why}"
        if self._poses.jump_pending:
            return "end-effector pose jumped: holding until the next pose confirms or discards it"
        if action_stale:
            return "no fresh action"
        return ""

    # ------------------------------------------------------------------ internals
    def _pose_rejected(self, reason: str) -> PoseUpdate:
        self._counters.poses_rejected += 1
        # Say why when poses arrive but none counts (e.g. a frame mismatch), not "none".
        self._poses.last_problem = reason
        return PoseUpdate(False, reason)

    def _drop_target(self) -> None:
        # The next action re-seeds from the measured pose (the arm may have been moved).
        self._target = None
        self._motion = None
        self._seed_pending = False
        self._hold_target = None

    def _fold_motion(self, now_s: float) -> bool:
        """End the running twist at ``now_s``: the target becomes what it executed."""
        m = self._motion
        if m is None:
            return False
        self._target = m.pose_at(now_s)
        self._motion = None
        return True

    def _stop_motion(self, why: str) -> None:
        del why
        self._last_action_rx_s = None
        self._drop_target()
        if self._awaiting is not None:
            a = self._awaiting
            self._pending_done = DoneReport(
                a.step, a.episode_id, DoneStatus.ABORTED, 0.0, math.nan, math.nan
            )
            self._awaiting = None

    def _start_episode(self, episode_id: int) -> None:
        hold = self._hold_target  # a new episode still commands: a due hold stays due
        self._stop_motion("new episode")
        self._hold_target = hold
        self._pending_done = None  # the old episode's policy no longer waits
        self._episode_id = episode_id
        self._episode_steps = 0
        self._last_step = None

    def _check_done(self, now_s: float, pose_stale: bool) -> DoneReport | None:
        a = self._awaiting
        assert a is not None
        err_m, err_rad = math.nan, math.nan
        measured = self._poses.measured
        if measured is not None and self._target is not None:
            err_m, err_rad = pose_distance(measured, self._target)
        p = self.profile
        status: DoneStatus | None = None
        if not pose_stale and err_m <= p.reached_tolerance_m and err_rad <= p.reached_tolerance_rad:
            status = DoneStatus.REACHED
        elif now_s >= a.deadline_s:
            status = DoneStatus.TIMED_OUT
        if status is None:
            return None
        self._awaiting = None
        return DoneReport(a.step, a.episode_id, status, now_s - a.start_s, err_m, err_rad)

    def _finish(
        self,
        outcome: Outcome,
        reason: str,
        original: tuple[float, ...],
        step: int,
        episode_id: int,
        stamp_s: float,
        *,
        flags: ClipFlag = ClipFlag.NONE,
        command: Command | None = None,
        applied: tuple[float, ...] | None = None,
    ) -> Decision:
        name = _COUNTER_OF[outcome]
        setattr(self._counters, name, getattr(self._counters, name) + 1)
        self._last_outcome, self._last_flags, self._last_reason = outcome, flags, reason
        done = None
        if command is None and self.mode == "blocking":
            done = DoneReport(step, episode_id, DoneStatus.NOT_EXECUTED, 0.0, math.nan, math.nan)
        return Decision(
            outcome, flags, reason, command, original, applied, step, episode_id, stamp_s, done
        )
