# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``sim-demos --transport ros``: expert demonstrations recorded through the real ROS path.

Starts three processes over DDS: ``sim_arm`` (task scene, ``real_time:=false``: as fast as the
CPU allows, ``/clock`` in simulated time), ``sim_expert`` and ``openvla_recorder`` (both with
``use_sim_time``). Per episode (but the first, which takes sim_arm's initial scene of
``seed``) it calls ``/sim_arm/reset_scene`` (seeds ``seed + 1``, ...), waits for the new scene on
``~/task_state``, publishes its instruction on ``/instruction`` (the recorder starts an episode),
waits until the expert reports done (or ``max_steps``) and calls ``/openvla_recorder/stop`` with
the success detector's verdict. Optionally a rosbag2 of the same run (``bag``) for
``bag-to-dataset``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from openvla_ros.errors import DatasetError
from openvla_ros.nodes.common import INSTRUCTION_QOS, call_service
from openvla_ros.nodes.recorder_node import EVENTS_QOS

__all__ = ["RosDemoConfig", "run_ros_demos"]

_log = logging.getLogger(__name__)

#: Topics a bag of the run needs so that bag-to-dataset reproduces the recorder's frames.
BAG_TOPICS = ("/camera/image_raw", "/openvla/ee_pose", "/joint_states", "/instruction",
              "/openvla_recorder/episodes")  # fmt: skip


@dataclass
class RosDemoConfig:
    """Settings of :func:`run_ros_demos`."""

    task: str
    episodes: int
    out: Path
    seed: int = 0
    max_steps: int = 60
    control_hz: float = 5.0
    camera_hz: float = 0.0  #: 0: the control rate (one render per sample: the floor)
    unnorm_key: str = ""
    bag: Path | None = None
    timeout_s: float = 60.0  #: wall-clock limit per episode
    log_dir: Path | None = None


class _Proc:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._fh = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._fh.close()


def _spawn_graph(cfg: RosDemoConfig, log_dir: Path) -> list[_Proc]:
    sim_time = ["-p", "use_sim_time:=true"]
    procs = [
        _Proc(["-m", "openvla_ros.nodes.sim_arm_node", "--ros-args", "-p", f"task:={cfg.task}",
               "-p", f"scene_seed:={cfg.seed}", "-p", "real_time:=false",
               "-p", f"camera_hz:={cfg.camera_hz or cfg.control_hz}"], log_dir / "sim_arm.log"),
        _Proc(["-m", "openvla_ros.nodes.expert_node", "--ros-args", *sim_time,
               "-p", f"control_hz:={cfg.control_hz}"], log_dir / "sim_expert.log"),
        _Proc(["-m", "openvla_ros.nodes.recorder_node", "--ros-args", *sim_time,
               "-p", f"out:={cfg.out}", "-p", "robot:=sim", "-p", f"control_hz:={cfg.control_hz}",
               "-p", f"unnorm_key:={cfg.unnorm_key or 'sim_' + cfg.task}"],
              log_dir / "recorder.log"),
    ]  # fmt: skip
    if cfg.bag is not None:
        procs.append(_Proc(["-m", "openvla_ros.bag.record", str(cfg.bag), *BAG_TOPICS],
                           log_dir / "bag_record.log"))  # fmt: skip
    return procs


