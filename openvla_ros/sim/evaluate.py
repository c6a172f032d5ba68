# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Closed-loop evaluation bookkeeping: episodes -> success rates, intervals, confusion tables.

Pure Python + numpy (+ Pillow for the pictures): no rclpy, no torch. The ROS side
(:mod:`openvla_ros.nodes.eval_harness`) runs the episodes through the real graph and hands each
one over as an :class:`EpisodeResult`; everything a lab reads afterwards (``results.json``, the
per-task table, the colour confusion table, the per-episode strips and GIFs) is computed here
from those records, so it is tested without a graph.

Success is never inferred from the policy's output: :attr:`EpisodeResult.success` and
:attr:`EpisodeResult.reached` come from the simulator's ``~/task_state`` (its detectors in
:mod:`openvla_ros.sim.tasks`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from openvla_ros.errors import OpenVLARosError

__all__ = [
    "CLIP_NAMES",
    "END_REASONS",
    "NONE_REACHED",
    "OUTCOME_NAMES",
    "EpisodeResult",
    "EvalError",
    "TaskSummary",
    "confusion_table",
    "format_report",
    "summarise",
    "wilson_interval",
    "write_episode_pictures",
    "write_results",
]

#: ExecutorState.outcome values by index (msg/ExecutorState.msg).
OUTCOME_NAMES = ("executed", "clipped", "held", "rejected", "estopped", "disabled", "stale", "old")
#: ExecutorState.clip_flags bits (msg/ExecutorState.msg).
CLIP_NAMES = {1: "step_xyz", 2: "step_rpy", 4: "workspace", 8: "tracking", 16: "gripper"}
#: Why an episode ended.
END_REASONS = ("success", "step_limit", "timeout")
#: Confusion-table column for episodes in which no cube was ever reached.
NONE_REACHED = "none"


class EvalError(OpenVLARosError):
    """The evaluation could not run (graph did not start, a node died, bad settings)."""


