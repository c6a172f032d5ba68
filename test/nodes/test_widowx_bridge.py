# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The WidowX bridge as its own process over DDS: joint states in -> EE pose out (FK), target
poses in -> ``interbotix_xs_msgs/JointGroupCommand`` out (IK), bad targets refused.

A stand-in xs driver process (built ``interbotix_xs_msgs``) prints every joint group command
it receives; the probe plays the driver's joint states and the executor's targets.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openvla_ros.control.se3 import Pose, pose_distance
from openvla_ros.control.widowx_kinematics import fk_pose

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from openvla_ros.nodes.common import COMMAND_QOS, POSE_QOS, ns_to_stamp  # noqa: E402
from test.nodes.ros_helpers import settle, wait_until  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ARM_JOINTS = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate"]
#: A Bridge-like configuration: gripper in front of the base, pointing forward and down.
Q0 = np.array([0.1, -0.4, 0.4, 0.05, 0.6, -0.1])

#: The stand-in xs driver: prints ``CMD <json>`` for every JointGroupCommand it receives.
FAKE_DRIVER = """
import json, sys
import rclpy
from interbotix_xs_msgs.msg import JointGroupCommand
rclpy.init()
node = rclpy.create_node("fake_xs_driver")
def on_cmd(msg):
    print("CMD " + json.dumps({"name": msg.name, "cmd": [float(v) for v in msg.cmd]}), flush=True)
node.create_subscription(JointGroupCommand, sys.argv[1], on_cmd, 10)
print("fake xs driver ready", flush=True)
try:
    rclpy.spin(node)
except BaseException:
    pass
"""


def _commands(output: str) -> list[dict[str, Any]]:
    return [json.loads(ln[4:]) for ln in output.splitlines() if ln.startswith("CMD ")]


def _target(pose: Pose, frame: str = "wx250s/base_link") -> PoseStamped:
    msg = PoseStamped()
    msg.header.frame_id = frame
    p, q = pose.position, pose.orientation
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in p)
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in q)
    return msg


class JointStatePublisher:
    """Publishes the probe's arm joints (plus the gripper joints, in the driver's order
    scrambled) at a rate, as the xs driver does."""

    def __init__(self, probe: Any, topic: str = "/wx250s/joint_states", hz: float = 50.0):
        self.q = Q0.copy()
        self.stamps: list[int] = []
        self._probe, self._hz = probe, hz
        self._pub = probe.pub(JointState, topic, 10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        assert wait_until(lambda: self._pub.get_subscription_count() > 0, 15.0)
        self._thread.start()

    def _run(self) -> None:
        names = ["gripper", *reversed(ARM_JOINTS), "left_finger", "right_finger"]
        while not self._stop.is_set():
            by_name = dict(zip(ARM_JOINTS, self.q.tolist(), strict=True))
            msg = JointState()
            stamp = self._probe.now_ns()
            msg.header.stamp = ns_to_stamp(stamp)
            msg.name = names
            msg.position = [by_name.get(n, 0.02) for n in names]
            self._pub.publish(msg)
            self.stamps.append(stamp)
            self._stop.wait(1.0 / self._hz)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)


@pytest.fixture
def joints(probe: Any) -> Iterator[JointStatePublisher]:
    pub = JointStatePublisher(probe)
    yield pub
    pub.stop()


@pytest.fixture
def start_bridge(spawn: Callable, probe: Any) -> Callable[..., Any]:
    """Start the bridge node (with the stand-in interfaces) and wait until it is up."""
    from test.nodes.ros_helpers import ros_args

    def _start(env: dict[str, str], **params: Any) -> Any:
        args = ros_args(**{"stats_period_s": 0.5, **params})
        proc = spawn(["-m", "openvla_ros.nodes.widowx_bridge_node", *args], name="bridge",
                     env=env)  # fmt: skip
        ok = probe.wait_service(SetParameters, "/widowx_bridge/set_parameters", 30.0)
        assert ok, f"bridge did not come up; its log:\n{proc.output()}"
        return proc

    return _start


def _pose_of(msg: PoseStamped) -> Pose:
    p, o = msg.pose.position, msg.pose.orientation
    return Pose(np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]))


