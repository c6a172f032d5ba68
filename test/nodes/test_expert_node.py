# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The sim expert node as its own process over DDS: malformed task states are logged and
ignored (the node used to die on the next tick with a KeyError / AttributeError traceback), and
a well-formed one after them still arms the expert."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")

from geometry_msgs.msg import PoseStamped
from std_msgs.msg import String

from test.conftest import wait_for

pytestmark = pytest.mark.timeout(90)

#: A task state as sim_arm publishes it (sim_arm_node._publish_task_state), written out by hand.
GOOD_STATE: dict[str, Any] = {
    "task": "reach_cube",
    "seed": 7,
    "instruction": "reach the red cube",
    "target_colour": "red",
    "cube_size_m": 0.04,
    "cubes": [{"colour": "red", "position": [0.5, 0.1, 0.02], "yaw": 0.0}],
    "ee_position": [0.4, 0.0, 0.3],
    "gripper_opening": 1.0,
    "objects": [{"colour": "red", "position": [0.5, 0.1, 0.02], "yaw": 0.0}],
    "succeeded": False,
}


def _pose() -> PoseStamped:
    msg = PoseStamped()
    msg.header.frame_id = "panda_link0"
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = 0.4, 0.0, 0.3
    # Tool pointing down (rotation of pi about x), as the sim arm's nominal orientation.
    msg.pose.orientation.x, msg.pose.orientation.w = 1.0, 0.0
    return msg


def test_malformed_task_state_is_ignored_and_the_node_keeps_running(spawn, probe) -> None:
    proc = spawn(["-m", "openvla_ros.nodes.expert_node", "--ros-args", "-p", "control_hz:=20.0"],
                 name="expert")  # fmt: skip
    status = probe.sub(String, "/sim_expert/status")
    targets = probe.sub(PoseStamped, "/openvla/target_pose")
    state_pub = probe.pub(String, "/sim_arm/task_state")
    assert wait_for(lambda: state_pub.get_subscription_count() > 0, 30.0), proc.output()
    pose_pub = probe.pub(PoseStamped, "/openvla/ee_pose")
    assert wait_for(lambda: pose_pub.get_subscription_count() > 0, 30.0), proc.output()
    pose_pub.publish(_pose())
    missing = {k: v for k, v in GOOD_STATE.items() if k != "objects"}
    for bad in ("[1, 2]", "not json", json.dumps(missing), json.dumps({**GOOD_STATE, "seed": []})):
        state_pub.publish(String(data=bad))
    probe.instruction("reach the red cube")
    assert wait_for(lambda: "malformed task_state ignored" in proc.output(), 10.0), proc.output()
    wait_for(lambda: False, 1.0)  # a few ticks of the expert with only bad states received
    assert proc.alive(), f"the expert died on a malformed task state:\n{proc.output()}"
    assert status == [], "no status before a well-formed task state"
    # A good state, then an instruction for its scene: the expert arms and drives the arm.
    state_pub.publish(String(data=json.dumps(GOOD_STATE)))
    pose_pub.publish(_pose())
    assert wait_for(lambda: len(status) > 0, 10.0), proc.output()
    probe.instruction("reach the red cube")
    assert wait_for(lambda: any(json.loads(m.data)["armed"] for m in status), 10.0), proc.output()
    assert wait_for(lambda: len(targets) > 0, 10.0), proc.output()
    assert proc.alive()
