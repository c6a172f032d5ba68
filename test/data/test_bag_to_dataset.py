# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""bag-to-dataset on bags written by fixtures (rosbags): instruction-delimited episodes, labels
from the recorded poses (hand-computed from the fixture's motion), a bag that lacks a topic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from openvla_ros.data.bag_convert import bag_to_dataset
from openvla_ros.data.recorder_config import config_from_params
from openvla_ros.errors import BagError
from test.bag.bagfactory import frame_rgb, reference_action, write_episode


def _config(out: Path):  # type: ignore[no-untyped-def]
    config, _ = config_from_params({"out": str(out), "robot": "sim", "gripper_topic": "none"})
    return config


def test_instructions_split_a_bag_into_episodes(tmp_path: Path) -> None:
    bag = write_episode(tmp_path / "bag", n_frames=12,
                        instructions=("pick up the red cube", "put it down"))  # fmt: skip
    summary = bag_to_dataset([bag], _config(tmp_path / "ds"))
    assert summary["episodes_written"] == 2, summary
    episodes = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["tasks"] for e in episodes] == [["pick up the red cube"], ["put it down"]]
    # Camera at 5 Hz = the grid; episode 1 = frames 0..5, episode 2 = 6..11; the last point of
    # each closes the previous label: 5 frames each.
    assert [e["length"] for e in episodes] == [5, 5]
    assert all(e["success"] is None for e in episodes)
    for e, first in zip(episodes, (0, 6), strict=True):
        rows = pq.read_table(tmp_path / f"ds/data/chunk-000/file-{e['episode_index']:03d}.parquet")
        acts = np.asarray(rows.column("action").to_pylist())
        # The fixture moves the pose by reference_action(k)[:3] after frame k.
        want = np.array([reference_action(k)[:3] for k in range(first, first + 5)])
        np.testing.assert_allclose(acts[:, :3], want, atol=1e-7)
        np.testing.assert_allclose(acts[:, 6], 1.0)  # no gripper feedback: open
        img = rows.column("observation.images.primary").to_pylist()[0]["bytes"]
        from openvla_ros.data.lerobot import decode_png

        np.testing.assert_array_equal(decode_png(img), frame_rgb(first))


def test_bag_without_the_pose_topic_is_refused_with_the_topics_it_has(tmp_path: Path) -> None:
    bag = write_episode(tmp_path / "bag", n_frames=4, with_poses=False, with_actions=False)
    with pytest.raises(BagError, match=r"pose topic '/openvla/ee_pose' is not in bag.*available"):
        bag_to_dataset([bag], _config(tmp_path / "ds"))
    assert not (tmp_path / "ds" / "data").exists()
