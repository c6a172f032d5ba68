# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Executor state machine: enable/e-stop/reset, watchdogs, blocking done, ordering, invariants."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openvla_ros.control.executor_core import DoneStatus, ExecutorCore, Twist
from openvla_ros.control.profile import RobotProfile
from openvla_ros.control.safety import ClipFlag, Outcome, nominal_quat, step_within_limits
from openvla_ros.control.se3 import Pose, quat_conjugate, quat_multiply, quat_to_rotvec
from openvla_ros.errors import ConfigError

HOME = Pose.from_xyz_rpy([0.45, 0.0, 0.25], [math.pi, 0.0, 0.0])
SMALL = [0.01, 0.0, -0.01, 0.0, 0.0, 0.05, 1.0]


def ready(profile: RobotProfile, mode: str | None = None, now: float = 10.0) -> ExecutorCore:
    core = ExecutorCore(profile, mode)
    assert core.on_pose(HOME, now - 0.002, now - 0.002).accepted  # the first pose waits for
    assert not core.on_pose(HOME, now, now).reason  # a second that agrees with it
    assert core.enable().success
    return core


def test_starts_disabled_and_publishes_nothing(profile: RobotProfile) -> None:
    core = ExecutorCore(profile)
    core.on_pose(HOME, 10.0, 10.0)
    d = core.on_action(SMALL, 10.0, 0, 1, 10.0)
    assert d.outcome is Outcome.DISABLED and d.command is None
    t = core.tick(10.0)
    assert t.holding and t.twist is None and t.target_pose is None
    assert core.state().counters.disabled == 1


def test_no_pose_yet_is_rejected(profile: RobotProfile) -> None:
    core = ExecutorCore(profile)
    core.enable()
    d = core.on_action(SMALL, 10.0, 0, 1, 10.0)
    assert d.outcome is Outcome.REJECTED and d.reason == "no confirmed end-effector pose yet"


def test_the_first_pose_alone_is_never_acted_on(profile: RobotProfile) -> None:
    # One wrong sample at start-up (a TF glitch, a stale latched message) must not seed a
    # target: the first pose waits for a second that agrees with it.
    core = ExecutorCore(profile)
    assert core.enable().success
    jump = profile.max_tracking_error_m + 0.05  # further than any real motion between poses
    glitch = HOME.with_position(HOME.position + np.array([0.0, 0.0, jump]))
    first = core.on_pose(glitch, 10.0, 10.0)
    assert first.accepted and not first.reason  # the normal start: no warning, no jump
    assert core.state().counters.pose_jumps == 0
    d = core.on_action(SMALL, 10.0, 0, 1, 10.0)
    assert d.outcome is Outcome.REJECTED and d.command is None
    assert "first pose waits for a second" in d.reason, d.reason
    # The real arm's poses follow: the glitch disagrees with them and is never used.
    second = core.on_pose(HOME, 10.01, 10.01)
    assert "from the one before" in second.reason, second.reason  # logged by the node
    assert core.state().counters.pose_jumps == 1
    assert core.on_action(SMALL, 10.01, 1, 1, 10.01).command is None
    assert not core.on_pose(HOME, 10.02, 10.02).reason  # two that agree: the arm is here
    d = core.on_action(SMALL, 10.02, 2, 1, 10.02)
    assert d.command is not None and d.command.target_pose is not None
    step = d.command.target_pose.position - HOME.position
    assert np.all(np.abs(step) <= profile.step_limit_m + 1e-9), step


def test_executes_onto_previous_target_not_measured_pose(profile: RobotProfile) -> None:
    core = ready(profile)
    d1 = core.on_action([0.02, 0, 0, 0, 0, 0, 1], 10.0, 0, 1, 10.0)
    assert d1.outcome is Outcome.EXECUTED and d1.command is not None
    np.testing.assert_allclose(d1.command.target_pose.position, [0.47, 0.0, 0.25])
    assert d1.command.frame_id == "base"
    # The arm has not moved yet (measured still HOME): the next delta adds to the target.
    core.on_pose(HOME, 10.1, 10.1)
    d2 = core.on_action([0.02, 0, 0, 0, 0, 0, 1], 10.2, 1, 1, 10.2)
    assert d2.command is not None
    np.testing.assert_allclose(d2.command.target_pose.position, [0.49, 0.0, 0.25])
    s = core.state()
    assert s.counters.executed == 2 and s.episode_steps == 2 and s.last_outcome is Outcome.EXECUTED


