# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Expert demonstrations in-process (no ROS): the fast path for thousands of frames.

The same expert, labels and dataset writer as the ROS path (expert node -> sim_arm -> recorder),
stepping the simulator synchronously at the control rate: observe (camera + measured pose), ask
the expert, command the target, advance ``1 / control_hz`` of simulated time. Timestamps are
simulated time. Deterministic for a seed. :func:`measure_success` runs the expert without
rendering to measure its success rate per task.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from openvla_ros.control.profile import RobotProfile
from openvla_ros.control.se3 import Pose
from openvla_ros.data.labels import IdleFilter, idle_mask, transition_labels
from openvla_ros.data.lerobot import DatasetWriter, EpisodeRecord
from openvla_ros.errors import ConfigError
from openvla_ros.sim.expert import ExpertConfig, ScriptedExpert
from openvla_ros.sim.panda_sim import PandaSim, SimConfig
from openvla_ros.sim.tasks import (
    COLOURS,
    TASKS,
    Scene,
    TaskConfig,
    is_success,
    reached_object,
    sample_scene,
)

__all__ = [
    "EpisodeRun",
    "GenerateConfig",
    "Perturbation",
    "episode_record",
    "generate_demos",
    "measure_success",
    "run_expert_episode",
]

_log = logging.getLogger(__name__)


@dataclass
class EpisodeRun:
    """What one expert episode produced, before labelling (T observations)."""

    scene: Scene
    images: list[npt.NDArray[np.uint8]]
    poses: list[Pose]
    openings: list[float]  #: measured gripper opening per observation
    commands: list[float]  #: commanded gripper opening per observation
    stamps: list[float]  #: simulated time (s)
    success: bool
    reached: str | None
    steps: int
    perturbed: list[bool] = field(default_factory=list)  #: per transition: not the expert's
    #: with a redirect: the colour the expert headed for first, and for how many steps
    redirected_from: str | None = None
    redirect_steps: int = 0


@dataclass(frozen=True)
class Perturbation:
    """DART-style perturbations of the expert's demonstrations.

    With probability ``prob`` per step of the approach and descent, the arm is sent to the
    measured TCP position plus a uniform offset of up to ``max_m`` per axis instead of the
    expert's target; the expert continues from there. The perturbed transitions are dropped
    from the dataset (their labels are not the expert's), so the kept frames show the expert
    recovering from states its clean demonstrations never visit, which is where a policy that
    has drifted finds itself. Deterministic for a scene seed."""

    prob: float = 0.0
    max_m: float = 0.05
    min_z_m: float = 0.02  #: offsets never send the TCP below this height (the table is at 0)

    def __post_init__(self) -> None:
        sizes_ok = all(math.isfinite(v) and v >= 0.0 for v in (self.max_m, self.min_z_m))
        if not 0.0 <= self.prob < 1.0 or not sizes_ok:
            raise ValueError(
                f"perturbation probability must be in [0, 1) and sizes finite and >= 0 (m), "
                f"got prob {self.prob}, max_m {self.max_m}, min_z_m {self.min_z_m}"
            )


