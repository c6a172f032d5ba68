# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""`openvla-ros record` captures an episode of the live sim graph into a bag that the offline
evaluator can read back: a demonstration collected through this package replays later."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("pybullet", reason="pybullet not installed")

import rclpy
from std_msgs.msg import String

from openvla_ros.bag.evaluate import EvalConfig, evaluate_bag, load_robot_profile
from openvla_ros.bag.reader import BagReader
from openvla_ros.launch_description.graph import describe_graph, node_argv
from openvla_ros.msg import DeltaAction
from openvla_ros.nodes.common import ACTION_QOS, INSTRUCTION_QOS
from openvla_ros.policy.scripted import ScriptedPolicy

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(180)]

ACTION = [0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]


def test_record_an_episode_of_the_live_graph_and_evaluate_it(tmp_path: Path, spawn) -> None:
    nodes = describe_graph("sim", {"policy": "scripted", "enable": "true"})
    procs = [
        spawn(node_argv(n, extra_overrides={"scripted.actions": ACTION} if n.name ==
                        "openvla_policy" else {}), name=n.name)
        for n in nodes
    ]  # fmt: skip
    out = tmp_path / "episode"
    rclpy.init()
    node = rclpy.create_node("record_test_user")
    try:
        pub = node.create_publisher(String, "/instruction", INSTRUCTION_QOS)
        acted: list[DeltaAction] = []
        node.create_subscription(DeltaAction, "/openvla/delta_action", acted.append, ACTION_QOS)
        # The graph's cold start (processes, PyBullet, discovery) could outlast an 8 s
        # recording on a loaded machine: start recording once actions flow.
        deadline = time.monotonic() + 90.0
        while not acted and time.monotonic() < deadline:
            pub.publish(String(data="slide right"))
            rclpy.spin_once(node, timeout_sec=0.5)
        assert acted, "no action from the graph:\n" + "\n".join(p.output()[-1500:] for p in procs)
        recorder = subprocess.Popen(
            [sys.executable, "-m", "openvla_ros.cli", "record", str(out), "--duration", "8",
             "--storage", "sqlite3"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        # As rqt does: publish the instruction repeatedly while the recorder runs.
        deadline = time.monotonic() + 60.0
        while recorder.poll() is None and time.monotonic() < deadline:
            pub.publish(String(data="slide right"))
            rclpy.spin_once(node, timeout_sec=0.5)
        output = recorder.communicate(timeout=30)[0]
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    logs = "\n".join(p.output()[-1500:] for p in procs)
    assert recorder.returncode == 0, f"{output}\n{logs}"
    assert all(p.alive() for p in procs), logs

    with BagReader(out) as bag:
        counts = {t: bag.message_count(t) for t in bag.topics}
        assert bag.storage == "sqlite3"
    for topic in ("/camera/image_raw", "/openvla/ee_pose", "/openvla/delta_action",
                  "/openvla/executor_state", "/openvla/target_pose", "/instruction"):  # fmt: skip
        assert counts.get(topic, 0) > 0, f"{topic} not recorded: {counts}"
    assert counts["/openvla/delta_action"] >= 5, counts  # ~5 Hz for several seconds

    # Offline, the same scripted policy on the recorded frames reproduces the recorded actions.
    result = evaluate_bag(
        out,
        ScriptedPolicy([ACTION]),
        load_robot_profile("sim"),
        EvalConfig(camera_topic="/camera/image_raw", instruction_topic="/instruction",
                   action_topic="/openvla/delta_action", pose_topic="/openvla/ee_pose"),
    )  # fmt: skip
    matched = [s for s in result.steps if s.reference is not None]
    assert len(matched) >= 5, result.metrics
    for step in matched:
        assert step.predicted == pytest.approx(step.reference)