def test_clip_is_reported_in_decision_and_state(profile: RobotProfile) -> None:
    core = ready(profile)
    d = core.on_action([0.3, 0, 0, 0, 0, 0, 1], 10.0, 0, 1, 10.0)
    assert d.outcome is Outcome.CLIPPED and d.clip_flags == ClipFlag.STEP_TRANSLATION
    assert d.original_action[0] == 0.3 and d.applied_action is not None
    assert d.applied_action[0] == pytest.approx(0.05)
    s = core.state()
    assert s.counters.clipped == 1 and s.last_clip_flags == ClipFlag.STEP_TRANSLATION
    assert "clipped" in s.last_reason


def test_bad_actions_are_rejected_counted_and_hold(profile: RobotProfile) -> None:
    core = ready(profile)
    for i, bad in enumerate(([math.nan] * 7, [0.0] * 3, "x", None)):
        d = core.on_action(bad, 10.0, i, 1, 10.0)
        assert d.outcome is Outcome.REJECTED and d.command is None and d.reason
    assert core.state().counters.rejected == 4 and core.state().target_pose == HOME


def test_estop_latch_survives_everything_but_release(profile: RobotProfile) -> None:
    core = ready(profile)
    core.estop("operator pressed the button")
    for call in (core.enable, core.disable, core.reset, core.enable):
        call()
        assert core.state().estopped
        d = core.on_action(SMALL, 10.0, 0, 1, 10.0)
        assert d.outcome is Outcome.ESTOPPED and d.command is None
    assert not core.enable().success
    assert "operator pressed" in core.state().estop_reason
    assert core.release_estop().success
    s = core.state()
    assert not s.estopped and not s.enabled  # release does not move anything by itself
    assert core.on_action(SMALL, 10.0, 0, 1, 10.0).outcome is Outcome.DISABLED
    core.enable()
    # After the reset above an action needs a pose received after it.
    assert core.on_action(SMALL, 10.0, 0, 1, 10.0).outcome is Outcome.HELD
    assert core.on_pose(HOME, 10.0, 10.0).accepted
    assert core.on_action(SMALL, 10.0, 0, 1, 10.0).outcome is Outcome.EXECUTED


def test_disable_then_enable_reseeds_from_measured_pose(profile: RobotProfile) -> None:
    core = ready(profile)
    core.on_action(SMALL, 10.0, 0, 1, 10.0)
    core.disable()
    moved = HOME.with_position([0.5, 0.1, 0.3])  # moved by hand while disabled
    core.on_pose(moved, 11.0, 11.0)
    core.enable()
    d = core.on_action([0, 0, 0, 0, 0, 0, 1], 11.0, 1, 1, 11.0)
    assert d.command is not None and d.command.target_pose == moved


def test_action_watchdog_holds_and_zeroes_twist(profile: RobotProfile) -> None:
    core = ready(profile.replace(command_type="twist"))
    d = core.on_action([0.02, 0, 0, 0, 0, 0.1, 1], 10.0, 0, 1, 10.0)
    assert d.command is not None and d.command.twist is not None
    np.testing.assert_allclose(d.command.twist.linear_mps, [0.1, 0, 0])  # 0.02 m * 5 Hz
    np.testing.assert_allclose(d.command.twist.angular_radps, [0, 0, 0.5], atol=1e-12)
    core.on_pose(HOME, 10.1, 10.1)
    t = core.tick(10.1)
    assert not t.holding and t.twist is not None and not t.twist.is_zero  # re-published
    core.on_pose(HOME, 10.25, 10.25)
    t = core.tick(10.25)  # one control period (0.2 s) later: delta done, zero
    assert t.twist is not None and t.twist.is_zero and t.holding
    core.on_pose(HOME, 11.1, 11.1)
    t = core.tick(11.1)  # action_timeout_s (1 s) passed
    assert t.twist is not None and t.twist.is_zero and t.holding
    assert t.hold_reason == "no fresh action" and any("action watchdog" in e for e in t.events)
    assert not core.tick(11.12).events  # reported once
    assert core.state().counters.action_watchdog_trips == 1


