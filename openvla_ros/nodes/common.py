# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""What every node of this package shares: parameter declaration from :class:`ParamSpec`,
the QoS profiles of the topic contract (docs/interfaces.md), and time conversions.

Imports rclpy and message packages only (never torch): the executor node uses it.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import functools
import logging
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import rclpy
from builtin_interfaces.msg import Time
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
)
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.signals import SignalHandlerOptions

from openvla_ros.errors import ConfigError, OpenVLARosError
from openvla_ros.paramspec import ParamSpec, ParamType, ros_descriptor_fields, validate

__all__ = [
    "ACTION_QOS",
    "COMMAND_QOS",
    "ESTOP_QOS",
    "EXIT_CANNOT_START",
    "INSTRUCTION_LATCHED_QOS",
    "INSTRUCTION_QOS",
    "POSE_QOS",
    "SENSOR_QOS",
    "STATE_QOS",
    "KeyedThrottle",
    "call_service",
    "declare_specs",
    "guarded",
    "ns_to_stamp",
    "run_node",
    "stamp_to_ns",
    "stop_with_parent",
]

# ---------------------------------------------------------------------------------------------
# QoS profiles (one place; docs/interfaces.md is the contract they implement)
# ---------------------------------------------------------------------------------------------


def _volatile_qos(depth: int, reliability: ReliabilityPolicy) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=reliability,
        durability=DurabilityPolicy.VOLATILE,
    )


_RELIABLE, _BEST_EFFORT = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT

#: Camera frames: best effort, depth 1, so only the newest frame is ever held; a best-effort
#: subscription matches both best-effort and reliable camera drivers.
SENSOR_QOS = _volatile_qos(1, _BEST_EFFORT)
#: /instruction subscriptions (the policy node has both, docs/interfaces.md): reliable, depth 1.
#: Volatile matches every reliable publisher (rqt's, ``ros2 topic pub``'s, latched ones);
#: transient-local additionally receives a latched publisher's last instruction when the
#: subscription appears after it was sent (a late-starting or restarted policy node, a message
#: sent before discovery finished) but matches only transient-local publishers (DDS: the
#: offered durability must be at least the requested one).
INSTRUCTION_QOS = _volatile_qos(1, _RELIABLE)
INSTRUCTION_LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=_RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
#: DeltaAction: reliable, depth 10 (the executor drops anything older than what it executed).
ACTION_QOS = _volatile_qos(10, _RELIABLE)
#: ExecutorState: reliable, depth 10 (the blocking handshake must not miss a done state).
STATE_QOS = ACTION_QOS
#: Measured end-effector pose: best effort, depth 1; matches franka_ros2's best-effort
#: publisher and reliable ones alike.
POSE_QOS = SENSOR_QOS
#: Commands to the controller (target pose / twist / gripper): reliable, depth 1 (only the
#: newest command matters; a queued stale command is worse than none).
COMMAND_QOS = _volatile_qos(1, _RELIABLE)
#: E-stop topic: reliable so a ``true`` is never lost (publishers must be reliable: rqt and
#: ``ros2 topic pub`` are by default).
ESTOP_QOS = _volatile_qos(10, _RELIABLE)


def quiet_incompatible_qos() -> SubscriptionEventCallbacks:
    """Event callbacks that keep rclpy from warning about the volatile publishers a
    transient-local instruction subscription cannot match (its volatile twin gets them)."""
    return SubscriptionEventCallbacks(incompatible_qos=lambda event: None)


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------


