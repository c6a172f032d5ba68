# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``openvla-ros eval-sim``: closed-loop episodes through the real graph, success from the sim.

The graph is the one ``sim.launch.py`` starts (:func:`openvla_ros.sim.demo.start_graph`: the
simulated Panda, the policy node and the executor as separate processes over DDS). An
in-process observer node drives it the way a lab would by hand, once per episode:

1. disable policy and executor (``~/enable`` false): nothing moves during the reset;
2. ``/sim_arm/reset_scene``: arm home, a new randomised scene from the next seed (its answer
   names the task, seed and instruction); wait for ``/sim_arm/task_state`` to report that seed
   and for fresh camera frames, so no action is computed from the previous scene;
3. ``~/reset`` executor and policy (new episode: step 0, target re-seeded from the measured
   pose), enable both, publish the instruction on ``/instruction``;
4. watch ``DeltaAction`` / ``ExecutorState`` / ``task_state`` until the sim's detector reports
   success, the policy-step limit is hit, or the episode times out.

Pure bookkeeping (intervals, confusion, results.json, pictures) lives in
:mod:`openvla_ros.sim.evaluate`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from openvla_ros.sim.evaluate import (
    CLIP_NAMES,
    OUTCOME_NAMES,
    EpisodeResult,
    EvalError,
    format_report,
    parse_task_state,
    summarise,
    write_episode_pictures,
    write_results,
)
from openvla_ros.sim.tasks import COLOURS, TASKS

LOG = logging.getLogger("openvla_ros.eval")

SIM_NODE = "/sim_arm"
#: Seconds without a service answer before an idempotent call is sent again (see ``call``).
RESEND_AFTER_S = 5.0


@dataclass(frozen=True)
class EvalConfig:
    """What ``eval-sim`` runs.

    Attributes:
        out_dir: results.json, episode pictures and node logs go here.
        task: the sim task (:data:`openvla_ros.sim.tasks.TASKS`).
        episodes: number of episodes.
        seed: scene seed of the first episode; episode i uses the sim's next seed.
        checkpoint: OpenVLA checkpoint directory (in-process policy node).
        remote_url: a remote inference server instead of a local checkpoint.
        policy: ``model`` (OpenVLA) or ``expert`` (the sim's privileged expert in the
            policy's place, through the same executor: the ceiling).
        mode: ``non_blocking`` or ``blocking``.
        command_type: ``pose`` or ``twist``.
        max_steps: policy steps per episode before it counts as a failure.
        episode_timeout_s: wall-time limit per episode (s).
        unnorm_key: statistics key ("" = the checkpoint's only key, else the params file's).
        params_file: extra params YAML over config/sim.yaml (e.g. a robot's executor limits).
        precision / device: of the local model.
        pictures: episodes that get a strip + GIF (the first N; -1 = all).
        redirect_after: colour tasks, 0 = off: after this many policy steps the next colour
            (red -> green -> blue -> red) is instructed on ``/instruction``; the sim follows
            it, and success, reached and the confusion table are then of that colour.
        startup_timeout_s: how long the graph may take to come up (s).
    """

    out_dir: Path
    task: str = "reach_colour"
    episodes: int = 10
    seed: int = 1_000_000
    checkpoint: Path | None = None
    remote_url: str = ""
    policy: str = "model"
    mode: str = "non_blocking"
    command_type: str = "pose"
    max_steps: int = 40
    episode_timeout_s: float = 60.0
    unnorm_key: str = ""
    params_file: Path | None = None
    precision: str = "fp32"
    device: str = "cpu"
    pictures: int = -1
    startup_timeout_s: float = 180.0
    redirect_after: int = 0


