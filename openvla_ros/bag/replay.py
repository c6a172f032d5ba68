# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Publish a bag's topics into a live ROS graph, so the real nodes run on recorded data.

Modes:

* timed (default): every message at its recorded receive time, scaled by ``rate``
  (2.0 = twice as fast); the lateness of every publish is measured (``ReplayStats``).
* blocking: stepwise. Each camera frame is published, then the replay waits for the
  policy's ``DeltaAction`` for that frame (matched by ``header.stamp``) and, if a state
  topic is given, the executor's ``ExecutorState`` for that action, before going on. Other
  topics are published in bag order between frames. This makes a live run comparable
  step for step with :func:`~openvla_ros.bag.evaluate.evaluate_bag`.

``restamp`` rewrites ``header.stamp`` of every published message to the publish time
(nodes check image age: a recorded stamp is hours old). Bag outputs of the nodes
(DeltaAction, ExecutorState, commands) are not published by default, so they do not
collide with the live nodes' own.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from openvla_ros.bag import typestore as tn
from openvla_ros.bag.reader import CAMERA_TYPES, BagReader
from openvla_ros.bag.record import DEFAULT_TOPICS, Recorder, message_class
from openvla_ros.bag.writer import BagWriter
from openvla_ros.errors import BagError

LOG = logging.getLogger(__name__)

#: Types the nodes publish: replaying them would collide with the live nodes' output.
OUTPUT_TYPES = (tn.DELTA_ACTION, tn.EXECUTOR_STATE)
OUTPUT_TOPICS = ("/openvla/target_pose", "/openvla/target_twist", "/openvla/gripper_command")

