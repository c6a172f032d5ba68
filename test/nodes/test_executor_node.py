# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The executor node as a real process over DDS; the probe plays policy, robot and user."""

from __future__ import annotations

import math
import os
import signal
import time

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("openvla_ros.msg", reason="interfaces not built")

from geometry_msgs.msg import PoseStamped, TwistStamped
from std_msgs.msg import Bool, Float64
from std_srvs.srv import SetBool, Trigger

from openvla_ros.msg import ExecutorState
from openvla_ros.nodes.common import COMMAND_QOS, STATE_QOS, stamp_to_ns
from test.nodes.ros_helpers import ros_args, settle, wait_until

pytestmark = [pytest.mark.ros, pytest.mark.timeout(60)]

EX = "/openvla_executor"
S = ExecutorState


def _action_state(states: list[ExecutorState], stamp: int) -> ExecutorState | None:
    hits = [s for s in states if stamp_to_ns(s.action_stamp) == stamp]
    return hits[0] if hits else None


@pytest.fixture
def io(probe):
    """Subscriptions to everything the executor publishes."""
    return {
        "state": probe.sub(ExecutorState, "/openvla/executor_state", STATE_QOS),
        "target": probe.sub(PoseStamped, "/openvla/target_pose", COMMAND_QOS),
        "twist": probe.sub(TwistStamped, "/openvla/target_twist", COMMAND_QOS),
        "gripper": probe.sub(Float64, "/openvla/gripper_command", COMMAND_QOS),
    }


def test_actions_become_safe_targets(probe, io, start_executor) -> None:
    probe.start_robot()
    start_executor()
    states, targets, grip = io["state"], io["target"], io["gripper"]

    t0 = probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=0)
    assert wait_until(lambda: _action_state(states, t0) is not None and len(targets) == 1)
    st = _action_state(states, t0)
    assert st.outcome == S.OUTCOME_EXECUTED and st.step == 0 and st.episode_id == 1
    assert st.enabled and not st.estop_latched
    tgt = targets[-1]
    assert tgt.header.frame_id == "base_link"
    assert stamp_to_ns(tgt.header.stamp) >= t0, "a command is stamped when it is issued"
    assert tgt.pose.position.x == pytest.approx(0.41, abs=1e-9)
    assert tgt.pose.position.z == pytest.approx(0.25, abs=1e-9)
    assert grip[-1].data == 1.0

    # Too large a step: clipped to limits.step_translation_m (default 0.02 m), gripper closes.
    t1 = probe.send_action([0.05, 0, 0, 0, 0, 0, 0.0], step=1)
    assert wait_until(lambda: _action_state(states, t1) is not None and len(targets) == 2)
    st = _action_state(states, t1)
    assert st.outcome == S.OUTCOME_CLIPPED
    assert st.clip_flags & S.CLIP_STEP_TRANSLATION
    assert st.action_in[0] == pytest.approx(0.05) and st.action_applied[0] == pytest.approx(0.02)
    assert targets[-1].pose.position.x == pytest.approx(0.43, abs=1e-9)
    assert st.target_pose.position.x == pytest.approx(0.43, abs=1e-9)
    assert grip[-1].data == 0.0 and st.gripper_command == 0.0

    # Non-finite: rejected, nothing commanded.
    t2 = probe.send_action([math.nan, 0, 0, 0, 0, 0, 1.0], step=2)
    assert wait_until(lambda: _action_state(states, t2) is not None)
    assert _action_state(states, t2).outcome == S.OUTCOME_REJECTED
    # Older than the last executed action: dropped.
    t3 = probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=3, stamp_ns=t0 + 1)
    assert wait_until(lambda: _action_state(states, t3) is not None)
    assert _action_state(states, t3).outcome == S.OUTCOME_DROPPED_OLD
    # Image too old (watchdog.max_action_age_s, default 1 s): dropped.
    t4 = probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=4, stamp_ns=probe.now_ns() - 5 * 10**9)
    assert wait_until(lambda: _action_state(states, t4) is not None)
    assert _action_state(states, t4).outcome == S.OUTCOME_DROPPED_STALE
    settle(0.2)
    assert len(targets) == 2, "a refused action produced a target"
    last = states[-1]
    assert (last.executed_count, last.clipped_count, last.rejected_count, last.dropped_count) == (
        1,
        1,
        1,
        2,
    )