class _Driver:
    """The orchestrating client node (services, instruction, status)."""

    def __init__(self) -> None:
        self.node: Node = rclpy.create_node("sim_demos_driver")
        self.task_state: dict[str, Any] = {}
        self.status: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        n = self.node
        n.create_subscription(String, "/sim_arm/task_state", self._on_task, 10)
        n.create_subscription(String, "/sim_expert/status", self._on_status, 10)
        n.create_subscription(String, "/openvla_recorder/episodes", self._on_event, EVENTS_QOS)
        self.instruction = n.create_publisher(String, "/instruction", INSTRUCTION_QOS)
        self.reset: Any = n.create_client(Trigger, "/sim_arm/reset_scene")
        self.stop: Any = n.create_client(SetBool, "/openvla_recorder/stop")
        self.discard: Any = n.create_client(Trigger, "/openvla_recorder/discard")

    def _on_task(self, msg: String) -> None:
        self.task_state = json.loads(msg.data)

    def _on_status(self, msg: String) -> None:
        self.status = json.loads(msg.data)

    def _on_event(self, msg: String) -> None:
        self.events.append(json.loads(msg.data))

    def spin_until(self, predicate: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise DatasetError(f"timed out after {timeout_s:g} s waiting for {what}")
            rclpy.spin_once(self.node, timeout_sec=0.02)

    def call(
        self,
        client: Any,
        request: Any,
        timeout_s: float = 20.0,
        effect: Callable[[], bool] | None = None,
    ) -> Any:
        """Call a service; the answer, or None when ``effect()`` shows the call took effect
        without an answer arriving (see :func:`~openvla_ros.nodes.common.call_service`)."""
        self.spin_until(lambda: client.service_is_ready(), timeout_s, client.srv_name)
        return call_service(
            client,
            request,
            lambda: rclpy.spin_once(self.node, timeout_sec=0.02),
            timeout_s,
            lambda: DatasetError(
                f"timed out after {timeout_s:g} s waiting for {client.srv_name} answer"
            ),
            effect=effect,
        )


def run_ros_demos(cfg: RosDemoConfig) -> dict[str, Any]:
    """Record ``cfg.episodes`` expert episodes through ROS; returns a summary."""
    log_dir = cfg.log_dir or cfg.out.parent / f"{cfg.out.name}_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = _spawn_graph(cfg, log_dir)
    rclpy.init()
    driver = _Driver()
    t_start = time.perf_counter()
    outcomes: list[str] = []
    try:
        _wait_for_subscribers(driver, bag=cfg.bag is not None)
        for k in range(cfg.episodes):
            outcomes.append(_one_episode(driver, cfg, k))
        if cfg.bag is not None:
            time.sleep(1.0)  # let the bag recorder take the last event
    finally:
        elapsed = time.perf_counter() - t_start
        driver.node.destroy_node()
        rclpy.try_shutdown()
        for p in reversed(procs):
            p.stop()
    written = [e for e in driver.events if e.get("episode_index") is not None]
    frames = sum(int(e.get("frames", 0)) for e in written)
    return {
        "task": cfg.task,
        "episodes_run": cfg.episodes,
        "episodes_written": len(written),
        "outcomes": outcomes,
        "expert_success_rate": outcomes.count("success") / max(cfg.episodes, 1),
        "frames": frames,
        "seconds": elapsed,
        "frames_per_s": frames / elapsed if elapsed > 0 else 0.0,
        "logs": str(log_dir),
    }


def _wait_for_subscribers(driver: _Driver, bag: bool) -> None:
    """Every recorder (and the bag recorder) subscribed before episode 0: a late subscription
    would miss that episode's first frames in one of them (seen under load)."""
    extra = 1 if bag else 0
    need = {"/camera/image_raw": 1 + extra, "/openvla/ee_pose": 2 + extra,
            "/joint_states": 1 + extra, "/openvla_recorder/episodes": 1 + extra}  # fmt: skip
    node = driver.node

    def ready() -> bool:
        return all(node.count_subscribers(t) >= n for t, n in need.items())

    driver.spin_until(ready, 60.0, f"subscribers {need}")


def _one_episode(driver: _Driver, cfg: RosDemoConfig, k: int) -> str:
    if k == 0:
        # sim_arm starts with the scene of scene_seed (= cfg.seed): episode 0 uses it as is.
        driver.spin_until(lambda: bool(driver.task_state), 60.0, "sim_arm's task state")
        scene = driver.task_state
    else:
        before = driver.task_state.get("seed")
        answer = driver.call(driver.reset, Trigger.Request(),
                             effect=lambda: driver.task_state.get("seed") != before)  # fmt: skip
        if answer is None:
            scene = driver.task_state
        elif not answer.success:
            raise DatasetError(f"/sim_arm/reset_scene refused: {answer.message}")
        else:
            scene = json.loads(answer.message)
    seed = scene["seed"]
    driver.spin_until(lambda: driver.task_state.get("seed") == seed, 20.0, "the new scene")
    driver.spin_until(lambda: driver.status.get("seed") == seed, 20.0, "the expert to see it")
    # A volatile instruction published before DDS matched the recorder's and the expert's
    # subscriptions would be lost (seen under load): wait until both are matched.
    driver.spin_until(lambda: driver.instruction.get_subscription_count() >= 2, 30.0,
                      "the recorder and the expert to subscribe to /instruction")  # fmt: skip
    n_events = len(driver.events)
    driver.instruction.publish(String(data=scene["instruction"]))

    def done() -> bool:
        st = driver.status
        return st.get("seed") == seed and bool(st.get("done") or st.get("step", 0) >= cfg.max_steps)

    driver.spin_until(done, cfg.timeout_s, f"the expert on seed {seed}")
    success = bool(driver.task_state.get("succeeded")) and driver.task_state.get("seed") == seed
    answer = driver.call(driver.stop, SetBool.Request(data=success),
                         effect=lambda: len(driver.events) > n_events)  # fmt: skip
    if answer is not None and answer.message == "no episode running":
        raise DatasetError(f"the recorder never started the episode of seed {seed}: see its log")
    driver.spin_until(lambda: len(driver.events) > n_events, 20.0, "the recorder's episode event")
    event = driver.events[-1]
    _log.info("episode %d seed %d: %s, %s frames", k, seed, event["outcome"], event["frames"])
    return str(event["outcome"])
