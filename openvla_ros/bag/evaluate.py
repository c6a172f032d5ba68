# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Offline evaluation: what would the policy have commanded on a recorded bag?

Every selected camera frame goes through the code the nodes run, in the same order:
:mod:`~openvla_ros.image_codec` decoding -> :meth:`Policy.predict` (which applies the
checkpoint's preprocessing preset) -> :class:`~openvla_ros.control.ExecutorCore` (step
limits, workspace box, tracking error, gripper mapping, watchdogs). Time is simulated from
the bag: an action is decided at its frame's capture stamp (``now = stamp``: the zero-latency
case, so results do not depend on this machine's speed), poses enter the executor at their
stamps. The report compares predictions with recorded reference actions (or with the
motion between recorded end-effector poses) per dimension, plus gripper agreement.

Pose sources (``pose_source``):

* ``ideal`` (default): the first recorded pose (or ``initial_pose``, or the workspace
  centre) seeds the target, then the arm is assumed to reach every commanded target. This
  answers "what would the executor have sent", without the recorded arm (which followed
  another controller) tripping the tracking-error clip at every step.
* ``recorded``: the recorded poses are fed as measured poses, as the live executor would
  see them while replaying; tracking-error clips and stale-pose holds then show up, and so
  does the executor's start-up rule: the first pose is used only once a second agrees with
  it, so a bag whose first frame has only one pose before it rejects that frame's action.

No rclpy here; matplotlib is imported only to draw the plots.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from openvla_ros.bag.reader import (
    ActionSample,
    BagReader,
    Frame,
    Instruction,
    PoseSample,
)
from openvla_ros.control import ClipFlag, ExecutorCore, Outcome, Pose, RobotProfile
from openvla_ros.control.se3 import delta_between
from openvla_ros.errors import BagError, OpenVLARosError, PolicyError
from openvla_ros.policy.base import Policy

LOG = logging.getLogger(__name__)

DIM_NAMES = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")
DIM_UNITS = ("m", "m", "m", "rad", "rad", "rad", "")
POSE_SOURCES = ("ideal", "recorded")

