# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Helpers for the node tests: a probe node in the test process that plays camera, user,
robot and controller over real DDS, while the nodes under test run as separate processes.

Import only after ``pytest.importorskip("rclpy")`` (conftest.py imports it lazily).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from openvla_ros.msg import DeltaAction
from openvla_ros.nodes.common import POSE_QOS, SENSOR_QOS, ns_to_stamp
from test.conftest import wait_for

#: For test readers that must see every message of a stream (exact step lists): reliable like
#: the nodes' writers (so it matches them) but 1,000 deep, so a test process that falls behind
#: under load does not lose the oldest unread samples (at depth 10 the closed-loop sim test
#: once lost a state).
RECORD_QOS = QoSProfile(
    depth=1000,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

#: One frame colour used throughout: distinct channels expose RGB/BGR swaps.
RGB = (200, 100, 50)


def solid_rgb(h: int = 32, w: int = 40, rgb: tuple[int, int, int] = RGB) -> np.ndarray:
    """A small solid-colour HxWx3 uint8 frame."""
    return np.broadcast_to(np.asarray(rgb, np.uint8), (h, w, 3)).copy()


def image_msg(rgb: np.ndarray, encoding: str = "rgb8", stamp_ns: int = 0) -> Image:
    """An Image in ``encoding`` (rgb8, bgr8, rgba8, bgra8, mono8) showing ``rgb``."""
    h, w, _ = rgb.shape
    if encoding == "rgb8":
        px = rgb
    elif encoding == "bgr8":
        px = rgb[:, :, ::-1]
    elif encoding == "rgba8":
        px = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=2)
    elif encoding == "bgra8":
        px = np.concatenate([rgb[:, :, ::-1], np.full((h, w, 1), 255, np.uint8)], axis=2)
    elif encoding == "mono8":
        px = rgb[:, :, :1]
    else:
        raise ValueError(encoding)
    px = np.ascontiguousarray(px)
    msg = Image()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = "camera"
    msg.height, msg.width = h, w
    msg.encoding = encoding
    msg.step = w * px.shape[2]
    msg.data = px.tobytes()
    return msg


