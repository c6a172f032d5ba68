# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``openvla_recorder``: demonstrations from live topics into a LeRobot v3 dataset (thin node).

Subscribes (raw CDR, decoded with the same rosbags typestore ``bag-to-dataset`` uses, so both
paths share one decoder) to the camera, the measured end-effector pose, the finger joint states
and ``/instruction``; everything else is :class:`openvla_ros.data.recorder.RecorderCore`.

Episodes: a message on ``/instruction`` ends the running episode (success unknown) and starts
one; ``~/start`` (Trigger) starts one with the last instruction; ``~/stop`` (SetBool: ``data`` =
success) ends and writes it (``false`` keeps it marked failed); ``~/discard`` (Trigger) drops it.
Each episode is written when it ends. ``~/episodes`` (String, JSON, reliable, depth 100) reports
every outcome with the header-stamp times of its first grid point and its end, so a bag of the
same run converts to the same frames. Ctrl-C mid-episode discards that episode (logged);
everything already written stays.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from openvla_ros.bag.record import RECORD_QOS, message_class
from openvla_ros.bag.typestore import build_typestore
from openvla_ros.data.recorder import EpisodeEvent, RecorderCore
from openvla_ros.data.recorder_config import RECORDER_PARAMS, config_from_params
from openvla_ros.errors import DatasetError
from openvla_ros.nodes.common import INSTRUCTION_QOS, declare_specs, run_node

NODE_NAME = "openvla_recorder"

#: Events are few and must not be lost: reliable, kept for late subscribers (bag recorders).
EVENTS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


class RecorderNode(Node):
    """Thin adapter: raw subscriptions -> RecorderCore; services; episode events out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        values = declare_specs(self, RECORDER_PARAMS)
        self.config, types = config_from_params(values)
        self._events_pub = self.create_publisher(String, "~/episodes", EVENTS_QOS)
        self.core = RecorderCore(self.config, self._publish_event)
        self.core.open_existing()  # a bad existing dataset refuses to start, with the reason
        self._typestore = build_typestore("kilted")
        self._subs = []
        for topic, msgtype in types.items():
            qos = INSTRUCTION_QOS if topic == self.config.topics.instruction else RECORD_QOS
            self._subs.append(
                self.create_subscription(
                    message_class(msgtype),
                    topic,
                    lambda raw, t=topic, m=msgtype: self._on_raw(t, m, raw),
                    qos,
                    raw=True,
                )
            )
        self._types = types
        self._started = time.monotonic()
        self._last_rx: dict[str, float] = {}
        # A steady-clock watchdog: warns about silent topics, and wakes the executor so Ctrl-C
        # is handled even when nothing is published (or /clock is missing under sim time).
        self.create_timer(0.5, self._watch, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(SetBool, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/discard", self._on_discard)
        self.get_logger().info(
            f"recording to {self.config.out} at {self.config.control_hz:g} Hz: "
            + ", ".join(f"{t} [{m}]" for t, m in types.items())
        )

    def _watch(self) -> None:
        now = time.monotonic()
        streams = [t for t in self._types if t != self.config.topics.instruction]
        never = [t for t in streams if t not in self._last_rx]
        silent = [t for t in streams if t in self._last_rx and now - self._last_rx[t] > 2.0]
        if never and now - self._started > 5.0:
            self.get_logger().warning(
                f"nothing received yet on {never}: is the driver running, and are the topic "
                "names right (--camera-topic / --pose-topic / --gripper-topic)?",
                throttle_duration_sec=30.0,
            )
        if silent and self.core.active:
            self.get_logger().warning(
                f"silent for over 2 s during an episode (stalled?): {silent}; their frames are "
                "dropped from the episode",
                throttle_duration_sec=5.0,
            )

    def _on_raw(self, topic: str, msgtype: str, raw: bytes) -> None:
        self._last_rx[topic] = time.monotonic()
        now = self.get_clock().now().nanoseconds
        try:
            msg = self._typestore.deserialize_cdr(bytes(raw), msgtype)
        except Exception as exc:  # garbage on the wire must not stop the recorder
            self.core.reject(topic, f"undecodable {msgtype}: {exc}")
            return
        self.core.on_message(topic, msg, now)

    def _publish_event(self, event: EpisodeEvent) -> None:
        self._events_pub.publish(String(data=json.dumps(event.as_dict())))
        text = f"episode {event.outcome}: {event.instruction!r} {event.frames} frames" + (
            f" ({event.reason})" if event.reason else ""
        )
        # rclpy refuses two severities from one call site: one call per severity.
        if event.episode_index is not None:
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)

    def _on_start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        del request
        try:
            self.core.start_episode()
            response.success, response.message = True, f"recording {self.core.instruction!r}"
        except DatasetError as exc:
            response.success, response.message = False, str(exc)
        return response

    def _on_stop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        event = self.core.end_episode(bool(request.data), reason="stop service")
        response.success = event is not None and event.episode_index is not None
        response.message = json.dumps(event.as_dict()) if event else "no episode running"
        return response

    def _on_discard(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        del request
        event = self.core.discard_episode()
        response.success = event is not None
        response.message = json.dumps(event.as_dict()) if event else "no episode running"
        return response

    def destroy_node(self) -> None:
        """Ctrl-C / shutdown: discard a running episode (logged); written ones are safe."""
        if self.core.active:
            event = self.core.discard_episode("interrupted (shutdown) mid-episode")
            self.get_logger().warning(
                f"shutdown mid-episode: episode {self.core.instruction!r} with "
                f"{event.frames if event else 0} sampled frames not written; the "
                f"{self.core.episodes_written} episodes in {self.config.out} are intact"
            )
        self.get_logger().info(
            f"recorder done: {dict(self.core.outcomes)}; rejected messages "
            f"{dict(self.core.rejected)}"
        )
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run openvla_ros recorder_node``."""
    return run_node(RecorderNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