def test_pose_watchdog_holds_and_refuses_actions(profile: RobotProfile) -> None:
    core = ready(profile.replace(command_type="twist"))
    core.on_action(SMALL, 10.0, 0, 1, 10.0)
    t = core.tick(10.3)  # pose_timeout_s 0.25 s
    assert t.holding and t.twist is not None and t.twist.is_zero
    assert any("pose watchdog" in e for e in t.events)
    d = core.on_action(SMALL, 10.3, 1, 1, 10.3)
    assert d.outcome is Outcome.HELD and "stale" in d.reason and d.command is None
    core.on_pose(HOME, 10.35, 10.35)
    assert core.on_action(SMALL, 10.35, 2, 1, 10.35).outcome is Outcome.EXECUTED


def test_stale_and_old_actions_are_dropped(profile: RobotProfile) -> None:
    core = ready(profile)
    old = core.on_action(SMALL, 8.0, 0, 1, 10.0)  # image 2 s old (max 1 s)
    assert old.outcome is Outcome.DROPPED_STALE
    assert core.on_action(SMALL, 9.9, 1, 1, 10.0).outcome is Outcome.EXECUTED
    assert core.on_action(SMALL, 9.8, 2, 1, 10.0).outcome is Outcome.DROPPED_OLD
    assert core.on_action(SMALL, 9.9, 1, 1, 10.0).outcome is Outcome.DROPPED_OLD  # duplicate
    assert core.on_action(SMALL, 9.9, 2, 1, 10.0).outcome is Outcome.EXECUTED  # chunk: same image
    future = core.on_action(SMALL, 12.0, 3, 1, 10.0)
    assert future.outcome is Outcome.DROPPED_STALE and "future" in future.reason
    c = core.state().counters
    assert (c.dropped_stale, c.dropped_old, c.executed) == (2, 2, 2)


def test_new_episode_reseeds_and_late_old_episode_actions_drop(profile: RobotProfile) -> None:
    core = ready(profile)
    core.on_action([0.05, 0, 0, 0, 0, 0, 1], 10.0, 0, 1, 10.0)
    core.on_pose(HOME, 10.2, 10.2)
    d = core.on_action([0, 0, 0, 0, 0, 0, 1], 10.2, 0, 2, 10.2)  # new instruction
    assert d.command is not None and d.command.target_pose == HOME  # re-seeded, not 0.5
    assert core.state().episode_id == 2 and core.state().episode_steps == 1
    late = core.on_action(SMALL, 10.1, 5, 1, 10.25)  # in flight from episode 1
    assert late.outcome is Outcome.DROPPED_OLD and core.state().episode_id == 2


def test_max_steps_per_episode_holds(profile: RobotProfile) -> None:
    core = ready(profile.replace(max_steps_per_episode=3))
    outcomes = []
    for i in range(5):
        now = 10.0 + 0.01 * i
        core.on_pose(HOME, now, now)
        outcomes.append(core.on_action([0, 0, 0, 0, 0, 0, 1], now, i, 7, now).outcome)
    assert outcomes[:3] == [Outcome.EXECUTED] * 3 and outcomes[3:] == [Outcome.HELD] * 2
    core.reset()
    core.on_pose(HOME, 10.05, 10.05)  # a reset needs a pose received after it
    assert core.on_action([0, 0, 0, 0, 0, 0, 1], 10.05, 0, 7, 10.05).outcome is Outcome.EXECUTED


def test_blocking_done_when_reached(profile: RobotProfile) -> None:
    core = ready(profile, "blocking")
    d = core.on_action([0.02, 0, 0, 0, 0, 0, 1], 10.0, 4, 1, 10.0)
    assert d.command is not None and d.done is None and core.state().awaiting_done
    core.on_pose(HOME, 10.1, 10.1)
    assert core.tick(10.1).done is None  # not there yet
    core.on_pose(d.command.target_pose.with_position([0.465, 0.0, 0.25]), 10.3, 10.3)
    done = core.tick(10.3).done
    assert done is not None and done.status is DoneStatus.REACHED and done.step == 4
    assert done.translation_error_m == pytest.approx(0.005) and done.elapsed_s == pytest.approx(0.3)
    assert core.tick(10.32).done is None  # reported once