@dataclass
class _Episode:
    """Live state of the episode being run (filled by the subscription callbacks)."""

    seed: int = -1
    instruction: str = ""
    target_colour: str = ""
    enabled_at_ns: int = 0
    #: The policy episode id of this episode's first action. A new instruction (a redirect, or
    #: one the policy heard after its reset) makes the policy node start a newer id at step 0:
    #: actions of this id and newer ones all belong to this episode, keyed (id, step).
    episode_id: int | None = None
    #: The policy's reset answer ("episode N"): ids below it are the previous scene's.
    min_episode_id: int = -1
    actions: dict[tuple[int, int], int] = field(default_factory=dict)  # -> image stamp (ns)
    #: -> (executor outcome, clip flags)
    states: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    #: States that arrived before their action (two publishers): (stamp, outcome, clips).
    early_states: dict[tuple[int, int], tuple[int, int, int]] = field(default_factory=dict)
    frames: dict[tuple[int, int], npt.NDArray[np.uint8]] = field(default_factory=dict)
    redirected_from: str | None = None  #: the colour instructed before a redirect
    redirect_step: int | None = None  #: policy steps when the redirect was sent
    left_old_cube: bool = False  #: after a redirect, a task_state not at the old cube was seen
    success_step: int | None = None
    reached: str | None = None
    last_state: dict[str, Any] = field(default_factory=dict)

    def steps(self) -> int:
        """Policy steps the executor acted on in this episode, redirects included."""
        return len(self.states)

    def acted_frames(self) -> list[npt.NDArray[np.uint8]]:
        """The frames of the actions the executor acted on, in order."""
        return [self.frames[k] for k in sorted(self.states) if k in self.frames]


def _episode_of(reply: Any) -> int:
    """The episode id in a policy's ``~/reset`` answer (``"episode N"``); -1 if none."""
    words = str(getattr(reply, "message", "")).split()
    if len(words) == 2 and words[0] == "episode" and words[1].isdigit():
        return int(words[1])
    return -1


