# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The policy loop's logic, without rclpy: which frame to infer on, when, and for which
episode and step. The policy node is a thin adapter that feeds it ROS messages.

* :class:`FrameSlot` holds only the newest camera frame (stale frames are overwritten, never
  queued).
* :class:`PolicyRunner` does episode/step bookkeeping, the rate limit, the "never the same
  frame twice" rule, the image-age check and the blocking handshake, and counts everything.
  The worker thread asks it for the next :class:`Job`, runs the policy, and reports back.

Times are integer nanoseconds of the node's clock (ROS time); frame stamps must be on the
same clock (synchronised machines, or ``use_sim_time`` everywhere).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from openvla_ros.errors import ConfigError
from openvla_ros.paramspec import ParamSpec, ParamType, build_config

__all__ = [
    "POLICY_NODE_PARAMS",
    "Frame",
    "FrameSlot",
    "Job",
    "PolicyNodeConfig",
    "PolicyRunner",
    "RunMode",
]

_NS = 1_000_000_000


class RunMode(StrEnum):
    """When the next observation may be taken."""

    NON_BLOCKING = "non_blocking"  # newest frame, up to control_hz, while the arm moves
    BLOCKING = "blocking"  # only after the executor reports the previous action done


#: Every parameter of the policy node, declared once (docs/nodes.md renders this list).
POLICY_NODE_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("policy", ParamType.STR, "model", "Policy kind: the OpenVLA model (local "
              "checkpoint or remote server) or a scripted action sequence (tests, dry runs)",
              choices=("model", "scripted"), read_only=True),
    ParamSpec("checkpoint", ParamType.STR, "", "OpenVLA checkpoint directory (HF layout); "
              "empty = none (then remote_url must be set)", read_only=True),
    ParamSpec("adapter", ParamType.STR, "", "LoRA adapter directory (openvla-ros finetune "
              "--save-adapter) stacked on checkpoint; its statistics replace the checkpoint's; "
              "empty = none; refused with remote_url (give the server --adapter)",
              read_only=True),
    ParamSpec("remote_url", ParamType.STR, "", "URL of a remote inference server; when set, no "
              "local model is loaded", read_only=True),
    ParamSpec("remote_timeout_s", ParamType.FLOAT, 5.0, "Per-request timeout of the remote "
              "policy", unit="s", min=0.05, max=120.0, read_only=True),
    ParamSpec("precision", ParamType.STR, "bf16", "Weights precision of the local model",
              choices=("fp32", "bf16", "fp16", "int8", "int4"), read_only=True),
    ParamSpec("device", ParamType.STR, "auto", "Torch device of the local model: auto, cpu, "
              "cuda or cuda:N", read_only=True),
    ParamSpec("decode", ParamType.STR, "eager", "Decode path of the local model: eager "
              "(dynamic KV cache), static (preallocated KV cache) or compiled (static + "
              "torch.compile, CUDA graphs on GPU; compiled at start-up); same action tokens",
              choices=("eager", "static", "compiled"), read_only=True),
    ParamSpec("unnorm_key", ParamType.STR, "", "Dataset-statistics key used to un-normalise "
              "actions (e.g. bridge_orig); empty = the checkpoint's only key"),
    ParamSpec("preprocess", ParamType.STR, "none", "Image preprocessing preset applied before "
              "the model's processor (none, bridge, center_crop, bridge+center_crop, libero, or "
              "'+'-joined steps)", read_only=True),
    ParamSpec("control_hz", ParamType.FLOAT, 5.0, "Maximum inference rate", unit="Hz",
              min=0.1, max=100.0),
    ParamSpec("mode", ParamType.STR, "non_blocking", "non_blocking: newest frame at up to "
              "control_hz; blocking: next frame only after the executor reports the previous "
              "action done; must equal the executor's control.mode (the launch files set "
              "both)", choices=("non_blocking", "blocking"), read_only=True),
    ParamSpec("blocking_timeout_s", ParamType.FLOAT, 5.0, "Blocking mode: continue when the "
              "executor has not reported the action done within this time", unit="s",
              min=0.05, max=600.0),
    ParamSpec("max_image_age_s", ParamType.FLOAT, 1.0, "Skip (and count) frames older than "
              "this when inference starts; 0 disables the check", unit="s", min=0.0,
              max=3600.0),
    ParamSpec("camera_stall_s", ParamType.FLOAT, 2.0, "Warn when no camera frame arrived for "
              "this long while active", unit="s", min=0.1, max=3600.0),
    ParamSpec("image_transport", ParamType.STR, "raw", "raw: sensor_msgs/Image on "
              "camera_topic; compressed: sensor_msgs/CompressedImage on "
              "<camera_topic>/compressed", choices=("raw", "compressed"), read_only=True),
    ParamSpec("camera_topic", ParamType.STR, "/camera/image_raw", "Camera image topic (base "
              "name for compressed transport)", read_only=True),
    ParamSpec("instruction_topic", ParamType.STR, "/instruction", "Instruction topic "
              "(std_msgs/String)", read_only=True),
    ParamSpec("action_topic", ParamType.STR, "/openvla/delta_action", "DeltaAction output "
              "topic", read_only=True),
    ParamSpec("state_topic", ParamType.STR, "/openvla/executor_state", "ExecutorState topic "
              "(blocking handshake)", read_only=True),
    ParamSpec("base_frame", ParamType.STR, "base_link", "Robot base frame written into "
              "DeltaAction.header.frame_id", read_only=True),
    ParamSpec("enable_on_start", ParamType.BOOL, False, "Start enabled (default: inactive "
              "until ~/enable)", read_only=True),
    ParamSpec("stats_period_s", ParamType.FLOAT, 10.0, "Period of the counters log line; 0 "
              "disables it", unit="s", min=0.0, max=3600.0),
    ParamSpec("scripted.actions", ParamType.FLOAT_LIST, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
              "policy=scripted: actions, 7 numbers per step, cycled", read_only=True),
    ParamSpec("scripted.delay_s", ParamType.FLOAT, 0.0, "policy=scripted: simulated model "
              "time per step", unit="s", min=0.0, max=60.0, read_only=True),
    ParamSpec("scripted.fail_every", ParamType.INT, 0, "policy=scripted: raise a PolicyError "
              "on every N-th call (0 = never)", min=0, max=1_000_000, read_only=True),
    ParamSpec("scripted.report_image", ParamType.BOOL, False, "policy=scripted: report the "
              "image's mean RGB and size in normalized_action (diagnostics)", read_only=True),
)  # fmt: skip