def run_expert_episode(
    sim: PandaSim,
    scene: Scene,
    *,
    control_hz: float = 5.0,
    max_steps: int = 60,
    render: bool = True,
    image_size: tuple[int, int] = (224, 224),
    expert_config: ExpertConfig | None = None,
    task_config: TaskConfig | None = None,
    perturbation: Perturbation | None = None,
    redirect_after: int = 0,
) -> EpisodeRun:
    """Put ``scene`` on the table and run the expert until it is done or ``max_steps``
    (with ``perturbation``: some steps are random displacements, marked in ``perturbed``).

    With ``redirect_after`` K > 0 (colour tasks), the expert first heads for one of the other
    cubes for 1..K steps (colour and count drawn from the scene seed; fewer when it is above
    that cube sooner), then for the instructed one from wherever the arm is; the first steps
    are marked in ``perturbed`` (not the instructed cube's labels), so the episode written
    starts on the way to the wrong cube.

    Raises:
        ConfigError: ``redirect_after`` on a task with one cube, or below 0.
    """
    rng = np.random.default_rng([scene.seed, 0x5EED])
    sim.set_scene(scene)
    sim.step(0.2)  # let the cubes settle on the table
    pos, quat = sim.target_pose()
    run = EpisodeRun(scene, [], [], [], [], [], False, None, 0)
    decoy: Scene | None = None  # the scene the expert heads for until the redirect
    if redirect_after:
        decoy, run.redirect_steps = _redirect(scene, redirect_after)
        run.redirected_from = decoy.target_colour
    expert = ScriptedExpert(decoy or scene, Pose(pos, quat), expert_config, task_config)
    for step in range(max_steps + 1):
        if decoy is not None and (step == run.redirect_steps or expert.phase != "approach"):
            # The new instruction (after the drawn steps, or sooner once the expert is above
            # the wrong cube: it never descends to it): the instructed cube from here.
            run.redirect_steps = step
            expert.redirect(scene)
            decoy = None
        ee_p, ee_q = sim.ee_pose()
        state = sim.task_state()
        run.poses.append(Pose(ee_p, ee_q))
        run.openings.append(state.gripper_opening)
        run.stamps.append(sim.time_s)
        cmd = expert.step(state, ee_q)
        run.commands.append(cmd.gripper_opening)
        if cmd.done or step == max_steps:
            break  # the last observation only closes the last label: no image needed
        if render:
            run.images.append(sim.render(*image_size))
        target = cmd.target
        kick = (
            perturbation is not None
            and perturbation.prob > 0.0
            and cmd.phase in ("approach", "descend")
            and rng.random() < perturbation.prob
        )
        if kick:
            assert perturbation is not None
            offset = rng.uniform(-perturbation.max_m, perturbation.max_m, 3)
            position = np.asarray(ee_p, dtype=np.float64) + offset
            position[2] = max(position[2], perturbation.min_z_m)
            target = Pose(position, cmd.target.orientation)
            expert.displace(target)
        run.perturbed.append(bool(kick) or step < run.redirect_steps)
        sim.set_target_pose(target.position.tolist(), target.orientation.tolist())
        sim.set_gripper(cmd.gripper_opening)
        sim.step(1.0 / control_hz)
        run.steps += 1
    final = sim.task_state()
    run.success = is_success(scene, final, task_config)
    run.reached = reached_object(final, task_config)
    return run


def _check_redirect(task: str, most: int) -> None:
    if most < 0 or not TASKS[task].all_colours:
        raise ConfigError(
            f"redirect_after must be >= 0 and needs a task with all three cubes "
            f"(got {most} on {task!r})"
        )


def _redirect(scene: Scene, most: int) -> tuple[Scene, int]:
    """The scene the expert heads for first in a redirected episode (another cube instructed)
    and for how many steps (1..``most``), drawn from the scene seed (its own stream: the
    perturbations' draws are unchanged)."""
    _check_redirect(scene.task, most)
    rng = np.random.default_rng([scene.seed, 0xD1CE])
    others = [c for c in COLOURS if c != scene.target_colour]
    decoy = others[int(rng.integers(len(others)))]
    return scene.with_target(decoy), int(rng.integers(1, most + 1))


