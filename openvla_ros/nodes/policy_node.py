# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The policy node (``openvla_policy``, GPU side): camera + instruction in, DeltaAction out.

Subscription callbacks only store the newest frame / instruction / executor state; the
policy runs in a dedicated worker thread, so a slow model never delays them (or the
services). The loop's logic lives in :class:`openvla_ros.policy.runner.PolicyRunner`; this
file maps it onto topics, parameters and services. See docs/nodes.md.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Any

import numpy as np
import numpy.typing as npt
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from openvla_ros.errors import InputError, OpenVLARosError
from openvla_ros.image_codec import compressed_to_rgb, image_to_rgb
from openvla_ros.msg import DeltaAction, ExecutorState
from openvla_ros.nodes.common import (
    ACTION_QOS,
    INSTRUCTION_LATCHED_QOS,
    INSTRUCTION_QOS,
    SENSOR_QOS,
    STATE_QOS,
    changed_values,
    declare_specs,
    guarded,
    ns_to_stamp,
    quiet_incompatible_qos,
    run_node,
    stamp_to_ns,
)
from openvla_ros.policy.base import ACTION_DIM, Policy, PolicyResult
from openvla_ros.policy.factory import describe, make_policy
from openvla_ros.policy.runner import (
    POLICY_NODE_PARAMS,
    Job,
    PolicyNodeConfig,
    PolicyRunner,
)
from openvla_ros.serving.wire import MAX_INSTRUCTION_CHARS

NODE_NAME = "openvla_policy"
#: Parameters that may change while running; the rest are read-only (set at launch).
#: ``mode`` is not among them: it must equal the executor's read-only ``control.mode``.
_RUNTIME_SETTINGS = (
    "control_hz",
    "blocking_timeout_s",
    "max_image_age_s",
    "camera_stall_s",
    "unnorm_key",
)
# MAX_INSTRUCTION_CHARS (serving.wire, the server's and the model's limit) bounds every
# instruction for every policy: a longer one pauses the node, logged by a bounded prefix only.
#: Characters of an instruction shown in a log line.
LOG_INSTRUCTION_CHARS = 120