@dataclass(frozen=True)
class PolicyNodeConfig:
    """The policy node's parameters, validated (see :data:`POLICY_NODE_PARAMS`)."""

    policy: str
    checkpoint: str
    remote_url: str
    remote_timeout_s: float
    precision: str
    device: str
    decode: str
    unnorm_key: str
    preprocess: str
    control_hz: float
    mode: str
    blocking_timeout_s: float
    max_image_age_s: float
    camera_stall_s: float
    image_transport: str
    camera_topic: str
    instruction_topic: str
    action_topic: str
    state_topic: str
    base_frame: str
    enable_on_start: bool
    stats_period_s: float
    scripted_actions: tuple[float, ...]
    scripted_delay_s: float
    scripted_fail_every: int
    scripted_report_image: bool
    adapter: str = ""

    def __post_init__(self) -> None:
        if self.policy == "model" and not (self.checkpoint or self.remote_url):
            raise ConfigError(
                "policy=model needs a checkpoint directory or a remote_url; set one (or use "
                "policy:=scripted for a dry run without a model)"
            )
        if self.policy == "model" and self.remote_url and self.adapter:
            # The remote server computes the actions: a local adapter would be silently unused
            # and the robot would run the base model (with the base's statistics).
            raise ConfigError(
                f"adapter {self.adapter!r} is set together with remote_url {self.remote_url!r}: "
                "the server computes the actions, so load the adapter there (openvla-ros serve "
                "--checkpoint BASE --adapter DIR) and leave adapter empty on the robot"
            )

    @classmethod
    def from_params(cls, values: dict[str, Any]) -> PolicyNodeConfig:
        """Build from ``{name: value}`` (unknown names are rejected)."""
        return build_config(cls, POLICY_NODE_PARAMS, values)


@dataclass(frozen=True)
class Frame:
    """One camera frame as received; decoding happens later, off the subscription thread.

    Attributes:
        seq: arrival number (1, 2, ...), assigned by the slot.
        stamp_ns: capture time (header.stamp); the receive time when the camera left it 0.
        received_ns: when the node received it.
        payload: the message itself (decoded by the worker).
        unstamped: the camera published a zero stamp.
    """

    seq: int
    stamp_ns: int
    received_ns: int
    payload: Any
    unstamped: bool = False