def episode_record(
    run: EpisodeRun, profile: RobotProfile, idle: IdleFilter | None = None
) -> EpisodeRecord:
    """Label a run (last observation dropped); drop ``idle`` frames (counted in ``info``)."""
    # Gripper from the measured fingers, as the live recorder labels it (commands are kept in
    # the run only to check the two agree).
    actions, states = transition_labels(run.poses, run.openings, profile)
    n = len(actions)
    keep = ~idle_mask(actions, idle) if idle is not None else np.ones(n, dtype=bool)
    if not keep.any():
        keep[:] = True  # an all-idle episode stays whole; the recorder rejects such demos
    idle_dropped = int(n - keep.sum())
    perturbed = np.zeros(n, dtype=bool)
    perturbed[: len(run.perturbed)] = run.perturbed[:n]
    perturbed_dropped = int((keep & perturbed).sum())
    keep &= ~perturbed
    idx = np.flatnonzero(keep)
    return EpisodeRecord(
        instruction=run.scene.instruction,
        images=[run.images[i] for i in idx],
        states=states[idx],
        actions=actions[idx],
        timestamps=np.asarray(run.stamps, dtype=np.float64)[idx],
        success=run.success,
        info={
            "source": "sim_expert_direct",
            "scene": run.scene.to_dict(),
            "idle_frames_dropped": idle_dropped,
            "perturbed_frames_dropped": perturbed_dropped,
            "frames_before_filter": n,
            "reached": run.reached,
            "redirected_from": run.redirected_from,
            "redirect_steps": run.redirect_steps,
        },
    )


@dataclass
class GenerateConfig:
    """Settings of :func:`generate_demos`."""

    task: str
    episodes: int
    seed: int = 0
    control_hz: float = 5.0
    max_steps: int = 60
    image_size: tuple[int, int] = (224, 224)
    unnorm_key: str = ""
    keep_failed: bool = False
    filter_idle: bool = True
    sim_config: SimConfig = field(default_factory=SimConfig)
    workers: int = 1  #: simulator processes (rendering is the bottleneck: one per core)
    perturbation: Perturbation | None = None
    #: colour tasks: run each layout once per colour (episodes ``3i..3i+2`` share seed+i)
    every_colour: bool = False
    #: scene sampling (:class:`TaskConfig`; ``colour_order="by_y"`` for the curriculum layout)
    task_config: TaskConfig = field(default_factory=TaskConfig)
    #: colour tasks, 0 = off: the expert heads for another cube for 1..K steps first (not
    #: written), then for the instructed one (:func:`run_expert_episode`)
    redirect_after: int = 0


def generate_demos(
    cfg: GenerateConfig,
    out: Path,
    profile: RobotProfile,
    progress: Callable[[int, EpisodeRun], None] | None = None,
) -> dict[str, Any]:
    """Write ``cfg.episodes`` expert episodes (scenes from seeds ``seed, seed+1, ...``; with
    ``every_colour``, each seed's layout once per colour, the instruction naming each in turn).

    Failed episodes are skipped unless ``keep_failed`` (then written with success false).
    Returns a summary: episodes written, success rate, frames, frames/s, MB written.

    Raises:
        ConfigError: ``every_colour`` or a ``colour_order`` other than random on a task with
            one cube.
    """
    if cfg.every_colour and not TASKS[cfg.task].all_colours:
        raise ConfigError(f"every_colour needs a task with all three cubes, not {cfg.task!r}")
    if cfg.redirect_after:
        _check_redirect(cfg.task, cfg.redirect_after)
    if cfg.task_config.colour_order != "random" and not TASKS[cfg.task].all_colours:
        raise ConfigError(
            f"colour_order {cfg.task_config.colour_order!r} needs a task with all three cubes, "
            f"not {cfg.task!r}"
        )
    w, h = cfg.image_size
    writer = DatasetWriter(
        out,
        fps=cfg.control_hz,
        image_shape=(h, w, 3),
        robot_type="sim_panda",
        unnorm_key=cfg.unnorm_key or f"sim_{cfg.task}",
    )
    t0 = time.perf_counter()
    written = successes = frames = idle = perturbed = 0
    for k, run in enumerate(_runs(cfg)):
        successes += run.success
        if progress is not None:
            progress(k, run)
        if not run.success and not cfg.keep_failed:
            _log.warning("episode seed %d failed (%s): not written", run.scene.seed, run.reached)
            continue
        record = episode_record(run, profile, IdleFilter() if cfg.filter_idle else None)
        if not record.images:
            _log.warning("episode seed %d: every frame perturbed: not written", run.scene.seed)
            continue
        writer.add_episode(record)
        written += 1
        frames += len(record.images)
        idle += int(record.info["idle_frames_dropped"])
        perturbed += int(record.info["perturbed_frames_dropped"])
    elapsed = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    return {
        "task": cfg.task,
        "colour_order": cfg.task_config.colour_order,
        "episodes_run": cfg.episodes,
        "episodes_written": written,
        "expert_success_rate": successes / max(cfg.episodes, 1),
        "frames": frames,
        "idle_frames_dropped": idle,
        "perturbed_frames_dropped": perturbed,
        "seconds": elapsed,
        "frames_per_s": frames / elapsed if elapsed > 0 else 0.0,
        "dataset_mb": size / 1e6,
        "mb_per_episode": size / 1e6 / max(written, 1),
    }


