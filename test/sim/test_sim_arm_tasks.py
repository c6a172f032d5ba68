# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""sim_arm task mode over DDS: ~/reset_scene draws the next seed's scene, ~/task_state reports
it from simulator state, /joint_states carries the fingers."""

from __future__ import annotations

import json

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("pybullet", reason="pybullet not installed")

from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from openvla_ros.sim.tasks import sample_scene  # noqa: E402
from test.conftest import wait_for  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _spawn_reach_colour_sim(spawn):  # type: ignore[no-untyped-def]
    """sim_arm on reach_colour scenes from seed 3, fast mode, camera (and task_state) at 5 Hz."""
    return spawn(
        ["-m", "openvla_ros.nodes.sim_arm_node", "--ros-args", "-p", "task:=reach_colour",
         "-p", "scene_seed:=3", "-p", "camera_hz:=5.0", "-p", "real_time:=false"],
        name="sim_arm",
    )  # fmt: skip


def test_reset_scene_and_task_state(spawn) -> None:
    proc = _spawn_reach_colour_sim(spawn)
    rclpy.init()
    node = rclpy.create_node("sim_arm_tasks_test")
    states: list[dict] = []
    joints: list[JointState] = []
    try:
        node.create_subscription(String, "/sim_arm/task_state",
                                 lambda m: states.append(json.loads(m.data)), 10)  # fmt: skip
        node.create_subscription(
            JointState,
            "/joint_states",
            joints.append,
            QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT),
        )
        client = node.create_client(Trigger, "/sim_arm/reset_scene")

        def spin() -> None:
            rclpy.spin_once(node, timeout_sec=0.05)

        assert wait_for(lambda: len(states) >= 2 and joints, 30.0, spin=spin), proc.output()
        first = states[-1]
        expected = sample_scene("reach_colour", 3)
        assert (first["seed"], first["instruction"]) == (3, expected.instruction)
        assert first["success"] is False and first["reached"] is None
        got = {o["colour"]: o["position"] for o in first["objects"]}
        for cube in expected.cubes:
            np.testing.assert_allclose(got[cube.colour], cube.position, atol=3e-3)
        assert joints[-1].name[-2:] == ["panda_finger_joint1", "panda_finger_joint2"]
        assert joints[-1].position[-1] == pytest.approx(0.04, abs=2e-3)  # open

        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(Trigger.Request())
        assert wait_for(future.done, 10.0, spin=spin)
        answer = future.result()
        assert answer.success, answer.message
        reply = json.loads(answer.message)
        assert (reply["task"], reply["seed"]) == ("reach_colour", 4)
        assert reply["instruction"] == sample_scene("reach_colour", 4).instruction
        states.clear()
        assert wait_for(lambda: len(states) >= 2, 20.0, spin=spin)
        assert states[-1]["seed"] == 4 and states[-1]["step"] >= 1
        assert proc.alive()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def test_the_sim_target_follows_an_instruction_naming_another_cube(spawn) -> None:
    """An instruction in the task's wording (case and a final '.' ignored) naming another cube
    makes it the target in ~/task_state; other texts leave the target; a new scene restores
    its own target."""
    from openvla_ros.nodes.common import INSTRUCTION_QOS

    proc = _spawn_reach_colour_sim(spawn)
    rclpy.init()
    node = rclpy.create_node("sim_arm_follow_test")
    states: list[dict] = []
    try:
        node.create_subscription(String, "/sim_arm/task_state",
                                 lambda m: states.append(json.loads(m.data)), 10)  # fmt: skip
        pub = node.create_publisher(String, "/instruction", INSTRUCTION_QOS)

        def spin() -> None:
            rclpy.spin_once(node, timeout_sec=0.05)

        assert wait_for(lambda: len(states) >= 2 and pub.get_subscription_count() >= 1, 30.0,
                        spin=spin), proc.output()  # fmt: skip
        scene = sample_scene("reach_colour", 3)
        assert states[-1]["target_colour"] == scene.target_colour
        other = next(c for c in ("red", "green", "blue") if c != scene.target_colour)
        for text in ("reach the purple cube", "pick up the " + other + " cube", "reach"):
            pub.publish(String(data=text))
        # Texts in another wording leave the target: several fresh task_states later it holds.
        states.clear()
        assert wait_for(lambda: len(states) >= 4, 20.0, spin=spin)
        assert {s["target_colour"] for s in states} == {scene.target_colour}
        pub.publish(String(data=f"  Reach the {other.upper()} cube. "))

        def retargeted() -> bool:
            return bool(states) and states[-1]["target_colour"] == other

        assert wait_for(retargeted, 20.0, spin=spin), (states[-1], proc.output())
        last = states[-1]
        assert last["instruction"] == f"reach the {other} cube" and last["seed"] == 3
        assert last["cubes"] == scene.to_dict()["cubes"]  # same layout, other target
        assert "it is the target now" in proc.output()

        client = node.create_client(Trigger, "/sim_arm/reset_scene")
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(Trigger.Request())
        assert wait_for(future.done, 10.0, spin=spin)
        states.clear()
        assert wait_for(lambda: len(states) >= 2, 20.0, spin=spin)
        assert states[-1]["target_colour"] == sample_scene("reach_colour", 4).target_colour
        assert proc.alive()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
