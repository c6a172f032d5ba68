# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Recorder core on synthetic message streams: alignment, staleness, bad input, episodes.

Messages are plain attribute objects shaped like sensor_msgs / geometry_msgs (the decoder reads
attributes only, as it does for rclpy and rosbags messages). Expected values are hand-computed
from the synthetic motion (x grows 5 cm/s, so 1 cm per 0.2 s control step).
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace as Ns

import numpy as np
import pyarrow.parquet as pq
import pytest

from openvla_ros.bag.evaluate import load_robot_profile
from openvla_ros.data.lerobot import DemoDataset
from openvla_ros.data.recorder import EpisodeEvent, RecorderConfig, RecorderCore
from openvla_ros.data.robots import TopicMap

T = TopicMap()
SEC = 1_000_000_000


def _stamp(ns: int) -> Ns:
    return Ns(sec=ns // SEC, nanosec=ns % SEC)


def image(ns: int, value: int = 0) -> Ns:
    data = np.full((8, 8, 3), value % 256, np.uint8)
    return Ns(
        header=Ns(stamp=_stamp(ns), frame_id="cam"),
        encoding="rgb8",
        height=8,
        width=8,
        step=24,
        data=data.tobytes(),
    )


def pose(ns: int, x: float, frame: str = "panda_link0") -> Ns:
    return Ns(
        header=Ns(stamp=_stamp(ns), frame_id=frame),
        pose=Ns(position=Ns(x=x, y=0.0, z=0.2), orientation=Ns(x=1.0, y=0.0, z=0.0, w=0.0)),
    )


def joints(ns: int, finger: float = 0.04) -> Ns:
    return Ns(
        header=Ns(stamp=_stamp(ns)),
        name=["panda_finger_joint1", "panda_finger_joint2"],
        position=[finger, finger],
    )


class Feed:
    """Camera 10 Hz, pose + joints 50 Hz, from t = 10 s; x(t) = 0.4 + 0.05 (t - 10)."""

    def __init__(self, core: RecorderCore) -> None:
        self.core = core
        self.t = 10 * SEC

    def run(
        self,
        seconds: float,
        *,
        camera: bool = True,
        still: bool = False,
        frame: str = "panda_link0",
        x0: float | None = None,
    ) -> None:
        end = self.t + round(seconds * SEC)
        while self.t < end:
            self.t += 20_000_000
            x = 0.4 if still else 0.4 + 0.05 * (self.t - 10 * SEC) / SEC
            self.core.on_message(T.pose, pose(self.t, x, frame), self.t)
            self.core.on_message(T.gripper, joints(self.t), self.t)
            if camera and self.t % 100_000_000 == 0:
                self.core.on_message(T.camera, image(self.t, self.t // 100_000_000), self.t)


def _core(tmp_path: Path, events: list[EpisodeEvent]) -> RecorderCore:
    cfg = RecorderConfig(
        out=tmp_path / "ds", topics=T, profile=load_robot_profile("sim"), unnorm_key="test_demos"
    )
    return RecorderCore(cfg, events.append)


def test_episode_is_sampled_at_5_hz_and_labelled(tmp_path: Path) -> None:
    events: list[EpisodeEvent] = []
    core = _core(tmp_path, events)
    feed = Feed(core)
    feed.run(0.5)  # before the episode: not recorded
    core.on_message(T.instruction, Ns(data="push the block"), feed.t)
    feed.run(3.0)
    event = core.end_episode(True)
    assert event is not None and event.outcome == "success", event
    rows = pq.read_table(tmp_path / "ds/data/chunk-000/file-000.parquet").to_pylist()
    # Grid from the first camera frame after the start (t 10.6 s) every 0.2 s up to the last
    # camera frame (13.5 s): 15 points; the last has no successor: 14 frames.
    assert len(rows) == 14
    assert [round(r["timestamp"], 4) for r in rows] == [round(0.2 * k, 4) for k in range(14)]
    for r in rows:
        np.testing.assert_allclose(r["action"][:6], [0.01, 0, 0, 0, 0, 0], atol=1e-6)
        assert r["action"][6] == 1.0  # open, sim profile: 1 = open
    assert rows[0]["observation.state"][0] == pytest.approx(0.4 + 0.05 * 0.6)
    assert pq.read_table(tmp_path / "ds/meta/tasks.parquet").column("task").to_pylist() == [
        "push the block"
    ]
    assert event.t0_ns == 10_600_000_000 and event.end_ns == 13_500_000_000


def test_stalled_camera_drops_frames_and_never_labels_across_the_gap(tmp_path: Path) -> None:
    events: list[EpisodeEvent] = []
    core = _core(tmp_path, events)
    feed = Feed(core)
    core.start_episode("reach the cube")
    feed.run(1.0)
    feed.run(1.5, camera=False)  # camera stalls; the arm goes on moving
    feed.run(1.0)
    event = core.end_episode(None)
    assert event is not None and event.outcome == "unknown", event
    ds = DemoDataset(tmp_path / "ds")
    # Every label is one 0.2 s step (1 cm): none spans the stall (that would read 2+ cm).
    np.testing.assert_allclose(ds.actions[:, 0], 0.01, atol=1e-6)
    rec = ds.episode(0)["recording"]
    cam = rec["alignment"]["camera"]
    # The stall leaves the camera 0.1..1.5 s stale at the grid points inside it: > 0.8 s
    # (4 x 0.2) drops, 0.4..0.8 s only warns.
    assert rec["stale_dropped_frames"] >= 3 and cam["dropped_points"] >= 3
    assert cam["stale_warned"] >= 1 and cam["max_staleness_s"] > 0.8
    ts = np.array([ds.frame(i).timestamp for i in range(ds.num_frames)])
    assert np.all(np.diff(ts) > 0) and np.diff(ts).max() >= 0.6 - 1e-6  # the hole is visible


def test_pose_in_the_wrong_frame_is_rejected_with_the_reason(tmp_path: Path) -> None:
    events: list[EpisodeEvent] = []
    core = _core(tmp_path, events)
    feed = Feed(core)
    core.start_episode("reach the cube")
    feed.run(2.0, frame="world")
    event = core.end_episode(True)
    assert event is not None and event.outcome == "rejected"
    assert "'world' is not the robot base frame 'panda_link0'" in event.reason
    assert core.rejected[T.pose] == 100
    assert not (tmp_path / "ds" / "meta").exists()


def test_depth_stream_on_the_camera_topic_is_rejected_as_it_arrives(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Was: every 16UC1 frame buffered, the episode refused only when it ended.
    core = _core(tmp_path, [])
    core.start_episode("reach the cube")
    depth = image(10 * SEC)
    depth.encoding = "16UC1"
    with caplog.at_level(logging.WARNING, logger="openvla_ros.data.recorder"):
        core.on_message(T.camera, depth, 10 * SEC)
    assert core.rejected[T.camera] == 1
    assert "encoding '16UC1' is not one of" in caplog.text
    core.on_message(T.camera, image(10 * SEC + 1), 10 * SEC + 1)  # an rgb8 frame still counts
    assert core.rejected[T.camera] == 1


def test_episode_without_motion_is_not_written_and_earlier_ones_stay(tmp_path: Path) -> None:
    events: list[EpisodeEvent] = []
    core = _core(tmp_path, events)
    feed = Feed(core)
    core.start_episode("reach the cube")
    feed.run(2.0)
    assert core.end_episode(True).outcome == "success"  # type: ignore[union-attr]
    core.start_episode("reach the cube")
    feed.run(2.0, still=True)
    event = core.end_episode(True)
    assert event is not None and event.outcome == "rejected"
    assert "has no motion" in event.reason
    assert DemoDataset(tmp_path / "ds").num_episodes == 1


def test_missing_pose_topic_says_what_was_not_received(tmp_path: Path) -> None:
    core = _core(tmp_path, [])
    core.start_episode("reach the cube")
    t = 10 * SEC
    for k in range(20):
        t += 100_000_000
        core.on_message(T.camera, image(t, k), t)
    event = core.end_episode(True)
    assert event is not None and event.outcome == "rejected"
    assert "pose: no message yet" in event.reason


def test_idle_frames_are_filtered_and_counted(tmp_path: Path) -> None:
    core = _core(tmp_path, [])
    feed = Feed(core)
    core.start_episode("reach the cube")
    feed.run(1.0)
    # Hold still for 1 s (the pose keeps its last value), then move on.
    x_hold = 0.4 + 0.05 * (feed.t - 10 * SEC) / SEC
    end = feed.t + SEC
    while feed.t < end:
        feed.t += 20_000_000
        core.on_message(T.pose, pose(feed.t, x_hold), feed.t)
        core.on_message(T.gripper, joints(feed.t), feed.t)
        if feed.t % 100_000_000 == 0:
            core.on_message(T.camera, image(feed.t), feed.t)
    event = core.end_episode(True)
    assert event is not None and event.outcome == "success"
    rec = DemoDataset(tmp_path / "ds").episode(0)["recording"]
    assert rec["idle_frames_dropped"] >= 4
    assert rec["frames_before_filter"] - rec["idle_frames_dropped"] == event.frames


def test_new_instruction_ends_the_episode_and_discard_writes_nothing(tmp_path: Path) -> None:
    events: list[EpisodeEvent] = []
    core = _core(tmp_path, events)
    feed = Feed(core)
    core.on_message(T.instruction, Ns(data="reach the red cube"), feed.t)
    feed.run(1.5)
    core.on_message(T.instruction, Ns(data="reach the blue cube"), feed.t)
    feed.run(1.5)
    assert core.discard_episode() is not None
    assert [e.outcome for e in events] == ["unknown", "discarded"]
    ds = DemoDataset(tmp_path / "ds")
    assert ds.num_episodes == 1 and ds.tasks == ["reach the red cube"]
    assert ds.episode(0)["success"] is None


def test_start_without_instruction_is_a_clear_error(tmp_path: Path) -> None:
    from openvla_ros.errors import DatasetError

    with pytest.raises(DatasetError, match="publish one on /instruction"):
        _core(tmp_path, []).start_episode()


def test_failed_episode_is_kept_and_marked(tmp_path: Path) -> None:
    events: list[EpisodeEvent] = []
    core = _core(tmp_path, events)
    feed = Feed(core)
    core.start_episode("reach the cube")
    feed.run(1.5)
    assert core.end_episode(False).outcome == "failed"  # type: ignore[union-attr]
    rows = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [r["success"] for r in rows] == [False]


def test_disk_full_while_recording_rejects_that_episode_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import openvla_ros.data.lerobot as lerobot

    events: list[EpisodeEvent] = []
    core = _core(tmp_path, events)
    feed = Feed(core)
    core.start_episode("reach the cube")
    feed.run(1.5)
    assert core.end_episode(True).outcome == "success"  # type: ignore[union-attr]
    real = lerobot._atomic_write_bytes

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lerobot, "_atomic_write_bytes", full)
    core.start_episode("reach the cube")
    feed.run(1.5)
    event = core.end_episode(True)
    assert event is not None and event.outcome == "rejected"
    assert "No space left on device" in event.reason and "1 episodes already there" in event.reason
    monkeypatch.setattr(lerobot, "_atomic_write_bytes", real)
    core.start_episode("reach the cube")  # space is back: recording goes on
    feed.run(1.5)
    assert core.end_episode(True).outcome == "success"  # type: ignore[union-attr]
    assert DemoDataset(tmp_path / "ds").num_episodes == 2