class FrameSlot:
    """Holds only the newest frame; thread-safe. ``put`` never blocks on inference."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._seq = 0
        self.replaced_unused = 0  # frames overwritten before any inference looked at them
        self._taken_seq = 0

    def put(self, stamp_ns: int, received_ns: int, payload: Any) -> Frame:
        """Store a frame, replacing the previous one; return it."""
        with self._lock:
            self._seq += 1
            if self._frame is not None and self._frame.seq > self._taken_seq:
                self.replaced_unused += 1
            unstamped = stamp_ns <= 0
            self._frame = Frame(
                self._seq, received_ns if unstamped else stamp_ns, received_ns, payload, unstamped
            )
            return self._frame

    def newest(self) -> Frame | None:
        """The newest frame, or None before the first."""
        with self._lock:
            return self._frame

    def mark_taken(self, seq: int) -> None:
        """Record that inference looked at frame ``seq`` (for the replaced-unused count)."""
        with self._lock:
            self._taken_seq = max(self._taken_seq, seq)

    @property
    def count(self) -> int:
        """Frames received so far."""
        with self._lock:
            return self._seq


@dataclass(frozen=True)
class Job:
    """One inference to run: which frame, for which episode/step, with which settings."""

    frame: Frame
    episode_id: int
    step: int
    instruction: str
    unnorm_key: str
    observation_age_s: float
    reset_policy: bool  # call policy.reset() first (new episode)


#: The clock counts as gone back when a kept time is this far ahead of "now" (threads read
#: the clock a moment apart; a real restart is seconds).
_CLOCK_BACK_NS = 50_000_000


@dataclass
class _Waiting:
    episode_id: int
    step: int
    since_ns: int


@dataclass
class Counters:
    """What happened since start (logged periodically; tests read them from the logs)."""

    frames: int = 0
    frames_unstamped: int = 0
    images_bad: int = 0
    images_stale: int = 0
    policy_errors: int = 0
    actions: int = 0
    results_dropped: int = 0
    blocking_done: int = 0
    blocking_timeouts: int = 0
    episodes: int = 0
    camera_stalls: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        """Counters by name."""
        out = {k: v for k, v in vars(self).items() if isinstance(v, int)}
        out.update(self.extra)
        return out


class PolicyRunner:
    """The policy loop's state; every method is thread-safe (one lock).

    Life of a step: :meth:`next_job` hands out a :class:`Job` (or says how long to wait);
    the caller decodes the frame and runs the policy, then reports :meth:`finish` (publish?)
    or :meth:`fail`. Subscriptions call :meth:`set_instruction`, :meth:`on_executor_state`;
    services call :meth:`set_enabled`, :meth:`reset_episode`.
    """

    def __init__(
        self,
        *,
        control_hz: float,
        mode: RunMode | str = RunMode.NON_BLOCKING,
        blocking_timeout_s: float = 5.0,
        max_image_age_s: float = 1.0,
        camera_stall_s: float = 2.0,
        unnorm_key: str = "",
        enabled: bool = False,
        slot: FrameSlot | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.slot = slot if slot is not None else FrameSlot()
        self.counters = Counters()
        self._enabled = enabled
        self._instruction = ""
        self._episode_id = 0
        self._step = 0
        self._reset_pending = False
        self._last_seq = 0
        self._last_start_ns: int | None = None
        self._waiting: _Waiting | None = None
        self._min_capture_ns = -1  # blocking: frames must be captured after this
        self._stalled = False
        self._started_ns: int | None = None
        self.configure(
            control_hz=control_hz,
            mode=mode,
            blocking_timeout_s=blocking_timeout_s,
            max_image_age_s=max_image_age_s,
            camera_stall_s=camera_stall_s,
            unnorm_key=unnorm_key,
        )

    # -- settings ---------------------------------------------------------------------------

    def configure(self, **settings: Any) -> None:
        """Change run-time settings (parameter updates); unknown names raise ConfigError."""
        with self._lock:
            for name, value in settings.items():
                if name == "control_hz":
                    if not value > 0:
                        raise ConfigError(f"control_hz must be > 0, got {value}")
                    self._period_ns = int(_NS / float(value))
                elif name == "mode":
                    new_mode = RunMode(value)
                    if getattr(self, "_mode", new_mode) != new_mode:
                        self._waiting = None  # a pending handshake means nothing any more
                    self._mode = new_mode
                elif name == "blocking_timeout_s":
                    self._blocking_timeout_ns = int(float(value) * _NS)
                elif name == "max_image_age_s":
                    self._max_age_ns = int(float(value) * _NS)
                elif name == "camera_stall_s":
                    self._stall_ns = int(float(value) * _NS)
                elif name == "unnorm_key":
                    self._unnorm_key = str(value)
                else:
                    raise ConfigError(f"unknown runner setting '{name}'")

    # -- state ------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether inference may run."""
        with self._lock:
            return self._enabled

    @property
    def mode(self) -> RunMode:
        """The current run mode."""
        with self._lock:
            return self._mode

    @property
    def episode(self) -> tuple[int, int, str]:
        """``(episode_id, next step, instruction)``."""
        with self._lock:
            return self._episode_id, self._step, self._instruction

    @property
    def waiting_for_executor(self) -> bool:
        """Blocking mode: an action was published and its done state has not arrived."""
        with self._lock:
            return self._waiting is not None

    def set_enabled(self, enabled: bool, now_ns: int) -> bool:
        """Enable/disable inference; returns whether the state changed."""
        with self._lock:
            changed = self._enabled != enabled
            self._enabled = enabled
            if changed or not enabled:
                # Only a real change ends the blocking handshake: a redundant enable must
                # not let the next step start on a frame captured while the arm moves.
                self._waiting = None
            if enabled and changed:
                self._started_ns = now_ns
                self._stalled = False
            return changed

    def set_instruction(self, text: str) -> str:
        """A new instruction: returns ``"new_episode"``, ``"paused"`` or ``"unchanged"``.

        The same text again (rqt republishing at a rate) is not a new episode; use
        :meth:`reset_episode` to restart with the same instruction. Empty/blank pauses.
        """
        with self._lock:
            if not text.strip():
                if not self._instruction:
                    return "unchanged"
                self._instruction = ""
                self._waiting = None
                return "paused"
            if text == self._instruction:
                return "unchanged"
            self._instruction = text
            self._new_episode()
            return "new_episode"

    def reset_episode(self) -> int:
        """Start a new episode with the current instruction; returns the new episode id."""
        with self._lock:
            self._new_episode()
            return self._episode_id

    def _new_episode(self) -> None:
        self._episode_id += 1
        self._step = 0
        self._reset_pending = True
        self._waiting = None
        self._min_capture_ns = -1
        self.counters.episodes += 1

    # -- inputs -----------------------------------------------------------------------------

    def on_frame(self, stamp_ns: int, received_ns: int, payload: Any) -> Frame:
        """Store a frame (subscription thread: cheap, never blocks on inference)."""
        frame = self.slot.put(stamp_ns, received_ns, payload)
        with self._lock:
            self.counters.frames += 1
            if frame.unstamped:
                self.counters.frames_unstamped += 1
            self._stalled = False
        return frame

    def on_executor_state(self, episode_id: int, step: int, action_done: bool, now_ns: int) -> bool:
        """Blocking handshake: returns True when this state releases the pending step."""
        with self._lock:
            w = self._waiting
            if w is None or not action_done or (episode_id, step) != (w.episode_id, w.step):
                return False
            self._waiting = None
            # Receipt time, not the executor's stamp: conservative, and on this node's clock.
            self._min_capture_ns = now_ns
            self.counters.blocking_done += 1
            return True

    # -- the loop ---------------------------------------------------------------------------

    def next_job(self, now_ns: int) -> tuple[Job | None, float, str]:
        """The next inference to run, or ``None`` with how long to wait (s) and why.

        The reason is one of ``disabled``, ``paused``, ``waiting``, ``blocking_timeout``
        (the handshake timed out just now; the caller logs it), ``rate``, ``no_frame``,
        ``old_frame`` (blocking: frame captured before the previous action was done),
        ``stale`` (frame too old, counted and consumed), ``ready``.
        """
        idle = 0.1  # re-check period when only an outside event can make progress
        with self._lock:
            self._follow_clock_back(now_ns)
            if not self._enabled:
                return None, idle, "disabled"
            if not self._instruction:
                return None, idle, "paused"
            timed_out = False
            if self._waiting is not None:
                waited = now_ns - self._waiting.since_ns
                if waited < self._blocking_timeout_ns:
                    return None, min(idle, (self._blocking_timeout_ns - waited) / _NS), "waiting"
                self._waiting = None
                self._min_capture_ns = now_ns
                self.counters.blocking_timeouts += 1
                timed_out = True
            if self._last_start_ns is not None:
                due = self._last_start_ns + self._period_ns
                if now_ns < due:
                    return None, (due - now_ns) / _NS, "rate"
            frame = self.slot.newest()
            if frame is None or frame.seq <= self._last_seq:
                return None, idle, "blocking_timeout" if timed_out else "no_frame"
            if self._mode is RunMode.BLOCKING and frame.stamp_ns <= self._min_capture_ns:
                return None, idle, "blocking_timeout" if timed_out else "old_frame"
            self._last_seq = frame.seq
            self.slot.mark_taken(frame.seq)
            age_ns = now_ns - frame.stamp_ns
            if self._max_age_ns > 0 and age_ns > self._max_age_ns:
                self.counters.images_stale += 1
                return None, 0.0, "stale"
            self._last_start_ns = now_ns
            job = Job(
                frame=frame,
                episode_id=self._episode_id,
                step=self._step,
                instruction=self._instruction,
                unnorm_key=self._unnorm_key,
                observation_age_s=age_ns / _NS,
                reset_policy=self._reset_pending,
            )
            self._reset_pending = False
            return job, 0.0, "ready"

    def _follow_clock_back(self, now_ns: int) -> None:
        """This node's clock went back (a simulator restarted ``/clock``, a bag looped):
        times kept from before would make the rate limit, the blocking handshake and the
        blocking frame cut-off wait out the old time. Bring them to ``now_ns``."""
        back = now_ns + _CLOCK_BACK_NS  # a subscription thread may have read a later "now"
        if self._last_start_ns is not None and self._last_start_ns > back:
            self._last_start_ns = None
        if self._min_capture_ns > back:
            self._min_capture_ns = now_ns
        if self._waiting is not None and self._waiting.since_ns > back:
            self._waiting.since_ns = now_ns

    def finish(self, job: Job, now_ns: int, publish: Callable[[], None] | None = None) -> bool:
        """The policy produced an action for ``job``: returns whether to publish it.

        A result is dropped (counted) when the node was disabled, paused, or the episode
        changed while the policy ran: it belongs to an instruction no longer in force.

        Args:
            publish: called (under the runner's lock) when the result is to be published,
                so a disable, instruction change or reset cannot slip in between this
                decision and the publish. If it raises, the step does not advance and the
                exception propagates.
        """
        with self._lock:
            if not self._enabled or not self._instruction or job.episode_id != self._episode_id:
                self.counters.results_dropped += 1
                return False
            if publish is not None:
                publish()
            self._step = job.step + 1
            self.counters.actions += 1
            if self._mode is RunMode.BLOCKING:
                self._waiting = _Waiting(job.episode_id, job.step, now_ns)
            return True

    def fail(self, kind: str) -> None:
        """The frame could not be decoded (``"image"``) or the policy raised (``"policy"``).

        Nothing is published; the step index does not advance, so the executor sees no gap.
        """
        with self._lock:
            if kind == "image":
                self.counters.images_bad += 1
            elif kind == "policy":
                self.counters.policy_errors += 1
            else:
                self.counters.extra[kind] = self.counters.extra.get(kind, 0) + 1

    def check_camera_stall(self, now_ns: int) -> float | None:
        """Seconds since the last frame when the camera just stalled (once per stall), else None.

        Only while enabled with an instruction: an idle node has no reason to complain.
        """
        with self._lock:
            if not self._enabled or not self._instruction or self._stalled:
                return None
            frame = self.slot.newest()
            last = frame.received_ns if frame is not None else self._started_ns
            if last is None:
                return None
            if self._started_ns is not None:
                last = max(last, self._started_ns)
            quiet = now_ns - last
            if quiet > self._stall_ns:
                self._stalled = True
                self.counters.camera_stalls += 1
                return quiet / _NS
            return None
