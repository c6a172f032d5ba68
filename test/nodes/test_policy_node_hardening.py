# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The policy node against what users and hostile inputs do (issue 11), as a real process.

Start-up failures end in exit code 2 with one ``cannot start:`` line; run-time parameters are
checked as strictly as launch-time ones; a latched instruction reaches a node started later;
a 10 MB instruction is refused with a bounded log line; a PNG decompression bomb is refused
before decoding with the node's peak RSS bounded.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("openvla_ros.msg", reason="interfaces not built")

from PIL import Image as PILImage
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_check_compatible
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String

from openvla_ros.msg import DeltaAction
from openvla_ros.nodes.common import ACTION_QOS, INSTRUCTION_LATCHED_QOS, INSTRUCTION_QOS
from test.nodes.ros_helpers import ros_args, settle, wait_until

pytestmark = [pytest.mark.ros, pytest.mark.timeout(90)]

ACTION = "/openvla/delta_action"


def _vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@pytest.mark.parametrize(
    ("case", "params"),
    [
        ("missing_checkpoint", {"checkpoint": "/nonexistent/openvla"}),
        ("unknown_unnorm_key", {"unnorm_key": "nonexistent"}),
        ("no_cuda", {"device": "cuda"}),
    ],
)
def test_start_up_failure_is_exit_2_with_one_clear_line(
    spawn, small_checkpoint: Path, case: str, params: dict
) -> None:
    args = {"policy": "model", "checkpoint": str(small_checkpoint), "precision": "fp32"}
    args.update(params)
    proc = spawn(["-m", "openvla_ros.nodes.policy_node", *ros_args(**args)], name=case)
    assert wait_until(lambda: not proc.alive(), 60.0), proc.output()
    out = proc.output()
    assert proc.proc.returncode == 2, out
    assert out.count("cannot start:") == 1, out
    assert "Traceback" not in out and "AttributeError" not in out, out


def test_run_time_parameters_are_checked_like_launch_time_ones(probe, start_policy) -> None:
    proc = start_policy(enable=False, unnorm_key="bridge_orig")
    bad = probe.set_params("openvla_policy", unnorm_key="nonexistent")
    assert not bad[0].successful, "an unknown statistics key was accepted at run time"
    assert "bridge_orig" in bad[0].reason, bad[0].reason
    ok = probe.set_params("openvla_policy", unnorm_key="bridge_orig")
    assert ok[0].successful, ok[0].reason
    # The policy's mode must stay equal to the executor's read-only control.mode.
    mode = probe.set_params("openvla_policy", mode="blocking")
    assert not mode[0].successful and "read-only" in mode[0].reason, mode[0].reason
    assert proc.alive()


def test_instruction_qos_rules() -> None:
    # What docs/interfaces.md says about publishers, checked with rclpy's own rule.
    volatile = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    ok = qos_check_compatible
    assert ok(volatile, INSTRUCTION_QOS)[0].name != "ERROR"  # rqt, ros2 topic pub (volatile)
    assert ok(latched, INSTRUCTION_QOS)[0].name != "ERROR"
    assert ok(latched, INSTRUCTION_LATCHED_QOS)[0].name != "ERROR"
    assert ok(volatile, INSTRUCTION_LATCHED_QOS)[0].name == "ERROR"  # hence two subscriptions
    assert ok(best_effort, INSTRUCTION_QOS)[0].name == "ERROR"


def test_latched_instruction_reaches_a_policy_started_later(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    latched = probe.pub(String, "/instruction", INSTRUCTION_LATCHED_QOS)
    latched.publish(String(data="pick up the cup"))  # before the policy node exists
    proc = start_policy()
    probe.start_camera(hz=20)
    assert wait_until(lambda: len(actions) >= 3, 15.0), proc.output()
    assert {a.instruction for a in actions} == {"pick up the cup"}
    # Delivered on both subscriptions (volatile and transient-local), counted once.
    assert {a.episode_id for a in actions} == {1}
    assert "incompatible" not in proc.output().lower()


def test_oversized_instruction_is_refused_with_a_bounded_log_line(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    proc = start_policy()
    probe.start_camera(hz=20)
    probe.instruction("pick up the cup")
    assert wait_until(lambda: len(actions) >= 2)
    log_before = len(proc.output())
    huge = "pick up the cup " * 65_536  # 1 MiB
    probe.instruction(huge)
    assert wait_until(lambda: "characters refused" in proc.output(), 10.0), proc.output()[-2000:]
    settle(0.3)  # an inference in flight may still land
    count = len(actions)
    settle(0.5)
    assert len(actions) == count, "the node kept acting after refusing the instruction"
    assert all(len(a.instruction) < 100 for a in actions)
    grown = len(proc.output()) - log_before
    assert grown < 5_000, f"the refused instruction grew the log by {grown} bytes"
    probe.instruction("put the cup down")
    assert wait_until(lambda: actions[-1].instruction == "put the cup down", 10.0)
    assert wait_until(lambda: "instructions_refused=1" in proc.output(), 5.0)


def _png_bomb() -> bytes:
    buf = io.BytesIO()
    PILImage.new("1", (8192, 8192)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def test_png_decompression_bomb_is_refused_with_rss_bounded(probe, start_policy) -> None:
    actions = probe.sub(DeltaAction, ACTION, ACTION_QOS)
    proc = start_policy(image_transport="compressed")
    probe.instruction("pick up the cup")
    good = io.BytesIO()
    PILImage.new("RGB", (64, 48), (200, 100, 50)).save(good, "PNG")
    topic = "/camera/image_raw/compressed"
    probe.publish_frame(msg=CompressedImage(format="png", data=good.getvalue()), topic=topic)
    assert wait_until(lambda: len(actions) == 1, 10.0), proc.output()
    settle(0.5)
    before_kib = _vm_kib(proc.proc.pid, "VmHWM")
    bomb = _png_bomb()
    assert len(bomb) < 10_000
    for k in range(1, 4):
        probe.publish_frame(msg=CompressedImage(format="png", data=bomb), topic=topic)
        # One frame at a time (the slot keeps only the newest): each counted before the next.
        assert wait_until(lambda k=k: f"images_bad={k}" in proc.output(), 10.0), proc.output()[
            -3000:
        ]
    grown_mib = (_vm_kib(proc.proc.pid, "VmHWM") - before_kib) / 1024
    # Refused from the header: nothing near the 201 MiB an RGB decode would take.
    assert grown_mib < 40, f"peak RSS grew {grown_mib:.0f} MiB on a PNG bomb"
    assert len(actions) == 1 and proc.alive()
