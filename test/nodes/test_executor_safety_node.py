# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Issue 10, node level: the executor process over DDS under ROS-time faults (sim time
that jumps back or stalls), heartbeat outcomes while holding, a restarted policy (new DDS
writer), and gripper drivers that come up after the executor. Each failed before the fix."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("openvla_ros.msg", reason="interfaces not built")

from geometry_msgs.msg import PoseStamped, TwistStamped
from rosgraph_msgs.msg import Clock
from std_srvs.srv import SetBool

from openvla_ros.msg import DeltaAction, ExecutorState
from openvla_ros.nodes.common import ACTION_QOS, COMMAND_QOS, POSE_QOS, STATE_QOS, ns_to_stamp
from openvla_ros.nodes.common import stamp_to_ns as to_ns
from test.nodes.ros_helpers import settle, wait_until

pytestmark = [pytest.mark.ros, pytest.mark.timeout(90)]

EX = "/openvla_executor"
S = ExecutorState
BASE_S = 1000.0  # where the simulated clock starts (s)


class SimClock:
    """Publishes /clock at 100 Hz (ROS time = BASE_S + elapsed + offset) and the arm's pose
    at 50 Hz stamped with it, as a simulator under ``use_sim_time`` does."""

    def __init__(self, probe) -> None:
        self.probe = probe
        self.offset = 0.0
        self.stalled = False
        self._m0 = time.monotonic()
        self._frozen: float | None = None
        self._stop = threading.Event()
        self._clock_pub = probe.pub(Clock, "/clock")
        self._pose_pub = probe.pub(PoseStamped, "/openvla/ee_pose", POSE_QOS)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self) -> float:
        if self._frozen is not None:
            return self._frozen
        return BASE_S + time.monotonic() - self._m0 + self.offset

    def now_ns(self) -> int:
        return round(self.now() * 1e9)

    def stall(self) -> None:
        """/clock stops (a paused or crashed simulator): no clock, no poses."""
        self._frozen = self.now()
        self.stalled = True

    def _run(self) -> None:
        k = 0
        while not self._stop.is_set():
            if not self.stalled:
                stamp = ns_to_stamp(self.now_ns())
                self._clock_pub.publish(Clock(clock=stamp))
                if k % 2 == 0:
                    msg = PoseStamped()
                    msg.header.stamp = stamp
                    msg.header.frame_id = "base_link"
                    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = 0.4, 0.0, 0.25
                    msg.pose.orientation.x, msg.pose.orientation.w = 1.0, 0.0
                    self._pose_pub.publish(msg)
            k += 1
            self._stop.wait(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def _moving(t: TwistStamped) -> bool:
    v, w = t.twist.linear, t.twist.angular
    return any((v.x, v.y, v.z, w.x, w.y, w.z))


def test_sim_clock_jump_back_holds_drops_in_flight_and_recovers(probe, start_executor) -> None:
    states = probe.sub(ExecutorState, "/openvla/executor_state", STATE_QOS)
    twists = probe.sub(TwistStamped, "/openvla/target_twist", COMMAND_QOS)
    sim = SimClock(probe)
    try:
        executor = start_executor(
            use_sim_time=True, control__command_type="twist", watchdog__action_timeout_s=2.0
        )
        # Moving: one 0.1 m/s delta (0.02 m over 0.2 s), then ROS time goes 30 s back 50 ms in.
        assert wait_until(lambda: _try_move(probe, sim, twists), 15.0), executor.output()
        time.sleep(0.05)
        sim.offset -= 30.0
        jump_seen = lambda: any("clock jumped backwards" in s.reason for s in states)  # noqa: E731
        assert wait_until(jump_seen, 5.0), executor.output()
        settle(0.5)
        after = [t for t in twists if to_ns(t.header.stamp) < (BASE_S - 20.0) * 1e9]
        assert after, "no twist published on the new timeline (the tick must run on steady time)"
        assert not any(_moving(t) for t in after), "a twist kept moving after the clock jump"
        # An action captured before the jump (old timeline: now in the future) is dropped.
        n = len(states)
        old_ns = round(BASE_S * 1e9) + 10
        old = probe.send_action([0.02, 0, 0, 0, 0, 0, 1], step=50, stamp_ns=old_ns)
        assert wait_until(lambda: any(to_ns(s.action_stamp) == old for s in states[n:]), 5.0)
        st = next(s for s in states[n:] if to_ns(s.action_stamp) == old)
        assert st.outcome in (S.OUTCOME_DROPPED_STALE, S.OUTCOME_DROPPED_OLD), st.reason
        # Recovery: fresh poses keep coming; a new action on the new timeline moves again.
        assert wait_until(lambda: _try_move(probe, sim, twists), 10.0), executor.output()
        # A stalled /clock: the steady tick goes on, the pose watchdog trips, twists are zero.
        sim.stall()
        n_states, n_twists = len(states), len(twists)
        assert wait_until(lambda: any("pose watchdog" in s.reason for s in states[n_states:]), 5.0)
        settle(0.3)
        assert len(twists) > n_twists + 5, "the servo tick stopped with /clock"
        assert not _moving(twists[-1])
        assert executor.alive()
    finally:
        sim.close()


def _try_move(probe, sim: SimClock, twists: list) -> bool:
    n = len(twists)
    probe.send_action([0.02, 0, 0, 0, 0, 0, 1], step=len(twists), stamp_ns=sim.now_ns())
    time.sleep(0.1)
    return any(_moving(t) for t in twists[n:])


def test_heartbeats_say_held_or_disabled_and_a_restarted_policy_starts_over(
    probe, start_executor
) -> None:
    states = probe.sub(ExecutorState, "/openvla/executor_state", STATE_QOS)
    probe.start_robot()
    start_executor(state_heartbeat_s=0.1, limits__max_steps_per_episode=2)
    for step in range(3):
        t = probe.send_action([0.0] * 6 + [1.0], step=step)
        assert wait_until(lambda t=t: any(to_ns(s.action_stamp) == t for s in states), 5.0)
    assert next(s for s in states if to_ns(s.action_stamp) == t).outcome == S.OUTCOME_HELD
    # A restarted policy node: a new DDS writer, reusing episode 1 from step 0.
    restarted = probe.node.create_publisher(DeltaAction, "/openvla/delta_action", ACTION_QOS)
    assert wait_until(lambda: restarted.get_subscription_count() > 0, 10.0)
    msg = DeltaAction()
    stamp = probe.now_ns()
    msg.header.stamp, msg.header.frame_id = ns_to_stamp(stamp), "base_link"
    msg.step, msg.episode_id, msg.action = 0, 1, [0.0] * 6 + [1.0]
    restarted.publish(msg)
    assert wait_until(lambda: any(to_ns(s.action_stamp) == stamp for s in states), 5.0)
    st = next(s for s in states if to_ns(s.action_stamp) == stamp)
    assert st.outcome == S.OUTCOME_EXECUTED, st.reason
    # The pose stream stops: heartbeats (no action, no event) must say HELD, not EXECUTED.
    n = len(states)
    probe.stop_robot()
    assert wait_until(lambda: any("pose watchdog" in s.reason for s in states[n:]), 5.0)
    settle(0.1)
    n = len(states)
    settle(0.5)
    beats = states[n:]
    assert len(beats) >= 3 and all(b.outcome == S.OUTCOME_HELD for b in beats), [
        (b.outcome, b.reason) for b in beats
    ]
    assert probe.call(SetBool, f"{EX}/enable", SetBool.Request(data=False)).success
    settle(0.3)
    n = len(states)
    settle(0.4)
    assert states[n:] and all(b.outcome == S.OUTCOME_DISABLED for b in states[n:])


@pytest.mark.timeout(240)
@pytest.mark.parametrize("adapter", ["franka", "interbotix"])
def test_gripper_command_is_resent_when_the_driver_comes_up_later(
    adapter, probe, spawn, start_executor, robot_interfaces
) -> None:
    states = probe.sub(ExecutorState, "/openvla/executor_state", STATE_QOS)
    probe.start_robot()
    executor = start_executor(
        env=robot_interfaces,
        gripper_adapter=adapter,
        gripper_namespace="/late_gripper" if adapter == "franka" else "/late_arm",
        gripper__open_command=0.08 if adapter == "franka" else 1.0,
    )
    t = probe.send_action([0.0] * 6 + [0.0], step=0)  # close: a state change, no driver yet
    assert wait_until(lambda: any(to_ns(s.action_stamp) == t for s in states), 5.0)
    settle(0.5)
    fake = spawn(
        ["test/nodes/fake_gripper.py", "/late_gripper", "/late_arm"],
        name="fake_gripper",
        env=robot_interfaces,
    )
    want = "GRASP width=0.0000" if adapter == "franka" else "JOINT_SINGLE name=gripper cmd=-250.0"
    assert wait_until(lambda: want in fake.output(), 20.0), fake.output() + executor.output()
    settle(0.6)  # a few more polls: sent once, not again
    lines = [ln for ln in fake.output().splitlines() if ln.startswith(want.split(" ")[0])]
    assert len(lines) == 1, lines


@pytest.mark.timeout(240)
def test_a_kept_gripper_command_is_not_sent_after_an_estop(
    probe, spawn, start_executor, robot_interfaces
) -> None:
    """Review finding: the adapter's kept command (driver not up yet) was sent by the tick's
    poll whatever the executor's state, so a gripper driver coming up after an e-stop
    closed the fingers on the operator. It waits for the recovery (release, enable, an
    action), then goes out once."""
    from std_srvs.srv import Trigger

    states = probe.sub(ExecutorState, "/openvla/executor_state", STATE_QOS)
    probe.start_robot()
    executor = start_executor(
        env=robot_interfaces, gripper_adapter="interbotix", gripper_namespace="/held_arm"
    )
    t = probe.send_action([0.0] * 6 + [0.0], step=0)  # close: no driver yet, kept
    assert wait_until(lambda: any(to_ns(s.action_stamp) == t for s in states), 5.0)
    assert probe.call(Trigger, f"{EX}/estop", Trigger.Request()).success
    fake = spawn(
        ["test/nodes/fake_gripper.py", "/held_gripper", "/held_arm"],
        name="fake_gripper",
        env=robot_interfaces,
    )
    assert wait_until(lambda: "fake gripper ready" in fake.output(), 20.0), fake.output()
    settle(2.0)  # ten polls with the driver subscribed
    assert "JOINT_SINGLE" not in fake.output(), fake.output()
    assert probe.call(Trigger, f"{EX}/release_estop", Trigger.Request()).success
    assert probe.call(SetBool, f"{EX}/enable", SetBool.Request(data=True)).success
    settle(1.0)
    assert "JOINT_SINGLE" not in fake.output(), "sent on enable, before any action"
    probe.send_action([0.0] * 6 + [0.0], step=1)
    want = "JOINT_SINGLE name=gripper cmd=-250.0"
    assert wait_until(lambda: want in fake.output(), 10.0), fake.output() + executor.output()