def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds (>= 0) -> ``builtin_interfaces/Time``."""
    ns = max(0, int(ns))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------

_ROS_TYPES: dict[ParamType, int] = {
    ParamType.BOOL: ParameterType.PARAMETER_BOOL,
    ParamType.INT: ParameterType.PARAMETER_INTEGER,
    ParamType.FLOAT: ParameterType.PARAMETER_DOUBLE,
    ParamType.STR: ParameterType.PARAMETER_STRING,
    ParamType.FLOAT_LIST: ParameterType.PARAMETER_DOUBLE_ARRAY,
    ParamType.STR_LIST: ParameterType.PARAMETER_STRING_ARRAY,
}
_PARAM_TYPES: dict[ParamType, Parameter.Type] = {
    ParamType.BOOL: Parameter.Type.BOOL,
    ParamType.INT: Parameter.Type.INTEGER,
    ParamType.FLOAT: Parameter.Type.DOUBLE,
    ParamType.STR: Parameter.Type.STRING,
    ParamType.FLOAT_LIST: Parameter.Type.DOUBLE_ARRAY,
    ParamType.STR_LIST: Parameter.Type.STRING_ARRAY,
}

#: An extra check for one parameter: returns a reason string when the value is bad.
ExtraCheck = Callable[[Any], str | None]


def descriptor_for(spec: ParamSpec) -> ParameterDescriptor:
    """The ``ParameterDescriptor`` of ``spec`` (description with unit, range, read-only)."""
    fields = ros_descriptor_fields(spec)
    desc = ParameterDescriptor(
        name=spec.name,
        type=_ROS_TYPES[spec.type],
        description=fields["description"],
        additional_constraints=fields["additional_constraints"],
        read_only=bool(fields["read_only"]),
    )
    if "floating_point_range" in fields:
        lo, hi = fields["floating_point_range"]
        desc.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
    if "integer_range" in fields:
        lo, hi = fields["integer_range"]
        desc.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=0)]
    return desc


def _plain(value: Any) -> Any:
    # rclpy hands array parameters back as array.array; ParamSpec validation wants lists.
    if isinstance(value, array.array):
        return list(value)
    return value


def _ros_default(spec: ParamSpec) -> Any:
    return list(spec.default) if isinstance(spec.default, tuple) else spec.default


def declare_specs(
    node: Node,
    specs: Sequence[ParamSpec],
    extra_checks: Mapping[str, ExtraCheck] | None = None,
) -> dict[str, Any]:
    """Declare ``specs`` on ``node`` and install the set-time validation; return the values.

    Each parameter gets a descriptor with its description, unit, allowed range and read-only
    flag. A callback validates every later set (``ros2 param set``, rqt) against the spec
    and ``extra_checks``, rejecting bad values with the reason (the node keeps the old value).

    Returns:
        ``{name: value}`` in canonical form (tuples for lists), launch overrides applied.

    Raises:
        ConfigError: a launch/params-file override is invalid (wrong type, out of range,
            not a choice); the message names the parameter and what is allowed.
    """
    by_name = {s.name: s for s in specs}
    checks = dict(extra_checks or {})

    def on_set(params: list[Parameter]) -> SetParametersResult:
        for param in params:
            spec = by_name.get(param.name)
            if spec is None:
                continue  # not ours: another callback may own it (e.g. use_sim_time)
            try:
                value = validate(spec, _plain(param.value))
            except ConfigError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            check = checks.get(param.name)
            reason = check(value) if check is not None else None
            if reason:
                return SetParametersResult(
                    successful=False, reason=f"parameter '{param.name}': {reason}"
                )
        return SetParametersResult(successful=True)

    # Registered before declaring so that launch overrides are validated too (rclpy runs
    # on-set callbacks at declaration and raises on rejection).
    node.add_on_set_parameters_callback(on_set)
    values: dict[str, Any] = {}
    for spec in specs:
        try:
            param = node.declare_parameter(spec.name, _ros_default(spec), descriptor_for(spec))
        except InvalidParameterTypeException as exc:
            hint = " (write 5.0, not 5, for a float)" if spec.type is ParamType.FLOAT else ""
            raise ConfigError(
                f"parameter '{spec.name}' must be of type {spec.type.value}{hint}: {exc}"
            ) from exc
        except InvalidParameterValueException as exc:
            raise ConfigError(str(exc)) from exc
        values[spec.name] = validate(spec, _plain(param.value))
    return values


def changed_values(specs: Sequence[ParamSpec], params: Sequence[Parameter]) -> dict[str, Any]:
    """``{name: canonical value}`` of the parameters in ``params`` that ``specs`` declare.

    For post-set callbacks: the values were validated by :func:`declare_specs`'s callback.
    """
    by_name = {s.name: s for s in specs}
    return {p.name: validate(by_name[p.name], _plain(p.value)) for p in params if p.name in by_name}


def param_type(spec: ParamSpec) -> Parameter.Type:
    """The rclpy ``Parameter.Type`` of ``spec`` (for building ``Parameter`` objects in tests)."""
    return _PARAM_TYPES[spec.type]


# ---------------------------------------------------------------------------------------------
# Callbacks that never take the node down
# ---------------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def guarded(node: Node, callback: F, on_error: Callable[[BaseException], Any] | None = None) -> F:
    """Wrap a subscription/timer/service callback so an unexpected exception is logged
    (with its traceback) and handed to ``on_error`` instead of escaping into the executor,
    which would stop spinning and kill the node.

    For a service callback, ``on_error``'s return value (if not None) is the response.
    """
    name = getattr(callback, "__name__", "callback")

    @functools.wraps(callback)
    def wrapper(*args: Any) -> Any:
        try:
            return callback(*args)
        except Exception as exc:  # that is the point
            node.get_logger().error(
                f"unexpected error in {name}: {exc!r}\n{traceback.format_exc()}"
            )
            if on_error is not None:
                try:
                    result = on_error(exc)
                except Exception as inner:
                    node.get_logger().error(f"error handler of {name} failed: {inner!r}")
                    result = None
                if result is not None:
                    return result
            # A service must still answer: the response object rclpy passed in, unfilled.
            return args[-1] if len(args) == 2 else None

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Process entry point
# ---------------------------------------------------------------------------------------------


class KeyedThrottle:
    """At most one log line per ``period_s`` for each key (e.g. per outcome kind).

    rclpy's ``throttle_duration_sec`` throttles per call site, so a flood of one kind
    logged from a shared call site would hide every other kind.
    """

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._last: dict[Any, float] = {}

    def ready(self, key: Any, now_s: float) -> bool:
        """True (and restart the key's period) when ``key`` may log at ``now_s``."""
        if now_s - self._last.get(key, -math.inf) < self.period_s:
            return False
        self._last[key] = now_s
        return True


#: Exit code of a node that refused its configuration (docs/nodes.md, "Exit codes").
EXIT_CANNOT_START = 2
#: Set to 0/false to keep a node running after the process that started it died.
STOP_WITH_PARENT_ENV = "OPENVLA_ROS_STOP_WITH_PARENT"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def stop_with_parent() -> bool:
    """Have the kernel send this process SIGTERM when its parent dies (Linux only).

    A node whose ``ros2 launch`` was killed (``kill -9``, an OOM kill, a crashed terminal)
    would otherwise keep running as an orphan: an executor kept re-publishing its last twist.
    SIGTERM takes the normal stop path of :func:`run_node` (the executor holds and sends its
    final zero twist). ``prctl(PR_SET_PDEATHSIG)`` through ctypes: no dependency, one call.
    Off when ``$OPENVLA_ROS_STOP_WITH_PARENT`` is 0/false/no/off, when the parent is already
    init (started by systemd or detached), and on other kernels.

    Note the kernel ties the signal to the parent *thread* that started the process: a
    launcher must start nodes from a thread that lives as long as it wants them to run
    (``ros2 launch``, ``ros2 run`` and ``subprocess`` from the main thread all do).

    Returns:
        True when the parent-death signal is armed.
    """
    if os.environ.get(STOP_WITH_PARENT_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    parent = os.getppid()
    if not sys.platform.startswith("linux") or parent == 1:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the call took effect
        os.kill(os.getpid(), signal.SIGTERM)
    return True


#: The signals :func:`run_node` turns into one clean stop.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopOnSignal:
    """SIGINT/SIGTERM handler of :func:`run_node`: the first one stops the node, every later
    SIGINT or SIGTERM is ignored so the shutdown (hold, counters, destroy) is not interrupted.

    While the node starts (a model load can take minutes) it raises ``KeyboardInterrupt``
    (:attr:`raised`). Once the node spins it raises nothing: it sets :attr:`stop`, which the
    spin loop checks after every wait (the waits are bounded: a Python signal handler runs
    only when the main thread is back in Python, and nothing else wakes ``rcl_wait`` here).
    An exception raised from a Python signal handler surfaces at whatever bytecode runs next:
    inside rclpy's pybind11 bindings (``take_message`` converting its arguments) pybind11
    turned the ``KeyboardInterrupt`` into a ``RuntimeError``, a traceback and exit status 1
    instead of a clean stop (seen in test_parent_death).
    """

    def __init__(self) -> None:
        self.stop = False  # the first signal came
        self.raised = False  # ... and the handler raised KeyboardInterrupt for it
        self.quiet = False  # spinning or shutting down: never raise

    def __call__(self, signum: int, frame: Any) -> None:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        self.stop = True
        if not self.quiet:
            self.raised = True
            raise KeyboardInterrupt


#: Longest wait of :func:`run_node`'s spin loop before it looks at the stop flag (s).
STOP_CHECK_S = 0.2


def run_node(make_node: Callable[[], Node], node_name: str, args: list[str] | None = None) -> int:
    """Run one node until Ctrl-C / shutdown; the ``main()`` of every node executable.

    Single-threaded on purpose: every callback of this package's nodes is short (inference
    runs on the policy node's own worker thread), so an e-stop waits at most one of them;
    rclpy's MultiThreadedExecutor measured ~4x the CPU and 65 ms p95 command latency at a
    30 Hz action rate (docs/BENCHMARKS.md, Nodes).

    Returns:
        0 after a normal shutdown, :data:`EXIT_CANNOT_START` (2) when the node refused its
        configuration (an :class:`OpenVLARosError` from the constructor, logged as one fatal
        ``cannot start: <reason>`` line, no traceback).
    """
    # SIGINT (Ctrl-C, `ros2 launch` stopping) and SIGTERM (`kill`, systemd stop, `ros2
    # launch` escalating) are handled here, not by rclpy: rclpy's handler shuts the context
    # down before destroy_node() runs, so the executor's final zero twist (and every node's
    # counters) never reached the wire (seen under a real `ros2 launch`, docs/launch.md). The
    # first of them stops spinning; later ones are ignored, as Ctrl-C in a terminal reaches
    # every node directly and `ros2 launch` forwards it again.
    handler = _StopOnSignal()
    if threading.current_thread() is threading.main_thread():
        for sig in _STOP_SIGNALS:
            signal.signal(sig, handler)
    rclpy.init(
        args=args if args is not None else sys.argv,
        signal_handler_options=SignalHandlerOptions.NO,  # type: ignore[attr-defined]  # pybind enum
    )
    node: Node | None = None
    code = 0
    try:
        stop_with_parent()
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        handler.quiet = True
        # executor.spin(), stopping on the handler's flag.
        while executor.context.ok() and not handler.stop:
            executor.spin_once(timeout_sec=STOP_CHECK_S)
    except (KeyboardInterrupt, ExternalShutdownException) as exc:
        if node is None:  # stopped while starting (e.g. during a long model load)
            _destroy_half_built(exc)
    except Exception as exc:
        if node is None:
            _destroy_half_built(exc)
        if handler.raised:
            # The start-up KeyboardInterrupt landed inside a binding (or a loader), which
            # re-raised it as another error: that is the interruption, not a bug nor a refusal.
            pass
        elif isinstance(exc, OpenVLARosError):
            rclpy.logging.get_logger(node_name).fatal(f"cannot start: {exc}")
            code = EXIT_CANNOT_START
        else:
            raise  # a bug: keep its traceback, but not a second one from cleanup
    finally:
        handler.quiet = True  # a first signal now must not interrupt the clean-up
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def _destroy_half_built(exc: BaseException) -> None:
    """Destroy the node whose constructor raised ``exc``, with rclpy's own ``destroy_node``.

    rclpy's context tracks every node from ``Node.__init__`` on and calls ``destroy_node()`` on
    each at shutdown: the subclass override then ran on a node missing the attributes it
    expects and turned the clear "cannot start" line into a traceback and exit code 1
    (seen under ``ros2 launch``). The half-built node is the ``self`` of the constructor frames.
    """
    tb = exc.__traceback__
    while tb is not None:
        obj = tb.tb_frame.f_locals.get("self")
        if isinstance(obj, Node):
            # Best effort (the process is exiting); it untracks the node, so the context
            # does not destroy it again.
            with contextlib.suppress(Exception):
                Node.destroy_node(obj)
            return
        tb = tb.tb_next


# ---------------------------------------------------------------------------------------------
# Service calls from orchestrating clients (sim-demos, eval-sim)
# ---------------------------------------------------------------------------------------------


def call_service(
    client: Any,
    request: Any,
    spin_once: Callable[[], None],
    timeout_s: float,
    on_timeout: Callable[[], Exception],
    *,
    effect: Callable[[], bool] | None = None,
    check_every_s: float = 0.0,
    resend: bool = False,
) -> Any:
    """Send ``request`` and spin until its answer; the answer, or None when the call's
    visible ``effect()`` shows it took place without an answer arriving.

    A service answer can be lost when the server has not yet matched the client's response
    reader (``service_is_ready`` only sees the request side; seen in this project under load).
    Every ``check_every_s`` without an answer: ``effect`` is consulted when given; otherwise,
    with ``resend`` (idempotent services only), the request is sent again and the first answer
    to any copy wins. ``on_timeout()`` builds the error raised after ``timeout_s``."""
    futures = [client.call_async(request)]
    start = time.monotonic()
    check_at = start + check_every_s
    while not any(f.done() for f in futures):
        now = time.monotonic()
        if now >= check_at:
            if effect is not None and effect():
                logging.getLogger(__name__).warning(
                    "%s: no answer, but its effect was seen: continuing", client.srv_name
                )
                return None
            if effect is None and resend:
                logging.getLogger(__name__).warning(
                    "%s: no answer after %.0f s: sending again", client.srv_name, now - start
                )
                futures.append(client.call_async(request))
            check_at = now + check_every_s
        if now > start + timeout_s:
            raise on_timeout()
        spin_once()
    return next(f for f in futures if f.done()).result()
