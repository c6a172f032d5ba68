# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""LeRobot v3 writer: read back with plain pyarrow + PIL (not our reader), append, statistics."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from openvla_ros.data.lerobot import DatasetWriter, DemoDataset, EpisodeRecord
from openvla_ros.errors import DatasetError

SHAPE = (24, 32, 3)


def _episode(rng: np.random.Generator, n: int, instruction: str) -> EpisodeRecord:
    images = [rng.integers(0, 256, SHAPE, dtype=np.uint8) for _ in range(n)]
    states = rng.normal(size=(n, 8)).astype(np.float32)
    actions = rng.normal(scale=0.01, size=(n, 7)).astype(np.float32)
    actions[:, 6] = rng.integers(0, 2, n)
    stamps = 100.0 + np.arange(n) * 0.2
    return EpisodeRecord(
        instruction, images, states, actions, stamps, success=True, info={"seed": 3}
    )


def _writer(root: Path) -> DatasetWriter:
    return DatasetWriter(
        root, fps=5, image_shape=SHAPE, robot_type="sim_panda", unnorm_key="sim_reach"
    )


def test_written_dataset_reads_back_with_plain_pyarrow(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    eps = [
        _episode(rng, 4, "reach the red cube"),
        _episode(rng, 3, "reach the blue cube"),
        _episode(rng, 5, "reach the red cube"),
    ]
    writer = _writer(tmp_path)
    for ep in eps:
        writer.add_episode(ep)

    info = json.loads((tmp_path / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 12, 2)
    assert info["fps"] == 5 and info["video_path"] is None and info["splits"] == {"train": "0:3"}
    assert info["features"]["observation.images.primary"]["dtype"] == "image"
    assert info["features"]["observation.images.primary"]["shape"] == [24, 32, 3]
    assert info["features"]["action"]["shape"] == [7]

    tasks_table = pq.read_table(tmp_path / "meta/tasks.parquet")
    # LeRobot reads tasks with pandas and needs the task string as the index.
    assert json.loads(tasks_table.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    tasks = tasks_table.to_pylist()
    assert tasks == [
        {"task_index": 0, "task": "reach the red cube"},
        {"task_index": 1, "task": "reach the blue cube"},
    ]
    episodes = pq.read_table(tmp_path / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [
        (e["episode_index"], e["length"], e["dataset_from_index"], e["dataset_to_index"])
        for e in episodes
    ] == [(0, 4, 0, 4), (1, 3, 4, 7), (2, 5, 7, 12)]
    assert episodes[1]["tasks"] == ["reach the blue cube"]

    expected_task = [0, 1, 0]
    for e, ep in zip(episodes, eps, strict=True):
        path = tmp_path / info["data_path"].format(
            chunk_index=e["data/chunk_index"], file_index=e["data/file_index"]
        )
        rows = pq.read_table(path).to_pylist()
        assert len(rows) == e["length"]
        for k, row in enumerate(rows):
            img = np.asarray(Image.open(io.BytesIO(row["observation.images.primary"]["bytes"])))
            np.testing.assert_array_equal(img, ep.images[k])  # PNG: lossless
            np.testing.assert_array_equal(np.float32(row["action"]), ep.actions[k])
            np.testing.assert_array_equal(np.float32(row["observation.state"]), ep.states[k])
            assert row["timestamp"] == pytest.approx(0.2 * k, abs=1e-5)
            assert row["frame_index"] == k
            assert row["episode_index"] == e["episode_index"]
            assert row["index"] == e["dataset_from_index"] + k
            assert row["task_index"] == expected_task[e["episode_index"]]


def test_openvla_statistics_match_numpy_on_all_actions(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    eps = [_episode(rng, 6, "a"), _episode(rng, 9, "b")]
    writer = _writer(tmp_path)
    for ep in eps:
        writer.add_episode(ep)
    stats = json.loads((tmp_path / "dataset_statistics.json").read_text())
    assert list(stats) == ["sim_reach"]
    block = stats["sim_reach"]
    acts = np.concatenate([e.actions for e in eps]).astype(np.float64)
    assert block["num_transitions"] == 15 and block["num_trajectories"] == 2
    np.testing.assert_allclose(block["action"]["q01"], np.quantile(acts, 0.01, axis=0))
    np.testing.assert_allclose(block["action"]["q99"], np.quantile(acts, 0.99, axis=0))
    np.testing.assert_allclose(block["action"]["mean"], acts.mean(axis=0))
    assert block["action"]["mask"] == [True] * 6 + [False]
    lerobot_stats = json.loads((tmp_path / "meta/stats.json").read_text())
    np.testing.assert_allclose(lerobot_stats["action"]["max"], acts.max(axis=0))
    assert np.asarray(lerobot_stats["observation.images.primary"]["mean"]).shape == (3, 1, 1)


def test_reader_api_matches_what_was_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    eps = [_episode(rng, 3, "reach the cube"), _episode(rng, 2, "pick up the green cube")]
    writer = _writer(tmp_path)
    for ep in eps:
        writer.add_episode(ep)
    ds = DemoDataset(tmp_path)
    assert (ds.num_episodes, ds.num_frames) == (2, 5)
    assert ds.camera_key == "observation.images.primary"
    assert ds.episode_indices() == [0, 1]
    assert list(ds.episode_range(1)) == [3, 4]
    assert ds.unnorm_keys() == ["sim_reach"]
    f = ds.frame(4)
    assert f.instruction == "pick up the green cube"
    assert (f.episode_index, f.frame_index) == (1, 1)
    assert f.timestamp == pytest.approx(0.2)
    np.testing.assert_array_equal(f.image, eps[1].images[1])
    np.testing.assert_array_equal(f.action, eps[1].actions[1])
    assert ds.episode(0)["recording"] == {"seed": 3}
    with pytest.raises(DatasetError):
        ds.frame(5)


def test_append_reopens_and_keeps_earlier_episodes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    first = _episode(rng, 4, "reach the red cube")
    _writer(tmp_path).add_episode(first)
    before = (tmp_path / "data/chunk-000/file-000.parquet").read_bytes()
    second = _episode(rng, 2, "reach the red cube")
    writer = _writer(tmp_path)
    assert writer.num_episodes == 1
    assert writer.add_episode(second) == 1
    assert (tmp_path / "data/chunk-000/file-000.parquet").read_bytes() == before
    info = json.loads((tmp_path / "meta/info.json").read_text())
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, 6, 1)
    index = pq.read_table(tmp_path / "data/chunk-000/file-001.parquet").column("index").to_pylist()
    assert index == [4, 5]


def test_append_refuses_a_different_image_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    _writer(tmp_path).add_episode(_episode(rng, 2, "x"))
    with pytest.raises(DatasetError, match="cannot append"):
        DatasetWriter(
            tmp_path, fps=5, image_shape=(48, 64, 3), robot_type="sim_panda", unnorm_key="sim_reach"
        )


def test_append_refuses_another_robot_and_keeps_its_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(5)
    _writer(tmp_path).add_episode(_episode(rng, 2, "x"))
    before = (tmp_path / "meta/info.json").read_bytes()
    # Was: franka episodes appended to a sim dataset, info.json still saying sim_panda.
    with pytest.raises(DatasetError, match=r"cannot append franka episodes .* holds sim_panda"):
        DatasetWriter(
            tmp_path, fps=5, image_shape=SHAPE, robot_type="franka", unnorm_key="sim_reach"
        )
    assert (tmp_path / "meta/info.json").read_bytes() == before
    # Another key on append: the dataset keeps its own (one key per dataset), and says so.
    with caplog.at_level(logging.WARNING, logger="openvla_ros.data.lerobot"):
        writer = DatasetWriter(
            tmp_path, fps=5, image_shape=SHAPE, robot_type="sim_panda", unnorm_key="other"
        )
        writer.add_episode(_episode(rng, 2, "x"))
    assert "keeps its statistics key 'sim_reach'" in caplog.text
    assert list(json.loads((tmp_path / "dataset_statistics.json").read_text())) == ["sim_reach"]


def test_episode_with_wrong_shapes_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ep = _episode(rng, 3, "x")
    ep.actions = ep.actions[:, :6]
    with pytest.raises(DatasetError, match="actions"):
        _writer(tmp_path).add_episode(ep)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "failing",
    [
        "data/chunk-000/file-001.parquet",
        "meta/tasks.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
    ],
)
def test_disk_full_mid_episode_leaves_earlier_episodes_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    import errno

    import openvla_ros.data.lerobot as lerobot

    rng = np.random.default_rng(6)
    writer = _writer(tmp_path)
    first = _episode(rng, 3, "reach the red cube")
    writer.add_episode(first)
    real = lerobot._atomic_write_bytes

    def full_disk(path: Path, data: bytes) -> None:
        if path == tmp_path / failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(lerobot, "_atomic_write_bytes", full_disk)
    with pytest.raises(DatasetError, match=r"No space left on device.*1 episodes already there"):
        writer.add_episode(_episode(rng, 2, "a new task"))
    monkeypatch.setattr(lerobot, "_atomic_write_bytes", real)

    assert sorted(p.name for p in (tmp_path / "data/chunk-000").iterdir()) == ["file-000.parquet"]
    ds = DemoDataset(tmp_path)
    assert (ds.num_episodes, ds.num_frames, ds.tasks) == (1, 3, ["reach the red cube"])
    np.testing.assert_array_equal(ds.frame(2).image, first.images[2])
    # The same writer goes on once space is back; indices continue without a gap.
    assert writer.add_episode(_episode(rng, 2, "a new task")) == 1
    assert DemoDataset(tmp_path).num_frames == 5


def test_orphan_data_file_from_a_crash_is_quarantined_on_reopen(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    _writer(tmp_path).add_episode(_episode(rng, 3, "x"))
    orphan = tmp_path / "data/chunk-000/file-001.parquet"
    orphan.write_bytes((tmp_path / "data/chunk-000/file-000.parquet").read_bytes())
    writer = _writer(tmp_path)
    assert not orphan.exists() and orphan.with_name("file-001.parquet.orphan").exists()
    writer.add_episode(_episode(rng, 2, "x"))
    rows = pq.read_table(tmp_path / "data/chunk-000/file-001.parquet").to_pylist()
    assert [r["index"] for r in rows] == [3, 4]


def test_reader_opens_a_lerobot_written_multi_episode_file(tmp_path: Path) -> None:
    """A v3 dataset laid out as LeRobot writes it: several episodes in one data file, the
    task string as the pandas index column, stats as nested lists. Built by hand here."""
    import pyarrow as pa

    rng = np.random.default_rng(8)
    imgs = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(5)]
    pngs = []
    for img in imgs:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    (tmp_path / "meta/episodes/chunk-000").mkdir(parents=True)
    (tmp_path / "data/chunk-000").mkdir(parents=True)
    features = {
        "observation.images.cam_high": {"dtype": "image", "shape": [16, 16, 3]},
        "action": {"dtype": "float32", "shape": [7]},
    }
    (tmp_path / "meta/info.json").write_text(
        json.dumps(
            {
                "codebase_version": "v3.0",
                "fps": 10,
                "features": features,
                "total_episodes": 2,
                "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            }
        )
    )
    pq.write_table(
        pa.table({"task_index": [0, 1], "__index_level_0__": ["open", "close"]}),
        tmp_path / "meta/tasks.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "episode_index": [0, 1],
                "tasks": [["open"], ["close"]],
                "length": [3, 2],
                "data/chunk_index": [0, 0],
                "data/file_index": [0, 0],
                "dataset_from_index": [0, 3],
                "dataset_to_index": [3, 5],
                "stats/action/mean": [[0.0] * 7, [0.0] * 7],
            }
        ),
        tmp_path / "meta/episodes/chunk-000/file-000.parquet",
    )
    actions = np.arange(35, dtype=np.float32).reshape(5, 7)
    pq.write_table(
        pa.table(
            {
                "observation.images.cam_high": [{"bytes": b, "path": None} for b in pngs],
                "action": [list(map(float, a)) for a in actions],
                "timestamp": pa.array([0.0, 0.1, 0.2, 0.0, 0.1], type=pa.float32()),
                "frame_index": [0, 1, 2, 0, 1],
                "episode_index": [0, 0, 0, 1, 1],
                "index": [0, 1, 2, 3, 4],
                "task_index": [0, 0, 0, 1, 1],
            }
        ),
        tmp_path / "data/chunk-000/file-000.parquet",
    )
    ds = DemoDataset(tmp_path)
    assert (ds.num_episodes, ds.num_frames, ds.camera_key) == (2, 5, "observation.images.cam_high")
    f = ds.frame(4)
    assert (f.instruction, f.episode_index, f.frame_index) == ("close", 1, 1)
    np.testing.assert_array_equal(f.image, imgs[4])
    np.testing.assert_array_equal(f.action, actions[4])
    assert list(ds.episode_range(1)) == [3, 4]
    block = ds.dataset_statistics()[tmp_path.name]  # no dataset_statistics.json: computed
    np.testing.assert_allclose(
        block["action"]["q99"], np.quantile(actions, 0.99, axis=0), rtol=1e-6
    )


def test_reader_recomputes_statistics_a_killed_writer_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Seen for real: a writer killed (SIGTERM) after committing an episode, before refreshing
    # its meta, left dataset_statistics.json one episode behind; finetune trained with it.
    rng = np.random.default_rng(11)
    eps = [_episode(rng, 5, "a"), _episode(rng, 7, "b"), _episode(rng, 4, "a")]
    writer = _writer(tmp_path / "killed")
    for ep in eps[:2]:
        writer.add_episode(ep)

    def dies(self: DatasetWriter) -> None:
        raise OSError("killed")

    monkeypatch.setattr(DatasetWriter, "_write_meta", dies)
    writer.add_episode(eps[2])  # committed; meta not refreshed
    monkeypatch.undo()
    on_disk = json.loads((tmp_path / "killed/dataset_statistics.json").read_text())
    assert on_disk["sim_reach"]["num_trajectories"] == 2  # the stale file
    with caplog.at_level(logging.WARNING):
        stats = DemoDataset(tmp_path / "killed").dataset_statistics()
    assert "recomputed" in caplog.text
    # The same three episodes written by a writer that was not killed: its file is the truth.
    clean = _writer(tmp_path / "clean")
    for ep in eps:
        clean.add_episode(ep)
    want = json.loads((tmp_path / "clean/dataset_statistics.json").read_text())
    assert stats["sim_reach"]["num_trajectories"] == 3
    for field in ("q01", "q99", "mean", "std", "min", "max"):
        np.testing.assert_allclose(stats["sim_reach"]["action"][field],
                                   want["sim_reach"]["action"][field], rtol=1e-6)  # fmt: skip
