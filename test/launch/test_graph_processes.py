# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The argv the graph produces starts the real nodes (the demo runner's path, no launch)."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("openvla_ros.msg", reason="interfaces not built")
pytest.importorskip("pybullet", reason="pybullet not installed")

from openvla_ros.launch_description.graph import describe_graph, node_argv, robot_topic_defaults
from test.conftest import wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.mark.parametrize("command_type", ["pose", "twist"])
def test_sim_graph_nodes_start_from_argv(spawn, command_type: str) -> None:
    nodes = describe_graph("sim", {"command_type": command_type, "mode": "blocking"})
    procs = {n.name: spawn(node_argv(n), name=n.name) for n in nodes}
    policy, executor, sim = procs["openvla_policy"], procs["openvla_executor"], procs["sim_arm"]

    def all_ready() -> bool:
        return (
            "ready" in policy.output()
            and "ready" in executor.output()
            and "sim_arm ready" in sim.output()
        )

    ok = wait_for(all_ready, timeout=60.0, interval=0.2)
    logs = "\n".join(f"--- {k}\n{p.output()}" for k, p in procs.items())
    assert ok, f"nodes did not start from node_argv:\n{logs}"
    assert all(p.alive() for p in procs.values()), logs
    assert f"command_type {command_type}" in executor.output()


@pytest.mark.parametrize("robot", ["franka", "widowx"])
def test_robot_launch_with_sim_moves_the_arm(spawn, robot: str) -> None:
    # Issue 11 item 3: with_sim:=true never moved: the sim published panda_link0 poses and the
    # executor (fr3_link0 / wx250s/base_link) refused every one.
    from geometry_msgs.msg import PoseStamped

    from openvla_ros.msg import ExecutorState
    from openvla_ros.nodes.common import POSE_QOS, STATE_QOS
    from test.nodes.ros_helpers import Probe

    nodes = describe_graph(robot, {"with_sim": "true", "policy": "scripted", "enable": "true"})
    step = {"scripted.actions": [0.0, 0.01, 0.0, 0.0, 0.0, 0.0, 1.0]}  # 1 cm sideways per step
    procs = {
        n.name: spawn(
            node_argv(n, extra_overrides=step if n.name == "openvla_policy" else None),
            name=n.name,
            env=dict(n.env),
        )
        for n in nodes
    }
    probe = Probe()
    try:
        pose_topic = robot_topic_defaults(robot)["ee_pose_topic"]  # the sim is remapped onto it
        poses = probe.sub(PoseStamped, pose_topic, POSE_QOS)
        states = probe.sub(ExecutorState, "/openvla/executor_state", STATE_QOS)
        assert wait_for(lambda: len(poses) > 0, 60.0, 0.2), procs["sim_arm"].output()
        start_y = poses[-1].pose.position.y
        probe.instruction("move sideways")
        moved = wait_for(lambda: poses[-1].pose.position.y - start_y > 0.02, 40.0, 0.2)
        logs = "\n".join(f"--- {k}\n{p.output()[-3000:]}" for k, p in procs.items())
        assert moved, logs
        # Applied (the sim's home x = 0.45 m is the WidowX box's edge: a step may be clipped).
        applied = (ExecutorState.OUTCOME_EXECUTED, ExecutorState.OUTCOME_CLIPPED)
        assert wait_for(lambda: any(s.outcome in applied for s in states), 10.0, 0.1), logs
        frames = {p.header.frame_id for p in poses}
        assert frames == {"fr3_link0" if robot == "franka" else "wx250s/base_link"}
    finally:
        probe.close()


def test_node_env_makes_rclpy_refuse_a_short_fixed_size_array() -> None:
    # Issue 10 item 8: without ROS_PYTHON_CHECK_FIELDS a 6-value list went out in float64[7].
    import os
    import subprocess
    import sys

    from openvla_ros.launch_description.graph import NODE_ENV

    code = (
        "from openvla_ros.msg import DeltaAction\n"
        "try:\n    DeltaAction(action=[0.0] * 6)\nexcept AssertionError:\n    print('refused')\n"
        "else:\n    print('accepted')\n"
    )
    base = {k: v for k, v in os.environ.items() if k != "ROS_PYTHON_CHECK_FIELDS"}

    def run(env: dict) -> str:
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
        return out.stdout.strip()

    assert run({**base, **NODE_ENV}) == "refused"
    assert run(base) == "accepted"  # the hazard the launch files' environment removes