#: ``progress(frames_done, frames_total, elapsed_s)``; total from the bag's metadata.
ProgressCallback = Callable[[int, int, float], None]


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how.

    Attributes:
        camera_topic: Image or CompressedImage topic.
        instruction: fixed instruction text (overrides ``instruction_topic``).
        instruction_topic: std_msgs/String topic; each new text starts a new episode.
        action_topic: reference actions (DeltaAction, ExecutorState, Float64MultiArray).
        pose_topic: end-effector PoseStamped topic (seeding / ``recorded`` mode / reference).
        every: evaluate every Nth usable frame (1 = all).
        control_hz: instead of ``every``: the first frame at or after each control tick
            (ticks at ``first stamp + k / control_hz``), as the node's timer would pick.
        unnorm_key: passed to ``predict`` (None: the policy's default).
        mode: executor mode (``non_blocking`` / ``blocking``); None: the profile's.
        pose_source: ``ideal`` or ``recorded`` (see the module doc).
        initial_pose: seed when the bag has no pose topic (default: workspace centre,
            the profile's nominal orientation ``limits.nominal_rpy_rad``).
        match_tolerance_s: a reference action matches a frame whose stamp is this close
            (exact stamp matches, the DeltaAction convention, are always preferred).
        max_frames: stop after this many evaluated frames (None: all).
    """

    camera_topic: str
    instruction: str | None = None
    instruction_topic: str | None = None
    action_topic: str | None = None
    pose_topic: str | None = None
    every: int = 1
    control_hz: float | None = None
    unnorm_key: str | None = None
    mode: str | None = None
    pose_source: str = "ideal"
    initial_pose: Pose | None = None
    match_tolerance_s: float = 0.05
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.every < 1:
            raise BagError(f"every must be >= 1, got {self.every}")
        if self.control_hz is not None and not (0 < self.control_hz <= 1000):
            raise BagError(f"control_hz must be in (0, 1000] Hz, got {self.control_hz}")
        if self.pose_source not in POSE_SOURCES:
            raise BagError(f"pose_source must be one of {POSE_SOURCES}, got {self.pose_source}")
        if self.pose_source == "recorded" and not self.pose_topic:
            raise BagError("pose_source 'recorded' needs a pose topic")
        if not self.instruction and not self.instruction_topic:
            raise BagError("give an instruction text or an instruction topic")
        if self.match_tolerance_s < 0:
            raise BagError("match_tolerance_s must be >= 0")


@dataclass
class StepRecord:
    """One evaluated frame: prediction, executor decision, reference."""

    step: int
    episode_id: int
    frame_index: int
    bag_time_ns: int
    stamp_ns: int
    instruction: str
    predicted: list[float]
    normalized: list[float]
    latency_ms: float
    outcome: str
    clip_flags: list[str]
    reason: str
    applied: list[float] | None
    target_position: list[float] | None
    target_orientation: list[float] | None
    gripper_command: float | None
    gripper_open: bool | None
    reference: list[float] | None = None
    reference_source: str = ""
    error: str = ""  # policy error text when the policy failed on this frame


@dataclass
class EvalResult:
    """Everything :func:`write_report` needs; ``to_json()`` is the results.json content."""

    bag: dict[str, Any]
    config: dict[str, Any]
    policy: dict[str, Any]
    profile: str
    steps: list[StepRecord] = field(default_factory=list)
    frames_seen: int = 0
    frames_unselected: int = 0
    frames_without_instruction: int = 0
    policy_failures: int = 0
    skips: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    safety: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (NaN written as null)."""
        doc = asdict(self)
        doc["frames_evaluated"] = len(self.steps)
        doc["frames_per_s"] = len(self.steps) / self.wall_s if self.wall_s > 0 else None
        return _nan_to_none(doc)


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_nan_to_none(v) for v in x]
    return x


def _flag_names(flags: ClipFlag) -> list[str]:
    return [f.name or "" for f in ClipFlag if f and f in flags]


def _home_pose(profile: RobotProfile) -> Pose:
    # The profile's nominal tool orientation: the executor refuses to seed far outside it.
    from openvla_ros.control.safety import nominal_quat

    centre = (profile.workspace_min + profile.workspace_max) / 2.0
    return Pose(centre, nominal_quat(profile))


class _FrameSelector:
    """Every Nth usable frame, or the first frame at/after each control tick."""

    def __init__(self, every: int, control_hz: float | None) -> None:
        self.every, self.hz = every, control_hz
        self.count = 0
        self.next_tick_ns: int | None = None

    def take(self, frame: Frame) -> bool:
        k = self.count
        self.count += 1
        if self.hz is None:
            return k % self.every == 0
        period_ns = round(1e9 / self.hz)
        if self.next_tick_ns is None:
            self.next_tick_ns = frame.stamp_ns
        if frame.stamp_ns < self.next_tick_ns:
            return False
        # Skip ticks that had no frame (a gap in the camera stream), as a timer would.
        missed = (frame.stamp_ns - self.next_tick_ns) // period_ns
        self.next_tick_ns += (missed + 1) * period_ns
        return True


def evaluate_bag(
    bag_path: str | Path,
    policy: Policy,
    profile: RobotProfile,
    config: EvalConfig,
    *,
    progress: ProgressCallback | None = None,
    progress_interval_s: float = 2.0,
) -> EvalResult:
    """Run ``policy`` + the executor core over a bag; see the module doc.

    Raises:
        BagError: unreadable bag, missing topics, or no frame could be evaluated (the
            message lists the skip counts, so an all-skipped bag is never an empty report).
        PolicyError: the policy failed on every evaluated frame (e.g. a missing
            unnorm key); failures on some frames are counted instead.
    """
    t_start = time.perf_counter()
    core = ExecutorCore(profile, config.mode)
    core.enable()
    selector = _FrameSelector(config.every, config.control_hz)
    with BagReader(bag_path) as bag:
        instruction_topic = None if config.instruction else config.instruction_topic
        total = bag.message_count(config.camera_topic)
        result = EvalResult(
            bag=bag.describe(),
            config=_config_dict(config),
            policy=_safe_info(policy),
            profile=profile.name,
        )
        poses: list[PoseSample] = []
        refs: list[ActionSample] = []
        instruction = config.instruction or ""
        episode_id, step = 0, 0
        started = False
        seeded = config.pose_source == "recorded"
        last_report = time.perf_counter()
        for event in bag.events(
            camera_topic=config.camera_topic,
            instruction_topic=instruction_topic,
            pose_topic=config.pose_topic,
            action_topic=config.action_topic,
        ):
            if isinstance(event, Instruction):
                text = event.text.strip()
                if text and text != instruction:
                    if instruction:
                        episode_id += 1  # a new instruction starts a new episode (as the node)
                    instruction, step = text, 0
                    policy.reset()
                continue
            if isinstance(event, PoseSample):
                poses.append(event)
                if config.pose_source == "recorded":
                    s = event.stamp_ns / 1e9
                    upd = core.on_pose((event.position.tolist(), event.orientation.tolist()), s, s)
                    if not upd.accepted:
                        bag.skips.add(config.pose_topic or "", "pose_rejected", upd.reason)
                continue
            if isinstance(event, ActionSample):
                refs.append(event)
                continue
            frame = event
            result.frames_seen += 1
            if not instruction:
                result.frames_without_instruction += 1
                continue
            if not selector.take(frame):
                result.frames_unselected += 1
                continue
            now_s = frame.stamp_ns / 1e9
            if config.pose_source == "ideal":
                measured = _ideal_measured(core, poses, config, profile, seeded)
                if not seeded:  # the executor confirms a first pose by a second one
                    core.on_pose(measured, now_s - 1e-3, now_s - 1e-3)
                seeded = True
                core.on_pose(measured, now_s, now_s)
            core.tick(now_s)
            started = True
            result.steps.append(
                _run_step(policy, core, frame, instruction, config, episode_id, step, now_s)
            )
            if result.steps[-1].error:
                result.policy_failures += 1
            step += 1
            if progress is not None and time.perf_counter() - last_report >= progress_interval_s:
                last_report = time.perf_counter()
                progress(result.frames_seen, total, last_report - t_start)
            if config.max_frames is not None and len(result.steps) >= config.max_frames:
                break
        result.skips = bag.skips.as_dict()
    if not started:
        raise BagError(
            f"no frame of {config.camera_topic} could be evaluated in {bag_path}: "
            f"{result.frames_seen} decoded, {result.frames_without_instruction} before any "
            f"instruction, skipped: {json.dumps(result.skips) or 'none'}"
        )
    if result.policy_failures == len(result.steps):
        first = result.steps[0].error
        raise PolicyError(
            f"the policy failed on all {len(result.steps)} evaluated frames; first: {first}"
        )
    _attach_references(result, refs, poses, config)
    result.metrics = compute_metrics(result.steps, profile)
    result.safety = _safety_summary(result.steps)
    result.wall_s = time.perf_counter() - t_start
    if progress is not None:
        progress(result.frames_seen, total, result.wall_s)
    return result


def _safe_info(policy: Policy) -> dict[str, Any]:
    try:
        return dict(policy.info())
    except Exception as exc:  # info is descriptive only; never fail the evaluation on it
        return {"info_error": str(exc)}


def _config_dict(config: EvalConfig) -> dict[str, Any]:
    doc = asdict(config)
    pose = config.initial_pose
    doc["initial_pose"] = (
        None if pose is None else [*pose.position.tolist(), *pose.orientation.tolist()]
    )
    return doc


def _ideal_measured(
    core: ExecutorCore,
    poses: list[PoseSample],
    config: EvalConfig,
    profile: RobotProfile,
    seeded: bool,
) -> Pose:
    """The pose the arm is assumed to be at: the current target, else the seed."""
    target = core.state().target_pose
    if seeded and target is not None:
        return target
    if poses:
        return Pose(poses[-1].position, poses[-1].orientation)
    return config.initial_pose or _home_pose(profile)


def _run_step(
    policy: Policy,
    core: ExecutorCore,
    frame: Frame,
    instruction: str,
    config: EvalConfig,
    episode_id: int,
    step: int,
    now_s: float,
) -> StepRecord:
    t0 = time.perf_counter()
    nan7 = [math.nan] * 7
    try:
        res = policy.predict(frame.rgb, instruction, config.unnorm_key)
        predicted = np.asarray(res.action, dtype=np.float64).reshape(-1)
        normalized = np.asarray(res.normalized_action, dtype=np.float64).reshape(-1)
    except OpenVLARosError as exc:
        # The node logs, counts and holds: no action reaches the executor.
        latency_ms = (time.perf_counter() - t0) * 1e3
        return StepRecord(
            step, episode_id, frame.index, frame.bag_time_ns, frame.stamp_ns, instruction,
            nan7, nan7, latency_ms, "POLICY_ERROR", [], str(exc), None, None, None, None, None,
            error=f"{type(exc).__name__}: {exc}",
        )  # fmt: skip
    latency_ms = (time.perf_counter() - t0) * 1e3
    decision = core.on_action(predicted, frame.stamp_ns / 1e9, step, episode_id, now_s)
    cmd = decision.command
    return StepRecord(
        step=step,
        episode_id=episode_id,
        frame_index=frame.index,
        bag_time_ns=frame.bag_time_ns,
        stamp_ns=frame.stamp_ns,
        instruction=instruction,
        predicted=predicted.tolist(),
        normalized=normalized.tolist(),
        latency_ms=latency_ms,
        outcome=Outcome(decision.outcome).name,
        clip_flags=_flag_names(decision.clip_flags),
        reason=decision.reason,
        applied=list(decision.applied_action) if decision.applied_action else None,
        target_position=cmd.target_pose.position.tolist() if cmd else None,
        target_orientation=cmd.target_pose.orientation.tolist() if cmd else None,
        gripper_command=cmd.gripper.command if cmd else None,
        gripper_open=cmd.gripper.is_open if cmd else None,
    )


def _attach_references(
    result: EvalResult,
    refs: list[ActionSample],
    poses: list[PoseSample],
    config: EvalConfig,
) -> None:
    """Give each step its reference: the recorded action for its frame, else pose motion.

    DeltaAction / ExecutorState references carry their image's capture stamp and match only
    a frame with exactly that stamp; receive-stamped arrays fall back to the nearest within
    ``match_tolerance_s``.
    """
    tol_ns = int(config.match_tolerance_s * 1e9)
    if refs:
        by_stamp: dict[int, ActionSample] = {}
        for r in refs:
            by_stamp.setdefault(r.stamp_ns, r)  # the first action of a chunk for its image
        loose = [r for r in refs if not r.exact_stamp]
        stamps = np.array([r.stamp_ns for r in loose], dtype=np.int64)
        for s in result.steps:
            ref = by_stamp.get(s.stamp_ns)
            if ref is None and stamps.size:
                i = int(np.argmin(np.abs(stamps - s.stamp_ns)))
                if abs(int(stamps[i]) - s.stamp_ns) <= tol_ns:
                    ref = loose[i]
            if ref is not None:
                s.reference = ref.action.tolist()
                s.reference_source = "action"
        return
    if len(poses) < 2:
        return
    # Without recorded actions: the motion the recorded arm made from this frame to the
    # next evaluated one, in the executor's delta convention (no gripper reference).
    pstamps = np.array([p.stamp_ns for p in poses], dtype=np.int64)

    def pose_at(stamp_ns: int) -> Pose | None:
        i = int(np.argmin(np.abs(pstamps - stamp_ns)))
        if abs(int(pstamps[i]) - stamp_ns) > max(tol_ns, 1):
            return None
        return Pose(poses[i].position, poses[i].orientation)

    for cur, nxt in zip(result.steps, result.steps[1:], strict=False):
        if cur.episode_id != nxt.episode_id:
            continue
        a, b = pose_at(cur.stamp_ns), pose_at(nxt.stamp_ns)
        if a is None or b is None:
            continue
        cur.reference = [*delta_between(a, b).tolist(), math.nan]
        cur.reference_source = "pose_delta"


def compute_metrics(steps: Sequence[StepRecord], profile: RobotProfile) -> dict[str, Any]:
    """Per-dimension errors of predicted vs reference, gripper agreement, direction cosine.

    Only steps with a reference and a finite prediction count (``n_compared``).
    """
    pairs = [
        (s.predicted, s.reference)
        for s in steps
        if s.reference is not None and np.all(np.isfinite(s.predicted))
    ]
    out: dict[str, Any] = {
        "n_compared": len(pairs),
        "n_steps": len(steps),
        "frames_without_reference": sum(s.reference is None for s in steps),
    }
    if not pairs:
        return out
    pred = np.array([p for p, _ in pairs], dtype=np.float64)
    ref = np.array([r for _, r in pairs], dtype=np.float64)
    per_dim: dict[str, Any] = {}
    for d, name in enumerate(DIM_NAMES):
        ok = np.isfinite(ref[:, d])
        if not np.any(ok):
            continue
        err = pred[ok, d] - ref[ok, d]
        per_dim[name] = {
            "unit": DIM_UNITS[d],
            "n": int(ok.sum()),
            "mae": float(np.mean(np.abs(err))),
            "rmse": float(np.sqrt(np.mean(err**2))),
            "max_abs": float(np.max(np.abs(err))),
            "bias": float(np.mean(err)),
        }
    out["per_dim"] = per_dim
    # Translation direction: does the policy move the same way, whatever the magnitude?
    pn, rn = np.linalg.norm(pred[:, :3], axis=1), np.linalg.norm(ref[:, :3], axis=1)
    moving = (pn > 1e-9) & (rn > 1e-9)
    if np.any(moving):
        cos = np.sum(pred[moving, :3] * ref[moving, :3], axis=1) / (pn[moving] * rn[moving])
        out["translation_cosine_mean"] = float(np.mean(cos))
    g_ok = np.isfinite(ref[:, 6])
    if np.any(g_ok):
        # Binary agreement at the profile's threshold (the gripper's own switching point).
        thr = profile.gripper_threshold
        agree = (pred[g_ok, 6] > thr) == (ref[g_ok, 6] > thr)
        out["gripper_agreement"] = float(np.mean(agree))
        out["gripper_n"] = int(g_ok.sum())
    return out


def _safety_summary(steps: Sequence[StepRecord]) -> dict[str, Any]:
    outcomes = Counter(s.outcome for s in steps)
    flags = Counter(f for s in steps for f in s.clip_flags)
    events = [
        {
            "step": s.step,
            "episode_id": s.episode_id,
            "frame_index": s.frame_index,
            "outcome": s.outcome,
            "clip_flags": s.clip_flags,
            "reason": s.reason,
        }
        for s in steps
        if s.outcome != Outcome.EXECUTED.name
    ]
    return {"outcomes": dict(outcomes), "clip_flags": dict(flags), "events": events}


# ------------------------------------------------------------------ report


def write_report(result: EvalResult, out_dir: str | Path, *, plots: bool = True) -> dict[str, Path]:
    """Write results.json, steps.csv, summary.md and PNG plots into ``out_dir``.

    Returns ``{name: path}`` of what was written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "results": out / "results.json",
        "steps": out / "steps.csv",
        "summary": out / "summary.md",
    }
    paths["results"].write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    _write_csv(result, paths["steps"])
    if plots:
        paths.update(_write_plots(result, out))
    paths["summary"].write_text(_summary_md(result, paths), encoding="utf-8")
    return paths


def _write_csv(result: EvalResult, path: Path) -> None:
    cols = ["step", "episode_id", "frame_index", "stamp_ns", "bag_time_ns", "latency_ms"]
    cols += [f"pred_{n}" for n in DIM_NAMES] + [f"ref_{n}" for n in DIM_NAMES]
    cols += [f"applied_{n}" for n in DIM_NAMES]
    cols += ["target_x", "target_y", "target_z", "target_qx", "target_qy", "target_qz"]
    cols += ["target_qw", "gripper_command", "outcome", "clip_flags", "reason", "instruction"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for s in result.steps:
            ref = s.reference or [math.nan] * 7
            app = s.applied or [math.nan] * 7
            tp = s.target_position or [math.nan] * 3
            tq = s.target_orientation or [math.nan] * 4
            row: list[Any] = [s.step, s.episode_id, s.frame_index, s.stamp_ns, s.bag_time_ns]
            row += [f"{s.latency_ms:.3f}", *s.predicted, *ref, *app, *tp, *tq]
            row += [
                "" if s.gripper_command is None else s.gripper_command,
                s.outcome,
                "|".join(s.clip_flags),
                s.reason or s.error,
                s.instruction,
            ]
            w.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in row])


def _write_plots(result: EvalResult, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on robot PCs and CI
    import matplotlib.pyplot as plt

    steps = result.steps
    x = np.arange(len(steps))
    pred = np.array([s.predicted for s in steps], dtype=np.float64)
    ref = np.array([s.reference or [math.nan] * 7 for s in steps], dtype=np.float64)
    app = np.array([s.applied or [math.nan] * 7 for s in steps], dtype=np.float64)
    fig, axes = plt.subplots(7, 1, figsize=(9, 12), sharex=True)
    for d, ax in enumerate(axes):
        ax.plot(x, pred[:, d], label="predicted", lw=1.2)
        if np.any(np.isfinite(app[:, d])):
            ax.plot(x, app[:, d], label="applied (after safety)", lw=0.8, ls="--")
        if np.any(np.isfinite(ref[:, d])):
            ax.plot(x, ref[:, d], label="recorded", lw=1.2, alpha=0.8)
        unit = f" [{DIM_UNITS[d]}]" if DIM_UNITS[d] else ""
        ax.set_ylabel(DIM_NAMES[d] + unit)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("step")
    fig.suptitle("predicted vs recorded actions")
    fig.tight_layout()
    p_actions = out / "actions.png"
    fig.savefig(p_actions, dpi=80)
    plt.close(fig)

    tgt = np.array([s.target_position or [math.nan] * 3 for s in steps], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(9, 4))
    for d, name in enumerate("xyz"):
        ax.plot(x, tgt[:, d], label=f"target {name}")
    flagged = [i for i, s in enumerate(steps) if s.outcome != Outcome.EXECUTED.name]
    if flagged:
        ax.scatter(flagged, np.nanmean(tgt, axis=1)[flagged], marker="x", c="r", label="safety")
    ax.set_xlabel("step")
    ax.set_ylabel("m (base frame)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title("would-be target position and safety events")
    fig.tight_layout()
    p_target = out / "target.png"
    fig.savefig(p_target, dpi=80)
    plt.close(fig)
    return {"plot_actions": p_actions, "plot_target": p_target}


def _summary_md(result: EvalResult, paths: dict[str, Path]) -> str:
    m, s = result.metrics, result.safety
    lines = [
        "# Offline evaluation",
        "",
        f"- bag: `{result.bag['path']}` ({result.bag['storage']}, compression "
        f"{result.bag['compression']}, {result.bag['duration_s']:.2f} s)",
        f"- policy: `{json.dumps(result.policy, default=str)}`",
        f"- robot profile: `{result.profile}`, pose source `{result.config['pose_source']}`",
        f"- frames: {result.frames_seen} decoded, {len(result.steps)} evaluated, "
        f"{result.frames_unselected} not selected, {result.frames_without_instruction} before "
        f"any instruction; policy failures: {result.policy_failures}",
        f"- evaluation speed: {len(result.steps) / max(result.wall_s, 1e-9):.1f} frames/s",
        "",
        "## Skipped messages",
        "",
    ]
    if result.skips:
        for topic, reasons in result.skips.items():
            for reason, info in reasons.items():
                lines.append(
                    f"- `{topic}` {reason}: {info['count']} (first: {info['first_error']})"
                )
    else:
        lines.append("- none")
    lines += ["", "## Safety", "", f"- outcomes: {s.get('outcomes', {})}"]
    lines += [f"- clips: {s.get('clip_flags', {})}", ""]
    lines += ["## Predicted vs recorded", ""]
    if m.get("n_compared"):
        lines.append(
            f"compared {m['n_compared']} steps; {m.get('frames_without_reference', 0)} "
            "evaluated frames have no reference"
        )
        lines += ["", "| dim | n | MAE | RMSE | max abs | bias |", "|---|---|---|---|---|---|"]
        for name, d in m.get("per_dim", {}).items():
            unit = f" {d['unit']}" if d["unit"] else ""
            lines.append(
                f"| {name}{unit} | {d['n']} | {d['mae']:.4g} | {d['rmse']:.4g} | "
                f"{d['max_abs']:.4g} | {d['bias']:.4g} |"
            )
        if "gripper_agreement" in m:
            lines.append(f"\ngripper agreement: {m['gripper_agreement']:.1%} (n={m['gripper_n']})")
        if "translation_cosine_mean" in m:
            lines.append(f"\nmean translation direction cosine: {m['translation_cosine_mean']:.3f}")
    else:
        lines.append("no reference actions or poses to compare with")
    lines += ["", "## Files", ""]
    lines += [f"- {k}: `{p.name}`" for k, p in paths.items() if k != "summary"]
    return "\n".join(lines) + "\n"


def frame_images(
    bag_path: str | Path, camera_topic: str, indices: Sequence[int]
) -> dict[int, npt.NDArray[np.uint8]]:
    """Decoded RGB frames by camera index (to inspect what the policy saw at a step)."""
    wanted = set(indices)
    out: dict[int, npt.NDArray[np.uint8]] = {}
    with BagReader(bag_path) as bag:
        for ev in bag.events(camera_topic=camera_topic):
            if isinstance(ev, Frame) and ev.index in wanted:
                out[ev.index] = ev.rgb
    return out


def find_robot_config(robot: str) -> Path:
    """``config/<robot>.yaml`` from the source tree or an installed share dir, or a path.

    Raises:
        BagError: not found (lists where it looked).
    """
    import os
    import sys

    direct = Path(robot)
    if direct.suffix in (".yaml", ".yml"):
        if direct.is_file():
            return direct
        raise BagError(f"robot params file {direct} does not exist")
    cands = [Path(__file__).resolve().parents[2] / "config"]
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    cands += [Path(p) / "share" / "openvla_ros" / "config" for p in [*prefixes, sys.prefix]]
    for c in cands:
        if (c / f"{robot}.yaml").is_file():
            return c / f"{robot}.yaml"
    raise BagError(
        f"no config for robot {robot!r} (looked for {robot}.yaml in "
        + ", ".join(map(str, cands))
        + "); give --robot franka|widowx|sim or a params .yaml path"
    )


def load_robot_profile(robot: str) -> RobotProfile:
    """The executor's :class:`RobotProfile` from a robot name or params YAML path.

    Reads the executor node's section and keeps only profile parameters (the node's
    topic names and the like are not part of the control semantics).
    """
    from openvla_ros.control.profile import (
        EXECUTOR_NODE_NAME,
        EXECUTOR_PARAMS,
        profile_from_params,
        read_ros_params_yaml,
    )

    path = find_robot_config(robot)
    names = {s.name for s in EXECUTOR_PARAMS}
    params = read_ros_params_yaml(path, EXECUTOR_NODE_NAME)
    return profile_from_params({k: v for k, v in params.items() if k in names})