def shown_instruction(text: str, limit: int = LOG_INSTRUCTION_CHARS) -> str:
    """``text`` for a log line: repr of at most ``limit`` characters, plus the full length."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def decode_frame(msg: Image | CompressedImage) -> npt.NDArray[np.uint8]:
    """An Image / CompressedImage message -> HxWx3 uint8 RGB (InputError when bad)."""
    if isinstance(msg, CompressedImage):
        return compressed_to_rgb(msg.format, msg.data)
    # A zero-copy view of the message buffer (array.array supports the buffer protocol).
    data = np.frombuffer(msg.data, dtype=np.uint8) if len(msg.data) else b""
    return image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, data, msg.is_bigendian)


def check_result(result: Any) -> tuple[list[float], list[float]]:
    """A policy's result -> (action, normalized) as 7 finite floats each (InputError if not).

    The executor rejects bad actions too; refusing them here keeps the topic clean and
    counts the fault where it happened.
    """
    if not isinstance(result, PolicyResult):
        raise InputError(f"policy returned {type(result).__name__}, not a PolicyResult")
    action = np.asarray(result.action, dtype=np.float64).ravel()
    norm = np.asarray(result.normalized_action, dtype=np.float64).ravel()
    if action.shape != (ACTION_DIM,) or norm.shape != (ACTION_DIM,):
        raise InputError(
            f"policy returned an action of shape {action.shape} / normalized {norm.shape}; "
            f"expected ({ACTION_DIM},)"
        )
    if not np.all(np.isfinite(action)):
        raise InputError(f"policy returned a non-finite action {action.tolist()}")
    return action.tolist(), np.nan_to_num(norm).tolist()


class PolicyNode(Node):
    """Runs a :class:`Policy` on the newest camera frame for the current instruction.

    Args:
        policy: use this policy instead of building one from the parameters (in-process
            tests and benchmarks).
        node_kwargs: passed to :class:`rclpy.node.Node` (e.g. ``parameter_overrides``).

    Raises:
        ConfigError: an invalid parameter override.
        CheckpointError / PrecisionError / InputError: the policy could not be built.
    """

    def __init__(self, *, policy: Policy | None = None, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        #: The policy's statistics keys once it is built (None: any key; e.g. a remote
        #: server that was not reachable at start-up).
        self._unnorm_keys: tuple[str, ...] | None = None
        values = declare_specs(
            self, POLICY_NODE_PARAMS, extra_checks={"unnorm_key": self._check_unnorm_key}
        )
        self.config = PolicyNodeConfig.from_params(values)
        self.add_post_set_parameters_callback(self._on_params_set)
        cfg = self.config
        self._stats_period_s = cfg.stats_period_s

        if policy is None:
            self.get_logger().info(f"building the policy ({cfg.policy}) ...")
            policy = make_policy(cfg)
        self.policy = policy
        self.get_logger().info(f"policy: {describe(policy)}")
        self._unnorm_keys = _known_unnorm_keys(policy)

        self.runner = PolicyRunner(
            control_hz=cfg.control_hz,
            mode=cfg.mode,
            blocking_timeout_s=cfg.blocking_timeout_s,
            max_image_age_s=cfg.max_image_age_s,
            camera_stall_s=cfg.camera_stall_s,
            unnorm_key=cfg.unnorm_key,
        )

        self.action_pub = self.create_publisher(DeltaAction, cfg.action_topic, ACTION_QOS)
        if cfg.image_transport == "compressed":
            camera_topic = cfg.camera_topic.rstrip("/") + "/compressed"
            self.create_subscription(
                CompressedImage, camera_topic, guarded(self, self._on_image), SENSOR_QOS
            )
        else:
            camera_topic = cfg.camera_topic
            self.create_subscription(Image, camera_topic, guarded(self, self._on_image), SENSOR_QOS)
        # Two subscriptions, one callback: the transient-local one receives the last
        # instruction of a latched (transient-local) publisher even when it was sent before this
        # node existed; the volatile one matches every publisher, rqt's and other volatile ones
        # included (a transient-local subscription does not match a volatile publisher). The
        # same text twice is not a new episode, so a message seen by both counts once.
        for qos in (INSTRUCTION_QOS, INSTRUCTION_LATCHED_QOS):
            self.create_subscription(
                String,
                cfg.instruction_topic,
                guarded(self, self._on_instruction),
                qos,
                event_callbacks=quiet_incompatible_qos(),
            )
        self.create_subscription(
            ExecutorState, cfg.state_topic, guarded(self, self._on_state), STATE_QOS
        )
        self.create_service(SetBool, "~/enable", guarded(self, self._on_enable))
        self.create_service(Trigger, "~/reset", guarded(self, self._on_reset))
        self.create_timer(0.25, guarded(self, self._housekeeping))

        self._kick = threading.Event()  # set by every input that may make a step possible
        self._stop = threading.Event()
        self._last_stats: dict[str, int] = {}
        self._last_stats_t = time.monotonic()
        self._worker = threading.Thread(
            target=self._worker_loop, name="openvla_policy_inference", daemon=True
        )
        self._worker.start()
        if cfg.enable_on_start:
            self.runner.set_enabled(True, self._now_ns())
        self.get_logger().info(
            f"ready: camera {camera_topic} ({cfg.image_transport}), instruction "
            f"{cfg.instruction_topic}, actions -> {cfg.action_topic}, mode {cfg.mode}, "
            f"{cfg.control_hz:g} Hz, "
            + ("enabled" if cfg.enable_on_start else "inactive until ~/enable")
        )

    # -- helpers ----------------------------------------------------------------------------

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_params_set(self, params: list[Parameter]) -> None:
        changed = changed_values(POLICY_NODE_PARAMS, params)
        runtime = {k: v for k, v in changed.items() if k in _RUNTIME_SETTINGS}
        if runtime:
            self.runner.configure(**runtime)
            self.get_logger().info(f"parameters changed: {runtime}")
        if "stats_period_s" in changed:
            self._stats_period_s = float(changed["stats_period_s"])
        self._kick.set()

    # -- subscriptions and services (cheap: store and wake the worker) ------------------------

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.runner.on_frame(stamp_to_ns(msg.header.stamp), self._now_ns(), msg)
        self._kick.set()

    def _check_unnorm_key(self, key: str) -> str | None:
        """Set-time check of ``unnorm_key``: the same rule the policy applies at start-up."""
        keys = self._unnorm_keys
        if keys is None or key in keys:
            return None
        if not key:
            if len(keys) <= 1:
                return None
            return f"empty, but the policy has {len(keys)} statistics keys; one of {list(keys)}"
        return f"{key!r} is not one of the policy's statistics keys {list(keys)}"

    def _on_instruction(self, msg: String) -> None:
        text = msg.data
        if len(text) > MAX_INSTRUCTION_CHARS:
            self.runner.fail("instructions_refused")
            paused = self.runner.set_instruction("") == "paused"
            self.get_logger().warning(
                f"instruction of {len(text)} characters refused (limit {MAX_INSTRUCTION_CHARS}"
                f"): {shown_instruction(text)}" + ("; paused" if paused else ""),
                throttle_duration_sec=1.0,
            )
            self._kick.set()
            return
        change = self.runner.set_instruction(text)
        episode, _, _ = self.runner.episode
        if change == "new_episode":
            self.get_logger().info(f"episode {episode}: instruction {shown_instruction(text)}")
        elif change == "paused":
            self.get_logger().info("empty instruction: paused")
        self._kick.set()

    def _on_state(self, msg: ExecutorState) -> None:
        if self.runner.on_executor_state(msg.episode_id, msg.step, msg.action_done, self._now_ns()):
            self._kick.set()

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> Any:
        changed = self.runner.set_enabled(bool(request.data), self._now_ns())
        state = "enabled" if request.data else "disabled"
        response.success = True
        response.message = state if changed else f"already {state}"
        if changed:
            self.get_logger().info(f"policy {state}")
        self._kick.set()
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        del request
        episode = self.runner.reset_episode()
        response.success = True
        response.message = f"episode {episode}"
        self.get_logger().info(f"reset: new episode {episode}")
        self._kick.set()
        return response

    def _housekeeping(self) -> None:
        quiet = self.runner.check_camera_stall(self._now_ns())
        if quiet is not None:
            self.get_logger().warning(
                f"camera stalled: no frame for {quiet:.1f} s; no actions are published "
                "(the executor's watchdog holds the arm)"
            )
        if self._stats_period_s > 0 and time.monotonic() - self._last_stats_t >= (
            self._stats_period_s
        ):
            self._log_stats()

    def _log_stats(self) -> None:
        self._last_stats_t = time.monotonic()
        stats = self.runner.counters.as_dict()
        stats["frames_replaced_unused"] = self.runner.slot.replaced_unused
        if stats != self._last_stats and any(stats.values()):
            self._last_stats = stats
            self.get_logger().info(
                "counters: " + " ".join(f"{k}={v}" for k, v in stats.items() if v)
            )

    # -- the worker ---------------------------------------------------------------------------

    def _worker_loop(self) -> None:
        while not self._stop.is_set():
            self._kick.clear()
            try:
                job, wait_s, reason = self.runner.next_job(self._now_ns())
            except Exception as exc:  # the loop must survive anything
                self.get_logger().error(f"policy loop error: {exc!r}")
                job, wait_s, reason = None, 0.1, "error"
            if job is not None:
                try:
                    self._run_job(job)
                except Exception as exc:  # the worker must outlive any single step
                    self.runner.fail("worker")
                    self.get_logger().error(
                        f"policy step failed, no action published "
                        f"({self.runner.counters.extra.get('worker', 0)} so far): {exc!r}\n"
                        + traceback.format_exc(),
                        throttle_duration_sec=1.0,
                    )
                continue
            if reason == "stale":
                self.get_logger().warning(
                    "skipping a frame older than max_image_age_s "
                    f"({self.runner.counters.images_stale} so far); check the camera clock "
                    "and the network",
                    throttle_duration_sec=2.0,
                )
            elif reason == "blocking_timeout":
                self.get_logger().warning(
                    "blocking mode: the executor did not report the action done within "
                    f"blocking_timeout_s ({self.runner.counters.blocking_timeouts} so far); "
                    "continuing with a new frame",
                    throttle_duration_sec=2.0,
                )
            self._kick.wait(timeout=max(0.0, wait_s))

    def _run_job(self, job: Job) -> None:
        log = self.get_logger()
        if job.reset_policy:
            try:
                self.policy.reset()
            except Exception as exc:
                log.error(f"policy.reset() failed: {exc!r}")
        try:
            image = decode_frame(job.frame.payload)
        except Exception as exc:  # InputError, or anything a decoder raises: a bad image
            self.runner.fail("image")
            log.warning(
                f"bad image skipped ({self.runner.counters.images_bad} so far): {exc}",
                throttle_duration_sec=1.0,
            )
            return
        t0 = time.perf_counter()
        try:
            result = self.policy.predict(image, job.instruction, job.unnorm_key or None)
            action, normalized = check_result(result)
        except Exception as exc:  # the node never dies of a policy fault
            self.runner.fail("policy")
            kind = "" if isinstance(exc, OpenVLARosError) else f"{type(exc).__name__}: "
            log.error(
                f"policy error, no action published ({self.runner.counters.policy_errors} so "
                f"far): {kind}{exc}",
                throttle_duration_sec=1.0,
            )
            return
        latency = time.perf_counter() - t0
        msg = DeltaAction()
        msg.header.stamp = ns_to_stamp(job.frame.stamp_ns)
        msg.header.frame_id = self.config.base_frame
        msg.step = job.step
        msg.episode_id = job.episode_id
        msg.instruction = job.instruction
        msg.unnorm_key = result.unnorm_key or job.unnorm_key
        msg.action = action
        msg.normalized_action = normalized
        msg.inference_latency = latency
        msg.observation_age = job.observation_age_s
        try:
            # Decide and publish under the runner's lock: a disable, instruction change or
            # reset arriving while the policy ran (or right now) drops the result.
            published = self.runner.finish(
                job, self._now_ns(), publish=lambda: self.action_pub.publish(msg)
            )
        except Exception as exc:  # context shutting down
            if not self._stop.is_set():
                log.error(f"publishing the action failed: {exc!r}")
            return
        if not published:
            log.debug(f"dropped the result of episode {job.episode_id} step {job.step}")

    def destroy_node(self) -> None:
        """Stop the worker (waits for a running inference up to 5 s), then the node.

        Safe on a node whose constructor failed part-way (rclpy's context destroys every
        node it tracks at shutdown, built or not).
        """
        worker: threading.Thread | None = getattr(self, "_worker", None)
        if worker is not None:
            self._stop.set()
            self._kick.set()
            worker.join(timeout=5.0)
            self._log_stats()
        super().destroy_node()


def _known_unnorm_keys(policy: Policy) -> tuple[str, ...] | None:
    """The policy's statistics keys, or None when it does not say (any key is then allowed)."""
    try:
        keys = policy.info().get("unnorm_keys")
    except Exception:  # a remote server that is not up yet: the server checks each request
        return None
    if not isinstance(keys, list | tuple) or not keys:
        return None
    return tuple(str(k) for k in keys)


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run openvla_ros policy_node``."""
    return run_node(PolicyNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