def test_blocking_done_on_timeout(profile: RobotProfile) -> None:
    core = ready(profile, "blocking")
    core.on_action([0.02, 0, 0, 0, 0, 0, 1], 10.0, 0, 1, 10.0)
    for k in range(1, 10):  # up to 11.8 s: before blocking.timeout_s (2 s)
        core.on_pose(HOME, 10.0 + 0.2 * k, 10.0 + 0.2 * k)  # the arm never moves
        assert core.tick(10.0 + 0.2 * k).done is None
    core.on_pose(HOME, 12.1, 12.1)
    done = core.tick(12.1).done
    assert done is not None and done.status is DoneStatus.TIMED_OUT
    assert done.translation_error_m == pytest.approx(0.02)
    assert core.tick(12.15).done is None and not core.state().awaiting_done


def test_blocking_timeout_reports_status(profile: RobotProfile) -> None:
    core = ready(profile, "blocking")
    core.on_action([0.02, 0, 0, 0, 0, 0, 1], 10.0, 0, 1, 10.0)
    core.on_pose(HOME, 12.0, 12.0)
    done = core.tick(12.0).done
    assert done is not None and done.status is DoneStatus.TIMED_OUT


def test_blocking_not_executed_and_aborted(profile: RobotProfile) -> None:
    core = ready(profile, "blocking")
    d = core.on_action([math.nan] * 7, 10.0, 0, 1, 10.0)
    assert d.done is not None and d.done.status is DoneStatus.NOT_EXECUTED
    core.on_action(SMALL, 10.0, 1, 1, 10.0)
    core.estop("test")
    done = core.tick(10.05).done
    assert done is not None and done.status is DoneStatus.ABORTED


def test_gripper_command_follows_hysteresis(profile: RobotProfile) -> None:
    core = ready(profile)
    cmds = []
    for i, g in enumerate((1.0, 0.45, 0.3, 0.55, 0.7)):
        d = core.on_action([0, 0, 0, 0, 0, 0, g], 10.0 + i * 0.01, i, 1, 10.0 + i * 0.01)
        assert d.command is not None
        cmds.append((d.command.gripper.is_open, d.command.gripper.changed))
    assert cmds == [(True, False), (True, False), (False, True), (False, False), (True, True)]


def test_republish_target_and_pose_frame_check(profile: RobotProfile) -> None:
    core = ready(profile.replace(republish_target=True))
    assert core.tick(10.0).target_pose is None  # nothing executed yet
    d = core.on_action(SMALL, 10.0, 0, 1, 10.0)
    assert d.command is not None and core.tick(10.01).target_pose == d.command.target_pose
    assert not core.on_pose(HOME, 10.02, 10.02, frame_id="world").accepted
    bad = core.on_pose(([0, 0, 0], [0, 0, 0, 0]), 10.02, 10.02)
    assert not bad.accepted and "invalid pose" in bad.reason
    assert not core.on_pose(HOME, 9.0, 10.02).accepted  # older stamp
    assert core.state().counters.poses_rejected == 3


def test_unknown_mode_is_a_config_error(profile: RobotProfile) -> None:
    with pytest.raises(ConfigError, match="mode"):
        ExecutorCore(profile, "turbo")


def test_measured_pose_far_outside_the_box_is_refused(profile: RobotProfile) -> None:
    core = ExecutorCore(profile)
    core.enable()
    core.on_pose(HOME.with_position([1.5, 0, 0.2]), 9.99, 9.99)
    core.on_pose(HOME.with_position([1.5, 0, 0.2]), 10.0, 10.0)
    d = core.on_action(SMALL, 10.0, 0, 1, 10.0)
    assert d.outcome is Outcome.REJECTED and "outside the workspace box" in d.reason


