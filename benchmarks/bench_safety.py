# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Executor safety benchmark: steady-time latency from a fault to the hold, across processes.

The executor node runs as its own process (twist mode, ``use_sim_time:=true``); this process
plays simulator (``/clock`` at 100 Hz and the end-effector pose at 100 Hz, stamped with the
simulated time), policy and operator, and receives the executor's twists. Every trial
first makes the arm move (a 0.02 m delta spread over one second), then injects a fault
50 ms later and measures, on this process's ``time.monotonic``, until the first **zero**
twist arrives:

* ``estop``: ``/openvla/estop`` = true published -> zero twist;
* ``stale_pose``: the pose stream stops; fault time = last pose sent + ``pose_timeout_s``
  (the moment the pose becomes stale) -> zero twist;
* ``clock_jump``: ``/clock`` jumps 30 s back (first jumped message sent) -> zero twist;
* ``speed_limit``: an action whose twist would exceed ``max_linear_speed_m_s`` is sent ->
  the (scaled) twist arrives; its norm is checked against the limit.

Example:
    python benchmarks/bench_safety.py                 # 30 trials per fault
    python benchmarks/bench_safety.py --reps 50 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

POSE_TIMEOUT_S = 0.1
MAX_SPEED_M_S = 0.01  # below the 0.02 m/s each trial's delta asks for: every twist is scaled
EXECUTOR_PARAMS = (
    "use_sim_time:=true",
    "enable_on_start:=true",
    "control.command_type:=twist",
    "control.rate_hz:=1.0",  # a delta lasts 1 s: the fault always interrupts a moving twist
    f"watchdog.pose_timeout_s:={POSE_TIMEOUT_S}",
    "watchdog.action_timeout_s:=5.0",
    f"limits.max_linear_speed_m_s:={MAX_SPEED_M_S}",
    "stats_period_s:=0.0",
    "state_heartbeat_s:=0.0",
)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else math.nan


def _summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1e3 for v in values_s]
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms) if ms else math.nan,
        "p95_ms": _pct(ms, 0.95),
        "max_ms": max(ms) if ms else math.nan,
    }