class EvalObserver:
    """An in-process rclpy node that resets, drives and watches the sim graph episode by
    episode. Usable from tests: :meth:`start_episode`, :meth:`run_episode`, :meth:`publish`."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from std_srvs.srv import SetBool, Trigger

        from openvla_ros.msg import DeltaAction, ExecutorState
        from openvla_ros.nodes.common import ACTION_QOS, INSTRUCTION_QOS, SENSOR_QOS, STATE_QOS

        self._rclpy = rclpy
        self.node = rclpy.create_node("openvla_eval")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._lock = threading.Lock()
        self._string = String
        self._setbool = SetBool
        self._trigger = Trigger
        self.ep = _Episode()
        self.task_states = 0
        self._images: dict[int, npt.NDArray[np.uint8]] = {}
        self._newest_image_ns = 0
        node = self.node
        self.instruction_pub = node.create_publisher(String, "/instruction", INSTRUCTION_QOS)
        node.create_subscription(DeltaAction, "/openvla/delta_action", self._on_action, ACTION_QOS)
        node.create_subscription(ExecutorState, "/openvla/executor_state", self._on_state,
                                 STATE_QOS)  # fmt: skip
        node.create_subscription(Image, "/camera/image_raw", self._on_image, SENSOR_QOS)
        node.create_subscription(String, f"{SIM_NODE}/task_state", self._on_task_state, 10)
        self.enable: dict[str, Any] = {
            name: node.create_client(SetBool, f"/{name}/enable")
            for name in ("openvla_executor", "openvla_policy")
        }
        self.reset: dict[str, Any] = {
            name: node.create_client(Trigger, f"/{name}/reset")
            for name in ("openvla_executor", "openvla_policy")
        }
        self.reset_scene: Any = node.create_client(Trigger, f"{SIM_NODE}/reset_scene")

    # --- callbacks --------------------------------------------------------------------
    def _on_image(self, msg: Any) -> None:
        from openvla_ros.image_codec import image_to_rgb
        from openvla_ros.nodes.common import stamp_to_ns

        stamp = stamp_to_ns(msg.header.stamp)
        self._images[stamp] = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data)
        self._newest_image_ns = max(self._newest_image_ns, stamp)
        if len(self._images) > 32:  # only recent frames can be the ones acted on
            del self._images[min(self._images)]

    def _on_action(self, msg: Any) -> None:
        from openvla_ros.nodes.common import stamp_to_ns

        ep = self.ep
        stamp = stamp_to_ns(msg.header.stamp)
        if ep.enabled_at_ns == 0 or stamp < ep.enabled_at_ns - 10**9:
            return  # not this episode (an in-flight action from before the reset)
        if int(msg.episode_id) < ep.min_episode_id:
            return  # an older policy episode: the previous scene's
        if ep.episode_id is None:
            ep.episode_id = int(msg.episode_id)
        if int(msg.episode_id) < ep.episode_id:
            return
        key = (int(msg.episode_id), int(msg.step))
        ep.actions[key] = stamp
        early = ep.early_states.pop(key, None)
        if early is not None and early[0] == stamp and key not in ep.states:
            ep.states[key] = early[1:]
        image = self._images.get(stamp)
        if image is None and self._images:
            image = self._images[max(self._images)]  # e.g. an expert that does not stamp frames
        if image is not None:
            ep.frames[key] = image

    def _on_state(self, msg: Any) -> None:
        from openvla_ros.nodes.common import stamp_to_ns

        ep = self.ep
        key = (int(msg.episode_id), int(msg.step))
        stamp = stamp_to_ns(msg.action_stamp)
        # An action's decision state carries its image stamp; heartbeats and done reports do
        # not (zero stamp): count each action once, by (id, step) and stamp.
        if key in ep.states:
            return
        if key in ep.actions:
            if stamp == ep.actions[key]:
                ep.states[key] = (int(msg.outcome), int(msg.clip_flags))
        elif stamp != 0 and key[0] >= ep.min_episode_id and len(ep.early_states) < 64:
            ep.early_states[key] = (stamp, int(msg.outcome), int(msg.clip_flags))

    def _on_task_state(self, msg: Any) -> None:
        try:
            state = parse_task_state(msg.data)
        except EvalError as exc:
            LOG.warning("%s", exc)
            return
        self.task_states += 1
        ep = self.ep
        ep.last_state = state
        if ep.enabled_at_ns == 0 or int(state["seed"]) != ep.seed:
            return
        if str(state.get("target_colour", ep.target_colour)) != ep.target_colour:
            return  # the sim has not taken a redirect yet: its success is the old cube's
        reached = state.get("reached")
        if ep.redirected_from is not None and not ep.left_old_cube:
            if reached == ep.redirected_from:
                return  # still at the cube of the first instruction: not a new reach
            ep.left_old_cube = True
        if ep.reached is None and reached:
            ep.reached = str(reached)
        if ep.success_step is None and bool(state["success"]):
            ep.success_step = ep.steps()

    # --- helpers ----------------------------------------------------------------------
    def spin_for(self, seconds: float) -> None:
        """Process callbacks for ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.executor.spin_once(timeout_sec=min(0.05, left))

    def spin_until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Spin until ``done()``; EvalError naming ``what`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise EvalError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.05)

    def call(
        self,
        client: Any,
        request: Any,
        timeout_s: float = 30.0,
        *,
        effect: Callable[[], bool] | None = None,
    ) -> Any:
        """Call a service and wait for its answer; EvalError when it does not come or fails.

        An answer can be lost when the server has not yet matched this client's response
        reader (``service_is_ready`` only sees the request side; seen once in this project
        under load). After ``RESEND_AFTER_S`` without one: a call with an ``effect`` (a
        non-idempotent one, e.g. a scene reset) returns None if ``effect()`` shows it took
        place; any other call (enable, reset: idempotent) is sent again."""
        from openvla_ros.nodes.common import call_service

        self.spin_until(client.service_is_ready, timeout_s, f"service {client.srv_name}")
        result = call_service(
            client,
            request,
            lambda: self.executor.spin_once(timeout_sec=0.05),
            timeout_s,
            lambda: EvalError(
                f"timed out after {timeout_s:.0f} s waiting for an answer from {client.srv_name}"
            ),
            effect=effect,
            check_every_s=RESEND_AFTER_S,
            resend=True,
        )
        if effect is not None and result is None:
            return None
        if result is None or not result.success:
            message = result.message if result is not None else "no response"
            raise EvalError(f"{client.srv_name} refused: {message}")
        return result

    def now_ns(self) -> int:
        """The observer's clock (wall time, as the real-time sim stamps)."""
        return int(self.node.get_clock().now().nanoseconds)

    def publish(self, text: str) -> None:
        """Publish an instruction on ``/instruction`` (as rqt's topic publisher does)."""
        self.instruction_pub.publish(self._string(data=text))

    def wait_for_graph(self, timeout_s: float) -> None:
        """Until policy, executor and sim are up and matched with this observer."""
        self.spin_until(
            lambda: (
                self.instruction_pub.get_subscription_count() > 0
                and self.node.count_publishers("/openvla/delta_action") > 0
                and self.node.count_publishers("/openvla/executor_state") > 0
                and self.task_states > 0
                and self._newest_image_ns > 0
            ),
            timeout_s,
            "the policy, executor and sim_arm topics",
        )
        for client in [*self.enable.values(), *self.reset.values(), self.reset_scene]:
            self.spin_until(client.service_is_ready, timeout_s, f"service {client.srv_name}")

    def set_enabled(self, on: bool) -> None:
        """Enable (executor first) or disable (policy first) through ``~/enable``."""
        order = (
            ("openvla_executor", "openvla_policy") if on else ("openvla_policy", "openvla_executor")
        )
        for name in order:
            self.call(self.enable[name], self._setbool.Request(data=on))

    # --- episodes ---------------------------------------------------------------------
    def start_episode(self) -> dict[str, Any]:
        """Reset scene, executor and policy; enable; publish the instruction. Returns the
        sim's reset answer (task, seed, instruction, ...)."""
        self.set_enabled(False)
        before = int(self.ep.last_state.get("seed", -1))

        def new_scene() -> bool:
            return int(self.ep.last_state.get("seed", -1)) != before

        reply = self.call(self.reset_scene, self._trigger.Request(), effect=new_scene)
        # No answer but a new scene on ~/task_state: it carries the same scene fields.
        answer = json.loads(reply.message) if reply is not None else dict(self.ep.last_state)
        seed = int(answer["seed"])
        self.spin_until(lambda: int(self.ep.last_state.get("seed", -1)) == seed, 20.0,
                        f"task_state of seed {seed}")  # fmt: skip
        # Two fresh frames after the reset: the policy only ever uses the newest one.
        reset_ns = self.now_ns()
        self.spin_until(lambda: self._newest_image_ns > reset_ns + 10**8, 20.0, "a fresh frame")
        instruction = str(answer["instruction"])
        # The instruction first, while disabled: a policy that hears it after its reset starts
        # one more episode (newer id, which _on_action follows), not one on the old text.
        self.publish(instruction)
        replies = {name: self.call(self.reset[name], self._trigger.Request())
                   for name in ("openvla_executor", "openvla_policy")}  # fmt: skip
        self.ep = _Episode(
            seed=seed,
            instruction=instruction,
            target_colour=str(answer.get("target_colour", "")),
            enabled_at_ns=self.now_ns(),
            min_episode_id=_episode_of(replies["openvla_policy"]),
        )
        self.set_enabled(True)
        self.publish(instruction)  # the same text again: no new episode where it was heard
        return answer

    def run_episode(
        self, index: int, task: str, max_steps: int, timeout_s: float, redirect_after: int = 0
    ) -> tuple[EpisodeResult, list[npt.NDArray[np.uint8]]]:
        """One whole episode; returns its result and the frames the policy acted on. With
        ``redirect_after`` (colour tasks), the next colour is instructed after that many
        steps; a cube reached before that does not end the episode."""
        t0 = time.monotonic()
        self.start_episode()
        ep = self.ep
        reason = "timeout"
        while time.monotonic() - t0 < timeout_s:
            self.executor.spin_once(timeout_sec=0.02)
            if redirect_after and ep.redirect_step is None and ep.steps() >= redirect_after:
                ep.redirected_from, ep.redirect_step = ep.target_colour, ep.steps()
                colour = COLOURS[(COLOURS.index(ep.target_colour) + 1) % len(COLOURS)]
                ep.target_colour = colour
                ep.instruction = TASKS[task].instruction(colour)
                ep.success_step, ep.reached = None, None
                self.publish(ep.instruction)
                continue
            redirect_pending = redirect_after and ep.redirect_step is None
            if ep.success_step is not None and not redirect_pending:
                reason = "success"
                break
            if ep.steps() >= max_steps:
                reason = "step_limit"
                break
        self.set_enabled(False)
        self.spin_for(0.2)  # the last states / task_state of this episode
        outcomes = {name: 0 for name in OUTCOME_NAMES}
        clips = {name: 0 for name in CLIP_NAMES.values()}
        for outcome, flags in ep.states.values():
            name = OUTCOME_NAMES[outcome] if outcome < len(OUTCOME_NAMES) else str(outcome)
            outcomes[name] = outcomes.get(name, 0) + 1
            for bit, clip in CLIP_NAMES.items():
                clips[clip] += bool(flags & bit)
        success = reason == "success"
        result = EpisodeResult(
            index=index,
            task=task,
            seed=ep.seed,
            instruction=ep.instruction,
            target_colour=ep.target_colour,
            success=success,
            steps=ep.steps(),
            steps_to_success=ep.success_step if success else None,
            reached=ep.reached,
            end_reason=reason,
            duration_s=time.monotonic() - t0,
            outcomes=outcomes,
            clips=clips,
            final_ee=[float(v) for v in ep.last_state.get("ee_position", [])],
            redirected_from=ep.redirected_from,
            redirect_step=ep.redirect_step,
        )
        frames = ep.acted_frames()
        return result, frames

    def close(self) -> None:
        """Destroy the observer node."""
        self.executor.shutdown()
        self.node.destroy_node()


def resolve_checkpoint(name: str | None, out_dir: Path) -> Path:
    """The checkpoint ``--checkpoint`` names: a directory, ``random`` (a small random one,
    generated into ``out_dir/random_checkpoint``: the floor), or ``None`` for the shipped
    embedded default.

    Raises:
        EvalError: the directory holds no config.json.
    """
    from openvla_ros.sim.demo import EMBEDDED_CHECKPOINT

    if name == "random":
        path = out_dir / "random_checkpoint"
        if not (path / "config.json").is_file():
            from openvla_ros.model.make_checkpoint import write_small_checkpoint

            write_small_checkpoint(path, seed=0)
        return path
    path = Path(name).expanduser() if name else EMBEDDED_CHECKPOINT
    if not (path / "config.json").is_file():
        raise EvalError(f"{path} is not a checkpoint directory (no config.json)")
    return path


def graph_args(config: EvalConfig, checkpoint: Path | None) -> dict[str, str]:
    """Launch arguments for ``describe_graph('sim', ...)`` from an :class:`EvalConfig`."""
    from openvla_ros.sim.demo import checkpoint_unnorm_key

    args = {
        "mode": config.mode,
        "command_type": config.command_type,
        "with_sim": "true",
        "enable": "false",
        "precision": config.precision,
        "device": config.device,
        "policy": "model",
    }
    if config.remote_url:
        args["remote_url"] = config.remote_url
    elif checkpoint is not None:
        args["checkpoint"] = str(checkpoint)
    key = config.unnorm_key or (checkpoint_unnorm_key(checkpoint) if checkpoint else "")
    if key:
        args["unnorm_key"] = key
    if config.params_file is not None:
        args["params_file"] = str(config.params_file)
    return args


def run_eval(config: EvalConfig, checkpoint: Path | None) -> dict[str, Any]:
    """Run the episodes; write results.json and pictures; return the summary."""
    import rclpy

    from openvla_ros.sim.demo import refuse_a_running_graph, start_graph, stop_graph

    if config.episodes < 1 or config.max_steps < 1:
        raise EvalError("episodes and max_steps must be >= 1")
    if config.redirect_after and not (
        TASKS[config.task].all_colours and 0 < config.redirect_after < config.max_steps
    ):
        raise EvalError(
            f"redirect_after {config.redirect_after} needs a colour task (not {config.task}) "
            f"and 0 < redirect_after < max_steps ({config.max_steps})"
        )
    refuse_a_running_graph(error=EvalError)
    out = config.out_dir
    log_dir = out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # Each episode starts with ~/reset_scene, which draws the *next* seed: start one below.
    sim_params = {"task": config.task, "scene_seed": max(0, config.seed - 1)}
    skip: tuple[str, ...] = ()
    if config.policy == "expert":
        skip = ("openvla_policy",)
    args = graph_args(config, checkpoint if config.policy == "model" else None)
    if config.policy == "expert":
        args["policy"] = "scripted"  # describe_graph needs no checkpoint; the node is skipped
    procs = start_graph(args, log_dir, {"sim_arm": sim_params}, skip=skip)
    results: list[EpisodeResult] = []
    wall = 0.0
    try:
        if config.policy == "expert":
            procs.append(_start_expert(config, log_dir))
        rclpy.init()
        obs = EvalObserver()
        try:
            obs.wait_for_graph(config.startup_timeout_s)
            t_start = time.monotonic()
            try:
                _run_episodes(obs, procs, config, results)
            finally:
                wall = time.monotonic() - t_start
        finally:
            obs.close()
    finally:
        rclpy.try_shutdown()
        stop_graph(procs)
    summary = summarise(results, wall_s=wall)
    settings = {k: str(v) for k, v in asdict(config).items()}
    settings["checkpoint"] = str(checkpoint) if checkpoint is not None else ""
    write_results(out, settings, results, summary)
    print(format_report(summary))
    return summary


def _run_episodes(
    obs: EvalObserver, procs: list[Any], config: EvalConfig, results: list[EpisodeResult]
) -> None:
    """The episode loop of :func:`run_eval`; appends to ``results`` as episodes finish."""
    out = config.out_dir
    for i in range(config.episodes):
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise EvalError(f"a node exited (pid {dead[0].pid}); see the logs in {out}/logs")
        result, frames = obs.run_episode(i, config.task, config.max_steps,
                                         config.episode_timeout_s,
                                         config.redirect_after)  # fmt: skip
        results.append(result)
        LOG.info("episode %d seed %d '%s': %s after %d steps (reached %s)", i, result.seed,
                 result.instruction, result.end_reason, result.steps, result.reached)  # fmt: skip
        if config.pictures < 0 or i < config.pictures:
            caption = (f"{result.instruction} | {result.end_reason} after {result.steps} "
                       f"steps | reached {result.reached or '-'}")  # fmt: skip
            write_episode_pictures(out / "episodes", f"episode_{i:03d}", frames,
                                   caption=caption)  # fmt: skip


def _start_expert(config: EvalConfig, log_dir: Path) -> Any:
    """The scripted expert in the policy node's place (:mod:`.sim_expert_policy_node`)."""
    import os
    import subprocess
    import sys

    argv = [sys.executable, "-m", "openvla_ros.nodes.sim_expert_policy_node", "--ros-args",
            "-r", "__node:=openvla_policy", "-p", f"mode:={config.mode}"]  # fmt: skip
    log = open(log_dir / "openvla_policy.log", "w")  # noqa: SIM115 (owned by the process)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)  # fmt: skip