class Probe:
    """A node in the test process, spun in a background thread.

    ``sub`` records every message with its receive time; ``pub`` caches publishers;
    ``call`` calls a service; ``start_camera`` publishes frames at a rate with fresh stamps.
    """

    def __init__(self, name: str = "probe") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._pubs: dict[str, Any] = {}
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._spin = threading.Thread(target=self._spin_loop, daemon=True)
        self._spin.start()
        self._camera: threading.Thread | None = None
        self._camera_stop = threading.Event()
        self.camera_stamps: list[int] = []
        self._robot: threading.Thread | None = None
        self._robot_stop = threading.Event()
        #: The simulated arm's pose: (x, y, z), (qx, qy, qz, qw); follows targets if asked.
        self.robot_pose: tuple[tuple[float, ...], tuple[float, ...]] = (
            (0.4, 0.0, 0.25),
            (1.0, 0.0, 0.0, 0.0),
        )

    def _spin_loop(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # shutdown races
                if self._stop.is_set():
                    return

    def now_ns(self) -> int:
        """The probe's ROS clock (same system clock as the nodes under test)."""
        return self.node.get_clock().now().nanoseconds

    def sub(self, msg_type: type, topic: str, qos: QoSProfile | int = 10) -> list[Any]:
        """Subscribe; returns the list the messages are appended to."""
        box: list[Any] = []

        def cb(msg: Any) -> None:
            with self._lock:
                box.append(msg)

        self.node.create_subscription(msg_type, topic, cb, qos)
        return box

    def pub(self, msg_type: type, topic: str, qos: QoSProfile | int = 10) -> Any:
        """A (cached) publisher."""
        key = f"{topic}:{msg_type.__name__}"
        if key not in self._pubs:
            self._pubs[key] = self.node.create_publisher(msg_type, topic, qos)
        return self._pubs[key]

    def wait_subscribed(self, msg_type: type, topic: str, timeout: float = 10.0) -> bool:
        """Wait until the publisher for ``topic`` has a matched subscriber."""
        p = self.pub(msg_type, topic)
        return wait_for(lambda: p.get_subscription_count() > 0, timeout)

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 10.0) -> Any:
        """Call a service (waiting for it to appear); returns the response."""
        # A fresh client's request (or the answer) can be lost while discovery of the
        # response path is still under way (wait_for_service only sees the request side):
        # clients are kept, and an unanswered call is sent again after a while.
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout), f"service {name} not found"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            future = client.call_async(request)
            if wait_for(future.done, min(2.0, max(0.1, deadline - time.monotonic()))):
                return future.result()
            client.remove_pending_request(future)
        raise AssertionError(f"service {name} did not answer within {timeout} s")

    def wait_service(self, srv_type: type, name: str, timeout: float = 10.0) -> bool:
        """Wait until a service is available."""
        client = self.node.create_client(srv_type, name)
        try:
            return bool(client.wait_for_service(timeout_sec=timeout))
        finally:
            self.node.destroy_client(client)

    def set_params(self, node_name: str, **values: Any) -> list[Any]:
        """Set parameters of a remote node; returns the SetParametersResult list."""
        req = SetParameters.Request()
        req.parameters = [
            ParameterMsg(
                name=k.replace("__", "."), value=Parameter(k, value=v).get_parameter_value()
            )
            for k, v in values.items()
        ]
        return list(self.call(SetParameters, f"/{node_name}/set_parameters", req).results)

    def instruction(self, text: str, topic: str = "/instruction") -> None:
        """Publish an instruction (after the policy's subscription matched)."""
        p = self.pub(String, topic)
        wait_for(lambda: p.get_subscription_count() > 0, 10.0)
        p.publish(String(data=text))

    def publish_frame(
        self,
        rgb: np.ndarray | None = None,
        encoding: str = "rgb8",
        stamp_ns: int | None = None,
        topic: str = "/camera/image_raw",
        msg: Image | CompressedImage | None = None,
    ) -> int:
        """Publish one frame (stamp = now unless given); returns its stamp."""
        stamp = self.now_ns() if stamp_ns is None else stamp_ns
        if msg is None:
            msg = image_msg(solid_rgb() if rgb is None else rgb, encoding, stamp)
        else:
            msg.header.stamp = ns_to_stamp(stamp)
        kind = CompressedImage if isinstance(msg, CompressedImage) else Image
        key = f"{topic}:{kind.__name__}"
        fresh = key not in self._pubs
        pub = self.pub(kind, topic, SENSOR_QOS)
        if fresh:  # best effort: a frame sent before discovery completes is simply lost
            wait_for(lambda: pub.get_subscription_count() > 0, 10.0)
            # The reader may match this writer a little after the writer matched the reader;
            # best-effort samples from a writer it does not know yet are dropped.
            time.sleep(0.3)
        pub.publish(msg)
        return stamp

    def start_camera(self, hz: float = 20.0, topic: str = "/camera/image_raw", **kw: Any) -> None:
        """Publish frames at ``hz`` in a thread until :meth:`stop_camera`."""
        self.stop_camera()
        self._camera_stop.clear()

        def run() -> None:
            while not self._camera_stop.is_set():
                stamp = self.publish_frame(topic=topic, **kw)
                with self._lock:
                    self.camera_stamps.append(stamp)
                self._camera_stop.wait(1.0 / hz)

        self._camera = threading.Thread(target=run, daemon=True)
        self._camera.start()

    def stop_camera(self) -> None:
        """Stop the camera thread."""
        if self._camera is not None:
            self._camera_stop.set()
            self._camera.join(timeout=2.0)
            self._camera = None

    def start_robot(
        self,
        hz: float = 50.0,
        frame_id: str = "base_link",
        follow: str | None = "/openvla/target_pose",
        topic: str = "/openvla/ee_pose",
    ) -> None:
        """Publish :attr:`robot_pose` at ``hz`` (best effort, like franka_ros2); with
        ``follow``, jump to every received target (an ideal position controller)."""
        self.stop_robot()
        if follow is not None and not hasattr(self, "_following"):
            self._following = True

            def on_target(msg: PoseStamped) -> None:
                p, q = msg.pose.position, msg.pose.orientation
                self.robot_pose = ((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))

            self.node.create_subscription(PoseStamped, follow, on_target, 10)
        pub = self.pub(PoseStamped, topic, POSE_QOS)
        self._robot_stop.clear()

        def run() -> None:
            while not self._robot_stop.is_set():
                (x, y, z), (qx, qy, qz, qw) = self.robot_pose
                msg = PoseStamped()
                msg.header.stamp = ns_to_stamp(self.now_ns())
                msg.header.frame_id = frame_id
                msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
                o = msg.pose.orientation
                o.x, o.y, o.z, o.w = qx, qy, qz, qw
                pub.publish(msg)
                self._robot_stop.wait(1.0 / hz)

        self._robot = threading.Thread(target=run, daemon=True)
        self._robot.start()

    @property
    def robot_running(self) -> bool:
        """Is :meth:`start_robot` publishing poses now?"""
        return self._robot is not None

    def stop_robot(self) -> None:
        """Stop publishing the pose (a stalled robot driver)."""
        if self._robot is not None:
            self._robot_stop.set()
            self._robot.join(timeout=2.0)
            self._robot = None

    def send_action(
        self,
        action: list[float],
        step: int = 0,
        episode_id: int = 1,
        stamp_ns: int | None = None,
        topic: str = "/openvla/delta_action",
    ) -> int:
        """Publish a DeltaAction as the policy node would; returns its stamp."""
        from openvla_ros.nodes.common import ACTION_QOS

        stamp = self.now_ns() if stamp_ns is None else stamp_ns
        msg = DeltaAction()
        msg.header.stamp = ns_to_stamp(stamp)
        msg.header.frame_id = "base_link"
        msg.step, msg.episode_id = step, episode_id
        msg.instruction = "test"
        msg.action = [float(v) for v in action]
        pub = self.pub(DeltaAction, topic, ACTION_QOS)
        wait_for(lambda: pub.get_subscription_count() > 0, 10.0)
        pub.publish(msg)
        return stamp

    def close(self) -> None:
        """Stop threads, destroy the node, shut the context down."""
        self.stop_camera()
        self.stop_robot()
        self._stop.set()
        self._spin.join(timeout=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def ros_args(**params: Any) -> list[str]:
    """``--ros-args -p k:=v ...`` (``__`` in a name stands for ``.``)."""
    out = ["--ros-args"]
    for key, value in params.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | tuple):
            text = "[" + ",".join(repr(float(v)) for v in value) + "]"
        else:
            text = str(value)
        out += ["-p", f"{key.replace('__', '.')}:={text}"]
    return out


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` (the probe spins by itself). Every caller that takes the default
    asserts the result, so a long deadline only delays a failing run (a loaded CI machine can
    stall a process for seconds)."""
    return wait_for(predicate, timeout)


def settle(seconds: float) -> None:
    """Let messages flow for a while (for "nothing happens" checks)."""
    time.sleep(seconds)