class World:
    """Simulated clock + pose publisher, twist recorder, action sender (one rclpy node)."""

    def __init__(self) -> None:
        import rclpy
        from geometry_msgs.msg import PoseStamped, TwistStamped
        from rclpy.executors import SingleThreadedExecutor
        from rosgraph_msgs.msg import Clock
        from std_msgs.msg import Bool

        from openvla_ros.msg import DeltaAction
        from openvla_ros.nodes.common import ACTION_QOS, COMMAND_QOS, ESTOP_QOS, POSE_QOS

        rclpy.init()
        self.node = rclpy.create_node("bench_safety")
        self.m0 = time.monotonic()
        self.offset = 0.0
        self.poses_on = True
        self.last_pose_tx = 0.0
        self.jump_pending = False
        self.jump_tx: float | None = None
        self.twists: list[tuple[float, float]] = []  # (rx monotonic, |linear| m/s)
        self.lock = threading.Lock()
        self.clock_pub = self.node.create_publisher(Clock, "/clock", 10)
        self.pose_pub = self.node.create_publisher(PoseStamped, "/openvla/ee_pose", POSE_QOS)
        self.action_pub = self.node.create_publisher(DeltaAction, "/openvla/delta_action",
                                                     ACTION_QOS)  # fmt: skip
        self.estop_pub = self.node.create_publisher(Bool, "/openvla/estop", ESTOP_QOS)
        self._types = (Clock, PoseStamped, DeltaAction, Bool)
        self.node.create_subscription(TwistStamped, "/openvla/target_twist", self._on_twist,
                                      COMMAND_QOS)  # fmt: skip
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self.executor.spin, daemon=True),
            threading.Thread(target=self._sim, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def sim_now(self) -> float:
        return 1000.0 + time.monotonic() - self.m0 + self.offset

    def _stamp(self) -> Any:
        from openvla_ros.nodes.common import ns_to_stamp

        return ns_to_stamp(round(self.sim_now() * 1e9))

    def _sim(self) -> None:
        clock_t, pose_t, _, _ = self._types
        while not self._stop.is_set():
            if self.jump_pending:
                self.offset -= 30.0
                self.jump_pending = False
                self.clock_pub.publish(clock_t(clock=self._stamp()))
                self.jump_tx = time.monotonic()
            else:
                self.clock_pub.publish(clock_t(clock=self._stamp()))
            if self.poses_on:
                msg = pose_t()
                msg.header.stamp = self._stamp()
                msg.header.frame_id = "base_link"
                msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = 0.4, 0.0, 0.25
                msg.pose.orientation.x, msg.pose.orientation.w = 1.0, 0.0
                self.pose_pub.publish(msg)
                self.last_pose_tx = time.monotonic()
            self._stop.wait(0.01)

    def _on_twist(self, msg: Any) -> None:
        v = msg.twist.linear
        with self.lock:
            self.twists.append((time.monotonic(), math.sqrt(v.x**2 + v.y**2 + v.z**2)))

    def send_action(self, dx: float) -> float:
        _, _, action_t, _ = self._types
        msg = action_t()
        msg.header.stamp = self._stamp()
        msg.header.frame_id = "base_link"
        msg.step = int(time.monotonic() * 1000)
        msg.episode_id = 1
        msg.action = [dx, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
        t = time.monotonic()
        self.action_pub.publish(msg)
        return t

    def first_twist(self, after: float, moving: bool, timeout: float = 3.0) -> tuple[float, float]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                hit = next(((rx, v) for rx, v in self.twists if rx > after and (v > 0) == moving),
                           None)  # fmt: skip
            if hit is not None:
                return hit
            time.sleep(0.0005)
        raise TimeoutError(f"no {'moving' if moving else 'zero'} twist within {timeout} s")

    def call(self, srv_type: Any, name: str, request: Any) -> Any:
        client = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=30.0):
            raise RuntimeError(f"service {name} not available")
        for _ in range(5):
            future = client.call_async(request)
            end = time.monotonic() + 2.0
            while not future.done() and time.monotonic() < end:
                time.sleep(0.002)
            if future.done():
                return future.result()
            client.remove_pending_request(future)
        raise RuntimeError(f"service {name} did not answer")

    def close(self) -> None:
        import rclpy

        self._stop.set()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


def _move(world: World) -> None:
    """Make the arm move; return once a moving twist arrived."""
    for _ in range(20):
        t = world.send_action(0.02)
        try:
            world.first_twist(t, moving=True, timeout=0.5)
            return
        except TimeoutError:
            continue
    raise RuntimeError("the executor never moved (see its log)")


def _trial(world: World, kind: str) -> tuple[float, float]:
    """One fault; returns (latency s, twist norm m/s after it)."""
    from std_msgs.msg import Bool
    from std_srvs.srv import SetBool, Trigger

    _move(world)
    time.sleep(0.05)
    if kind == "speed_limit":
        t = world.send_action(0.02)
        rx, v = world.first_twist(t, moving=True)
        return rx - t, v
    if kind == "estop":
        t = time.monotonic()
        world.estop_pub.publish(Bool(data=True))
    elif kind == "stale_pose":
        world.poses_on = False
        time.sleep(0.005)
        t = world.last_pose_tx + POSE_TIMEOUT_S
    else:
        world.jump_tx = None
        world.jump_pending = True
        while world.jump_tx is None:
            time.sleep(0.0005)
        t = world.jump_tx
    rx, v = world.first_twist(t, moving=False)
    if kind == "estop":
        world.call(Trigger, "/openvla_executor/release_estop", Trigger.Request())
        world.call(SetBool, "/openvla_executor/enable", SetBool.Request(data=True))
    world.poses_on = True
    time.sleep(0.3)  # fresh poses again (and, after a jump, on the new timeline)
    return rx - t, v


def bench(reps: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", str(100 + os.getpid() % 50)),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_safety_{os.getpid()}.log"
    args = [sys.executable, "-m", "openvla_ros.nodes.executor_node", "--ros-args"]
    for p in EXECUTOR_PARAMS:
        args += ["-p", p]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    world = World()
    out: dict[str, Any] = {"executor_log": str(log_path), "reps": reps}
    try:
        time.sleep(2.0)
        for kind in ("estop", "stale_pose", "clock_jump", "speed_limit"):
            lat, norms = [], []
            for _ in range(reps):
                latency, norm = _trial(world, kind)
                lat.append(latency)
                norms.append(norm)
            out[kind] = _summary(lat)
            out[kind]["twist_after_max_m_s"] = max(norms)
    finally:
        world.close()
        proc.terminate()
        proc.wait(timeout=10)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (and JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=30, help="trials per fault (default 30)")
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    a = ap.parse_args(argv)
    res = bench(a.reps)
    print(f"fault -> hold latency across processes (steady time, {a.reps} trials each)")
    print(f"{'fault':<12} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}  twist after (m/s)")
    for kind in ("estop", "stale_pose", "clock_jump", "speed_limit"):
        r = res[kind]
        print(f"{kind:<12} {r['median_ms']:>10.2f} {r['p95_ms']:>8.2f} {r['max_ms']:>8.2f}  "
              f"{r['twist_after_max_m_s']:.4f}")  # fmt: skip
    print(f"(speed_limit: the scaled twist; limit {MAX_SPEED_M_S} m/s)")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
