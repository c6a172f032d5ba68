# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``bag-to-dataset``: rosbag2 files -> LeRobot v3, with the live recorder's core and topics.

Messages are fed to :class:`RecorderCore` in receive order. Episode boundaries come from the
recorder's ``~/episodes`` events when the bag has them (a bag recorded beside a live recording:
same grid origin and end, same outcome, so the same frames), otherwise from ``/instruction``
(each instruction starts an episode that runs to the next one or to the end of the bag;
success unknown). Discarded and rejected episodes of the live run are skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openvla_ros.bag.reader import BagReader
from openvla_ros.data.messages import stamp_ns
from openvla_ros.data.recorder import EpisodeEvent, RecorderConfig, RecorderCore
from openvla_ros.errors import BagError

__all__ = ["EVENTS_TOPIC", "bag_to_dataset"]

_log = logging.getLogger(__name__)

#: Where the live recorder node publishes its episode events.
EVENTS_TOPIC = "/openvla_recorder/episodes"
_OUTCOME = {"success": True, "failed": False, "unknown": None}


def _check_topics(reader: BagReader, config: RecorderConfig) -> list[str]:
    t = config.topics
    wanted = [(t.camera, ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"), "camera"),
              (t.pose, ("geometry_msgs/msg/PoseStamped",), "end-effector pose")]  # fmt: skip
    if t.gripper:
        wanted.append((t.gripper, ("sensor_msgs/msg/JointState",), "gripper joint state"))
    for topic, types, role in wanted:
        reader.require(topic, types, role)
    topics = [w[0] for w in wanted]
    if t.instruction in reader.topics:
        topics.append(t.instruction)
    return topics


def _recorded_episodes(reader: BagReader) -> list[dict[str, Any]]:
    if EVENTS_TOPIC not in reader.topics:
        return []
    out = []
    for _, msgtype, _, raw in reader.raw_messages([EVENTS_TOPIC]):
        event = json.loads(reader.deserialize(raw, msgtype).data)
        if event.get("outcome") in _OUTCOME and event.get("t0_ns") is not None:
            out.append(event)
    return out


def bag_to_dataset(bags: Sequence[str | Path], config: RecorderConfig) -> dict[str, Any]:
    """Convert ``bags`` (in order) into the dataset at ``config.out``; returns a summary.

    Raises:
        BagError: a bag is missing, unreadable, lacks a required topic (the message lists the
            topics it has) or has neither episode events nor instructions.
    """
    events: list[EpisodeEvent] = []
    core = RecorderCore(config, events.append)
    core.open_existing()
    per_bag = []
    for bag in bags:
        with BagReader(bag) as reader:
            topics = _check_topics(reader, config)
            recorded = _recorded_episodes(reader)
            if not recorded and config.topics.instruction not in reader.topics:
                raise BagError(
                    f"{bag} has neither recorder episode events ({EVENTS_TOPIC}) nor "
                    f"instructions ({config.topics.instruction}): cannot tell where episodes are"
                )
            before = len(events)
            if recorded:
                _replay_recorded(reader, topics, core, recorded, config)
            else:
                _replay_instructions(reader, topics, core)
            per_bag.append({"bag": str(bag), "episodes": len(events) - before,
                            "skipped_messages": reader.skips.as_dict()})  # fmt: skip
    written = [e for e in events if e.episode_index is not None]
    return {
        "episodes_written": len(written),
        "frames": sum(e.frames for e in written),
        "rejected": [e.reason for e in events if e.outcome == "rejected"],
        "rejected_messages": dict(core.rejected),
        "bags": per_bag,
    }


def _replay_recorded(
    reader: BagReader,
    topics: list[str],
    core: RecorderCore,
    recorded: list[dict[str, Any]],
    config: RecorderConfig,
) -> None:
    stream_topics = [t for t in topics if t != config.topics.instruction]
    queue = list(recorded)
    first = queue.pop(0)
    core.start_episode(first["instruction"], t0_ns=int(first["t0_ns"]))
    current: dict[str, Any] | None = first
    for topic, msgtype, recv_ns, raw in reader.raw_messages(stream_topics):
        msg = _decode(reader, core, topic, msgtype, raw)
        if msg is None:
            continue
        camera = topic == config.topics.camera
        if current is not None and camera and stamp_ns(msg) > int(current["end_ns"]):
            core.end_episode(_OUTCOME[current["outcome"]], "recorded end",
                             end_ns=int(current["end_ns"]))  # fmt: skip
            current = queue.pop(0) if queue else None
            if current is not None:
                core.start_episode(current["instruction"], t0_ns=int(current["t0_ns"]))
        core.on_message(topic, msg, recv_ns)
    if current is not None:
        core.end_episode(_OUTCOME[current["outcome"]], "recorded end", int(current["end_ns"]))


def _replay_instructions(reader: BagReader, topics: list[str], core: RecorderCore) -> None:
    for topic, msgtype, recv_ns, raw in reader.raw_messages(topics):
        msg = _decode(reader, core, topic, msgtype, raw)
        if msg is not None:
            core.on_message(topic, msg, recv_ns)
    core.end_episode(None, "end of bag")


def _decode(reader: BagReader, core: RecorderCore, topic: str, msgtype: str, raw: bytes) -> Any:
    try:
        return reader.deserialize(raw, msgtype)
    except Exception as exc:  # a corrupt message is counted, not fatal
        core.reject(topic, f"undecodable {msgtype}: {exc}")
        return None