def test_estop_latch_and_release(probe, io, start_executor) -> None:
    probe.start_robot()
    proc = start_executor()
    states, targets = io["state"], io["target"]
    t = probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=0)
    assert wait_until(lambda: len(targets) == 1)

    estop = probe.pub(Bool, "/openvla/estop")
    assert wait_until(lambda: estop.get_subscription_count() > 0)
    estop.publish(Bool(data=True))
    assert wait_until(lambda: states[-1].estop_latched)
    t = probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=1)
    assert wait_until(lambda: _action_state(states, t) is not None)
    assert _action_state(states, t).outcome == S.OUTCOME_ESTOPPED
    estop.publish(Bool(data=False))  # false never releases
    settle(0.2)
    assert states[-1].estop_latched
    refused = probe.call(SetBool, f"{EX}/enable", SetBool.Request(data=True))
    assert not refused.success and "e-stop" in refused.message

    released = probe.call(Trigger, f"{EX}/release_estop", Trigger.Request())
    assert released.success
    assert wait_until(lambda: not states[-1].estop_latched and not states[-1].enabled)
    t = probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=2)
    assert wait_until(lambda: _action_state(states, t) is not None)
    assert _action_state(states, t).outcome == S.OUTCOME_DISABLED, "release leaves it disabled"
    assert len(targets) == 1

    assert probe.call(SetBool, f"{EX}/enable", SetBool.Request(data=True)).success
    t = probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=3)
    assert wait_until(lambda: len(targets) == 2)
    # Re-seeded from the measured pose (the probe robot followed the first target to 0.41).
    assert targets[-1].pose.position.x == pytest.approx(0.42, abs=1e-9)

    assert probe.call(Trigger, f"{EX}/estop", Trigger.Request()).success
    assert wait_until(lambda: states[-1].estop_latched and states[-1].estop_count == 2)
    probe.call(SetBool, f"{EX}/enable", SetBool.Request(data=False))
    t = probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=4)
    assert wait_until(lambda: _action_state(states, t) is not None)
    assert _action_state(states, t).outcome == S.OUTCOME_ESTOPPED
    assert len(targets) == 2
    assert proc.alive()


def test_disable_holds(probe, io, start_executor) -> None:
    probe.start_robot()
    start_executor()
    states, targets = io["state"], io["target"]
    probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=0)
    assert wait_until(lambda: len(targets) == 1)
    assert probe.call(SetBool, f"{EX}/enable", SetBool.Request(data=False)).success
    t = probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=1)
    assert wait_until(lambda: _action_state(states, t) is not None)
    assert _action_state(states, t).outcome == S.OUTCOME_DISABLED
    assert not states[-1].enabled
    settle(0.2)
    assert len(targets) == 1


def test_pose_stall_holds(probe, io, start_executor) -> None:
    probe.start_robot()
    proc = start_executor(watchdog__pose_timeout_s=0.2)
    states, targets = io["state"], io["target"]
    probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=0)
    assert wait_until(lambda: len(targets) == 1)
    n = len(states)
    probe.stop_robot()
    assert wait_until(lambda: any("pose watchdog" in s.reason for s in states[n:]), 3.0)
    t = probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=1)
    assert wait_until(lambda: _action_state(states, t) is not None)
    assert _action_state(states, t).outcome == S.OUTCOME_HELD
    assert len(targets) == 1
    probe.start_robot()
    # Poses flow again: an action is executed once the executor has a fresh one (until then
    # each is held, so they are sent until one gets through).
    for step in range(2, 12):
        probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=step)
        if wait_until(lambda: len(targets) == 2, 1.0):
            break
    assert len(targets) == 2, proc.output()


def test_twist_mode_holds_when_camera_stalls_or_policy_dies(
    probe, io, start_executor, start_policy
) -> None:
    probe.start_robot(follow=None)
    executor = start_executor(control__command_type="twist", watchdog__action_timeout_s=0.5)
    policy = start_policy(scripted__actions=[0.01, 0, 0, 0, 0, 0, 1.0], control_hz=5.0)
    twists = io["twist"]
    probe.start_camera(hz=20)
    probe.instruction("move forward")
    assert wait_until(lambda: any(abs(t.twist.linear.x - 0.05) < 1e-9 for t in twists), 5.0)
    assert all(t.header.frame_id == "base_link" for t in twists)

    def zero(t: TwistStamped) -> bool:
        v = (t.twist.linear.x, t.twist.linear.y, t.twist.linear.z)
        w = (t.twist.angular.x, t.twist.angular.y, t.twist.angular.z)
        return not any(v) and not any(w)

    def holding_since(n: int) -> bool:
        return len(twists) > n + 10 and all(zero(t) for t in twists[n:])

    # Camera stall: no frames -> no actions -> the executor's action watchdog zeroes the twist.
    probe.stop_camera()
    settle(0.7)
    n = len(twists)
    assert wait_until(lambda: holding_since(n), 3.0), "twist not zero during a camera stall"
    probe.start_camera(hz=20)
    n = len(twists)
    assert wait_until(lambda: any(not zero(t) for t in twists[n:]), 5.0), "did not resume"
    # The policy process dies: the executor keeps publishing zero twists and stays alive.
    policy.kill()
    settle(0.7)
    n = len(twists)
    assert wait_until(lambda: holding_since(n), 3.0), "twist not zero after the policy died"
    assert executor.alive()
    assert io["target"] == [], "twist mode publishes no pose targets"


