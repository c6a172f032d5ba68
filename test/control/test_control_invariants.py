# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Property tests of the executor's guarantees, checked on a **simulated arm**.

Hypothesis draws a scenario (robot profile, command type, mode, action rate, pose noise
and a list of events); the events' details come from a generator seeded by Hypothesis, so
every run is the same (``derandomize=True``). A harness plays the node: it ticks the core
at ``servo_rate_hz`` on steady time, publishes the arm's pose at 50 Hz (with noise,
glitches, repeated and future stamps, outages), moves a :class:`SimArm` with what the core
commands (a first-order follower in pose mode, an integrator of each twist until the next
in twist mode) and from outside (hand guiding of position and wrist, restarts), fires the
servo tick late now and then (timer jitter), jumps the ROS clock both ways (reported by
rclpy's callback, or only seen by the core at its next call),
and calls enable/disable/reset/e-stop/release. Invariants, after every step:

(i) the arm stays inside the workspace box and the orientation bound (up to what an
    external move put it outside by, plus noise and one pose period of motion; for the
    orientation, or what a target asked for: a seed may be one step outside);
(ii) commanded motion respects the speed limits over steady time (pose mode: any two
    targets since a re-seed differ by at most ``B + v dt``, ``B`` one control period's
    worth; twist mode: every twist's norm, and so the arm's speed);
(iii) every target is within the tracking bound of the latest fresh measured pose the
    core accepted, in the box, and one legal step from where it started;
(iv) after a fault (e-stop, disable, reset, stale pose, clock jump) the next tick holds
    (zero twist, no target);
(v) nothing is commanded again before the documented recovery (enable after release;
    a fresh confirmed pose after a stale pose or a clock jump);
(vi) pose mode: after a tracking fault or a confirmed pose jump the controller's setpoint is
    within the tracking bound of the arm (it does not pull the arm back to the old target).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openvla_ros.control.executor_core import Decision, ExecutorCore, TickResult, Twist
from openvla_ros.control.profile import RobotProfile, load_profile_yaml, profile_from_params
from openvla_ros.control.safety import orientation_violation, seed_target
from openvla_ros.control.se3 import Pose, quat_angle, relative_rotvec, rotate_by_rotvec, rpy_to_quat
from test.control.sim_arm import SimArm

CONFIG = Path(__file__).resolve().parents[2] / "config"

PROFILES: dict[str, RobotProfile] = {
    "test": profile_from_params(
        {
            "robot_name": "test",
            "frames.base": "base",
            "limits.step_translation_m": 0.05,
            "limits.step_rotation_rad": 0.25,
            "limits.workspace_min_m": [0.2, -0.3, 0.0],
            "limits.workspace_max_m": [0.7, 0.3, 0.5],
            "limits.max_tracking_error_m": 0.1,
            "limits.max_tracking_error_rad": 0.5,
        }
    ),
    **{r: load_profile_yaml(CONFIG / f"{r}.yaml") for r in ("franka", "widowx", "sim")},
}

EVENTS = (
    "act", "act", "act", "act", "burst", "chunk", "wait", "glitch", "repeat", "future",
    "outage", "teleport", "drift", "clock_back", "clock_fwd", "enable", "disable", "reset",
    "estop", "release", "episode", "session", "lag", "wrist", "spin", "jitter",
)  # fmt: skip
POSE_PERIOD = 0.02
EPS = 1e-9


@dataclass
class Scenario:
    robot: str
    twist: bool
    blocking: bool
    republish: bool
    action_period: float
    noise: float
    seed: int
    events: list[str]


def scenarios(twist: bool) -> st.SearchStrategy[Scenario]:
    """Scenarios of one command type."""
    return st.builds(
        Scenario,
        robot=st.sampled_from(sorted(PROFILES)),
        twist=st.just(twist),
        blocking=st.booleans(),
        republish=st.booleans(),
        action_period=st.sampled_from([0.001, 0.02, 0.1, 0.2, 0.2, 0.35]),
        noise=st.sampled_from([0.0, 0.0, 2e-4, 2e-3]),
        seed=st.integers(0, 2**32 - 1),
        events=st.lists(st.sampled_from(EVENTS), min_size=3, max_size=12),
    )


class Harness:
    """Plays node, robot and operator around one core; checks (i)-(v) as it goes."""

    def __init__(self, sc: Scenario) -> None:
        base = PROFILES[sc.robot]
        self.p = base.replace(
            command_type="twist" if sc.twist else "pose",
            republish_target=sc.republish and not sc.twist,
        )
        p = self.p
        self.sc, self.rng = sc, np.random.default_rng(sc.seed)
        self.core = ExecutorCore(p, "blocking" if sc.blocking else "non_blocking")
        centre = (p.workspace_min + p.workspace_max) / 2
        self.home = Pose(centre, rpy_to_quat(*p.nominal_rpy_rad))
        self.t, self.ros_offset = 10.0, 990.0
        self.arm = SimArm(self.home, self.t)
        self.next_tick, self.next_pose = self.t, self.t
        self.dt = 1.0 / p.servo_hz
        self.poses_on, self.stamp_mode, self.frozen_stamp = True, "normal", 0.0
        self.enabled = self.estopped = False
        self.confirmed: Pose | None = None
        self.confirmed_rx = -math.inf
        self.recent: list[Pose] = []  # confirmed poses (a seed comes from one of them)
        self.need_pose_after = -math.inf  # a clock jump: no motion before a newer pose
        self.step, self.episode, self.session = 0, 1, 0
        self.chain: list[tuple[float, Pose]] = []
        self.out_m, self.out_rad = 0.0, 0.0  # how far outside an external move put the arm
        bucket = p.control_period_s
        self.b_lin, self.b_rot = p.max_linear_speed_m_s * bucket, p.max_angular_speed_rad_s * bucket
        self.commands = 0
        self.wrist_axis: np.ndarray | None = None  # the last hand-turn's axis (unit)
        self.target_rad = 0.0  # the furthest any target was outside the orientation bound
        self.jitter = 0.0  # ticks come up to this late (s)
        self._checked_q = b""
        self.pose_now()
        self.service("enable")

    # ------------------------------------------------------------------ the world
    @property
    def ros(self) -> float:
        return self.t + self.ros_offset

    def run_until(self, end: float) -> None:
        while True:
            t_next = min(self.next_tick, self.next_pose)
            if t_next > end:
                break
            self.t = t_next
            self.arm.advance(self.t)
            if t_next == self.next_pose:
                self.next_pose += POSE_PERIOD
                if self.poses_on:
                    self.pose_now()
            else:
                # A loaded PC's timer fires late now and then ("jitter"): a zero twist late.
                late = float(self.rng.uniform(0, self.jitter)) if self.jitter else 0.0
                self.next_tick += self.dt + late
                self.check_arm()
                self.tick()
        self.t = end
        self.arm.advance(end)
        self.check_arm()

    def pose_now(self, pose: Pose | None = None, stamp: float | None = None) -> None:
        if pose is None:
            pos = self.arm.position
            if self.sc.noise:
                pos = pos + self.rng.normal(0, self.sc.noise, 3)
            pose = Pose(pos, self.arm.orientation)
        if stamp is None:
            stamp = self.ros if self.stamp_mode == "normal" else self.frozen_stamp
        u = self.core.on_pose(pose, stamp, self.t, ros_now_s=self.ros)
        if u.stop_twist:  # the node publishes a zero twist at once
            self.arm.command_twist(self.t, Twist.zero())
        if u.accepted and not u.reason:
            self.confirmed, self.confirmed_rx = pose, self.t
            self.recent = [*self.recent[-300:], pose]

    def tick(self) -> None:
        r: TickResult = self.core.tick(self.t, ros_now_s=self.ros)
        if self.must_hold():  # (iv)
            assert r.holding, r.hold_reason
            assert r.twist is None or r.twist.is_zero
            assert r.target_pose is None
        if r.twist is not None:
            self.arm.command_twist(self.t, r.twist)
        if r.target_pose is not None:
            self.check_target(r.target_pose)
            self.arm.command_pose(self.t, r.target_pose)
        self.check_setpoint_after_fault(r)

    def check_setpoint_after_fault(self, r: TickResult) -> None:
        """(vi) pose mode: once the core reports that the arm left the tracking bound of its
        target (or a pose jump was confirmed), the controller's setpoint is no longer the
        out-of-bound one: it holds within the tracking bound of the arm (when the arm is
        close enough to the box to be seeded at all)."""
        faults = ("tracking:", "measured pose jump confirmed")
        if self.sc.twist or self.must_hold() or self.arm.target is None:
            return
        if "pose jumped" in r.hold_reason:
            return  # a newer pose jump is pending: no target may go out, the hold waits
        if not any(e.startswith(faults) for e in r.events) or self.confirmed is None:
            return
        if seed_target(self.confirmed, self.p)[0] is None:
            return  # outside the box by more than a step: nothing may be commanded
        dm = float(np.linalg.norm(self.arm.target.position - self.confirmed.position))
        dr = quat_angle(self.arm.target.orientation, self.confirmed.orientation)
        p = self.p
        assert dm <= p.max_tracking_error_m + EPS and dr <= p.max_tracking_error_rad + EPS, (
            dm,
            dr,
            r.events,
        )

    def must_hold(self) -> bool:
        stale = self.t - self.confirmed_rx > self.p.pose_timeout_s
        return (
            self.estopped or not self.enabled or stale or self.confirmed_rx <= self.need_pose_after
        )

    # ------------------------------------------------------------------ invariants
    def check_arm(self) -> None:
        """(i) box and orientation bound on the true arm."""
        p = self.p
        pos = self.arm.position
        out = float(np.max(np.maximum(p.workspace_min - pos, pos - p.workspace_max)))
        tol = 3 * self.sc.noise + (p.max_linear_speed_m_s * POSE_PERIOD if self.sc.twist else 0)
        assert out <= max(self.out_m, 0.0) + tol + 1e-7, (out, self.out_m, pos)
        key = self.arm.orientation.tobytes()
        if key != self._checked_q:  # the bound only changes when the arm turns
            self._checked_q = key
            bad = orientation_violation(self.arm.orientation, p)
            # No further out than an external move put it or a target (a seed may be up to
            # one step outside) asked for: the arm itself, not only the targets.
            allowed = max(self.out_rad, self.target_rad)
            assert bad <= allowed + 0.02, (bad, self.out_rad, self.target_rad)

    def check_target(self, target: Pose) -> None:
        """(iii) box and tracking bound of the latest confirmed fresh pose."""
        p = self.p
        self.target_rad = max(self.target_rad, orientation_violation(target.orientation, p))
        assert np.all(target.position >= p.workspace_min - EPS)
        assert np.all(target.position <= p.workspace_max + EPS)
        assert self.confirmed is not None
        d_m = float(np.linalg.norm(target.position - self.confirmed.position))
        d_rad = quat_angle(target.orientation, self.confirmed.orientation)
        assert d_m <= p.max_tracking_error_m + EPS, d_m
        assert d_rad <= p.max_tracking_error_rad + EPS, d_rad

    def check_command(self, d: Decision) -> None:
        c = d.command
        if c is None:
            if d.stop_twist:
                self.arm.command_twist(self.t, Twist.zero())
            return
        p = self.p
        # (v) only when allowed, from a fresh pose newer than any clock jump
        assert self.enabled and not self.estopped
        assert self.t - self.confirmed_rx <= p.pose_timeout_s + EPS
        assert self.confirmed_rx > self.need_pose_after
        self.check_target(c.target_pose)
        ref = c.reference_pose
        assert ref is not None
        dpos = c.target_pose.position - ref.position
        assert np.all(np.abs(dpos) <= p.step_limit_m + EPS), dpos  # one step per axis
        bad_ref = orientation_violation(ref.orientation, p)
        assert orientation_violation(c.target_pose.orientation, p) <= max(bad_ref, 0) + 1e-6
        if c.reseeded:  # from a measured pose itself, clipped into the box
            assert self.confirmed is not None
            seeds = [np.clip(m.position, p.workspace_min, p.workspace_max) for m in self.recent]
            assert any(np.allclose(ref.position, sp, atol=1e-9) for sp in seeds), ref.position
            assert np.all(np.abs(c.target_pose.position - self.confirmed.position)
                          <= p.step_limit_m + EPS)  # fmt: skip
        if c.twist is not None:
            self.check_twist(c.twist, ref, c.target_pose)
            self.arm.command_twist(self.t, c.twist)
        else:
            self.check_speed(c.reseeded, ref, c.target_pose)
            self.arm.command_pose(self.t, c.target_pose)
        self.commands += 1

    def check_twist(self, tw: Twist, ref: Pose, target: Pose) -> None:
        """(ii) twist mode: speed limits and the per-axis step on the rotation vector."""
        p = self.p
        assert np.linalg.norm(tw.linear_mps) <= p.max_linear_speed_m_s + EPS
        assert np.linalg.norm(tw.angular_radps) <= p.max_angular_speed_rad_s + EPS
        rv = relative_rotvec(ref.orientation, target.orientation)
        assert np.all(np.abs(rv) <= p.step_limit_rad + EPS), rv

    def check_speed(self, reseeded: bool, ref: Pose, target: Pose) -> None:
        """(ii) pose mode: token-bucket bound over every pair of targets since a seed."""
        p = self.p
        if reseeded or not self.chain:
            self.chain = [(self.t, ref)]
        else:
            last = self.chain[-1][1]
            np.testing.assert_allclose(ref.position, last.position, atol=1e-12)
        for t_a, pose_a in self.chain:
            span = self.t - t_a
            moved = float(np.linalg.norm(target.position - pose_a.position))
            turned = quat_angle(target.orientation, pose_a.orientation)
            assert moved <= self.b_lin + p.max_linear_speed_m_s * span + 1e-8, (moved, span)
            assert turned <= self.b_rot + p.max_angular_speed_rad_s * span + 1e-8
        self.chain = [*self.chain[-40:], (self.t, target)]

    # ------------------------------------------------------------------ inputs
    def service(self, name: str) -> None:
        core = self.core
        if name == "enable":
            ok = core.enable().success
            assert ok == (not self.estopped)
            if ok:
                self.enabled = True
        elif name == "disable":
            core.disable()
            self.enabled = False
        elif name == "estop":
            core.estop("test")
            self.estopped = True
        elif name == "release":
            core.release_estop()
            if self.estopped:
                self.enabled = False
            self.estopped = False
        elif name == "reset":
            core.reset()
        if name in ("disable", "estop", "reset", "release") and self.sc.twist:
            self.arm.command_twist(self.t, Twist.zero())  # the node holds at once
        self.chain = []

    def action_values(self) -> list[float]:
        p, r = self.p, self.rng
        k = r.random()
        if k < 0.04:
            return [math.nan] * 7
        if k < 0.06:
            return [0.01] * 5
        big = 3.0 if k < 0.3 else 0.6
        lin = r.normal(0, p.step_limit_m * big, 3)
        rot = r.normal(0, p.step_limit_rad * big, 3) * (r.random() < 0.6)
        return [*lin, *rot, float(r.random() < 0.5)]

    def act(self, stamp: float | None = None, values: list[float] | None = None) -> None:
        latency = float(self.rng.choice([0.0, 0.05, 0.3]))
        s = self.ros - latency if stamp is None else stamp
        d = self.core.on_action(
            self.action_values() if values is None else values, s, self.step, self.episode, self.t,
            ros_now_s=self.ros, session=self.session,
        )  # fmt: skip
        self.step += 1
        self.check_command(d)

    def event(self, kind: str) -> None:
        r, sc = self.rng, self.sc
        if kind == "act":
            self.act()
            self.run_until(self.t + sc.action_period)
        elif kind == "burst":
            for _ in range(int(r.integers(2, 25))):
                self.act()
                self.run_until(self.t + 0.001)
        elif kind == "chunk":
            stamp = self.ros - 0.05
            for _ in range(int(r.integers(2, 6))):
                self.act(stamp)
                self.run_until(self.t + float(r.choice([0.0, 0.001, 0.005])))
        elif kind == "spin":  # one rotation (and drift) repeated: presses on the bounds
            lim = [self.p.step_limit_m] * 3 + [self.p.step_limit_rad] * 3
            values = [*(r.uniform(-1.2, 1.2, 6) * lim), 1.0]
            if self.wrist_axis is not None and r.random() < 0.7:  # on, the way it was turned
                values[3:6] = [float(v) for v in self.wrist_axis * lim[3]]
            for _ in range(int(r.integers(3, 9))):
                self.act(values=values)
                self.run_until(self.t + sc.action_period)
        elif kind == "wait":
            self.run_until(self.t + float(r.uniform(0.05, 0.7)))
        else:
            self.world_event(kind)
        self.run_until(self.t + 0.001)

    def world_event(self, kind: str) -> None:
        r, p = self.rng, self.p
        if kind == "glitch":
            far = self.arm.pose.with_position(self.arm.position + r.uniform(-0.6, 0.6, 3))
            self.pose_now(far, self.ros)
        elif kind == "repeat":
            self.stamp_mode, self.frozen_stamp = "frozen", self.ros
            self.run_until(self.t + float(r.uniform(0.1, 0.5)))
            self.stamp_mode = "normal"
        elif kind == "future":
            self.pose_now(self.arm.pose, self.ros + float(r.uniform(0.5, 100.0)))
        elif kind == "outage":
            self.poses_on = False
            self.run_until(self.t + float(r.uniform(0.1, 0.7)))
            self.poses_on = True
        elif kind in ("teleport", "drift"):
            self.external_move(kind == "drift")
        elif kind == "wrist":
            self.turn_wrist()
        elif kind in ("clock_back", "clock_fwd"):
            if kind == "clock_back":
                delta = -float(r.uniform(0.5, 30.0))
            else:
                delta = float(r.uniform(p.clock_jump_threshold_s + 0.5, 30.0))
            self.ros_offset += delta
            self.need_pose_after = self.t
            if r.random() < 0.5:  # rclpy's jump callback (sim time): the node holds at once
                self.core.on_clock_jump(self.t, self.ros, delta)
                if self.sc.twist:
                    self.arm.command_twist(self.t, Twist.zero())
            else:  # an NTP step: the core sees it at its next call, before anything else
                self.run_until(self.next_tick)
        elif kind in ("enable", "disable", "reset", "estop", "release"):
            self.service(kind)
        elif kind == "episode":
            self.episode += 1
            self.step = 0
        elif kind == "session":  # a restarted policy: same ids, new process
            self.session += 1
            self.episode, self.step = 1, 0
        elif kind == "jitter":
            self.jitter = float(r.choice([0.002, 0.005, 0.01]))
        elif kind == "lag":
            self.arm.gain = float(r.choice([1.0, 8.0, 40.0]))

    def external_move(self, smooth: bool) -> None:
        r, p = self.rng, self.p
        lo, hi = p.workspace_min - 0.08, p.workspace_max + 0.08
        goal = r.uniform(lo, hi)
        rot = rpy_to_quat(*(np.asarray(p.nominal_rpy_rad) + r.normal(0, 0.3, 3)))
        if smooth:  # hand guiding: 10 small moves over 0.2 s
            start = self.arm.position.copy()
            for k in range(1, 11):
                self.run_until(self.t + 0.02)
                pos = start + (goal - start) * k / 10
                self._moved(Pose(pos, self.arm.orientation), restart=False)
        else:
            self._moved(Pose(goal, rot), restart=True)

    def turn_wrist(self) -> None:
        """Hand guiding of the orientation: up to 0.45 rad (inside every profile's tracking
        bound, so no re-seed) in 9 small turns over 0.18 s about a horizontal base axis (a
        tilt: every profile's tool points down at its nominal orientation)."""
        r = self.rng
        heading = float(r.uniform(-math.pi, math.pi))
        axis = np.array([math.cos(heading), math.sin(heading), 0.0]) * float(r.uniform(0.25, 0.45))
        start = self.arm.orientation.copy()
        self.wrist_axis = axis / float(np.linalg.norm(axis))
        for k in range(1, 10):
            self.run_until(self.t + 0.02)
            self._moved(Pose(self.arm.position, rotate_by_rotvec(start, axis * k / 9)),
                        restart=False)  # fmt: skip

    def _moved(self, pose: Pose, *, restart: bool) -> None:
        """An external move, seen by the next pose sample at once (sensor latency is the
        arm's own business: docs/control.md states the tolerance it adds)."""
        p = self.p
        self.arm.teleport(self.t, pose, restart=restart)
        self.pose_now()
        self.chain = []
        out = float(np.max(np.maximum(p.workspace_min - pose.position,
                                      pose.position - p.workspace_max)))  # fmt: skip
        self.out_m = max(0.0, out)
        self.out_rad = orientation_violation(pose.orientation, p)


def play(sc: Scenario) -> Harness:
    h = Harness(sc)
    h.run_until(h.t + 0.05)
    for kind in sc.events:
        h.event(kind)
    h.run_until(h.t + 0.15)
    return h


#: Per command type; two tests: 10,000 generated sequences in all.
N_EXAMPLES = int(os.environ.get("OPENVLA_ROS_PROPERTY_EXAMPLES", "5000"))

_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow],
}


@settings(max_examples=N_EXAMPLES, **_SETTINGS)
@given(sc=scenarios(twist=False))
def test_pose_mode_invariants_hold_on_the_simulated_arm(sc: Scenario) -> None:
    play(sc)


@settings(max_examples=N_EXAMPLES, **_SETTINGS)
@given(sc=scenarios(twist=True))
def test_twist_mode_invariants_hold_on_the_simulated_arm(sc: Scenario) -> None:
    play(sc)


def test_the_scenarios_do_move_the_arm() -> None:
    """Guard against a vacuous property test: typical scenarios command motion."""
    moved = 0
    for seed in range(20):
        sc = Scenario("test", seed % 2 == 1, False, False, 0.2, 0.0, seed, ["act"] * 8)
        moved += play(sc).commands
    assert moved >= 100
