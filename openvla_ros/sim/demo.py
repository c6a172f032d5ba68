# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The embedded default: the whole graph against the simulated arm, without ``ros2 launch``.

Starts the nodes ``sim.launch.py`` would start (same :func:`describe_graph` description, run
as ``python -m`` processes over real DDS), enables them through their ``~/enable`` services,
publishes an instruction the way rqt's topic publisher does, and watches the graph for a fixed
number of steps. Writes a per-step table (stdout + ``steps.csv``), a strip of the camera
frames the policy acted on (``camera_strip.png``), a plot of commanded vs measured
end-effector position (``trajectory.png``) and ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from openvla_ros.control.executor_core import NO_CONFIRMED_POSE
from openvla_ros.errors import OpenVLARosError
from openvla_ros.launch_description.graph import describe_graph, node_argv

LOG = logging.getLogger("openvla_ros.demo")

#: The shipped embedded default: a small OpenVLA trained on the sim's expert demos
#: (data/embedded_default/TRAINING.md says how; scripts/train_embedded_default.sh remakes it).
EMBEDDED_CHECKPOINT = Path(__file__).resolve().parents[2] / "data" / "embedded_default"
#: ``--checkpoint random``: a small random checkpoint (what the demo ran before training).
RANDOM_CHECKPOINT = "random"

OUTCOME_NAMES = ("executed", "clipped", "held", "rejected", "estopped", "disabled", "stale", "old")
CLIP_NAMES = {1: "step_xyz", 2: "step_rpy", 4: "workspace", 8: "tracking", 16: "gripper"}


class DemoError(OpenVLARosError):
    """The demo graph could not start or did not produce the requested steps."""