PUB_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
#: Instructions are latched (transient local) so a node started late still gets one.
LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
_RECV_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay (see the module doc). Times in seconds."""

    rate: float = 1.0
    blocking: bool = False
    topics: tuple[str, ...] | None = None
    camera_topic: str | None = None
    action_topic: str = "/openvla/delta_action"
    state_topic: str | None = "/openvla/executor_state"
    step_timeout_s: float = 10.0
    restamp: bool = False
    record: Path | None = None
    record_storage: str = "mcap"
    discovery_timeout_s: float = 10.0
    settle_s: float = 0.2  # blocking: after a non-frame message, let it arrive first

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise BagError(f"rate must be > 0, got {self.rate}")


@dataclass
class StepOutcome:
    """Blocking mode: what the live nodes answered for one frame."""

    frame_index: int
    published_stamp_ns: int
    action: list[float] | None = None
    step: int | None = None
    episode_id: int | None = None
    outcome: int | None = None
    clip_flags: int | None = None
    wait_s: float = 0.0


@dataclass
class ReplayStats:
    """Counts and timing of one replay."""

    published: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)
    lateness_s: list[float] = field(default_factory=list)  # timed mode, per message
    steps: list[StepOutcome] = field(default_factory=list)  # blocking mode, per frame
    timeouts: int = 0
    wall_s: float = 0.0
    bag_duration_s: float = 0.0
    recorded: int = 0

    def timing(self) -> dict[str, float]:
        """Lateness of publishes vs the scaled bag timeline (s): median, p95, max."""
        if not self.lateness_s:
            return {}
        xs = sorted(self.lateness_s)
        return {
            "median_s": statistics.median(xs),
            "p95_s": xs[min(len(xs) - 1, int(0.95 * len(xs)))],
            "max_s": xs[-1],
        }

    def summary(self) -> str:
        """One line for the CLI."""
        t = self.timing()
        s = f"published {self.published} messages in {self.wall_s:.2f} s"
        if t:
            s += (
                f"; lateness median {t['median_s'] * 1e3:.2f} ms, p95 "
                f"{t['p95_s'] * 1e3:.2f} ms, max {t['max_s'] * 1e3:.2f} ms"
            )
        if self.steps:
            s += f"; {len(self.steps)} blocking steps, {self.timeouts} timed out"
        if self.recorded:
            s += f"; recorded {self.recorded} messages"
        return s


class BagReplayer:
    """Replays one bag through ``node`` (which the caller spins via ``spin_once``)."""

    def __init__(self, node: Node, bag_path: str | Path, options: ReplayOptions) -> None:
        self.node = node
        self.options = options
        self.bag_path = Path(bag_path)
        with BagReader(self.bag_path) as bag:
            all_topics = bag.topics
        wanted = options.topics or tuple(
            t for t, ty in all_topics.items() if ty not in OUTPUT_TYPES and t not in OUTPUT_TOPICS
        )
        missing = [t for t in wanted if t not in all_topics]
        if missing:
            raise BagError(f"topics {missing} are not in the bag; available: {sorted(all_topics)}")
        self.topics = {t: all_topics[t] for t in wanted}
        self.camera_topic = options.camera_topic or next(
            (t for t, ty in self.topics.items() if ty in CAMERA_TYPES), None
        )
        if options.blocking and self.camera_topic is None:
            raise BagError("blocking replay needs a camera topic (Image or CompressedImage)")
        self.pubs = {
            t: node.create_publisher(
                message_class(ty), t, LATCHED_QOS if ty == tn.STRING else PUB_QOS
            )
            for t, ty in self.topics.items()
        }
        self._actions: dict[int, Any] = {}
        self._states: list[Any] = []
        if options.blocking:
            from openvla_ros.msg import DeltaAction, ExecutorState

            node.create_subscription(DeltaAction, options.action_topic, self._on_action, _RECV_QOS)
            if options.state_topic:
                node.create_subscription(
                    ExecutorState, options.state_topic, self._on_state, _RECV_QOS
                )

    def _on_action(self, msg: Any) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self._actions.setdefault(stamp, msg)

    def _on_state(self, msg: Any) -> None:
        self._states.append(msg)

    def wait_for_subscribers(self, spin: Any, topics: list[str] | None = None) -> None:
        """Wait until each publisher has a subscriber (or the discovery timeout)."""
        deadline = time.monotonic() + self.options.discovery_timeout_s
        names = topics or list(self.pubs)
        while time.monotonic() < deadline:
            if all(self.pubs[t].get_subscription_count() > 0 for t in names):
                return
            spin(0.05)
        LOG.warning(
            "no subscriber after %.1f s on: %s",
            self.options.discovery_timeout_s,
            [t for t in names if self.pubs[t].get_subscription_count() == 0],
        )

    def wait_for_known_subscribers(self, spin: Any) -> None:
        """Wait until every subscriber the ROS graph knows of, on every replayed topic, is
        matched by our publisher (bounded by the discovery timeout), then settle once.

        Blocking replay needs this for the topics besides the camera: an executor whose pose
        subscription matched late drops the first poses and rejects the first action ("no
        confirmed end-effector pose yet"), which offline evaluation does only where the bag
        itself has fewer than two poses before the first frame. Topics nobody
        subscribes to are not waited for."""
        deadline = time.monotonic() + self.options.discovery_timeout_s
        while True:
            unmatched = [
                t
                for t, pub in self.pubs.items()
                if pub.get_subscription_count() < self.node.count_subscribers(t)
            ]
            if not unmatched:
                break
            if time.monotonic() >= deadline:
                LOG.warning("subscribers not matched after %.1f s on: %s",
                            self.options.discovery_timeout_s, unmatched)  # fmt: skip
                break
            spin(0.05)
        spin(self.options.settle_s)  # the subscriber side matches us a moment later

    def run(self, spin: Any) -> ReplayStats:
        """Replay; ``spin(timeout_s)`` must process this node's callbacks."""
        opts = self.options
        stats = ReplayStats()
        with BagReader(self.bag_path) as bag:
            stats.bag_duration_s = bag.duration_ns / 1e9
            store = bag.typestore
            t0_bag: int | None = None
            t0_wall = time.monotonic()
            frame_index = -1
            for topic, msgtype, t, raw in bag.raw_messages(list(self.topics)):
                if t0_bag is None:
                    t0_bag, t0_wall = t, time.monotonic()
                data = raw
                stamp_ns: int | None = None
                if opts.restamp or (opts.blocking and topic == self.camera_topic):
                    msg = store.deserialize_cdr(raw, msgtype)
                    head = getattr(msg, "header", None)
                    if head is not None:
                        if opts.restamp:
                            now = self.node.get_clock().now().nanoseconds
                            head.stamp.sec, head.stamp.nanosec = divmod(now, 1_000_000_000)
                            data = bytes(store.serialize_cdr(msg, msgtype))
                        stamp_ns = head.stamp.sec * 1_000_000_000 + head.stamp.nanosec
                if not opts.blocking:
                    target = t0_wall + (t - t0_bag) / 1e9 / opts.rate
                    while (delay := target - time.monotonic()) > 0:
                        spin(min(delay, 0.01)) if delay > 0.002 else time.sleep(delay)
                    stats.lateness_s.append(time.monotonic() - target)
                self.pubs[topic].publish(data)
                stats.published += 1
                stats.per_topic[topic] = stats.per_topic.get(topic, 0) + 1
                if opts.blocking:
                    if topic == self.camera_topic:
                        frame_index += 1
                        stats.steps.append(self._await_step(frame_index, stamp_ns, spin, stats))
                    else:
                        spin(opts.settle_s)
                else:
                    spin(0.0)
        return stats

    def _await_step(
        self, index: int, stamp_ns: int | None, spin: Any, stats: ReplayStats
    ) -> StepOutcome:
        opts = self.options
        out = StepOutcome(index, stamp_ns or 0)
        start = time.monotonic()
        deadline = start + opts.step_timeout_s
        action = None
        while time.monotonic() < deadline:
            spin(0.01)
            action = self._actions.get(stamp_ns or -1)
            if action is None:
                continue
            if not opts.state_topic:
                break
            state = next(
                (
                    s
                    for s in self._states
                    if s.step == action.step and s.episode_id == action.episode_id
                ),
                None,
            )
            if state is not None:
                out.outcome, out.clip_flags = int(state.outcome), int(state.clip_flags)
                break
        out.wait_s = time.monotonic() - start
        if action is None or (opts.state_topic and out.outcome is None):
            stats.timeouts += 1
            LOG.warning("frame %d: no %s within %.1f s", index, "action" if action is None
                        else "executor state", opts.step_timeout_s)  # fmt: skip
        if action is not None:
            out.action = [float(v) for v in action.action]
            out.step, out.episode_id = int(action.step), int(action.episode_id)
        return out


def run_replay(bag_path: str | Path, options: ReplayOptions) -> ReplayStats:
    """Create a node, replay ``bag_path`` (optionally recording outputs), shut down."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init()
    node = rclpy.create_node("openvla_bag_replay")
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def spin(timeout_s: float) -> None:
        executor.spin_once(timeout_sec=max(0.0, timeout_s))

    writer: BagWriter | None = None
    try:
        replayer = BagReplayer(node, bag_path, options)
        recorder = None
        if options.record is not None:
            writer = BagWriter(options.record, storage=options.record_storage)
            writer.__enter__()
            outputs = [
                t for t in DEFAULT_TOPICS if t.startswith("/openvla/") and "ee_pose" not in t
            ]
            recorder = Recorder(node, writer, outputs)
        replayer.wait_for_subscribers(
            spin, [replayer.camera_topic] if replayer.camera_topic else None
        )
        if options.blocking:
            replayer.wait_for_known_subscribers(spin)
        start = time.monotonic()
        stats = replayer.run(spin)
        stats.wall_s = time.monotonic() - start
        if recorder is not None:
            end = time.monotonic() + 0.5  # let the last outputs arrive
            while time.monotonic() < end:
                spin(0.05)
                if recorder.pending:
                    recorder.poll_graph()
            stats.recorded = recorder.total
        return stats
    finally:
        if writer is not None:
            writer.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
