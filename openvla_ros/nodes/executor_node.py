# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The executor node (``openvla_executor``, robot side): DeltaAction + EE pose in, safe
Cartesian commands out.

A thin adapter over :class:`openvla_ros.control.ExecutorCore`, which holds every control
and safety rule; this file maps its inputs, decisions and tick results onto topics,
services and the state message. No torch anywhere in its imports (the robot PC stays light).

Threading: two mutually exclusive callback groups, the control stream (actions, poses,
the servo tick) and safety (e-stop topic, services), and one lock around every core call,
so the node is correct under any executor. ``main()`` spins it single-threaded: each
callback holds the core for well under a millisecond, so an e-stop waits at most for one
of them, and rclpy's MultiThreadedExecutor measured ~4x the CPU with worse latency.

Clocks: the core gets steady time (``time.monotonic``, injectable) for every watchdog,
timeout and rate limit, and the node's ROS clock only to judge message stamps. The servo
tick is a timer on rclpy's STEADY_TIME clock, so a stalled ``/clock`` under
``use_sim_time`` cannot stop the watchdogs; rclpy's clock jump callback reports ROS-time
jumps (the core also detects them itself). The DDS publisher id of each action's writer is
the policy *session*: a restarted policy node (new writer) starts a new episode.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType, JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Bool, Float64
from std_srvs.srv import SetBool, Trigger

from openvla_ros.control.executor_core import Decision, DoneReport, ExecutorCore, Twist
from openvla_ros.control.profile import EXECUTOR_PARAMS, RobotProfile, profile_from_params
from openvla_ros.control.safety import Outcome
from openvla_ros.control.se3 import Pose
from openvla_ros.msg import DeltaAction, ExecutorState
from openvla_ros.nodes.common import (
    ACTION_QOS,
    COMMAND_QOS,
    ESTOP_QOS,
    POSE_QOS,
    STATE_QOS,
    KeyedThrottle,
    changed_values,
    declare_specs,
    guarded,
    ns_to_stamp,
    run_node,
    stamp_to_ns,
)
from openvla_ros.nodes.params import EXECUTOR_NODE_PARAMS, executor_params

NODE_NAME = "openvla_executor"
_NAN7 = [math.nan] * 7
#: Core outcome -> ExecutorState.outcome (same values; the map keeps them honest).
_OUTCOME_MSG = {
    Outcome.EXECUTED: ExecutorState.OUTCOME_EXECUTED,
    Outcome.CLIPPED: ExecutorState.OUTCOME_CLIPPED,
    Outcome.HELD: ExecutorState.OUTCOME_HELD,
    Outcome.REJECTED: ExecutorState.OUTCOME_REJECTED,
    Outcome.ESTOPPED: ExecutorState.OUTCOME_ESTOPPED,
    Outcome.DISABLED: ExecutorState.OUTCOME_DISABLED,
    Outcome.DROPPED_STALE: ExecutorState.OUTCOME_DROPPED_STALE,
    Outcome.DROPPED_OLD: ExecutorState.OUTCOME_DROPPED_OLD,
}


def _seven(values: Any) -> list[float]:
    """Exactly 7 floats for a float64[7] field (NaN-padded / truncated; NaN if missing)."""
    if values is None:
        return list(_NAN7)
    out = [float(v) for v in list(values)[:7]]
    return out + [math.nan] * (7 - len(out))


def _fmt(values: Any) -> str:
    return "[" + ", ".join(f"{v:+.4f}" for v in values) + "]"


def _publisher_id(info: Any) -> Any:
    """The DDS writer id of a received message (hashable), or None if the RMW has none."""
    if not info:
        return None
    gid = info.get("publisher_gid") if isinstance(info, dict) else None
    if not gid:
        return None
    data: Any = gid.get("data") if isinstance(gid, dict) else gid
    try:
        return bytes(data)
    except (TypeError, ValueError):
        return None


def pose_to_msg(pose: Pose, frame_id: str, stamp_ns: int) -> PoseStamped:
    """A control-layer :class:`Pose` -> ``PoseStamped``."""
    msg = PoseStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    p, q = pose.position, pose.orientation
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in p)
    (
        msg.pose.orientation.x,
        msg.pose.orientation.y,
        msg.pose.orientation.z,
        msg.pose.orientation.w,
    ) = (float(v) for v in q)
    return msg


