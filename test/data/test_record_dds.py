# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Over real DDS between processes: the expert drives sim_arm through its command topics, the
live recorder writes the episodes; the dataset reads back (plain pyarrow) with the right shapes,
timestamps, instructions and statistics; a bag of the same run converts to the same frames;
Ctrl-C mid-episode loses only that episode."""

from __future__ import annotations

import io
import json
import signal
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("pybullet", reason="pybullet not installed")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from openvla_ros.data.bag_convert import bag_to_dataset  # noqa: E402
from openvla_ros.data.lerobot import DemoDataset  # noqa: E402
from openvla_ros.data.recorder_config import config_from_params  # noqa: E402
from openvla_ros.nodes.sim_demos_runner import RosDemoConfig, run_ros_demos  # noqa: E402
from openvla_ros.sim.tasks import sample_scene  # noqa: E402
from test.conftest import wait_for  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_expert_recorded_over_dds_and_the_bag_gives_the_same_frames(tmp_path: Path) -> None:
    out, bag = tmp_path / "demos", tmp_path / "run_bag"
    summary = run_ros_demos(RosDemoConfig("pick_colour", 2, out, seed=7, bag=bag,
                                          log_dir=tmp_path / "logs"))  # fmt: skip
    assert summary["outcomes"] == ["success", "success"], summary

    # Independent read-back: plain pyarrow + PIL.
    info = json.loads((out / "meta/info.json").read_text())
    assert info["total_episodes"] == 2 and info["fps"] == 5.0
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["tasks"][0] for e in episodes] == [
        sample_scene("pick_colour", 7).instruction,
        sample_scene("pick_colour", 8).instruction,
    ]
    assert all(e["success"] for e in episodes)
    total = 0
    for e in episodes:
        rows = pq.read_table(
            out / f"data/chunk-000/file-{e['episode_index']:03d}.parquet"
        ).to_pylist()
        assert len(rows) == e["length"] >= 8
        total += len(rows)
        ts = np.array([r["timestamp"] for r in rows])
        # Sim-time stamps on the 0.2 s grid (idle frames removed leave multiples of 0.2).
        assert ts[0] == pytest.approx(0.0, abs=1e-6) or ts[0] > 0
        np.testing.assert_allclose(ts / 0.2, np.round(ts / 0.2), atol=1e-4)
        assert np.all(np.diff(ts) > 0)
        img = np.asarray(Image.open(io.BytesIO(rows[0]["observation.images.primary"]["bytes"])))
        assert img.shape == (224, 224, 3) and img.std() > 10
        acts = np.array([r["action"] for r in rows])
        assert acts.shape[1] == 7 and np.abs(acts[:, :3]).max() <= 0.05 + 1e-6
        assert acts[0, 6] == 1.0 and acts[-1, 6] == 0.0  # open at the start, closed lifting
        assert acts[:, 2].min() < -0.02 and acts[:, 2].max() > 0.02  # went down, came up
    stats = json.loads((out / "dataset_statistics.json").read_text())["sim_pick_colour"]
    assert stats["num_transitions"] == total and stats["num_trajectories"] == 2

    # The bag recorded by a separate process converts to the same frames.
    config, _ = config_from_params({"out": str(tmp_path / "from_bag"), "robot": "sim",
                                    "unnorm_key": "sim_pick_colour"})  # fmt: skip
    converted = bag_to_dataset([bag], config)
    assert converted["episodes_written"] == 2, converted
    live, offline = DemoDataset(out), DemoDataset(tmp_path / "from_bag")
    assert live.num_frames == offline.num_frames == total
    np.testing.assert_array_equal(live.actions, offline.actions)
    np.testing.assert_array_equal(live.states, offline.states)
    for i in range(total):
        a, b = live.frame(i), offline.frame(i)
        assert live.image_bytes(i) == offline.image_bytes(i)
        assert (a.timestamp, a.instruction, a.episode_index) == (
            b.timestamp,
            b.instruction,
            b.episode_index,
        )


def test_ctrl_c_mid_episode_keeps_the_written_episodes(spawn, tmp_path: Path) -> None:
    out = tmp_path / "teleop"
    sim = spawn(["-m", "openvla_ros.nodes.sim_arm_node", "--ros-args", "-p", "camera_hz:=5.0",
                 "-p", "real_time:=false"], name="sim_arm")  # fmt: skip
    rec = spawn(["-m", "openvla_ros.nodes.recorder_node", "--ros-args", "-p", f"out:={out}",
                 "-p", "use_sim_time:=true"], name="recorder")  # fmt: skip
    rclpy.init()
    node = rclpy.create_node("teleop_test")
    try:
        from openvla_ros.nodes.common import COMMAND_QOS, INSTRUCTION_QOS

        instr = node.create_publisher(String, "/instruction", INSTRUCTION_QOS)
        target = node.create_publisher(PoseStamped, "/openvla/target_pose", COMMAND_QOS)
        stop = node.create_client(SetBool, "/openvla_recorder/stop")

        def spin() -> None:
            rclpy.spin_once(node, timeout_sec=0.02)

        assert stop.wait_for_service(timeout_sec=20.0), rec.output()
        assert wait_for(lambda: instr.get_subscription_count() >= 1, 10.0, spin=spin)

        def teleop(seconds: float, x0: float) -> None:
            # A "teleoperator" streaming pose targets: 4 cm/s along x, 20 Hz.
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end:
                x = x0 + 0.04 * (seconds - (t_end - time.monotonic()))
                msg = PoseStamped()
                msg.header.frame_id = "panda_link0"
                msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, 0.0, 0.25
                msg.pose.orientation.x, msg.pose.orientation.w = 1.0, 0.0
                target.publish(msg)
                wait_for(lambda: False, 0.05, spin=spin)

        instr.publish(String(data="slide right"))
        teleop(3.0, 0.45)
        future = stop.call_async(SetBool.Request(data=True))
        # Under load the answer can be lost (the response reader not yet matched: see the
        # lost-answer test below); the recorder's log line is the call's visible effect, and
        # the dataset checks below prove the episode was written.
        stopped = lambda: future.done() or "(stop service)" in rec.output()  # noqa: E731
        assert wait_for(stopped, 20.0, spin=spin), rec.output()
        if future.done():
            assert future.result().success, future.result().message
        instr.publish(String(data="slide back"))
        teleop(1.5, 0.57)
        rec.proc.send_signal(signal.SIGINT)  # Ctrl-C in the recorder's terminal
        rec.proc.wait(timeout=20)
        assert rec.proc.returncode == 0, rec.output()
        assert "shutdown mid-episode" in rec.output() and "1 episodes in" in rec.output()
        ds = DemoDataset(out)
        assert ds.num_episodes == 1 and ds.tasks == ["slide right"]
        assert ds.actions[:, 0].mean() > 0.002  # it moved +x
        assert sim.alive()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def test_recorder_without_publishers_warns_and_stops_on_ctrl_c(spawn, tmp_path: Path) -> None:
    # Nothing publishes (wrong topic names, driver not started): the recorder says so, and
    # Ctrl-C still stops it (a steady-clock timer wakes its executor; before, it hung).
    args = ["-p", f"out:={tmp_path / 'none'}", "-p", "camera_topic:=/no/camera"]
    rec = spawn(["-m", "openvla_ros.nodes.recorder_node", "--ros-args", *args], name="rec")
    assert wait_for(lambda: "nothing received yet on" in rec.output(), 20.0), rec.output()
    assert "/no/camera" in rec.output()
    rec.proc.send_signal(signal.SIGINT)
    rec.proc.wait(timeout=10)
    assert rec.proc.returncode == 0, rec.output()


def test_a_lost_service_answer_is_covered_by_the_calls_visible_effect() -> None:
    # The CI failure: /openvla_recorder/stop wrote the episode, but its answer never reached
    # the driver (response reader not yet matched, under load) and the run died after 20 s.
    # Here the server node is never spun, so no answer ever comes.
    from std_srvs.srv import Trigger

    from openvla_ros.errors import DatasetError
    from openvla_ros.nodes.sim_demos_runner import _Driver

    rclpy.init()
    server = rclpy.create_node("silent_server")
    try:
        server.create_service(Trigger, "/silent", lambda req, res: res)
        driver = _Driver()
        client = driver.node.create_client(Trigger, "/silent")
        t0 = time.monotonic()
        answer = driver.call(client, Trigger.Request(), timeout_s=20.0,
                             effect=lambda: time.monotonic() - t0 > 0.5)  # fmt: skip
        assert answer is None and time.monotonic() - t0 < 10.0
        with pytest.raises(DatasetError, match="/silent answer"):
            driver.call(client, Trigger.Request(), timeout_s=1.0)
        driver.node.destroy_node()
    finally:
        server.destroy_node()
        rclpy.try_shutdown()