def parse_task_state(text: str) -> dict[str, Any]:
    """A ``/sim_arm/task_state`` message (JSON) -> dict with at least ``seed``, ``success``,
    ``reached``: the one parser of it (eval harness, demo, sim expert).

    Raises:
        EvalError: not JSON, or the fields are missing.
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting
        raise EvalError(f"task_state is not JSON: {exc}") from exc
    if not isinstance(data, dict) or "seed" not in data or "success" not in data:
        raise EvalError(f"task_state lacks seed/success: {text[:200]}")
    return data


@dataclass
class EpisodeResult:
    """One evaluated episode, as observed on the graph.

    Attributes:
        index: 0-based episode number within the run.
        task: task name (:data:`openvla_ros.sim.tasks.TASKS`).
        seed: the scene seed the simulator reported for this episode.
        instruction: the instruction sent on ``/instruction``.
        target_colour: the colour the instruction names (the cube a reach must reach).
        success: the sim's success detector fired during the episode.
        steps: policy steps (DeltaActions) the executor acted on in this episode.
        steps_to_success: policy steps until the detector first fired (``None``: never).
        reached: colour of the first cube the TCP reached (the sim's ``reached`` field), or
            ``None`` when no cube was ever reached.
        end_reason: one of :data:`END_REASONS`.
        duration_s: wall time from enabling the graph to the end of the episode (s).
        outcomes: executor outcomes of this episode's actions by name (:data:`OUTCOME_NAMES`).
        clips: safety-filter clips of this episode's actions by kind (:data:`CLIP_NAMES`).
        final_ee: TCP position at the end (m, base frame), from ``~/task_state``.
        redirected_from: with ``--redirect-after``, the colour first instructed (then
            ``instruction``/``target_colour``/``reached``/``success`` are of the colour named
            at ``redirect_step``); ``None`` when the episode was not redirected.
        redirect_step: policy steps before the new instruction was sent.
    """

    index: int
    task: str
    seed: int
    instruction: str
    target_colour: str
    success: bool
    steps: int
    steps_to_success: int | None = None
    reached: str | None = None
    end_reason: str = "step_limit"
    duration_s: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    clips: dict[str, int] = field(default_factory=dict)
    final_ee: list[float] = field(default_factory=list)
    redirected_from: str | None = None
    redirect_step: int | None = None

    def __post_init__(self) -> None:
        if self.end_reason not in END_REASONS:
            raise EvalError(f"end_reason {self.end_reason!r} is not one of {END_REASONS}")
        if self.success != (self.steps_to_success is not None):
            raise EvalError("steps_to_success must be set exactly when the episode succeeded")


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % for the default ``z``).

    Preferred over the normal approximation: it stays inside [0, 1] and is honest at 0/n and
    n/n, which closed-loop success rates often are.

    Raises:
        EvalError: ``n`` < 0 or ``successes`` outside [0, n].
    """
    if n < 0 or not 0 <= successes <= n:
        raise EvalError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def confusion_table(
    results: Sequence[EpisodeResult], colours: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Instructed colour (rows) x first reached cube (columns, plus :data:`NONE_REACHED`)."""
    columns = [*colours, NONE_REACHED]
    table = {row: dict.fromkeys(columns, 0) for row in colours}
    for r in results:
        if r.target_colour not in table:
            continue
        col = r.reached if r.reached is not None and r.reached in colours else NONE_REACHED
        table[r.target_colour][col] += 1
    return table


@dataclass
class TaskSummary:
    """Per-task aggregate of a run."""

    task: str
    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    mean_steps_to_success: float | None
    end_reasons: dict[str, int]
    outcomes: dict[str, int]
    clips: dict[str, int]
    confusion: dict[str, dict[str, int]] | None
    wrong_cube_rate: float | None


def _task_summary(task: str, rs: Sequence[EpisodeResult], colours: Sequence[str]) -> TaskSummary:
    k = sum(r.success for r in rs)
    steps = [r.steps_to_success for r in rs if r.steps_to_success is not None]
    outcomes: Counter[str] = Counter()
    clips: Counter[str] = Counter()
    for r in rs:
        outcomes.update(r.outcomes)
        clips.update(r.clips)
    coloured = len({r.target_colour for r in rs}) > 1 or task != "reach_cube"
    confusion = confusion_table(rs, colours) if coloured else None
    wrong = None
    if confusion is not None:
        # Episodes whose first reached cube was not the instructed one.
        wrong_n = sum(
            n for row, cols in confusion.items() for col, n in cols.items()
            if col not in (row, NONE_REACHED)
        )  # fmt: skip
        wrong = wrong_n / len(rs) if rs else None
    return TaskSummary(
        task=task,
        episodes=len(rs),
        successes=k,
        success_rate=k / len(rs) if rs else 0.0,
        ci95=wilson_interval(k, len(rs)),
        mean_steps_to_success=float(np.mean(steps)) if steps else None,
        end_reasons={reason: sum(r.end_reason == reason for r in rs) for reason in END_REASONS},
        outcomes={name: outcomes.get(name, 0) for name in OUTCOME_NAMES},
        clips={name: clips.get(name, 0) for name in CLIP_NAMES.values()},
        confusion=confusion,
        wrong_cube_rate=wrong,
    )


def summarise(
    results: Sequence[EpisodeResult],
    colours: Sequence[str] = ("red", "green", "blue"),
    wall_s: float | None = None,
) -> dict[str, Any]:
    """Aggregate episodes per task (rate, Wilson 95 % interval, steps, safety, confusion).

    Args:
        results: the episodes, any tasks mixed.
        colours: confusion-table rows/columns.
        wall_s: total wall time of the run (s), for episodes per hour.
    """
    tasks = sorted({r.task for r in results})
    per_task = {t: asdict(_task_summary(t, [r for r in results if r.task == t], colours))
                for t in tasks}  # fmt: skip
    out: dict[str, Any] = {"episodes": len(results), "tasks": per_task}
    if wall_s is not None and wall_s > 0:
        out["wall_s"] = wall_s
        out["episodes_per_hour"] = 3600.0 * len(results) / wall_s
    return out


def write_results(
    out_dir: Path,
    config: Mapping[str, Any],
    results: Sequence[EpisodeResult],
    summary: Mapping[str, Any],
) -> Path:
    """Write ``results.json``: the run's settings, the summary and every episode."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    doc = {
        "config": dict(config),
        "summary": dict(summary),
        "episodes": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def _pick(frames: Sequence[npt.NDArray[np.uint8]], n: int) -> list[npt.NDArray[np.uint8]]:
    idx = np.linspace(0, len(frames) - 1, num=min(n, len(frames))).round().astype(int)
    return [frames[i] for i in idx]


def write_episode_pictures(
    out_dir: Path,
    name: str,
    frames: Sequence[npt.NDArray[np.uint8]],
    *,
    strip_frames: int = 8,
    gif_fps: float = 5.0,
    caption: str = "",
) -> list[Path]:
    """A strip (``<name>.png``, up to ``strip_frames`` evenly spaced frames side by side) and a
    GIF of every frame (``<name>.gif``) of one episode; nothing when there are no frames.

    ``caption`` (e.g. "SUCCESS step 7") is drawn on a bar under the strip.
    """
    from PIL import Image, ImageDraw

    if not frames:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    strip = np.concatenate(_pick(frames, strip_frames), axis=1)
    img = Image.fromarray(strip)
    if caption:
        bar = Image.new("RGB", (img.width, 18), (255, 255, 255))
        ImageDraw.Draw(bar).text((4, 3), caption, fill=(0, 0, 0))
        canvas = Image.new("RGB", (img.width, img.height + bar.height))
        canvas.paste(img, (0, 0))
        canvas.paste(bar, (0, img.height))
        img = canvas
    png = out_dir / f"{name}.png"
    img.save(png)
    gif = out_dir / f"{name}.gif"
    pil = [Image.fromarray(f) for f in frames]
    pil[0].save(gif, save_all=True, append_images=pil[1:], duration=int(1000 / gif_fps), loop=0)
    return [png, gif]


def _rate(s: Mapping[str, Any]) -> str:
    lo, hi = s["ci95"]
    return (f"{s['successes']}/{s['episodes']} = {100 * s['success_rate']:.1f} % "
            f"(95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)")  # fmt: skip


def format_report(summary: Mapping[str, Any]) -> str:
    """The human-readable table printed at the end of ``openvla-ros eval-sim``."""
    lines = []
    for task, s in summary["tasks"].items():
        steps = s["mean_steps_to_success"]
        lines.append(f"{task}: success {_rate(s)}; mean steps to success "
                     + (f"{steps:.1f}" if steps is not None else "-"))  # fmt: skip
        lines.append("  ended: " + ", ".join(f"{k} {v}" for k, v in s["end_reasons"].items()))
        lines.append("  executor: " + ", ".join(f"{k} {v}" for k, v in s["outcomes"].items() if v)
                     + "; clipped: " + (", ".join(f"{k} {v}" for k, v in s["clips"].items() if v)
                                        or "none"))  # fmt: skip
        if s["confusion"]:
            cols = list(next(iter(s["confusion"].values())))
            lines.append("  instructed \\ reached first: " + " ".join(f"{c:>6}" for c in cols))
            for row, counts in s["confusion"].items():
                lines.append(f"  {row:>26}: " + " ".join(f"{counts[c]:>6}" for c in cols))
    if "episodes_per_hour" in summary:
        lines.append(f"{summary['episodes']} episodes in {summary['wall_s']:.0f} s "
                     f"({summary['episodes_per_hour']:.0f} episodes/hour)")  # fmt: skip
    return "\n".join(lines)