# ---------------------------------------------------------------------- properties
anything = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=9),
    st.lists(st.floats(-0.5, 0.5), min_size=7, max_size=7),
    st.lists(st.floats(-1e9, 1e9), min_size=7, max_size=7),
)
xyz = st.tuples(st.floats(-0.5, 1.5), st.floats(-1.0, 1.0), st.floats(-0.3, 1.0))
rpy = st.tuples(st.floats(-3.1, 3.1), st.floats(-1.5, 1.5), st.floats(-3.1, 3.1))
action_event = st.tuples(
    st.just("action"),
    anything,
    st.sampled_from([1, 1, 1, 2]),  # mostly one episode, sometimes a new one
    st.one_of(st.just(0.0), st.floats(-1.5, 0.5)),  # stamp offset: mostly fresh
)
event = st.one_of(
    action_event,
    action_event,
    action_event,
    st.tuples(st.just("pose_near_target"), st.floats(-0.01, 0.01)),
    st.tuples(st.just("pose_near_target"), st.floats(-0.01, 0.01)),
    st.tuples(st.just("pose"), xyz, rpy),
    st.tuples(st.just("tick")),
    st.tuples(st.sampled_from(["enable", "enable", "disable", "estop", "release", "reset"])),
)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(event, min_size=5, max_size=40),
    twist=st.booleans(),
    blocking=st.booleans(),
)
def test_executor_never_emits_an_unsafe_command(  # type: ignore[no-untyped-def]
    profile: RobotProfile, events: list[tuple[Any, ...]], twist: bool, blocking: bool
) -> None:
    p = profile.replace(command_type="twist" if twist else "pose")
    core = ExecutorCore(p, "blocking" if blocking else "non_blocking")
    now, step = 10.0, 0
    core.on_pose(HOME, now, now)
    core.enable()
    max_lin = p.max_linear_speed_m_s + 1e-9
    max_ang = p.max_angular_speed_rad_s + 1e-9
    for ev in events:
        now += 0.05
        kind = ev[0]
        if kind == "action":
            _, action, episode, stamp_offset = ev
            step += 1
            before = core.state()
            d = core.on_action(action, now + stamp_offset, step, episode, now)
            if d.command is None:
                continue
            assert before.enabled and not before.estopped
            assert d.outcome in (Outcome.EXECUTED, Outcome.CLIPPED)
            ref = d.command.reference_pose
            assert ref is not None
            if d.command.reseeded:  # seeded from a measured pose (test_control_invariants)
                assert before.measured_pose is not None
            rotation = "rotvec" if twist else "rpy"
            assert step_within_limits(ref, d.command.target_pose, p, rotation=rotation)
            if d.command.twist is not None:
                assert np.linalg.norm(d.command.twist.linear_mps) <= max_lin
                assert np.linalg.norm(d.command.twist.angular_radps) <= max_ang
        elif kind == "pose":
            core.on_pose(Pose.from_xyz_rpy(ev[1], ev[2]), now, now)
        elif kind == "pose_near_target":
            target = core.state().target_pose or HOME
            core.on_pose(target.with_position(target.position + ev[1]), now, now)
        elif kind == "tick":
            t = core.tick(now)
            s = core.state()
            if s.estopped or not s.enabled:
                assert t.holding and t.target_pose is None
                assert t.twist is None or t.twist.is_zero
        else:
            {
                "enable": core.enable,
                "disable": core.disable,
                "estop": core.estop,
                "release": core.release_estop,
                "reset": core.reset,
            }[kind]()


# ------------------------------------------------------ twist mode: no stale motion
def _not_executed(core: ExecutorCore, how: str) -> Outcome:
    """Make the core decide on an action that is not executed, in the way ``how``."""
    if how == "rejected":
        return core.on_action([math.nan] * 7, 10.05, 1, 1, 10.05).outcome
    if how == "dropped_old":
        return core.on_action(SMALL, 9.99, 1, 1, 10.05).outcome
    if how == "dropped_stale":
        return core.on_action(SMALL, 5.0, 1, 1, 10.05).outcome
    assert how == "held"  # max steps reached (the pose is fresh, so only that holds)
    return core.on_action(SMALL, 10.05, 1, 1, 10.05).outcome


@pytest.mark.parametrize("how", ["rejected", "dropped_old", "dropped_stale", "held"])
def test_twist_is_zeroed_by_an_action_that_is_not_executed(profile: RobotProfile, how: str) -> None:
    p = profile.replace(command_type="twist", max_steps_per_episode=1)
    core = ready(p)
    d = core.on_action(SMALL, 10.0, 0, 1, 10.0)
    assert d.command is not None and d.command.twist is not None
    assert not d.command.twist.is_zero
    core.on_pose(HOME, 10.05, 10.05)
    assert _not_executed(core, how) not in (Outcome.EXECUTED, Outcome.CLIPPED)
    t = core.tick(10.06)  # well inside the old delta's control period
    assert t.twist is not None and t.twist.is_zero and t.holding


