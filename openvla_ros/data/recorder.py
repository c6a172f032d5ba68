# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The recorder core shared by the live recorder node and ``bag-to-dataset`` (pure: no rclpy).

Feed it decoded messages with :meth:`RecorderCore.on_message` (topic, message, receive time) and
episode boundaries (:meth:`start_episode`, :meth:`end_episode`, :meth:`discard_episode`, or a new
instruction on the instruction topic). Per episode it samples camera, end-effector pose and
gripper as-of on the control-rate grid (:mod:`openvla_ros.data.alignment`), labels consecutive
samples in the executor's convention (:mod:`openvla_ros.data.labels`), drops idle frames
(counted) and writes the episode to the dataset at once (a crash loses at most the current
episode). Every rejected message, dropped frame and unusable episode is counted and logged with
the reason; nothing raises out of :meth:`on_message`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from openvla_ros.control.profile import RobotProfile
from openvla_ros.data.alignment import AsOfAligner, GridPoint
from openvla_ros.data.labels import IdleFilter, idle_mask, transition_labels
from openvla_ros.data.lerobot import DatasetWriter, EpisodeRecord
from openvla_ros.data.messages import (
    check_image_encoding,
    decode_image,
    decode_pose,
    gripper_opening,
    stamp_ns,
)
from openvla_ros.data.robots import TopicMap
from openvla_ros.errors import DatasetError

__all__ = ["EpisodeEvent", "RecorderConfig", "RecorderCore"]

_log = logging.getLogger(__name__)

CAMERA, POSE, GRIPPER = "camera", "pose", "gripper"


@dataclass(frozen=True)
class RecorderConfig:
    """How to record: topics, rate, staleness limits, idle filter, where to write."""

    out: Path
    topics: TopicMap
    profile: RobotProfile
    control_hz: float = 5.0
    warn_factor: float = 2.0
    drop_factor: float = 4.0
    filter_idle: bool = True
    idle: IdleFilter = field(default_factory=IdleFilter)
    unnorm_key: str = ""
    robot_type: str = ""
    min_frames: int = 2


@dataclass(frozen=True)
class EpisodeEvent:
    """What happened to an episode (published by the node; read back by ``bag-to-dataset``).

    ``outcome``: ``success`` / ``failed`` / ``unknown`` (written), ``discarded`` (by request),
    ``rejected`` (unusable: the reason says why). ``t0_ns`` / ``end_ns`` are header-stamp times
    of the grid's first point and the episode's end, so a bag reproduces the same frames.
    """

    outcome: str
    instruction: str
    t0_ns: int | None
    end_ns: int | None
    episode_index: int | None = None
    frames: int = 0
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "outcome": self.outcome,
            "instruction": self.instruction,
            "t0_ns": self.t0_ns,
            "end_ns": self.end_ns,
            "episode_index": self.episode_index,
            "frames": self.frames,
            "reason": self.reason,
            "info": self.info,
        }


