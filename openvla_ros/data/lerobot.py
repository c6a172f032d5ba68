# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""LeRobot dataset v3 writer and reader, camera frames as PNG inside the parquet files.

Written with pyarrow to the published v3 layout because ``lerobot-dataset`` cannot share this
venv (docs/datasets.md)::

    DIR/meta/info.json                                  codebase_version "v3.0", features, paths
    DIR/meta/tasks.parquet                              task_index, task (instruction)
    DIR/meta/episodes/chunk-000/file-000.parquet        one row per episode (+ stats/* columns)
    DIR/meta/stats.json                                 LeRobot per-feature stats
    DIR/data/chunk-CCC/file-FFF.parquet                 one row per frame
    DIR/dataset_statistics.json                         OpenVLA form, under the unnorm_key

Frames of one episode go into their own data file (chunk = episode // chunks_size, file =
episode % chunks_size). v3 allows several episodes per file (the reader handles both); one per
file keeps appending O(episode) and crash-safe: every file is written to a hidden temporary
name and renamed into place, and the episodes table is the commit point. A crash or a full
disk therefore loses at most the episode being written; data files that no episode references
(a crash between the two renames) are renamed ``*.orphan`` when the dataset is reopened.

Why images and not video: at these sizes (tens of episodes, 224 px) PNG is lossless (the model
trains on exactly the pixels the camera gave) and decodes in ~1 ms per frame without PyAV;
AV1/H.264 video would halve the size of large datasets at the cost of decode fidelity and speed.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from openvla_ros.data.statistics import (
    GRIPPER_MASK,
    aggregate_feature_stats,
    compute_statistics,
    feature_stats,
    image_stats,
)
from openvla_ros.errors import DatasetError

__all__ = [
    "ACTION_NAMES",
    "CODEBASE_VERSION",
    "STATE_NAMES",
    "DatasetWriter",
    "DemoDataset",
    "EpisodeRecord",
    "Frame",
    "decode_png",
    "encode_png",
]

_log = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_CHUNKS_SIZE = 1000
DEFAULT_CAMERA = "primary"

#: ``action``: base-frame delta (m, rad, extrinsic rpy) + absolute gripper (profile convention).
ACTION_NAMES: tuple[str, ...] = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")
#: ``observation.state``: Bridge's proprio layout (EEF xyz + rpy, one pad, gripper).
STATE_NAMES: tuple[str, ...] = ("x", "y", "z", "roll", "pitch", "yaw", "pad", "gripper")

_IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])

#: pandas' own metadata for a frame indexed by "task" with one int64 column "task_index".
_PANDAS_TASKS_META: dict[str, Any] = {
    "index_columns": ["task"],
    "column_indexes": [
        {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
         "metadata": {"encoding": "UTF-8"}}
    ],
    "columns": [
        {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
         "numpy_type": "int64", "metadata": None},
        {"name": "task", "field_name": "task", "pandas_type": "unicode",
         "numpy_type": "object", "metadata": None},
    ],
    "creator": {"library": "pyarrow", "version": pa.__version__},
    "pandas_version": "2.2.3",
}  # fmt: skip


def encode_png(image: npt.NDArray[np.uint8], compress_level: int = 1) -> bytes:
    """PNG bytes of an HxWx3 uint8 RGB frame (level 1: ~3x faster than 6, ~10 % larger)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), "RGB").save(
        buf, format="PNG", compress_level=compress_level
    )
    return buf.getvalue()


def decode_png(data: bytes) -> npt.NDArray[np.uint8]:
    """HxWx3 uint8 RGB array of encoded image bytes (PNG or JPEG)."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


@dataclass(frozen=True)
class Frame:
    """One training sample: what the camera saw, what was done next, and why."""

    image: npt.NDArray[np.uint8]
    action: npt.NDArray[np.float32]
    instruction: str
    episode_index: int
    frame_index: int
    timestamp: float
    state: npt.NDArray[np.float32]


@dataclass
class EpisodeRecord:
    """One episode to write: T frames of images, states, actions and timestamps.

    ``success`` is None when unknown (teleop) or the detector's verdict; ``info`` holds
    JSON-able recording facts (staleness per stream, idle frames dropped, seed, source).
    """

    instruction: str
    images: Sequence[npt.NDArray[np.uint8]]
    states: npt.NDArray[np.float32]
    actions: npt.NDArray[np.float32]
    timestamps: npt.NDArray[np.float64]
    success: bool | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def validate(self, image_shape: tuple[int, int, int], state_dim: int) -> None:
        """Raise :class:`DatasetError` when the arrays do not fit the dataset's features."""
        n = len(self.images)
        if n == 0:
            raise DatasetError("episode has no frames: nothing to write (was anything recorded?)")
        checks = [
            ("states", np.shape(self.states), (n, state_dim)),
            ("actions", np.shape(self.actions), (n, len(ACTION_NAMES))),
            ("timestamps", np.shape(self.timestamps), (n,)),
        ]
        for name, got, want in checks:
            if tuple(got) != want:
                raise DatasetError(f"episode {name} has shape {tuple(got)}, expected {want}")
        for i, img in enumerate(self.images):
            if img.shape != image_shape or img.dtype != np.uint8:
                raise DatasetError(
                    f"frame {i} is {img.dtype}{img.shape}, the dataset stores uint8"
                    f"{image_shape}: resize frames before writing, or use a new dataset"
                )
        for name, arr in (("states", self.states), ("actions", self.actions)):
            if not np.all(np.isfinite(arr)):
                raise DatasetError(f"episode {name} contain non-finite values")
        if not self.instruction.strip():
            raise DatasetError("episode has an empty instruction: publish one on /instruction")
        if n > 1 and np.any(np.diff(np.asarray(self.timestamps)) <= 0):
            raise DatasetError("episode timestamps must increase strictly")


def _features(image_shape: tuple[int, int, int], camera_key: str) -> dict[str, Any]:
    return {
        camera_key: {
            "dtype": "image",
            "shape": list(image_shape),
            "names": ["height", "width", "channels"],
        },
        "observation.state": {
            "dtype": "float32",
            "shape": [len(STATE_NAMES)],
            "names": list(STATE_NAMES),
        },
        "action": {"dtype": "float32", "shape": [len(ACTION_NAMES)], "names": list(ACTION_NAMES)},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }


def _hf_features(features: Mapping[str, Any]) -> dict[str, Any]:
    """The Hugging Face ``datasets`` feature description stored in the parquet schema."""
    out: dict[str, Any] = {}
    for name, ft in features.items():
        if ft["dtype"] == "image":
            out[name] = {"_type": "Image"}
        elif ft["shape"] == [1]:
            out[name] = {"dtype": ft["dtype"], "_type": "Value"}
        else:
            out[name] = {
                "feature": {"dtype": ft["dtype"], "_type": "Value"},
                "length": ft["shape"][0],
                "_type": "Sequence",
            }
    return out


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _atomic_write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def _atomic_write_table(path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    _atomic_write_bytes(path, sink.getvalue().to_pybytes())


def _fixed_list(arr: npt.NDArray[np.float32]) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(arr, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, arr.shape[1])


class DatasetWriter:
    """Create or append to a LeRobot v3 dataset; one :meth:`add_episode` call per episode.

    Args:
        root: dataset directory (created when missing; appended to when it holds a dataset).
        fps: control rate the frames were sampled at (Hz).
        image_shape: (H, W, 3) of every camera frame.
        robot_type: free text stored in ``info.json`` (``franka``, ``widowx``, ``sim_panda``).
        unnorm_key: the key ``dataset_statistics.json`` files its statistics under.
        camera: camera name; the feature is ``observation.images.<camera>``.
        png_level: PNG compression level 0-9.

    Appending checks that fps, image shape and camera agree with the existing dataset.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fps: float,
        image_shape: tuple[int, int, int],
        robot_type: str,
        unnorm_key: str,
        camera: str = DEFAULT_CAMERA,
        png_level: int = 1,
        chunks_size: int = DEFAULT_CHUNKS_SIZE,
    ) -> None:
        self.root = Path(root)
        self.camera_key = f"observation.images.{camera}"
        self._png_level = png_level
        self._features = _features(tuple(image_shape), self.camera_key)  # type: ignore[arg-type]
        self._info: dict[str, Any] = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": robot_type,
            "total_episodes": 0,
            "total_frames": 0,
            "total_tasks": 0,
            "chunks_size": chunks_size,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 500,
            "fps": float(fps),
            "splits": {},
            "data_path": DATA_PATH,
            "video_path": None,
            "features": self._features,
            "unnorm_key": unnorm_key,
        }
        self._image_shape = tuple(image_shape)
        self._episodes: list[dict[str, Any]] = []
        self._tasks: list[str] = []
        # Actions/states of committed episodes, kept so statistics need no re-read per append.
        self._actions: list[npt.NDArray[np.float32]] = []
        self._states: list[npt.NDArray[np.float32]] = []
        if (self.root / "meta" / "info.json").exists():
            self._open_existing()
        self.root.mkdir(parents=True, exist_ok=True)

    # --- opening ---------------------------------------------------------------------
    def _open_existing(self) -> None:
        info = json.loads((self.root / "meta" / "info.json").read_text())
        if info.get("codebase_version") != CODEBASE_VERSION:
            raise DatasetError(
                f"{self.root} is a LeRobot {info.get('codebase_version')} dataset; this writer "
                f"appends only to {CODEBASE_VERSION}: write to a new directory"
            )
        want = {k: self._info[k] for k in ("fps",)}
        got = {k: float(info.get(k, -1)) for k in want}
        if got != want or info.get("features") != self._features:
            raise DatasetError(
                f"cannot append to {self.root}: it has fps {info.get('fps')} and features "
                f"{sorted(info.get('features', {}))} with {self.camera_key} "
                f"{info.get('features', {}).get(self.camera_key, {}).get('shape')}, new "
                f"episodes have fps {self._info['fps']} and shape {list(self._image_shape)}"
            )
        self._check_same_robot_and_key(info)
        self._info["unnorm_key"] = info.get("unnorm_key", self._info["unnorm_key"])
        self._info["robot_type"] = info.get("robot_type", self._info["robot_type"])
        self._episodes = _read_episode_rows(self.root)
        self._tasks = _read_tasks(self.root)
        self._quarantine_orphans()
        actions, states = _read_numeric(self.root, self._episodes)
        self._actions, self._states = [actions], [states]
        if info.get("total_episodes") != len(self._episodes):
            _log.warning("%s: info.json out of date (crash?): rewriting it", self.root)
            self._write_meta()

    def _check_same_robot_and_key(self, info: dict[str, Any]) -> None:
        """One dataset is one robot's action distribution under one statistics key."""
        old_robot, new_robot = str(info.get("robot_type") or ""), self._info["robot_type"]
        if old_robot and new_robot and old_robot != new_robot:
            raise DatasetError(
                f"cannot append {new_robot} episodes to {self.root}: it holds {old_robot} "
                "episodes, and one dataset has one robot's action convention and statistics; "
                "write to a new directory"
            )
        old_key, new_key = str(info.get("unnorm_key") or ""), self._info["unnorm_key"]
        if old_key and new_key and old_key != new_key:
            _log.warning(
                "%s keeps its statistics key '%s': the requested unnorm key '%s' is not used "
                "(one dataset has one key; write to a new directory for another)",
                self.root,
                old_key,
                new_key,
            )

    def _quarantine_orphans(self) -> None:
        referenced = {
            self.root
            / DATA_PATH.format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
            for e in self._episodes
        }
        for path in sorted((self.root / "data").glob("chunk-*/file-*.parquet")):
            if path not in referenced:
                _log.warning("%s is not in meta/episodes (crash mid-write?): renamed .orphan", path)
                path.rename(path.with_name(path.name + ".orphan"))

    # --- writing ---------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        """Episodes in the dataset (committed)."""
        return len(self._episodes)

    @property
    def num_frames(self) -> int:
        """Frames in the dataset (committed)."""
        return sum(int(e["length"]) for e in self._episodes)

    def add_episode(self, episode: EpisodeRecord) -> int:
        """Write one episode and commit it; returns its episode index.

        Raises:
            DatasetError: the episode does not fit the features, or the disk refused a write
                (full, read-only): the dataset is left as it was before the call.
        """
        episode.validate(self._image_shape, len(STATE_NAMES))  # type: ignore[arg-type]
        ep = len(self._episodes)
        start = self.num_frames
        chunks = int(self._info["chunks_size"])
        chunk, fidx = ep // chunks, ep % chunks
        data_path = self.root / DATA_PATH.format(chunk_index=chunk, file_index=fidx)
        old_tasks = list(self._tasks)
        if episode.instruction not in self._tasks:
            self._tasks.append(episode.instruction)
        task_index = self._tasks.index(episode.instruction)
        table = self._frames_table(episode, ep, start, task_index)
        row = self._episode_row(episode, ep, start, chunk, fidx)
        try:
            _atomic_write_table(data_path, table)
            if self._tasks != old_tasks:
                self._write_tasks()
            self._episodes.append(row)
            self._write_episodes()
        except OSError as exc:
            self._rollback(row, old_tasks, data_path)
            raise DatasetError(
                f"could not write episode {ep} to {self.root} ({exc.strerror or exc}): free disk "
                f"space and record it again; the {ep} episodes already there are intact"
            ) from exc
        self._actions.append(np.asarray(episode.actions, dtype=np.float32))
        self._states.append(np.asarray(episode.states, dtype=np.float32))
        try:
            self._write_meta()
        except OSError as exc:
            # The episode is committed (meta/episodes); info/stats are rebuilt on reopen.
            _log.error("episode %d written but meta not refreshed (%s): reopen repairs", ep, exc)
        return ep

    def _rollback(self, row: dict[str, Any], old_tasks: list[str], data_path: Path) -> None:
        if self._episodes and self._episodes[-1] is row:
            self._episodes.pop()
        try:
            data_path.unlink(missing_ok=True)
            if self._tasks != old_tasks:
                self._tasks = old_tasks
                self._write_tasks()
        except OSError:
            _log.warning("rollback could not tidy %s; reopening quarantines it", data_path)
        self._tasks = old_tasks

    def _frames_table(self, ep: EpisodeRecord, index: int, start: int, task: int) -> pa.Table:
        n = len(ep.images)
        pngs = [encode_png(img, self._png_level) for img in ep.images]
        ts = np.asarray(ep.timestamps, dtype=np.float64)
        columns = {
            self.camera_key: pa.array([{"bytes": b, "path": None} for b in pngs], type=_IMAGE_TYPE),
            "observation.state": _fixed_list(np.asarray(ep.states, dtype=np.float32)),
            "action": _fixed_list(np.asarray(ep.actions, dtype=np.float32)),
            "timestamp": pa.array((ts - ts[0]).astype(np.float32)),
            "frame_index": pa.array(np.arange(n, dtype=np.int64)),
            "episode_index": pa.array(np.full(n, index, dtype=np.int64)),
            "index": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "task_index": pa.array(np.full(n, task, dtype=np.int64)),
        }
        table = pa.table(columns)
        meta = {"huggingface": json.dumps({"info": {"features": _hf_features(self._features)}})}
        return table.replace_schema_metadata(meta)

    def _episode_row(
        self, ep: EpisodeRecord, index: int, start: int, chunk: int, fidx: int
    ) -> dict[str, Any]:
        n = len(ep.images)
        stats = {
            self.camera_key: image_stats(ep.images),
            "observation.state": feature_stats(ep.states),
            "action": feature_stats(ep.actions),
        }
        row: dict[str, Any] = {
            "episode_index": index,
            "tasks": [ep.instruction],
            "length": n,
            "data/chunk_index": chunk,
            "data/file_index": fidx,
            "dataset_from_index": start,
            "dataset_to_index": start + n,
            "meta/episodes/chunk_index": 0,
            "meta/episodes/file_index": 0,
            "success": ep.success,
            "recording": json.dumps(ep.info, sort_keys=True, default=str),
        }
        for feat, fstats in stats.items():
            for name, value in fstats.items():
                row[f"stats/{feat}/{name}"] = value  # plain lists, kept decoded
        return row

    def _write_episodes(self) -> None:
        cols: dict[str, list[Any]] = {
            k: [e.get(k) for e in self._episodes] for k in self._episodes[0]
        }
        arrays: dict[str, pa.Array] = {}
        for name, values in cols.items():
            if name.startswith("stats/"):
                # Nested lists of the stat's shape (images: [3][1][1]), held decoded: this
                # runs at every commit, and decoding every row each time made appending to a
                # dataset of N episodes cost O(N) JSON parses per episode (1 s at 2,700).
                arrays[name] = pa.array(values)
            elif name == "tasks":
                arrays[name] = pa.array(values, type=pa.list_(pa.string()))
            elif name == "success":
                arrays[name] = pa.array(values, type=pa.bool_())
            elif name == "recording":
                arrays[name] = pa.array(values, type=pa.string())
            else:
                arrays[name] = pa.array(values, type=pa.int64())
        _atomic_write_table(
            self.root / EPISODES_PATH.format(chunk_index=0, file_index=0), pa.table(arrays)
        )

    def _write_tasks(self) -> None:
        table = pa.table(
            {
                "task_index": pa.array(range(len(self._tasks)), type=pa.int64()),
                "task": pa.array(self._tasks, type=pa.string()),
            }
        )
        # LeRobot reads this file with pandas and looks tasks up by the frame's index, which
        # it expects to be the task string: the pandas metadata makes "task" that index
        # (plain parquet readers still see two columns).
        table = table.replace_schema_metadata({"pandas": json.dumps(_PANDAS_TASKS_META)})
        _atomic_write_table(self.root / "meta" / "tasks.parquet", table)

    def _write_meta(self) -> None:
        """stats.json, dataset_statistics.json and (last) info.json from the committed episodes."""
        n_eps, n_frames = len(self._episodes), self.num_frames
        if n_eps:
            actions, states = np.concatenate(self._actions), np.concatenate(self._states)
            stats = {
                "action": feature_stats(actions),
                "observation.state": feature_stats(states),
                self.camera_key: aggregate_feature_stats(
                    [_episode_stats(e, self.camera_key) for e in self._episodes]
                ),
            }
            _atomic_write_json(self.root / "meta" / "stats.json", stats)
            openvla = compute_statistics(actions, GRIPPER_MASK, n_eps, proprio=states)
            _atomic_write_json(
                self.root / "dataset_statistics.json", {self._info["unnorm_key"]: openvla}
            )
        info = dict(self._info)
        info.update(
            total_episodes=n_eps,
            total_frames=n_frames,
            total_tasks=len(self._tasks),
            splits={"train": f"0:{n_eps}"},
        )
        _atomic_write_json(self.root / "meta" / "info.json", info)


def _episode_stats(row: Mapping[str, Any], feature: str) -> dict[str, Any]:
    prefix = f"stats/{feature}/"
    return {k[len(prefix) :]: _maybe_json(v) for k, v in row.items() if k.startswith(prefix)}


def _maybe_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _read_episode_rows(root: Path) -> list[dict[str, Any]]:
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        raise DatasetError(f"{root}: no meta/episodes/*/*.parquet: not a LeRobot v3 dataset")
    rows: list[dict[str, Any]] = []
    for f in files:
        rows.extend(pq.read_table(f).to_pylist())
    rows.sort(key=lambda r: int(r["episode_index"]))
    for r in rows:
        for k, v in list(r.items()):
            if k.startswith("stats/"):
                r[k] = _maybe_json(v)  # decoded lists, as the writer holds its own rows
    return rows


def _read_tasks(root: Path) -> list[str]:
    path = root / "meta" / "tasks.parquet"
    if not path.exists():
        raise DatasetError(f"{root}: meta/tasks.parquet is missing")
    table = pq.read_table(path)
    # LeRobot's own writer stores the task string as the pandas index.
    name = next((c for c in ("task", "__index_level_0__") if c in table.column_names), None)
    if name is None or "task_index" not in table.column_names:
        raise DatasetError(f"{path} has columns {table.column_names}, expected task_index, task")
    order = np.argsort(table.column("task_index").to_numpy())
    tasks = table.column(name).to_pylist()
    return [str(tasks[i]) for i in order]


def _data_path(root: Path, episode: Mapping[str, Any]) -> Path:
    return root / DATA_PATH.format(
        chunk_index=int(episode["data/chunk_index"]), file_index=int(episode["data/file_index"])
    )


def _data_files(root: Path, episodes: Sequence[Mapping[str, Any]]) -> list[Path]:
    seen: dict[tuple[int, int], None] = {}
    for e in episodes:
        seen[(int(e["data/chunk_index"]), int(e["data/file_index"]))] = None
    return [root / DATA_PATH.format(chunk_index=c, file_index=f) for c, f in seen]


def _as_matrix(column: pa.ChunkedArray) -> npt.NDArray[np.float32]:
    arr = column.combine_chunks()
    width = arr.type.list_size if pa.types.is_fixed_size_list(arr.type) else None
    flat = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    if width is None:
        width = flat.size // max(len(arr), 1)
    return flat.reshape(len(arr), width)


def _read_numeric(
    root: Path, episodes: Sequence[Mapping[str, Any]]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    tables = [
        pq.read_table(p, columns=["action", "observation.state"])
        for p in _data_files(root, episodes)
    ]
    table = pa.concat_tables(tables)
    return _as_matrix(table.column("action")), _as_matrix(table.column("observation.state"))


class DemoDataset:
    """Read a LeRobot v3 dataset with image (not video) frames, such as our writer's.

    Numeric columns are loaded into memory; images stay PNG bytes until :meth:`frame`
    decodes one (the encoded dataset must fit in RAM: ~40 kB per 224 px frame).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        info_path = self.root / "meta" / "info.json"
        if not info_path.exists():
            raise DatasetError(f"{self.root}: meta/info.json missing: not a LeRobot v3 dataset")
        self.info: dict[str, Any] = json.loads(info_path.read_text())
        if not str(self.info.get("codebase_version", "")).startswith("v3"):
            raise DatasetError(
                f"{self.root} is LeRobot {self.info.get('codebase_version')}: only v3 is read"
                " (convert with lerobot's convert_dataset_v21_to_v30)"
            )
        features = self.info.get("features", {})
        cams = [k for k, v in features.items() if v.get("dtype") in ("image", "video")]
        if not cams:
            raise DatasetError(f"{self.root} has no camera feature (dtype image)")
        self.camera_key: str = cams[0]
        if features[self.camera_key]["dtype"] == "video":
            raise DatasetError(
                f"{self.root}: {self.camera_key} is stored as video; this reader needs images"
            )
        self.fps = float(self.info.get("fps", 0.0))
        self._episodes = _read_episode_rows(self.root)
        self._tasks = _read_tasks(self.root)
        self._load_frames()

    def _load_frames(self) -> None:
        cols = [
            self.camera_key,
            "action",
            "observation.state",
            "timestamp",
            "frame_index",
            "episode_index",
            "index",
            "task_index",
        ]
        tables = []
        for path in _data_files(self.root, self._episodes):
            if not path.exists():
                raise DatasetError(f"{path} is listed in meta/episodes but missing")
            table = pq.read_table(path)
            tables.append(table.select([c for c in cols if c in table.column_names]))
        table = pa.concat_tables(tables).sort_by("index") if tables else None
        if table is None or table.num_rows == 0:
            raise DatasetError(f"{self.root} has no frames")
        self._index = table.column("index").to_numpy()
        if np.any(np.diff(self._index) != 1) or self._index[0] != 0:
            raise DatasetError(f"{self.root}: frame indices are not contiguous from 0")
        self._actions = _as_matrix(table.column("action"))
        self._states = (
            _as_matrix(table.column("observation.state"))
            if "observation.state" in table.column_names
            else np.zeros((table.num_rows, 0), np.float32)
        )
        self._timestamps = table.column("timestamp").to_numpy().astype(np.float64)
        self._frame_index = table.column("frame_index").to_numpy()
        self._episode_index = table.column("episode_index").to_numpy()
        self._task_index = table.column("task_index").to_numpy()
        images = table.column(self.camera_key).combine_chunks()
        self._image_bytes = images.field("bytes").to_pylist()
        self._image_paths = images.field("path").to_pylist()

    @property
    def num_episodes(self) -> int:
        """Number of episodes."""
        return len(self._episodes)

    @property
    def num_frames(self) -> int:
        """Number of frames over all episodes."""
        return len(self._index)

    def episode_indices(self) -> list[int]:
        """Episode indices in order."""
        return [int(e["episode_index"]) for e in self._episodes]

    def episode(self, ep: int) -> dict[str, Any]:
        """The ``meta/episodes`` row of episode ``ep`` (``recording`` decoded from JSON)."""
        for e in self._episodes:
            if int(e["episode_index"]) == ep:
                row = dict(e)
                row["recording"] = json.loads(row.get("recording") or "{}")
                return row
        raise DatasetError(f"{self.root} has no episode {ep}")

    def episode_range(self, ep: int) -> range:
        """Global frame indices of episode ``ep``."""
        row = self.episode(ep)
        return range(int(row["dataset_from_index"]), int(row["dataset_to_index"]))

    @property
    def tasks(self) -> list[str]:
        """Instructions, by task index."""
        return list(self._tasks)

    @property
    def actions(self) -> npt.NDArray[np.float32]:
        """All actions ``(N, 7)`` (read-only view)."""
        view = self._actions.view()
        view.flags.writeable = False
        return view

    @property
    def states(self) -> npt.NDArray[np.float32]:
        """All states ``(N, D)`` (read-only view)."""
        view = self._states.view()
        view.flags.writeable = False
        return view

    def image_bytes(self, i: int) -> bytes:
        """The encoded camera frame of global frame ``i``."""
        data = self._image_bytes[i]
        if data is None:
            path = self._image_paths[i]
            if not path:
                raise DatasetError(f"frame {i} has neither image bytes nor a path")
            data = (self.root / path).read_bytes()
        return bytes(data)

    def frame(self, i: int) -> Frame:
        """Global frame ``i`` with its image decoded to HxWx3 uint8 RGB."""
        if not 0 <= i < self.num_frames:
            raise DatasetError(f"frame {i} out of range 0..{self.num_frames - 1}")
        return Frame(
            image=decode_png(self.image_bytes(i)),
            action=self._actions[i].copy(),
            instruction=self._tasks[int(self._task_index[i])],
            episode_index=int(self._episode_index[i]),
            frame_index=int(self._frame_index[i]),
            timestamp=float(self._timestamps[i]),
            state=self._states[i].copy(),
        )

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.num_frames):
            yield self.frame(i)

    def unnorm_keys(self) -> list[str]:
        """Keys of ``dataset_statistics.json`` (or the info's unnorm_key / directory name)."""
        return list(self.dataset_statistics())

    def dataset_statistics(self) -> dict[str, Any]:
        """OpenVLA statistics: the file when present and current, else computed from the
        frames. A writer that died between committing an episode and refreshing its meta
        leaves the file one episode behind (the writer repairs it on reopen; a reader that
        trusted it would train with statistics of other data): counts that disagree with the
        committed episodes are recomputed, with a warning."""
        path = self.root / "dataset_statistics.json"
        states = self._states if self._states.shape[1] else None
        if path.exists():
            stats = dict(json.loads(path.read_text()))
            stale = [
                k
                for k, v in stats.items()
                if isinstance(v, dict)
                and (v.get("num_trajectories"), v.get("num_transitions"))
                != (self.num_episodes, self.num_frames)
            ]
            for k in stale:
                _log.warning(
                    "%s: dataset_statistics.json[%r] counts %s episodes / %s frames, the "
                    "dataset has %d / %d (a writer stopped before refreshing it?): recomputed",
                    self.root, k, stats[k].get("num_trajectories"),
                    stats[k].get("num_transitions"), self.num_episodes, self.num_frames,
                )  # fmt: skip
                stats[k] = compute_statistics(
                    self._actions, GRIPPER_MASK, self.num_episodes, states
                )
            return stats
        key = str(self.info.get("unnorm_key") or self.root.name)
        return {key: compute_statistics(self._actions, GRIPPER_MASK, self.num_episodes, states)}