def _integrate(publishes: list[tuple[float, Any]], t0: float, t1: float) -> np.ndarray:
    """Integral over [t0, t1) of a twist held from each publish to the next (6-vector)."""
    total = np.zeros(6)
    for i, (t, tw) in enumerate(publishes):
        end = publishes[i + 1][0] if i + 1 < len(publishes) else math.inf
        lo, hi = max(t, t0), min(end, t1)
        if hi > lo:
            total += np.concatenate([tw.linear_mps, tw.angular_radps]) * (hi - lo)
    return total


@settings(max_examples=150, deadline=None)
@given(
    rates=st.sampled_from(
        [
            (5.0, 50.0),
            (5.0, 100.0),
            (3.0, 50.0),
            (5.0, 47.0),
            (4.2, 62.5),
            (10.0, 50.0),
            (2.5, 30.0),
            (5.0, 5.0),
            (5.0, 7.0),
        ]
    ),
    first=st.floats(0.0, 1.0),
    gaps=st.lists(st.floats(0.0, 2.0), min_size=0, max_size=3),
    actions=st.lists(
        st.lists(st.floats(-0.08, 0.08, allow_subnormal=False), min_size=6, max_size=6),
        min_size=4,
        max_size=4,
    ),
)
def test_twist_integral_never_exceeds_the_applied_delta(  # type: ignore[no-untyped-def]
    profile: RobotProfile,
    rates: tuple[float, float],
    first: float,
    gaps: list[float],
    actions: list[list[float]],
) -> None:
    """Servo integrates each published twist until the next publish: per action, that
    integral stays within the applied delta, and nearly reaches it when nothing follows."""
    control_hz, servo_hz = rates
    p = profile.replace(command_type="twist", control_hz=control_hz, servo_hz=servo_hz)
    dt, period = 1.0 / servo_hz, 1.0 / control_hz
    n = max(1, math.floor(period * servo_hz + 1e-9))
    core = ready(p, now=10.0)
    # Action arrival times at arbitrary phases vs the tick grid 10 + k * dt.
    arrivals = [10.0 + first * dt]
    for gap in gaps:
        arrivals.append(arrivals[-1] + gap * period)
    end = arrivals[-1] + 2 * period + 2 * dt
    ticks = [10.0 + k * dt for k in range(1, int((end - 10.0) / dt) + 2)]
    publishes: list[tuple[float, Any]] = []
    executed: list[tuple[float, np.ndarray]] = []  # (time, applied delta as a 6-vector)
    events = sorted([(t, 0, i) for i, t in enumerate(arrivals)] + [(t, 1, 0) for t in ticks])
    for t, kind, i in events:  # at equal times the action comes first
        target = core.state().target_pose or HOME
        core.on_pose(target, t, t)  # measured = target: never stale, never off-track
        if kind == 1:
            r = core.tick(t)
            assert r.twist is not None
            publishes.append((t, r.twist))
            continue
        d = core.on_action([*actions[i], 1.0], t, i, 1, t)
        if d.command is None:
            if d.stop_twist:  # the node publishes a zero twist at once
                publishes.append((t, Twist.zero()))
            continue
        assert d.command.twist is not None
        # The step starts from what the arm executed of the previous twist (pre-empted
        # twists count only for the time they ran), or the seed.
        before = d.command.reference_pose
        assert before is not None
        publishes.append((t, d.command.twist))
        after = d.command.target_pose
        q = quat_multiply(after.orientation, quat_conjugate(before.orientation))
        delta = np.concatenate([after.position - before.position, quat_to_rotvec(q)])
        executed.append((t, delta))
    assert executed
    assert publishes[-1][1].is_zero  # the last delta ended in a hold
    for j, (t, delta) in enumerate(executed):
        t_next = executed[j + 1][0] if j + 1 < len(executed) else publishes[-1][0]
        moved = _integrate(publishes, t, t_next)
        assert np.all(np.abs(moved) <= np.abs(delta) + 1e-9), (moved, delta)
        if j + 1 == len(executed) and n >= 5:  # nothing follows: the delta (nearly) completes
            assert np.all(np.abs(moved) >= 0.8 * np.abs(delta) - 1e-9), (moved, delta)
            assert np.all(np.abs(moved) >= (n - 1) / n * np.abs(delta) - 1e-9)