class RecorderCore:
    """See module doc. ``on_event`` is called with every :class:`EpisodeEvent`."""

    def __init__(
        self, config: RecorderConfig, on_event: Callable[[EpisodeEvent], None] | None = None
    ) -> None:
        self.config = config
        self._on_event = on_event
        self.rejected: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self._writer: DatasetWriter | None = None
        self._streams = [CAMERA, POSE] + ([GRIPPER] if config.topics.gripper else [])
        self._instruction = ""
        self._active = False
        self._aligner: AsOfAligner | None = None
        self._points: list[GridPoint] = []
        self._last_camera_ns: int | None = None
        self._first_error: dict[str, str] = {}
        self._forced_t0: int | None = None
        # Newest message per non-camera stream, kept while idle: the first grid point of an
        # episode needs the pose/gripper as-of its time even if they were stamped before start.
        self._latest: dict[str, tuple[int, Any]] = {}

    # --- state ---------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """An episode is being recorded."""
        return self._active

    @property
    def instruction(self) -> str:
        """The instruction of the current (or next) episode."""
        return self._instruction

    @property
    def episodes_written(self) -> int:
        """Episodes in the dataset (including earlier sessions when appending)."""
        return 0 if self._writer is None else self._writer.num_episodes

    def open_existing(self) -> None:
        """Open the dataset now when it exists (so appending errors show at start-up)."""
        if (self.config.out / "meta" / "info.json").exists():
            self._writer_for((0, 0, 3), probe=True)

    # --- messages ------------------------------------------------------------------------
    def on_message(self, topic: str, msg: Any, recv_ns: int) -> None:
        """One message of any recorded topic (unknown topics are ignored)."""
        t = self.config.topics
        try:
            if topic == t.instruction:
                self._on_instruction(str(msg.data), recv_ns)
            elif topic == t.camera:
                check_image_encoding(msg)
                self._push(CAMERA, stamp_ns(msg), msg)
            elif topic == t.pose:
                self._push(POSE, stamp_ns(msg), decode_pose(msg, self.config.profile.base_frame))
            elif t.gripper and topic == t.gripper:
                opening = gripper_opening(
                    msg, t.gripper_joints, t.gripper_open_position, t.gripper_closed_position
                )
                self._push(GRIPPER, stamp_ns(msg), opening)
        except DatasetError as exc:
            self._reject(topic, str(exc))

    def reject(self, topic: str, reason: str) -> None:
        """Count (and log the 1st, 10th, 100th, ...) unusable message on ``topic``."""
        self._reject(topic, reason)

    def _reject(self, topic: str, reason: str) -> None:
        self.rejected[topic] += 1
        if topic not in self._first_error:
            self._first_error[topic] = reason
        if self.rejected[topic] in (1, 10, 100, 1000):
            _log.warning("rejected %s message #%d: %s", topic, self.rejected[topic], reason)

    def _on_instruction(self, text: str, recv_ns: int) -> None:
        text = text.strip()
        if not text:
            self._reject(self.config.topics.instruction, "empty instruction ignored")
            return
        if self._active:
            self.end_episode(None, reason="new instruction")
        self.start_episode(text)

    def _push(self, stream: str, stamp: int, value: Any) -> None:
        if stream == CAMERA:
            self._last_camera_ns = stamp
        else:
            self._latest[stream] = (stamp, value)
        if not self._active or self._aligner is None:
            return
        if not self._aligner.started:
            if stream != CAMERA:
                self._aligner.push(stream, stamp, value)  # as-of history for the first point
                return
            if self._forced_t0 is not None and stamp < self._forced_t0:
                return
            self._aligner.start(stamp if self._forced_t0 is None else self._forced_t0)
        self._aligner.push(stream, stamp, value)
        self._points.extend(self._aligner.poll())

    # --- episodes ------------------------------------------------------------------------
    def start_episode(self, instruction: str | None = None, t0_ns: int | None = None) -> None:
        """Start recording (ends a running episode first, success unknown).

        ``t0_ns`` pins the grid origin (bag replay of a recorded run); otherwise the first
        camera frame after the start is the origin.

        Raises:
            DatasetError: no instruction given and none received yet.
        """
        if instruction is not None:
            self._instruction = instruction.strip()
        if not self._instruction:
            raise DatasetError(
                "no instruction yet: publish one on "
                f"{self.config.topics.instruction} (std_msgs/String) before starting an episode"
            )
        if self._active:
            self.end_episode(None, reason="restarted")
        period = 1.0 / self.config.control_hz
        self._aligner = AsOfAligner(
            self._streams, period, self.config.warn_factor, self.config.drop_factor
        )
        self._points = []
        self._forced_t0 = t0_ns
        self._active = True
        for stream, (stamp, value) in self._latest.items():
            self._aligner.push(stream, stamp, value)
        _log.info("episode started: %r", self._instruction)

    def discard_episode(self, reason: str = "discarded by request") -> EpisodeEvent | None:
        """Drop the current episode without writing it."""
        if not self._active:
            return None
        event = EpisodeEvent("discarded", self._instruction, self._t0(), self._last_camera_ns,
                             frames=len(self._points), reason=reason)  # fmt: skip
        self._close(event)
        return event

    def end_episode(
        self, success: bool | None, reason: str = "", end_ns: int | None = None
    ) -> EpisodeEvent | None:
        """End the current episode and write it; returns what happened (None when idle).

        ``success``: True / False (kept, marked failed) / None (unknown). An unusable episode
        (no frames, no motion, a write error) is not written: the event says why.
        """
        if not self._active or self._aligner is None:
            return None
        end = end_ns if end_ns is not None else self._last_camera_ns
        if end is not None:
            self._points.extend(self._aligner.flush(end))
        t0 = self._t0()
        outcome = {True: "success", False: "failed", None: "unknown"}[success]
        try:
            record = self._assemble(success)
            record.info.update(end_reason=reason, t0_ns=t0, end_ns=end)
            index = self._writer_for(record.images[0].shape).add_episode(record)
            event = EpisodeEvent(outcome, self._instruction, t0, end, index, len(record.images),
                                 reason, self._summary(record))  # fmt: skip
            _log.info("episode %d written: %d frames, %s", index, len(record.images), outcome)
        except DatasetError as exc:
            event = EpisodeEvent("rejected", self._instruction, t0, end, None, 0, str(exc),
                                 {"alignment": self._aligner.stats()})  # fmt: skip
            _log.error("episode not written: %s", exc)
        self._close(event)
        return event

    def _t0(self) -> int | None:
        return None if self._aligner is None else self._aligner.t0_ns

    def _close(self, event: EpisodeEvent) -> None:
        self._active = False
        self._aligner = None
        self._points = []
        self._forced_t0 = None
        self.outcomes[event.outcome] += 1
        if self._on_event is not None:
            self._on_event(event)

    @staticmethod
    def _summary(record: EpisodeRecord) -> dict[str, Any]:
        keys = ("idle_frames_dropped", "stale_dropped_frames", "frames_before_filter")
        return {k: record.info.get(k) for k in keys}

    def _writer_for(self, shape: tuple[int, ...], probe: bool = False) -> DatasetWriter:
        if self._writer is None:
            cfg = self.config
            if probe:
                import json

                info = json.loads((cfg.out / "meta" / "info.json").read_text())
                cam = next(k for k, v in info["features"].items() if v["dtype"] == "image")
                shape = tuple(info["features"][cam]["shape"])
            self._writer = DatasetWriter(
                cfg.out,
                fps=cfg.control_hz,
                image_shape=(int(shape[0]), int(shape[1]), 3),
                robot_type=cfg.robot_type or cfg.profile.name,
                unnorm_key=cfg.unnorm_key or cfg.out.name,
            )
        return self._writer

    def _assemble(self, success: bool | None) -> EpisodeRecord:
        """Labels from consecutive valid grid points; idle frames filtered (see module doc)."""
        assert self._aligner is not None
        pts = self._points
        stats = self._aligner.stats()
        if not pts:
            missing = [s for s, st in stats.items() if st["received"] == 0]
            raise DatasetError(
                f"episode {self._instruction!r} has no frames"
                + (f": nothing received on {missing}" if missing else "")
                + self._error_hint()
            )
        valid = [p.dropped is None for p in pts]
        pairs = [k for k in range(len(pts) - 1) if valid[k] and valid[k + 1]]
        stale = sum(1 for v in valid if not v)
        if len(pairs) < self.config.min_frames:
            reasons = sorted({p.dropped for p in pts if p.dropped})[:3]
            raise DatasetError(
                f"episode {self._instruction!r}: {len(pairs)} usable frames of {len(pts)} "
                f"(need {self.config.min_frames}); dropped because {reasons or 'too short'}"
                + self._error_hint()
            )
        profile = self.config.profile
        poses = [p.values[POSE] for p in pts]
        has_grip = GRIPPER in self._streams
        openings = [float(p.values.get(GRIPPER, 1.0)) if p.dropped is None else 1.0 for p in pts]
        images, states, actions, stamps = [], [], [], []
        for k in pairs:
            action, state = transition_labels(
                poses[k : k + 2], openings[k : k + 2], profile, has_gripper=has_grip
            )
            actions.append(action[0])
            states.append(state[0])
            images.append(decode_image(pts[k].values[CAMERA]))
            stamps.append(pts[k].t_ns / 1e9)
        acts = np.asarray(actions, dtype=np.float32)
        keep = ~idle_mask(acts, self.config.idle) if self.config.filter_idle else None
        if keep is not None and not keep.any():
            raise DatasetError(
                f"episode {self._instruction!r} has no motion: all {len(acts)} frames are idle "
                f"(moves under {self.config.idle.translation_m} m / "
                f"{self.config.idle.rotation_rad} rad, gripper unchanged): was the arm moving?"
            )
        idx = np.flatnonzero(keep) if keep is not None else np.arange(len(acts))
        return EpisodeRecord(
            instruction=self._instruction,
            images=[images[i] for i in idx],
            states=np.asarray(states, dtype=np.float32)[idx],
            actions=acts[idx],
            timestamps=np.asarray(stamps, dtype=np.float64)[idx],
            success=success,
            info={
                "source": "recorder",
                "frames_before_filter": len(acts),
                "idle_frames_dropped": int(len(acts) - idx.size),
                "stale_dropped_frames": stale,
                "grid_points": len(pts),
                "alignment": stats,
                "rejected_messages": dict(self.rejected),
            },
        )

    def _error_hint(self) -> str:
        if not self._first_error:
            return ""
        return "; rejected messages: " + "; ".join(
            f"{t}: {e}" for t, e in self._first_error.items()
        )
