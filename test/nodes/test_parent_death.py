# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""A node whose launcher dies stops like on SIGTERM (run_node arms PR_SET_PDEATHSIG): an
orphaned executor kept re-publishing its last 0.1 m/s twist (issue 11, item 6)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("openvla_ros.msg", reason="interfaces not built")

from geometry_msgs.msg import TwistStamped
from std_srvs.srv import SetBool

from openvla_ros.nodes.common import COMMAND_QOS
from test.nodes.ros_helpers import ros_args, wait_until

pytestmark = [pytest.mark.ros, pytest.mark.timeout(60)]

#: A launcher in miniature: starts the node as its child from its main thread, then idles.
LAUNCHER = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, *sys.argv[1:]])\n"
    "print('child', child.pid, flush=True)\n"
    "time.sleep(300)\n"
)


def _gone(pid: int) -> bool:
    """The process exited (a zombie waiting for its new parent to reap it counts)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _child_pid(parent) -> int | None:
    for line in parent.output().splitlines():
        if line.startswith("child "):
            return int(line.split()[1])
    return None


def test_executor_stops_with_a_zero_twist_when_its_launcher_is_killed(spawn, probe) -> None:
    twists = probe.sub(TwistStamped, "/openvla/target_twist", COMMAND_QOS)
    args = ros_args(
        control__command_type="twist", watchdog__action_timeout_s=5.0, stats_period_s=0.5
    )
    parent = spawn(["-c", LAUNCHER, "-m", "openvla_ros.nodes.executor_node", *args], "launcher")
    assert wait_until(lambda: _child_pid(parent) is not None, 10.0), parent.output()
    child = _child_pid(parent)
    assert child is not None
    assert probe.wait_service(SetBool, "/openvla_executor/enable", 30.0), parent.output()
    assert probe.call(SetBool, "/openvla_executor/enable", SetBool.Request(data=True)).success
    probe.start_robot(follow=None)

    def moving() -> bool:
        probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=len(twists))
        time.sleep(0.05)
        return any(abs(t.twist.linear.x) > 0 for t in twists[-3:])

    assert wait_until(moving, 10.0), "the executor never commanded a non-zero twist"
    probe.send_action([0.01, 0, 0, 0, 0, 0, 1.0], step=10_000)
    os.kill(parent.proc.pid, signal.SIGKILL)  # the launcher only, as `kill -9 <ros2 launch>`
    parent.proc.wait(timeout=5)
    assert wait_until(lambda: _gone(child), 10.0), "the orphaned executor kept running"
    time.sleep(0.3)
    last = twists[-1].twist
    assert (last.linear.x, last.linear.y, last.linear.z) == (0.0, 0.0, 0.0), parent.output()
    assert (last.angular.x, last.angular.y, last.angular.z) == (0.0, 0.0, 0.0)
    assert "Traceback" not in parent.output(), parent.output()[-6000:]


def test_opt_out_keeps_the_node_running(spawn, probe) -> None:
    parent = spawn(
        ["-c", LAUNCHER, "-m", "openvla_ros.nodes.policy_node", *ros_args(policy="scripted")],
        "launcher",
        env={"OPENVLA_ROS_STOP_WITH_PARENT": "0"},
    )
    assert wait_until(lambda: _child_pid(parent) is not None, 10.0), parent.output()
    child = _child_pid(parent)
    assert child is not None
    assert probe.wait_service(SetBool, "/openvla_policy/enable", 30.0), parent.output()
    os.kill(parent.proc.pid, signal.SIGKILL)
    parent.proc.wait(timeout=5)
    time.sleep(1.0)
    try:
        assert not _gone(child), "OPENVLA_ROS_STOP_WITH_PARENT=0 must keep the node running"
    finally:
        os.kill(child, signal.SIGTERM)
        assert wait_until(lambda: _gone(child), 10.0)