def test_action_in_another_frame_is_rejected(profile: RobotProfile) -> None:
    core = ready(profile)
    d = core.on_action(SMALL, 10.0, 0, 1, 10.0, frame_id="camera_link")
    assert d.outcome == Outcome.REJECTED and d.command is None
    assert "camera_link" in d.reason and profile.base_frame in d.reason
    # The base frame itself, or an unset frame (bag tools, older publishers), is accepted.
    assert core.on_action(SMALL, 10.1, 1, 1, 10.1, frame_id=profile.base_frame).command
    assert core.on_action(SMALL, 10.2, 2, 1, 10.2, frame_id="").command


def test_reset_recovers_from_a_pose_clock_that_went_backwards(profile: RobotProfile) -> None:
    core = ready(profile, now=100.0)
    assert not core.on_pose(HOME, 5.0, 100.1).accepted  # a restarted robot/sim clock
    assert core.reset().success
    assert core.on_pose(HOME, 5.1, 100.2).accepted


def test_after_a_reset_the_pose_before_a_pending_jump_is_not_acted_on(
    profile: RobotProfile,
) -> None:
    core = ready(profile)
    far = Pose(HOME.position + np.array([0.0, 0.25, 0.0]), HOME.orientation)  # > 0.2 m bound
    u = core.on_pose(far, 10.02, 10.02)
    assert u.accepted and u.reason  # a jump: pending until the next pose
    core.reset()
    held = core.on_action(SMALL, 10.03, 0, 1, 10.03)
    assert held.outcome is Outcome.HELD and held.command is None  # not from the old pose
    core.on_pose(far, 10.04, 10.04)  # checked against the old pose: pending again
    core.on_pose(far, 10.06, 10.06)  # confirms it
    d = core.on_action(SMALL, 10.06, 1, 1, 10.06)
    assert d.outcome is Outcome.EXECUTED and d.command is not None
    step = d.command.target_pose.position - far.position
    assert np.all(np.abs(step) <= profile.step_limit_m + 1e-9), step  # from where the arm is


def _blocked_then_lifted(profile: RobotProfile) -> tuple[ExecutorCore, Pose]:
    """Three executed steps down while the arm stays blocked at HOME (the target 0.15 m below
    it), then someone lifts the arm 8 cm: 0.23 m from the target, beyond the 0.2 m bound."""
    core = ready(profile)
    down = [0.0, 0.0, -0.05, 0.0, 0.0, 0.0, 1.0]
    for i in range(3):
        t = 10.0 + i
        core.on_pose(HOME, t, t)
        assert core.on_action(down, t, i, 1, t).outcome is Outcome.EXECUTED
    lifted = Pose(HOME.position + np.array([0.0, 0.0, 0.08]), HOME.orientation)
    assert core.on_pose(lifted, 12.5, 12.5).accepted
    return core, lifted


def test_pose_mode_tracking_fault_publishes_a_hold_at_the_arm(profile: RobotProfile) -> None:
    core, lifted = _blocked_then_lifted(profile)
    r = core.tick(12.5)
    assert any(e.startswith("tracking:") for e in r.events) and r.holding
    assert r.target_pose is not None  # the controller gets a setpoint where the arm is
    np.testing.assert_allclose(r.target_pose.position, lifted.position, atol=1e-9)
    assert core.tick(12.51).target_pose is None  # once (no republish in this profile)
    assert core.state().target_pose is None  # the next action re-seeds from the arm


def test_a_tracking_fault_found_by_an_action_also_publishes_the_hold(
    profile: RobotProfile,
) -> None:
    core, lifted = _blocked_then_lifted(profile)
    d = core.on_action(SMALL, 12.5, 3, 1, 12.5)  # the action, not a tick, finds the fault
    assert d.outcome is Outcome.HELD and d.command is None
    r = core.tick(12.51)
    assert r.target_pose is not None
    np.testing.assert_allclose(r.target_pose.position, lifted.position, atol=1e-9)