@pytest.mark.timeout(240)
def test_fk_out_ik_in_and_refusals(
    probe: Any, spawn: Callable, start_bridge: Callable, joints: JointStatePublisher,
    robot_interfaces: dict[str, str],
) -> None:  # fmt: skip
    driver = spawn(["-c", FAKE_DRIVER, "/wx250s/commands/joint_group"], name="xs_driver",
                   env=robot_interfaces)  # fmt: skip
    assert wait_until(lambda: "fake xs driver ready" in driver.output(), 20.0), driver.output()
    poses = probe.sub(PoseStamped, "/openvla/ee_pose", POSE_QOS)
    bridge = start_bridge(robot_interfaces)
    joints.start()

    # Joint states -> ee_pose = FK, in the base frame, stamped with the joint state's stamp.
    assert wait_until(lambda: len(poses) >= 5, 15.0), bridge.output()
    last = poses[-1]
    assert last.header.frame_id == "wx250s/base_link"
    d_m, d_rad = pose_distance(_pose_of(last), fk_pose(Q0))
    assert d_m < 1e-6 and d_rad < 1e-6
    stamp = last.header.stamp.sec * 1_000_000_000 + last.header.stamp.nanosec
    assert stamp in joints.stamps

    # A reachable target one Bridge step away -> one JointGroupCommand whose FK is the target.
    target_pub = probe.pub(PoseStamped, "/openvla/target_pose", COMMAND_QOS)
    assert wait_until(lambda: target_pub.get_subscription_count() > 0, 15.0)
    start = fk_pose(Q0)
    goal = start.with_position(start.position + np.array([0.03, -0.02, 0.01]))
    # A command published before the bridge's publisher has matched the driver's subscription
    # is lost (volatile), and nothing reports the match: send the same target (the joints stay
    # at Q0, so each is the same command) until the driver has one.
    for _ in range(10):
        target_pub.publish(_target(goal))
        if wait_until(lambda: len(_commands(driver.output())) >= 1, 2.0):
            break
    assert _commands(driver.output()), bridge.output()
    settle(0.3)
    n_cmd = len(_commands(driver.output()))
    cmd = _commands(driver.output())[0]
    assert cmd["name"] == "arm" and len(cmd["cmd"]) == 6
    d_m, d_rad = pose_distance(fk_pose(np.array(cmd["cmd"])), goal)
    # float32 on the wire: ~1e-7 rad per joint on top of the IK tolerance (2 mm, 0.01 rad).
    assert d_m <= 0.0021 and d_rad <= 0.0101
    assert np.max(np.abs(np.array(cmd["cmd"]) - Q0)) < 0.5

    # Bad targets: nothing published, each counted, the node alive.
    nan_pos = _target(goal)
    nan_pos.pose.position.x = math.nan
    bad = [
        ("bad_target", nan_pos),
        ("ik_failed", _target(Pose.from_xyz_rpy((1.5, 0.0, 0.2), (0, 0, 0)))),
        ("wrong_frame", _target(goal, frame="world")),
        ("wrong_frame", _target(goal, frame="")),
        ("joint_step", _target(fk_pose(Q0 + np.array([1.0, 0, 0, 0, 0, 0])))),
    ]
    nan_quat = _target(goal)
    nan_quat.pose.orientation.w = math.inf
    bad.append(("bad_target", nan_quat))
    # Depth-1 reliable: one at a time, each counted (the counters are logged every 0.5 s)
    # before the next is sent.
    seen: dict[str, int] = {}
    for kind, msg in bad:
        seen[kind] = seen.get(kind, 0) + 1
        target_pub.publish(msg)
        want = f"rejected_{kind}={seen[kind]}"
        assert wait_until(lambda w=want: w in bridge.output(), 10.0), bridge.output()
    assert seen == {"bad_target": 2, "ik_failed": 1, "wrong_frame": 2, "joint_step": 1}
    settle(0.3)
    assert len(_commands(driver.output())) == n_cmd, "a refused target must publish nothing"
    assert bridge.alive()

    # Stale joint states (driver stopped): refused; fresh again: commanded.
    joints.stop()
    settle(0.8)
    target_pub.publish(_target(goal))
    assert wait_until(lambda: "rejected_stale_joint_state=1" in bridge.output(), 5.0), (
        bridge.output()
    )
    assert len(_commands(driver.output())) == n_cmd
    assert bridge.alive() and driver.alive()


@pytest.mark.timeout(120)
def test_pose_rate_limit_and_recovery(
    probe: Any, spawn: Callable, start_bridge: Callable, joints: JointStatePublisher,
    robot_interfaces: dict[str, str],
) -> None:  # fmt: skip
    poses = probe.sub(PoseStamped, "/openvla/ee_pose", POSE_QOS)
    bridge = start_bridge(robot_interfaces, pose_rate_hz=5.0)
    joints.start()
    assert wait_until(lambda: len(poses) >= 1, 15.0), bridge.output()
    n0 = len(poses)
    settle(2.0)
    # 50 Hz joint states, 5 Hz poses: ~10 in 2 s (not ~100).
    assert 5 <= len(poses) - n0 <= 15, len(poses) - n0
    # A joint state without the arm joints is refused; the next good one is used again.
    bad_pub = probe.pub(JointState, "/wx250s/joint_states", 10)
    bad_pub.publish(JointState(name=["gripper"], position=[0.0]))
    assert wait_until(lambda: "rejected_bad_joint_state" in bridge.output(), 5.0)
    assert bridge.alive()


def test_without_interbotix_msgs_exits_2(spawn: Callable) -> None:
    proc = spawn(["-m", "openvla_ros.nodes.widowx_bridge_node"], name="bridge_no_msgs")
    assert wait_until(lambda: not proc.alive(), 30.0), proc.output()
    assert proc.proc.returncode == 2
    assert "interbotix_xs_msgs" in proc.output()


def test_widowx_yaml_section_is_valid() -> None:
    from openvla_ros.control.profile import read_ros_params_yaml
    from openvla_ros.nodes.widowx_bridge_node import WIDOWX_BRIDGE_PARAMS
    from openvla_ros.paramspec import validate_params

    path = REPO / "config" / "widowx.yaml"
    section = read_ros_params_yaml(path, "widowx_bridge")
    assert section, "config/widowx.yaml has no widowx_bridge section"
    validate_params(WIDOWX_BRIDGE_PARAMS, section)
    executor = read_ros_params_yaml(path, "openvla_executor")
    # One fact, two readers: the executor's targets must be in the frame the bridge accepts.
    assert section["base_frame"] == executor["frames.base"]