def test_bad_parameters_stop_the_executor_at_start_up(spawn) -> None:
    proc = spawn(
        ["-m", "openvla_ros.nodes.executor_node", *ros_args(limits__step_translation_m=5.0)],
        name="bad_executor",
    )
    assert wait_until(lambda: not proc.alive(), 15.0)
    assert proc.proc.returncode == 2
    assert "step_translation_m" in proc.output() and "cannot start" in proc.output()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("adapter", ["franka", "interbotix"])
def test_gripper_adapters(adapter, probe, io, spawn, start_executor, robot_interfaces) -> None:
    fake = spawn(
        ["test/nodes/fake_gripper.py", "/test_gripper", "/test_arm"],
        name="fake_gripper",
        env=robot_interfaces,
    )
    assert wait_until(lambda: "fake gripper ready" in fake.output(), 20.0), fake.output()
    probe.start_robot()
    executor = start_executor(
        env=robot_interfaces,
        gripper_adapter=adapter,
        gripper_namespace="/test_gripper" if adapter == "franka" else "/test_arm",
        gripper__open_command=0.08 if adapter == "franka" else 1.0,
        franka_grasp_force_n=30.0,
    )
    if adapter == "franka":
        want = ["GRASP width=0.0000 inner=0.0050 outer=0.0800 speed=0.1000 force=30.0",
                "MOVE width=0.0800 speed=0.1000"]  # fmt: skip
    else:
        want = ["JOINT_SINGLE name=gripper cmd=-250.0", "JOINT_SINGLE name=gripper cmd=250.0"]
    # Initially open: a first "open" action is no change, so nothing goes to the driver. A
    # command sent before the executor has discovered the driver is kept and sent when it
    # does (only the latest), so each state change waits for its driver line before the next.
    expect = {1: want[0], 3: want[1]}
    for step, grip in enumerate([1.0, 0.0, 0.0, 1.0]):
        t = probe.send_action([0.0, 0, 0, 0, 0, 0, grip], step=step)
        assert wait_until(lambda t=t: _action_state(io["state"], t) is not None)
        if step in expect:
            assert wait_until(lambda w=expect[step]: w in fake.output(), 15.0), (
                fake.output() + executor.output()
            )
    settle(1.0)  # room for a stray extra command (polled every 0.2 s) to show
    lines = [
        ln
        for ln in fake.output().splitlines()
        if ln.split(" ")[0] in ("MOVE", "GRASP", "JOINT_SINGLE")
    ]
    assert lines == want, "one driver command per state change, in order"
    assert [g.data for g in io["gripper"]] == [1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_ctrl_c_while_moving_ends_with_a_zero_twist(probe, io, start_executor, sig) -> None:
    # Ctrl-C in a terminal reaches every node and `ros2 launch` forwards it again: two SIGINTs.
    # `kill` / systemd stop send SIGTERM (twice when impatient). Either way the executor must
    # still send its final hold (zero twist) before it exits.
    probe.start_robot(follow=None)
    executor = start_executor(control__command_type="twist", watchdog__action_timeout_s=2.0)
    twists = io["twist"]

    def moving() -> bool:
        probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=len(twists))
        time.sleep(0.05)
        return any(abs(t.twist.linear.x) > 0 for t in twists[-3:])

    assert wait_until(moving, 5.0), "the executor never commanded a non-zero twist"
    probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=10_000)
    os.killpg(executor.proc.pid, sig)
    time.sleep(0.02)
    os.killpg(executor.proc.pid, sig)
    executor.proc.wait(timeout=10)
    time.sleep(0.5)
    assert executor.proc.returncode == 0, executor.output()
    last = twists[-1].twist
    assert (last.linear.x, last.linear.y, last.linear.z) == (0.0, 0.0, 0.0), executor.output()
    assert (last.angular.x, last.angular.y, last.angular.z) == (0.0, 0.0, 0.0)
    assert "Traceback" not in executor.output()