def test_an_executed_action_supersedes_a_hold_not_yet_published(profile: RobotProfile) -> None:
    core, _ = _blocked_then_lifted(profile)
    core.tick(12.5)  # the hold goes out; the next pose jumps and is confirmed
    far = Pose(HOME.position + np.array([0.0, 0.25, 0.08]), HOME.orientation)
    core.on_pose(far, 12.52, 12.52)
    core.on_pose(far, 12.54, 12.54)  # confirmed: a new hold is due at the next tick
    d = core.on_action(SMALL, 12.55, 3, 1, 12.55)  # ... but an action comes first
    assert d.outcome is Outcome.EXECUTED and d.command is not None
    r = core.tick(12.56)
    assert r.target_pose is None  # the older hold must not replace the action's target
    assert core.state().target_pose == d.command.target_pose


def test_a_reset_is_not_a_pose_watchdog_trip(profile: RobotProfile) -> None:
    core = ready(profile)
    core.reset()
    r = core.tick(10.01)
    assert not any("pose watchdog" in e for e in r.events), r.events
    assert core.state().counters.pose_watchdog_trips == 0
    d = core.on_action(SMALL, 10.01, 0, 1, 10.01)
    assert d.outcome is Outcome.HELD and "after it" in d.reason, d.reason
    core.on_pose(HOME, 10.02, 10.02)
    assert core.on_action(SMALL, 10.02, 0, 1, 10.02).outcome is Outcome.EXECUTED


def _box_centre(p: RobotProfile) -> Pose:
    """The workspace box's centre with the profile's nominal tool orientation."""
    return Pose((p.workspace_min + p.workspace_max) / 2, nominal_quat(p))


def test_a_gripper_flood_reaches_the_driver_at_most_once_per_interval(
    robot_profile: RobotProfile,
) -> None:
    # Each shipped robot sets gripper.min_switch_interval_s; 1 kHz alternating open/close
    # with no motion for 1 s must not become a goal per action.
    p = robot_profile
    assert p.gripper_min_switch_interval_s > 0
    core = ExecutorCore(p)
    home = _box_centre(p)
    assert core.on_pose(home, 10.0, 10.0).accepted and core.enable().success
    changes = []
    for i in range(1000):
        t = 10.0 + 0.001 * i
        if i % 10 == 0:
            core.on_pose(home, t, t)
        d = core.on_action([0, 0, 0, 0, 0, 0, float(i % 2)], t, i, 1, t)
        if d.command is not None and d.command.gripper.changed:
            changes.append(t)
    limit = p.gripper_min_switch_interval_s
    assert 1 <= len(changes) <= 1 + int(1.0 / limit), changes
    assert all(b - a >= limit - 1e-9 for a, b in itertools.pairwise(changes))
    assert core.state().counters.gripper_deferred > 0


def test_poses_stamped_too_long_ago_are_refused(robot_profile: RobotProfile) -> None:
    p = robot_profile
    assert p.max_pose_age_s > 0  # each shipped robot checks it
    core = ExecutorCore(p)
    home = _box_centre(p)
    now = 100.0
    old = core.on_pose(home, now - 30.0, now)  # stamped 30 s ago, received now
    assert not old.accepted and "max_pose_age_s" in old.reason
    assert core.enable().success
    d = core.on_action(SMALL, now, 0, 1, now)
    assert d.outcome is Outcome.REJECTED and d.command is None  # no pose counts yet
    assert "stamped 30.000 s ago" in d.reason, d.reason  # it names the pose problem
    late = core.on_pose(home, now - 0.5 * p.max_pose_age_s, now + 0.01)
    assert late.accepted  # within the bound: counts (the first of two that agree)
    assert not core.on_pose(home, now - 0.4 * p.max_pose_age_s, now + 0.01).reason
    assert core.on_action(SMALL, now + 0.01, 1, 1, now + 0.01).command is not None


def test_a_new_episode_keeps_a_hold_that_is_due(profile: RobotProfile) -> None:
    # A confirmed jump makes a hold due at the next tick; a new episode's first action is
    # refused (NaN) before that tick: the controller must still get the hold.
    core = ready(profile)
    far = Pose(HOME.position + np.array([0.0, 0.25, 0.0]), HOME.orientation)
    core.on_pose(far, 10.02, 10.02)
    core.on_pose(far, 10.04, 10.04)  # confirmed
    bad = core.on_action([math.nan] * 7, 10.05, 0, 2, 10.05)  # episode 2, refused
    assert bad.command is None
    r = core.tick(10.06)
    assert r.target_pose is not None
    np.testing.assert_allclose(r.target_pose.position, far.position, atol=1e-9)
