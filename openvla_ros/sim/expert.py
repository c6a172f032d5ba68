# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""A scripted expert for the simulated tasks: privileged cube poses in, Cartesian targets out.

Pure (numpy + :mod:`openvla_ros.control.se3`): the expert node drives the simulated arm with it
over the same command topics a teleoperator's MoveIt Servo pose target would use, and the direct
generator (:mod:`openvla_ros.sim.expert_demos`) calls it in-process. One call per control step
(default 5 Hz): the target moves towards the current waypoint by at most ``max_step_m`` /
``max_step_rad`` (a proportional controller clipped like Bridge's step limits), so the measured
deltas the recorder labels are smooth and within the executor's clip.

Phases: reach tasks: ``approach`` (above the target cube, at ``hover_z_m``) -> ``descend`` (to
``reach_above_m`` over the top) -> ``done``. Pick: ``approach`` (also turning the hand to the
cube's yaw, modulo 90 deg) -> ``descend`` (TCP at the cube's centre) -> ``close`` (gripper shut for
``close_steps``) -> ``lift`` (to ``lift_z_m``) -> ``done``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from openvla_ros.control.se3 import Pose, quat_multiply, quat_to_rpy, rpy_to_quat
from openvla_ros.sim.tasks import TASKS, Scene, SimState, TaskConfig, is_success, reached_object

__all__ = ["ExpertCommand", "ExpertConfig", "ScriptedExpert"]


@dataclass(frozen=True)
class ExpertConfig:
    """Expert gains and waypoints (m, rad, steps)."""

    max_step_m: float = 0.03  #: per axis when ``per_axis`` (else on the step's length)
    max_step_rad: float = 0.2
    gain: float = 1.0  #: fraction of the remaining distance covered per step (before the clip)
    #: Clip each axis separately: labels are then mostly -max / 0 / +max per axis (a few action
    #: bins), which a small policy trained from scratch with OpenVLA's cross-entropy learns far
    #: faster than the continuum a clipped-length step gives (docs/sim.md, embedded default).
    per_axis: bool = True
    hover_z_m: float = 0.14
    reach_above_m: float = 0.025  #: TCP height above the cube top when reaching
    lift_z_m: float = 0.16
    arrive_m: float = 0.012  #: waypoint reached when the measured TCP is this close
    arrive_rad: float = 0.06
    close_steps: int = 4
    done_hold_steps: int = 1  #: steps the expert holds after success before it says done


@dataclass(frozen=True)
class ExpertCommand:
    """The expert's command for one step."""

    target: Pose
    gripper_opening: float  #: 0 = closed .. 1 = open
    phase: str
    done: bool


class ScriptedExpert:
    """State machine over the phases in the module doc; :meth:`reset` per episode."""

    def __init__(
        self,
        scene: Scene,
        start: Pose,
        config: ExpertConfig | None = None,
        task_config: TaskConfig | None = None,
    ) -> None:
        self.scene = scene
        self.config = config or ExpertConfig()
        self.task_config = task_config or TaskConfig()
        self._kind = TASKS[scene.task].kind
        self._down = np.asarray(start.orientation, dtype=np.float64)
        self.reset(start)

    def reset(self, start: Pose) -> None:
        """Start a new episode from the arm's current target pose."""
        self._target = start
        self._down = np.asarray(start.orientation, dtype=np.float64)
        self.phase = "approach"
        self._counter = 0
        self._gripper = 1.0
        self._success_steps = 0

    def redirect(self, scene: Scene) -> None:
        """A new instruction in the same episode: head for ``scene``'s target from the current
        target pose, phases from the approach again; the tool-down reference orientation (the
        pick's yaw is added to it) is kept."""
        self.scene = scene
        self.phase = "approach"
        self._counter = 0
        self._success_steps = 0

    def displace(self, target: Pose) -> None:
        """The arm was commanded to ``target`` by someone else (a perturbation): continue the
        current phase from there."""
        self._target = target

    def _goal(self, state: SimState) -> tuple[np.ndarray, np.ndarray]:
        colour = self.scene.target_colour
        cube = np.asarray(state.cubes[colour], dtype=np.float64)
        top = cube[2] + state.cube_size_m / 2.0
        quat = self._down
        if self._kind == "pick":
            # The fingers close along a face normal: turn by the cube's yaw folded to +-45 deg.
            yaw = state.cube_yaws.get(colour, 0.0)
            yaw = (yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4
            quat = quat_multiply(rpy_to_quat(0.0, 0.0, yaw), self._down)
        cfg = self.config
        if self.phase == "approach":
            return np.array([cube[0], cube[1], max(cfg.hover_z_m, top + 0.05)]), quat
        if self.phase == "descend":
            z = top + cfg.reach_above_m if self._kind == "reach" else cube[2]
            return np.array([cube[0], cube[1], z]), quat
        if self.phase == "lift":
            return np.array(
                [self._target.position[0], self._target.position[1], cfg.lift_z_m]
            ), quat
        return np.asarray(self._target.position), np.asarray(self._target.orientation)

    def _move_towards(self, goal_p: np.ndarray, goal_q: np.ndarray) -> Pose:
        cfg = self.config
        step = cfg.gain * (goal_p - self._target.position)
        if cfg.per_axis:
            step = np.clip(step, -cfg.max_step_m, cfg.max_step_m)
        else:
            norm = float(np.linalg.norm(step))
            if norm > cfg.max_step_m:
                step *= cfg.max_step_m / norm
        # Rotation: the base-frame rpy of goal * target^-1, scaled and clipped per axis.
        q_err = quat_multiply(goal_q, _conj(self._target.orientation))
        rpy = quat_to_rpy(q_err / np.linalg.norm(q_err)) * cfg.gain
        rpy = np.clip(rpy, -cfg.max_step_rad, cfg.max_step_rad)
        q_new = quat_multiply(rpy_to_quat(*rpy), self._target.orientation)
        return Pose(self._target.position + step, q_new)

    def _arrived(
        self, state: SimState, goal_p: np.ndarray, goal_q: np.ndarray, measured_q: np.ndarray
    ) -> bool:
        cfg = self.config
        close = np.linalg.norm(np.asarray(state.ee_position) - goal_p) <= cfg.arrive_m
        d = abs(float(np.dot(goal_q, measured_q)))
        return bool(close and 2.0 * math.acos(min(1.0, d)) <= cfg.arrive_rad)

    def step(self, state: SimState, measured_quat: np.ndarray) -> ExpertCommand:
        """The next command given the current privileged state and the measured TCP orientation."""
        succeeded = is_success(self.scene, state, self.task_config)
        if succeeded:
            self._success_steps += 1
            if self._success_steps > self.config.done_hold_steps:
                self.phase = "done"
        goal_p, goal_q = self._goal(state)
        if self.phase in ("approach", "descend", "lift") and self._arrived(
            state, goal_p, goal_q, np.asarray(measured_quat, dtype=np.float64)
        ):
            self.phase = {
                "approach": "descend",
                "descend": "close" if self._kind == "pick" else "hold",
                "lift": "hold",
            }[self.phase]
            goal_p, goal_q = self._goal(state)
        if self.phase == "close":
            self._gripper = 0.0
            self._counter += 1
            if self._counter >= self.config.close_steps:
                self.phase = "lift"
                goal_p, goal_q = self._goal(state)
        if self.phase in ("approach", "descend", "lift"):
            self._target = self._move_towards(goal_p, goal_q)
        return ExpertCommand(self._target, self._gripper, self.phase, self.phase == "done")

    def reached(self, state: SimState) -> str | None:
        """Which cube the TCP is at (for confusion tables)."""
        return reached_object(state, self.task_config)


def _conj(q: np.ndarray) -> np.ndarray:
    return np.array([-q[0], -q[1], -q[2], q[3]], dtype=np.float64)