def _runs(cfg: GenerateConfig) -> Iterator[EpisodeRun]:
    """Episode runs in seed order: in this process, or on ``cfg.workers`` processes (each
    with its own simulator; results come back in order, so the dataset is the same)."""
    jobs = [_job(cfg, k) for k in range(cfg.episodes)]
    if cfg.workers <= 1:
        with PandaSim(cfg.sim_config) as sim:
            for job in jobs:
                yield _run_job(job, sim)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    with ctx.Pool(cfg.workers, initializer=_worker_init, initargs=(cfg.sim_config,)) as pool:
        yield from pool.imap(_worker_run, jobs)


_WORKER_SIM: PandaSim | None = None


def _worker_init(sim_config: SimConfig) -> None:
    global _WORKER_SIM
    _WORKER_SIM = PandaSim(sim_config)


def _job(cfg: GenerateConfig, k: int) -> tuple[GenerateConfig, int, str | None]:
    """Episode ``k``: its scene seed and, with ``every_colour``, the colour it instructs."""
    if not cfg.every_colour:
        return cfg, cfg.seed + k, None
    return cfg, cfg.seed + k // len(COLOURS), COLOURS[k % len(COLOURS)]


def _worker_run(job: tuple[GenerateConfig, int, str | None]) -> EpisodeRun:
    assert _WORKER_SIM is not None
    return _run_job(job, _WORKER_SIM)


def _run_job(job: tuple[GenerateConfig, int, str | None], sim: PandaSim) -> EpisodeRun:
    cfg, seed, colour = job
    scene = sample_scene(cfg.task, seed, cfg.sim_config.cube_size_m, cfg.task_config)
    if colour is not None:
        scene = scene.with_target(colour)
    return run_expert_episode(sim, scene, control_hz=cfg.control_hz, max_steps=cfg.max_steps,
                              image_size=cfg.image_size, task_config=cfg.task_config,
                              perturbation=cfg.perturbation,
                              redirect_after=cfg.redirect_after)  # fmt: skip


def measure_success(
    task: str,
    episodes: int,
    seed: int = 0,
    sim_config: SimConfig | None = None,
    max_steps: int = 60,
) -> dict[str, Any]:
    """Expert success rate on ``episodes`` scenes of ``task`` (no rendering)."""
    cfg = sim_config or SimConfig()
    ok = 0
    failures: list[int] = []
    steps: list[int] = []
    with PandaSim(cfg) as sim:
        for k in range(episodes):
            scene = sample_scene(task, seed + k, cfg.cube_size_m)
            run = run_expert_episode(sim, scene, render=False, max_steps=max_steps)
            ok += run.success
            steps.append(run.steps)
            if not run.success:
                failures.append(scene.seed)
    return {
        "task": task,
        "episodes": episodes,
        "success_rate": ok / max(episodes, 1),
        "failed_seeds": failures,
        "mean_steps": float(np.mean(steps)) if steps else 0.0,
    }