#: Node names of the sim graph (``start_graph``, eval-sim's observer, the demo's): any of them
#: already on this ROS domain would answer the new graph's topics and services, and both runs
#: would be wrong.
GRAPH_NODE_NAMES = (
    "sim_arm",
    "openvla_policy",
    "openvla_executor",
    "openvla_eval",
    "openvla_demo",
)


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs.

    Attributes:
        out_dir: where logs, the generated checkpoint and the outputs go.
        checkpoint: an OpenVLA checkpoint directory; ``None``: the shipped embedded default
            (:data:`EMBEDDED_CHECKPOINT`); ``Path("random")``: generate a small random one.
        task: the sim task scene on the table (``""``: the plain seeded cubes).
        scene_seed: seed of that scene.
        steps: number of policy steps to watch.
        instruction: the instruction published on ``/instruction``.
        mode: ``non_blocking`` or ``blocking``.
        command_type: ``pose`` or ``twist``.
        precision: precision of the local model (``fp32`` is fastest on a CPU).
        device: torch device of the local model.
        policy: ``model`` (OpenVLA) or ``scripted`` (the params file's fixed actions).
        timeout_s: give up when the steps have not arrived after this long (s).
    """

    out_dir: Path
    checkpoint: Path | None = None
    steps: int = 20
    instruction: str = "reach the cube"
    task: str = "reach_cube"
    scene_seed: int = 1_000_000
    mode: str = "non_blocking"
    command_type: str = "pose"
    precision: str = "fp32"
    device: str = "cpu"
    policy: str = "model"
    timeout_s: float = 240.0


@dataclass
class StepRecord:
    """One policy step as observed on the topics."""

    step: int
    stamp_ns: int
    latency_ms: float
    action: list[float]
    outcome: str = "?"
    clips: str = ""
    target_xyz: list[float] = field(default_factory=list)


def ensure_checkpoint(config: DemoConfig) -> Path:
    """The checkpoint the demo uses: the given one, the shipped embedded default (``None``), or
    a small random one generated into ``out_dir/checkpoint`` (``Path("random")``, cached)."""
    if config.checkpoint is not None and str(config.checkpoint) != RANDOM_CHECKPOINT:
        if not (config.checkpoint / "config.json").is_file():
            raise DemoError(f"{config.checkpoint} is not a checkpoint directory (no config.json)")
        return config.checkpoint
    if config.checkpoint is None:
        if not (EMBEDDED_CHECKPOINT / "config.json").is_file():
            raise DemoError(
                f"the embedded default {EMBEDDED_CHECKPOINT} is missing: restore it from git, "
                "rebuild it with scripts/train_embedded_default.sh, or pass --checkpoint random"
            )
        return EMBEDDED_CHECKPOINT
    path = config.out_dir / "checkpoint"
    if not (path / "config.json").is_file():
        from openvla_ros.model.make_checkpoint import write_small_checkpoint

        LOG.info("generating a small random OpenVLA checkpoint in %s", path)
        write_small_checkpoint(path, seed=0)
    return path


def checkpoint_unnorm_key(checkpoint: Path) -> str:
    """The checkpoint's statistics key when it has exactly one (a fine-tune such as the
    embedded default), else "" (the params file's ``unnorm_key`` applies)."""
    from openvla_ros.model.config import load_config

    keys = sorted(load_config(checkpoint).norm_stats)
    return keys[0] if len(keys) == 1 else ""


def _start_nodes(config: DemoConfig, checkpoint: Path, log_dir: Path) -> list[subprocess.Popen]:
    args = {
        "policy": config.policy,
        "checkpoint": str(checkpoint) if config.policy == "model" else "",
        "precision": config.precision,
        "device": config.device,
        "mode": config.mode,
        "command_type": config.command_type,
        "with_sim": "true",
        "enable": "false",  # enabled below through the services, as a user would
    }
    if config.policy == "model":
        key = checkpoint_unnorm_key(checkpoint)
        if key:
            args["unnorm_key"] = key
    sim = {"task": config.task, "scene_seed": config.scene_seed} if config.task else {}
    return start_graph(args, log_dir, {"sim_arm": sim})


def refuse_a_running_graph(wait_s: float = 2.0, error: type[OpenVLARosError] = DemoError) -> None:
    """Look ``wait_s`` for nodes of a sim graph already on this ROS domain (own rclpy context).

    The demo and ``eval-sim`` start the same graph with fixed node names: a second one on the
    domain would answer the first one's topics and services and drive its simulator.

    Raises:
        error: (:class:`DemoError` unless told; ``eval-sim`` passes its ``EvalError``) one
            was found, with the domain in the message.
    """
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    found: set[str] = set()
    try:
        node = rclpy.create_node("openvla_graph_probe", context=ctx)
        try:
            deadline = time.monotonic() + wait_s
            while not found and time.monotonic() < deadline:
                found = {n for n in node.get_node_names() if n in GRAPH_NODE_NAMES}
                time.sleep(0.1)
        finally:
            node.destroy_node()
    finally:
        ctx.try_shutdown()
    if found:
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        raise error(
            f"{', '.join(sorted(found))} already running on ROS_DOMAIN_ID {domain} (another "
            "eval-sim or a demo, or one that ended within the last ~20 s: DDS keeps a killed "
            "process's nodes that long): it would share this run's topics and services; stop "
            "it (or retry shortly) or run this one with another ROS_DOMAIN_ID"
        )


def start_graph(
    args: dict[str, str],
    log_dir: Path,
    node_overrides: dict[str, dict[str, Any]] | None = None,
    skip: Sequence[str] = (),
) -> list[subprocess.Popen]:
    """Start the nodes ``sim.launch.py`` starts for launch arguments ``args`` (same
    :func:`describe_graph` description) as ``python -m`` processes, each in its own session
    with its log in ``log_dir/<node>.log``.

    Args:
        args: launch argument values (strings).
        log_dir: existing directory for the logs.
        node_overrides: extra parameters per node name, applied after the launch's own.
        skip: node names not to start (e.g. the policy when another process takes its place).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("OMP_NUM_THREADS", "1")
    procs = []
    for node in describe_graph("sim", args):
        if node.name in skip:
            continue
        extra = (node_overrides or {}).get(node.name)
        log = open(log_dir / f"{node.name}.log", "w")  # noqa: SIM115 (owned by the process)
        procs.append(
            subprocess.Popen(
                [sys.executable, *node_argv(node, extra_overrides=extra)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        )
        LOG.info("started %s (pid %d), log %s", node.name, procs[-1].pid, log.name)
    return procs


def stop_graph(procs: Sequence[subprocess.Popen]) -> None:
    """SIGINT every process group (as ``ros2 launch`` does), SIGKILL what is left after 10 s."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + 10.0
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


class _Observer:
    """An in-process rclpy node that drives and watches the demo graph."""

    def __init__(self, config: DemoConfig) -> None:
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from std_srvs.srv import SetBool

        from openvla_ros.msg import DeltaAction, ExecutorState
        from openvla_ros.nodes.common import (
            ACTION_QOS,
            INSTRUCTION_QOS,
            SENSOR_QOS,
            STATE_QOS,
        )

        self.config = config
        self._rclpy = rclpy
        self.node = rclpy.create_node("openvla_demo")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.steps: dict[int, StepRecord] = {}
        self.frames: dict[int, npt.NDArray[np.uint8]] = {}
        self.measured: list[tuple[float, list[float]]] = []
        self.commanded: list[tuple[float, list[float]]] = []
        self.t0 = time.monotonic()
        self.instruction_pub = self.node.create_publisher(String, "/instruction", INSTRUCTION_QOS)
        self.node.create_subscription(DeltaAction, "/openvla/delta_action", self._on_action,
                                      ACTION_QOS)  # fmt: skip
        self.node.create_subscription(ExecutorState, "/openvla/executor_state", self._on_state,
                                      STATE_QOS)  # fmt: skip
        self.node.create_subscription(Image, "/camera/image_raw", self._on_image, SENSOR_QOS)
        self.node.create_subscription(PoseStamped, "/openvla/ee_pose", self._on_pose, SENSOR_QOS)
        # The sim's own verdict (its detectors, never the policy's output), when it runs a task.
        self.task_state: dict[str, Any] = {}
        self.success_step: int | None = None
        self.reached_first: str | None = None
        self.node.create_subscription(String, "/sim_arm/task_state", self._on_task_state, 10)
        self.enable_clients: list[Any] = [
            self.node.create_client(SetBool, "/openvla_executor/enable"),
            self.node.create_client(SetBool, "/openvla_policy/enable"),
        ]
        self._string = String
        self._setbool = SetBool
        self._image_by_stamp: dict[int, npt.NDArray[np.uint8]] = {}

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, deadline - time.monotonic())))

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _on_image(self, msg: Any) -> None:
        from openvla_ros.image_codec import image_to_rgb
        from openvla_ros.nodes.common import stamp_to_ns

        rgb = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data)
        self._image_by_stamp[stamp_to_ns(msg.header.stamp)] = rgb
        if len(self._image_by_stamp) > 64:  # keep memory bounded: only recent frames matter
            del self._image_by_stamp[min(self._image_by_stamp)]

    def _on_task_state(self, msg: Any) -> None:
        from openvla_ros.sim.evaluate import EvalError, parse_task_state

        try:
            state = parse_task_state(msg.data)
        except EvalError:
            return
        if not self.steps:
            return  # before the first action: nothing the policy did yet
        self.task_state = state
        if self.reached_first is None and state.get("reached"):
            self.reached_first = str(state["reached"])
        if self.success_step is None and state.get("success"):
            self.success_step = self.done_steps()

    def _on_pose(self, msg: Any) -> None:
        p = msg.pose.position
        self.measured.append((self._now(), [p.x, p.y, p.z]))

    def _on_action(self, msg: Any) -> None:
        from openvla_ros.nodes.common import stamp_to_ns

        stamp = stamp_to_ns(msg.header.stamp)
        self.steps[int(msg.step)] = StepRecord(
            step=int(msg.step),
            stamp_ns=stamp,
            latency_ms=1000.0 * float(msg.inference_latency),
            action=[float(v) for v in msg.action],
        )
        if stamp in self._image_by_stamp:
            self.frames[int(msg.step)] = self._image_by_stamp[stamp]

    def _on_state(self, msg: Any) -> None:
        from openvla_ros.nodes.common import stamp_to_ns

        p = msg.target_pose.position
        q = msg.target_pose.orientation
        # Before the first action the target is unseeded (all zeros): nothing is commanded yet.
        if msg.enabled and any(v != 0.0 for v in (q.x, q.y, q.z, q.w)):
            self.commanded.append((self._now(), [p.x, p.y, p.z]))
        record = self.steps.get(int(msg.step))
        # Heartbeat states repeat the last action's identity: match on the image stamp too.
        if record is None or stamp_to_ns(msg.action_stamp) != record.stamp_ns:
            return
        record.outcome = (
            OUTCOME_NAMES[msg.outcome] if msg.outcome < len(OUTCOME_NAMES) else str(msg.outcome)
        )
        record.clips = "+".join(name for bit, name in CLIP_NAMES.items() if msg.clip_flags & bit)
        record.target_xyz = [p.x, p.y, p.z]

    def wait_for_graph(self, timeout_s: float) -> None:
        """Wait until the policy listens to /instruction and our subscriptions are matched,
        so no step is published before this observer can see it."""
        deadline = time.monotonic() + timeout_s
        while not (
            self.instruction_pub.get_subscription_count() > 0
            and self.node.count_publishers("/openvla/delta_action") > 0
            and self.node.count_publishers("/openvla/executor_state") > 0
        ):
            if time.monotonic() > deadline:
                raise DemoError(f"the policy/executor topics did not match within {timeout_s} s")
            self.spin_for(0.1)
        self.spin_for(0.5)  # let the discovery of the remaining endpoints settle

    def enable(self, timeout_s: float) -> None:
        for client in self.enable_clients:
            deadline = time.monotonic() + timeout_s
            while not client.service_is_ready():
                if time.monotonic() > deadline:
                    raise DemoError(f"service {client.srv_name} did not appear in {timeout_s} s")
                self.spin_for(0.1)
            result = self._enable_once(client, deadline)
            # The executor first, until it has a confirmed end-effector pose (two agreeing
            # samples; asking again while enabled changes nothing): a policy enabled before
            # that would have its first actions rejected.
            while client is self.enable_clients[0] and NO_CONFIRMED_POSE in result.message:
                if time.monotonic() > deadline:
                    raise DemoError(f"the executor has no confirmed pose: {result.message}")
                self.spin_for(0.05)
                result = self._enable_once(client, deadline)
            LOG.info("%s: %s", client.srv_name, result.message)

    def _enable_once(self, client: Any, deadline: float) -> Any:
        future = client.call_async(self._setbool.Request(data=True))
        while not future.done():
            if time.monotonic() > deadline:
                raise DemoError(f"service {client.srv_name} did not answer")
            self.spin_for(0.05)
        result = future.result()
        if result is None or not result.success:
            message = result.message if result is not None else "no response"
            raise DemoError(f"{client.srv_name} refused: {message}")
        return result

    def publish_instruction(self) -> None:
        self.instruction_pub.publish(self._string(data=self.config.instruction))

    def records(self) -> list[StepRecord]:
        """The first ``steps`` policy steps seen (by step index) that the executor reported."""
        done = [self.steps[k] for k in sorted(self.steps) if self.steps[k].outcome != "?"]
        return done[: self.config.steps]

    def done_steps(self) -> int:
        return len(self.records())

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def _write_outputs(config: DemoConfig, obs: _Observer) -> dict[str, Any]:
    out = config.out_dir
    records = obs.records()
    with open(out / "steps.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["step", "latency_ms", *[f"a{i}" for i in range(7)], "outcome", "clips",
                         "target_x", "target_y", "target_z"])  # fmt: skip
        for r in records:
            writer.writerow([r.step, f"{r.latency_ms:.1f}", *[f"{v:.5f}" for v in r.action],
                             r.outcome, r.clips, *[f"{v:.4f}" for v in r.target_xyz]])  # fmt: skip

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [obs.frames[r.step] for r in records if r.step in obs.frames]
    if frames:
        pick = np.linspace(0, len(frames) - 1, num=min(8, len(frames))).round().astype(int)
        strip = np.concatenate([frames[i] for i in pick], axis=1)
        plt.imsave(out / "camera_strip.png", strip)
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    for i, axis_name in enumerate("xyz"):
        if obs.measured:
            t, xyz = zip(*obs.measured, strict=True)
            axes[i].plot(t, [p[i] for p in xyz], label="measured EE", lw=1.5)
        if obs.commanded:
            t, xyz = zip(*obs.commanded, strict=True)
            axes[i].step(t, [p[i] for p in xyz], where="post", label="commanded target", lw=1.0)
        axes[i].set_ylabel(f"{axis_name} (m)")
        axes[i].grid(True, alpha=0.3)
    axes[0].legend(loc="best")
    axes[-1].set_xlabel("time since start (s)")
    fig.suptitle(f"openvla_ros demo: '{config.instruction}' ({config.mode}, {config.command_type})")
    fig.tight_layout()
    fig.savefig(out / "trajectory.png", dpi=100)
    plt.close(fig)

    latencies = [r.latency_ms for r in records]
    summary = {
        "config": {k: str(v) for k, v in asdict(config).items()},
        "steps": len(records),
        "outcomes": {name: sum(r.outcome == name for r in records) for name in OUTCOME_NAMES},
        "latency_ms_median": float(np.median(latencies)) if latencies else None,
        "ee_start_xyz": obs.measured[0][1] if obs.measured else None,
        "ee_end_xyz": obs.measured[-1][1] if obs.measured else None,
        "sim": _sim_verdict(config, obs),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _sim_verdict(config: DemoConfig, obs: _Observer) -> dict[str, Any] | None:
    """What the simulator's detectors said (``None`` without a task scene)."""
    state = obs.task_state
    if not config.task or not state:
        return None
    return {
        "task": state.get("task"),
        "seed": state.get("seed"),
        "instruction": state.get("instruction"),
        "target_colour": state.get("target_colour"),
        "success_at_step": obs.success_step,
        "reached_first": obs.reached_first,
        "succeeded": bool(state.get("succeeded")),
    }


def _verdict_line(verdict: dict[str, Any] | None, steps: int) -> str:
    if verdict is None:
        return "sim: no task scene, no success detector"
    target = f"the {verdict['target_colour']} cube"
    if verdict["success_at_step"] is not None:
        return (f"sim: '{verdict['instruction']}': reached {target} after "
                f"{verdict['success_at_step']} steps (success)")  # fmt: skip
    first = verdict["reached_first"]
    return (f"sim: '{verdict['instruction']}': {target} not reached in {steps} steps (first "
            f"cube reached: {first or 'none'})")  # fmt: skip


def _print_table(records: Sequence[StepRecord]) -> None:
    print(f"{'step':>4} {'latency':>8}  {'dx':>7} {'dy':>7} {'dz':>7} {'droll':>7} {'dpitch':>7} "
          f"{'dyaw':>7} {'grip':>5}  {'outcome':<9} clipped")  # fmt: skip
    for r in records:
        a = r.action
        print(f"{r.step:>4} {r.latency_ms:>6.1f}ms  " + " ".join(f"{v:>7.4f}" for v in a[:6])
              + f" {a[6]:>5.2f}  {r.outcome:<9} {r.clips or '-'}")  # fmt: skip


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Run the demo graph; returns the summary. Raises :class:`DemoError` on failure."""
    import rclpy

    if config.steps < 1:
        raise DemoError("steps must be >= 1")
    refuse_a_running_graph()
    config.out_dir.mkdir(parents=True, exist_ok=True)
    log_dir = config.out_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    checkpoint = ensure_checkpoint(config) if config.policy == "model" else Path()
    procs = _start_nodes(config, checkpoint, log_dir)
    rclpy.init()
    obs = _Observer(config)
    try:
        obs.wait_for_graph(timeout_s=120.0)
        obs.enable(timeout_s=120.0)
        deadline = time.monotonic() + config.timeout_s
        last_publish = 0.0
        while obs.done_steps() < config.steps:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                raise DemoError(f"a node exited (pid {dead[0].pid}); see the logs in {log_dir}")
            if time.monotonic() > deadline:
                raise DemoError(
                    f"only {obs.done_steps()} of {config.steps} steps after {config.timeout_s} s"
                    f"; see the logs in {log_dir}"
                )
            # rqt's topic publisher re-publishes at a rate; once a second is enough here.
            if not obs.steps and time.monotonic() - last_publish > 1.0:
                obs.publish_instruction()
                last_publish = time.monotonic()
            obs.spin_for(0.1)
        obs.spin_for(0.5)  # let the arm settle for the trajectory plot
        _print_table(obs.records())
        summary = _write_outputs(config, obs)
        print(_verdict_line(summary["sim"], summary["steps"]))
        print(f"\nwrote {config.out_dir}/steps.csv, camera_strip.png, trajectory.png, summary.json")
        return summary
    finally:
        obs.close()
        rclpy.try_shutdown()
        stop_graph(procs)