def twist_to_msg(twist: Twist, frame_id: str, stamp_ns: int) -> TwistStamped:
    """A control-layer :class:`Twist` -> ``TwistStamped``."""
    msg = TwistStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    lin, ang = twist.linear_mps, twist.angular_radps
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in lin)
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) for v in ang)
    return msg


class ExecutorNode(Node):
    """Wraps :class:`ExecutorCore`; see the module docstring and docs/nodes.md.

    Raises:
        ConfigError: an invalid parameter override or an inconsistent robot profile.
    """

    def __init__(
        self, steady_clock: Callable[[], float] = time.monotonic, **node_kwargs: Any
    ) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._steady = steady_clock
        values = declare_specs(self, executor_params())
        profile_names = {s.name for s in EXECUTOR_PARAMS}
        self.profile: RobotProfile = profile_from_params(
            {k: v for k, v in values.items() if k in profile_names}
        )
        self.params = {k: v for k, v in values.items() if k not in profile_names}
        self.add_post_set_parameters_callback(self._on_params_set)
        p = self.profile
        self.core = ExecutorCore(p)
        self._lock = threading.Lock()  # serialises every core call (two callback groups)
        self._estop_latches = 0
        self._gripper_openness = 1.0 if p.gripper_initially_open else 0.0
        self._last_state_ns = 0
        self._last_stats_t = self._steady()
        self._last_adapter_poll = -math.inf
        self._gripper_armed = False  # an action executed since the last fault / service
        self._log_throttle = KeyedThrottle(0.5)  # decision logs: 2/s per outcome
        self._last_stats: dict[str, int] = {}

        control = MutuallyExclusiveCallbackGroup()
        safety = MutuallyExclusiveCallbackGroup()
        n = self.params
        self.state_pub = self.create_publisher(ExecutorState, n["state_topic"], STATE_QOS)
        self.pose_pub = self.create_publisher(PoseStamped, n["target_pose_topic"], COMMAND_QOS)
        self.twist_pub = self.create_publisher(TwistStamped, n["target_twist_topic"], COMMAND_QOS)
        self.gripper_pub = self.create_publisher(Float64, n["gripper_topic"], COMMAND_QOS)

        def safe(callback: Any) -> Any:
            return guarded(self, callback, self._fail_safe)

        guarded_action = safe(self._on_action)

        def on_action(msg: DeltaAction, info: Any) -> None:
            # Two parameters: rclpy then passes the MessageInfo (publisher gid).
            guarded_action(msg, info)

        self.create_subscription(
            DeltaAction, n["action_topic"], on_action, ACTION_QOS, callback_group=control
        )
        self.create_subscription(
            PoseStamped, n["pose_topic"], safe(self._on_pose), POSE_QOS, callback_group=control
        )
        # Steady clock: a stalled or jumping ROS clock must not stop the watchdogs.
        self.create_timer(
            1.0 / p.servo_hz,
            safe(self._on_tick),
            callback_group=control,
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(
                min_forward=Duration(seconds=p.clock_jump_threshold_s),
                min_backward=Duration(nanoseconds=-1_000_000),
                on_clock_change=True,
            ),
            post_callback=safe(self._on_clock_jump),
        )
        self.create_subscription(
            Bool, n["estop_topic"], safe(self._on_estop_topic), ESTOP_QOS, callback_group=safety
        )
        self.create_service(SetBool, "~/enable", safe(self._on_enable), callback_group=safety)
        self.create_service(Trigger, "~/reset", safe(self._on_reset), callback_group=safety)
        self.create_service(Trigger, "~/estop", safe(self._on_estop), callback_group=safety)
        self.create_service(
            Trigger, "~/release_estop", safe(self._on_release_estop), callback_group=safety
        )
        self.gripper_adapter = self._make_gripper_adapter()

        if n["enable_on_start"]:
            with self._lock:
                self.core.enable()
        self._publish_state(reason="started")
        self.get_logger().info(
            f"ready: profile '{p.name}', {p.mode}, command_type {p.command_type} -> "
            f"{n['target_twist_topic'] if p.command_type == 'twist' else n['target_pose_topic']}, "
            f"base frame {p.base_frame}, servo {p.servo_hz:g} Hz, "
            f"{'enabled' if n['enable_on_start'] else 'disabled until ~/enable'}"
        )

    # -- helpers ----------------------------------------------------------------------------

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _times(self) -> tuple[float, float]:
        """(steady s, ROS s) for a core call."""
        return self._steady(), self._now_ns() / 1e9

    def _on_params_set(self, params: list[Parameter]) -> None:
        # Only the node's own run-time settings can change (the profile is read-only).
        changed = changed_values(EXECUTOR_NODE_PARAMS, params)
        self.params.update(changed)
        if changed:
            self.get_logger().info(f"parameters changed: {changed}")

    def _make_gripper_adapter(self) -> Any:
        kind = self.params["gripper_adapter"]
        if kind == "topic":
            return None
        from openvla_ros.nodes.gripper_adapters import make_gripper_adapter

        adapter = make_gripper_adapter(self, kind, self.params, self.profile)
        if adapter is None:
            self.get_logger().warning(
                f"gripper_adapter '{kind}': its interface package is not installed; only the "
                f"Float64 topic {self.params['gripper_topic']} is published"
            )
        return adapter

    def _fail_safe(self, exc: BaseException) -> None:
        """An unexpected internal error: latch the e-stop (hold) rather than guess."""
        self._latch(f"internal error in the executor node: {exc!r}")

    def _publish_state(
        self,
        *,
        decision: Decision | None = None,
        done: DoneReport | None = None,
        reason: str = "",
        outcome: int | None = None,
        action_stamp: Any = None,
    ) -> None:
        """Publish ExecutorState (call with the lock held).

        ``action_stamp`` is the DeltaAction's own stamp: the core's float seconds cannot
        carry nanoseconds exactly, and consumers match states to actions by it.
        """
        now = self._now_ns()
        s = self.core.state()
        p = self.profile
        msg = ExecutorState()
        msg.header.stamp = ns_to_stamp(now)
        msg.header.frame_id = p.base_frame
        if decision is not None:
            msg.outcome = _OUTCOME_MSG[decision.outcome]
            msg.clip_flags = int(decision.clip_flags)
            msg.reason = decision.reason
            msg.step, msg.episode_id = int(decision.step), int(decision.episode_id)
            msg.action_stamp = (
                action_stamp
                if action_stamp is not None
                else ns_to_stamp(round(decision.stamp_s * 1e9))
            )
            msg.action_in = _seven(decision.original_action)
            msg.action_applied = _seven(decision.applied_action)
        else:
            if outcome is None:
                outcome = (
                    _OUTCOME_MSG[s.last_outcome]
                    if s.last_outcome is not None
                    else ExecutorState.OUTCOME_HELD
                )
            msg.outcome = outcome
            msg.reason = reason
            msg.action_in = list(_NAN7)
            msg.action_applied = list(_NAN7)
        if done is not None:
            msg.action_done = True
            msg.step, msg.episode_id = int(done.step), int(done.episode_id)
            extra = f"done: {done.status.name.lower()} after {done.elapsed_s:.2f} s"
            msg.reason = f"{msg.reason}; {extra}" if msg.reason else extra
        target = s.target_pose if s.target_pose is not None else s.measured_pose
        if target is not None:
            tp = pose_to_msg(target, p.base_frame, now).pose
            msg.target_pose = tp
        else:
            msg.target_pose.orientation.w = 1.0
        msg.gripper_command = float(self._gripper_openness)
        msg.enabled = bool(s.enabled)
        msg.estop_latched = bool(s.estopped)
        msg.mode = (
            ExecutorState.MODE_BLOCKING if s.mode == "blocking" else ExecutorState.MODE_NON_BLOCKING
        )
        msg.command_type = (
            ExecutorState.COMMAND_TWIST if s.command_type == "twist" else ExecutorState.COMMAND_POSE
        )
        c = s.counters
        msg.executed_count = c.executed
        msg.clipped_count = c.clipped
        msg.held_count = c.held + c.disabled + c.estopped
        msg.rejected_count = c.rejected
        msg.dropped_count = c.dropped_stale + c.dropped_old
        msg.estop_count = self._estop_latches
        self.state_pub.publish(msg)
        self._last_state_ns = now

    def _send_command(self, decision: Decision) -> None:
        """Publish what an executed action commands (lock held)."""
        cmd = decision.command
        assert cmd is not None
        now = self._now_ns()
        # Commands carry the time they are issued (controllers judge freshness by it); the
        # image's capture stamp travels in ExecutorState.action_stamp.
        if self.profile.command_type == "twist":
            if cmd.twist is not None:
                self.twist_pub.publish(twist_to_msg(cmd.twist, cmd.frame_id, now))
        else:
            self.pose_pub.publish(pose_to_msg(cmd.target_pose, cmd.frame_id, now))
        self._gripper_openness = float(cmd.gripper.openness)
        self._gripper_armed = True
        self.gripper_pub.publish(Float64(data=self._gripper_openness))
        if self.gripper_adapter is not None and cmd.gripper.changed:
            try:
                self.gripper_adapter.send(cmd.gripper)
            except Exception as exc:  # an adapter fault must not stop the arm logic
                self.get_logger().error(f"gripper adapter failed: {exc!r}")

    def _hold_now(self) -> None:
        """Twist mode: a zero twist right away (e-stop, disable), not at the next tick."""
        if self.profile.command_type == "twist":
            self.twist_pub.publish(
                twist_to_msg(Twist.zero(), self.profile.base_frame, self._now_ns())
            )

    def _log_decision(self, d: Decision) -> None:
        # Throttled per outcome (2 lines/s each), not per call site: a flood of one kind
        # must not hide another; the counters say how many there were.
        if d.outcome == Outcome.EXECUTED or not self._log_throttle.ready(d.outcome, self._steady()):
            return
        log = self.get_logger()
        tag = f"episode {d.episode_id} step {d.step}"
        if d.outcome == Outcome.CLIPPED:
            log.warning(
                f"{tag} clipped ({d.clip_flags!r}): {d.reason}; original {_fmt(d.original_action)} "
                f"-> applied {_fmt(d.applied_action or ())}"
            )
        elif d.outcome in (Outcome.REJECTED, Outcome.HELD):
            log.warning(f"{tag} {d.outcome.name.lower()}: {d.reason}")
        elif d.outcome in (Outcome.DROPPED_STALE, Outcome.DROPPED_OLD):
            log.warning(f"{tag} dropped: {d.reason}")
        elif d.outcome in (Outcome.ESTOPPED, Outcome.DISABLED):
            log.info(f"{tag} not executed: {d.reason}")

    # -- control stream -------------------------------------------------------------------

    def _on_action(self, msg: DeltaAction, info: Any = None) -> None:
        stamp_s = stamp_to_ns(msg.header.stamp) / 1e9
        session = _publisher_id(info)
        with self._lock:
            steady, ros = self._times()
            d = self.core.on_action(
                list(msg.action),
                stamp_s,
                int(msg.step),
                int(msg.episode_id),
                steady,
                frame_id=msg.header.frame_id,
                ros_now_s=ros,
                session=session,
            )
            if d.command is not None:
                self._send_command(d)
            elif d.stop_twist:
                self._hold_now()  # the previous delta's twist ends now, not at the tick
            self._publish_state(decision=d, done=d.done, action_stamp=msg.header.stamp)
        self._log_decision(d)

    def _on_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        with self._lock:
            steady, ros = self._times()
            update = self.core.on_pose(
                ((p.x, p.y, p.z), (q.x, q.y, q.z, q.w)),
                stamp_to_ns(msg.header.stamp) / 1e9,
                steady,
                msg.header.frame_id,
                ros_now_s=ros,
            )
            if update.stop_twist:
                self._hold_now()
        if update.reason:
            self.get_logger().warning(
                f"end-effector pose {'not used' if update.accepted else 'rejected'}: "
                f"{update.reason}",
                throttle_duration_sec=2.0,
            )

    def _on_clock_jump(self, jump: TimeJump) -> None:
        delta_s = jump.delta.nanoseconds / 1e9
        with self._lock:
            steady, ros = self._times()
            text = self.core.on_clock_jump(steady, ros, delta_s)
            self._hold_now()
            self._publish_state(reason=text, outcome=ExecutorState.OUTCOME_HELD)
        self.get_logger().warning(text)

    def _on_tick(self) -> None:
        now = self._now_ns()
        with self._lock:
            steady = self._steady()
            r = self.core.tick(steady, ros_now_s=now / 1e9)
            frame = self.profile.base_frame
            if r.twist is not None:
                self.twist_pub.publish(twist_to_msg(r.twist, frame, now))
            if r.target_pose is not None:
                self.pose_pub.publish(pose_to_msg(r.target_pose, frame, now))
            heartbeat = self.params["state_heartbeat_s"]
            if r.events or r.done is not None:
                outcome = self._hold_outcome(r.holding) if r.events else None
                self._publish_state(done=r.done, reason="; ".join(r.events), outcome=outcome)
            elif heartbeat > 0 and now - self._last_state_ns >= heartbeat * 1e9:
                self._publish_state(reason=r.hold_reason, outcome=self._hold_outcome(r.holding))
        for event in r.events:
            self.get_logger().warning(event)
        if (
            self.gripper_adapter is not None
            and steady - self._last_adapter_poll >= 0.2
            and self._gripper_may_move()
        ):
            self._last_adapter_poll = steady
            try:
                self.gripper_adapter.poll()
            except Exception as exc:  # an adapter fault must not stop the arm logic
                self.get_logger().error(f"gripper adapter failed: {exc!r}")
        stats_period = self.params["stats_period_s"]
        if stats_period > 0 and steady - self._last_stats_t >= stats_period:
            self._log_stats()

    def _gripper_may_move(self) -> bool:
        """A kept gripper command goes out only when an action has executed since the last
        enable, disable, e-stop, release or reset, and the executor is not holding for a
        fault (e-stop, disabled, stale pose): never after a fault before its recovery."""
        with self._lock:
            s = self.core.state()
            return self._gripper_armed and s.enabled and not s.estopped and not s.pose_stale

    def _hold_outcome(self, holding: bool) -> int | None:
        """Outcome for a state message that is not about an action: never EXECUTED while
        the arm holds (lock held)."""
        s = self.core.state()
        if s.estopped:
            return int(ExecutorState.OUTCOME_ESTOPPED)
        if not s.enabled:
            return int(ExecutorState.OUTCOME_DISABLED)
        if holding:
            return int(ExecutorState.OUTCOME_HELD)
        return None

    def _log_stats(self) -> None:
        self._last_stats_t = self._steady()
        with self._lock:
            stats = dict(vars(self.core.state().counters))
        stats["estop_latches"] = self._estop_latches
        if stats != self._last_stats and any(stats.values()):
            self._last_stats = stats
            self.get_logger().info(
                "counters: " + " ".join(f"{k}={v}" for k, v in stats.items() if v)
            )

    # -- safety: e-stop and services -------------------------------------------------------

    def _latch(self, why: str) -> str:
        with self._lock:
            was = self.core.state().estopped
            result = self.core.estop(why)
            self._gripper_armed = False
            if not was:
                self._estop_latches += 1
            self._hold_now()
            self._publish_state(reason=result.message, outcome=ExecutorState.OUTCOME_ESTOPPED)
        if not was:
            self.get_logger().error(result.message)
        return result.message

    def _on_estop_topic(self, msg: Bool) -> None:
        if msg.data:
            self._latch(f"{self.params['estop_topic']} = true")
        else:
            self.get_logger().info(
                "e-stop topic false: the latch stays set until ~/release_estop",
                throttle_duration_sec=5.0,
            )

    def _on_estop(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        del request
        response.success, response.message = True, self._latch("~/estop service")
        return response

    def _on_release_estop(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        del request
        with self._lock:
            result = self.core.release_estop()
            self._gripper_armed = False
            self._publish_state(reason=result.message, outcome=ExecutorState.OUTCOME_DISABLED)
        self.get_logger().warning(result.message)
        response.success, response.message = result.success, result.message
        return response

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> Any:
        with self._lock:
            self._gripper_armed = False  # a kept gripper command waits for the next action
            if request.data:
                result = self.core.enable()
            else:
                result = self.core.disable()
                self._hold_now()
            outcome = None if request.data else ExecutorState.OUTCOME_DISABLED
            self._publish_state(reason=result.message, outcome=outcome)
        if result.success:
            self.get_logger().info(result.message)
        else:
            self.get_logger().warning(result.message)
        response.success, response.message = result.success, result.message
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        del request
        with self._lock:
            result = self.core.reset()
            self._gripper_armed = False
            self._hold_now()
            self._publish_state(reason=result.message)
        self.get_logger().info(result.message)
        response.success, response.message = result.success, result.message
        return response

    def destroy_node(self) -> None:
        """Hold (zero twist), log the counters, then destroy."""
        try:
            with self._lock:
                self._hold_now()
            if self.profile.command_type == "twist":
                # The process may exit right after this: wait (briefly) until the controller
                # has acknowledged the final zero twist, or it may never arrive.
                self.twist_pub.wait_for_all_acked(Duration(seconds=0.5))
            self._log_stats()
        except Exception:  # shutting down: best effort
            pass
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run openvla_ros executor_node``."""
    return run_node(ExecutorNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
