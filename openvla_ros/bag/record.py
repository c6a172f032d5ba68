# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Record topics of a live graph into a rosbag2 bag (``ros2 bag record`` is not on PyPI).

Subscriptions are raw (serialised CDR straight from DDS into the bag: no decode/encode per
message); types come from the graph, or are given. Receive time (this node's clock) is the
bag timestamp, as rosbag2 does. Used by ``openvla-ros record`` and by ``replay --record``.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from openvla_ros.bag.writer import BagWriter
from openvla_ros.errors import BagError

LOG = logging.getLogger(__name__)

#: One episode as this package produces it: inputs, the policy's actions, the executor's
#: decisions and the commands it sent.
DEFAULT_TOPICS = (
    "/camera/image_raw",
    "/instruction",
    "/openvla/ee_pose",
    "/openvla/delta_action",
    "/openvla/executor_state",
    "/openvla/target_pose",
    "/openvla/target_twist",
    "/openvla/gripper_command",
)

#: Types of :data:`DEFAULT_TOPICS`, so a recorder subscribes before publishers appear.
DEFAULT_TYPES = {
    "/camera/image_raw": "sensor_msgs/msg/Image",
    "/instruction": "std_msgs/msg/String",
    "/openvla/ee_pose": "geometry_msgs/msg/PoseStamped",
    "/openvla/delta_action": "openvla_ros/msg/DeltaAction",
    "/openvla/executor_state": "openvla_ros/msg/ExecutorState",
    "/openvla/target_pose": "geometry_msgs/msg/PoseStamped",
    "/openvla/target_twist": "geometry_msgs/msg/TwistStamped",
    "/openvla/gripper_command": "std_msgs/msg/Float64",
}

#: Best effort subscriptions match both reliable and best-effort publishers (camera, pose).
RECORD_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)


def message_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name``."""
    pkg, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError) as exc:
        raise BagError(f"message type {msgtype} is not importable here: {exc}") from exc


class Recorder:
    """Attach raw subscriptions to ``node`` and write everything into ``writer``.

    Topics whose type is not yet known (no publisher) are retried by :meth:`poll_graph`.
    """

    def __init__(
        self,
        node: Node,
        writer: BagWriter,
        topics: Sequence[str],
        types: dict[str, str] | None = None,
    ) -> None:
        self.node = node
        self.writer = writer
        self.pending = list(topics)
        self.types = {**DEFAULT_TYPES, **(types or {})}
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._subs: list[Any] = []
        self.poll_graph()

    def poll_graph(self) -> None:
        """Subscribe to pending topics whose type is known (given, or seen in the graph)."""
        graph = dict(self.node.get_topic_names_and_types())
        for topic in list(self.pending):
            msgtype = self.types.get(topic) or next(iter(graph.get(topic, [])), None)
            if msgtype is None:
                continue
            self.writer.add_topic(topic, msgtype)
            self._subs.append(
                self.node.create_subscription(
                    message_class(msgtype),
                    topic,
                    lambda raw, t=topic: self._on_raw(t, raw),
                    RECORD_QOS,
                    raw=True,
                )
            )
            self.pending.remove(topic)
            LOG.info("recording %s [%s]", topic, msgtype)

    def _on_raw(self, topic: str, raw: bytes) -> None:
        now = self.node.get_clock().now().nanoseconds
        with self._lock:
            self.writer.write_raw(topic, bytes(raw), now)
            self.counts[topic] = self.counts.get(topic, 0) + 1

    @property
    def total(self) -> int:
        """Messages written."""
        return sum(self.counts.values())


def record(
    out: str | Path,
    *,
    topics: Sequence[str] = DEFAULT_TOPICS,
    duration_s: float | None = None,
    storage: str = "mcap",
    compression: str = "none",
) -> int:
    """Record ``topics`` until ``duration_s`` passes or Ctrl-C; returns messages written."""
    import signal

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    # Ctrl-C / SIGTERM set a flag the loop checks (rclpy's handlers off): a KeyboardInterrupt
    # raised inside rclpy's bindings comes out as a RuntimeError (docs/launch.md), and a
    # SIGTERM shut the context down under the loop; either lost the summary line.
    stop: list[int] = []
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.append(signum))
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # type: ignore[attr-defined]
    node = rclpy.create_node("openvla_bag_recorder")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        with BagWriter(out, storage=storage, compression=compression) as writer:
            rec = Recorder(node, writer, topics)
            deadline = None if duration_s is None else time.monotonic() + duration_s
            last_poll = time.monotonic()
            try:
                while not stop and (deadline is None or time.monotonic() < deadline):
                    executor.spin_once(timeout_sec=0.05)
                    if rec.pending and time.monotonic() - last_poll > 0.5:
                        rec.poll_graph()
                        last_poll = time.monotonic()
            except KeyboardInterrupt:
                pass
            if rec.pending:
                LOG.warning("never saw a publisher on: %s", ", ".join(rec.pending))
            return rec.total
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m openvla_ros.bag.record OUT [TOPIC ...]``."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m openvla_ros.bag.record OUT [TOPIC ...]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO)
    n = record(args[0], topics=tuple(args[1:]) or DEFAULT_TOPICS)
    print(f"recorded {n} messages into {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
