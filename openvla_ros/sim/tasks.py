# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Simulated tasks: randomised cube scenes, instructions and success detectors (pure numpy).

Tasks (:data:`TASKS`):

* ``reach_cube``: one cube (colour drawn at random), "reach the cube".
* ``reach_colour``: red, green and blue cubes, "reach the {colour} cube".
* ``pick_colour``: red, green and blue cubes, "pick up the {colour} cube".

Success is computed from simulator state (:class:`SimState`), never from images:

* reached (:func:`reached_object`): the TCP is within :attr:`TaskConfig.reach_xy_m`
  horizontally of a cube's centre and at most :attr:`TaskConfig.reach_height_m` above its top;
  a reach task succeeds when the reached cube is the target.
* picked: the target cube's centre is :attr:`TaskConfig.lift_m` above its resting height and
  within :attr:`TaskConfig.hold_m` of the TCP (it is in the hand, not knocked into the air).

All positions are metres in the robot base frame (``panda_link0``), z up, table top at z = 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from openvla_ros.errors import ConfigError

__all__ = [
    "COLOURS",
    "COLOUR_ORDERS",
    "COLOUR_RGBA",
    "DEFAULT_CUBE_SIZE_M",
    "TASKS",
    "CubeSpec",
    "Scene",
    "SimState",
    "TaskConfig",
    "TaskSpec",
    "is_success",
    "reached_object",
    "sample_scene",
    "task_names",
]

#: Default cube edge (m). 6 cm: about two 14-px patches or one 32-px patch in the default
#: 224 px camera view, so a small policy trained from scratch can see it; still well inside
#: the Panda hand's 8 cm opening.
DEFAULT_CUBE_SIZE_M = 0.06
#: Cube colours of the tasks, in a fixed order.
COLOURS: tuple[str, ...] = ("red", "green", "blue")
#: :attr:`TaskConfig.colour_order` choices.
COLOUR_ORDERS: tuple[str, ...] = ("random", "by_y")
#: Render colour of each cube (RGBA in [0, 1]); saturated so a small policy can tell them apart.
COLOUR_RGBA: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.15, 0.15, 1.0),
    "green": (0.15, 0.7, 0.2, 1.0),
    "blue": (0.15, 0.3, 0.9, 1.0),
    "yellow": (0.95, 0.8, 0.1, 1.0),
}


@dataclass(frozen=True)
class TaskSpec:
    """What a task puts on the table and asks for."""

    name: str
    template: str  #: instruction; ``{colour}`` is replaced by the target colour
    all_colours: bool  #: all three cubes present (else only the target)
    kind: str  #: "reach" or "pick"

    def instruction(self, colour: str) -> str:
        """The instruction naming ``colour``'s cube (the one wording every part uses)."""
        return self.template.format(colour=colour)


TASKS: dict[str, TaskSpec] = {
    "reach_cube": TaskSpec("reach_cube", "reach the cube", False, "reach"),
    "reach_colour": TaskSpec("reach_colour", "reach the {colour} cube", True, "reach"),
    "pick_colour": TaskSpec("pick_colour", "pick up the {colour} cube", True, "pick"),
}


def task_names() -> list[str]:
    """The task names, for CLI choices and parameter docs."""
    return list(TASKS)


@dataclass(frozen=True)
class TaskConfig:
    """Scene sampling and success thresholds (m, rad); the cube size is the sim's
    (:attr:`SimConfig.cube_size_m`), passed to :func:`sample_scene`."""

    x_range_m: tuple[float, float] = (0.35, 0.62)
    y_range_m: tuple[float, float] = (-0.22, 0.22)
    min_separation_m: float = 0.11  #: centre to centre, so cubes and the gripper never overlap
    home_clearance_m: float = 0.06  #: keep cubes out of the gripper's home column
    home_xy_m: tuple[float, float] = (0.45, 0.0)
    max_yaw_rad: float = math.pi / 4
    #: which cube gets which colour: "random" (the tasks), or "by_y" (a curriculum layout:
    #: colours in :data:`COLOURS` order by increasing y, so the colour word alone hints on
    #: which side the target is; one-cube tasks ignore it; see docs/datasets.md)
    colour_order: str = "random"
    reach_xy_m: float = 0.03
    reach_height_m: float = 0.05
    lift_m: float = 0.05
    hold_m: float = 0.05


@dataclass(frozen=True)
class CubeSpec:
    """One cube: colour, resting position (m; z = centre) and yaw about z (rad)."""

    colour: str
    position: tuple[float, float, float]
    yaw: float = 0.0


@dataclass(frozen=True)
class Scene:
    """A randomised scene: the cubes, which one is meant, and the instruction."""

    task: str
    seed: int
    cubes: tuple[CubeSpec, ...]
    target_colour: str
    instruction: str
    cube_size_m: float = DEFAULT_CUBE_SIZE_M

    def cube(self, colour: str) -> CubeSpec:
        """The cube of ``colour``."""
        for c in self.cubes:
            if c.colour == colour:
                return c
        raise KeyError(colour)

    def with_target(self, colour: str) -> Scene:
        """The same layout with ``colour``'s cube instructed (contrastive demonstrations).

        Raises:
            ConfigError: no cube of ``colour`` in the scene.
        """
        if colour not in {c.colour for c in self.cubes}:
            raise ConfigError(f"no {colour!r} cube in this scene of {self.task}")
        return replace(self, target_colour=colour, instruction=TASKS[self.task].instruction(colour))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scene:
        """Inverse of :meth:`to_dict` (``~/task_state`` and ``~/reset_scene`` payloads)."""
        cubes = tuple(
            CubeSpec(str(c["colour"]), tuple(float(v) for v in c["position"]),  # type: ignore[arg-type]
                     float(c.get("yaw", 0.0)))
            for c in d["cubes"]
        )  # fmt: skip
        return cls(str(d["task"]), int(d["seed"]), cubes, str(d["target_colour"]),
                   str(d["instruction"]), float(d.get("cube_size_m", 0.04)))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``~/task_state``, ``~/reset_scene`` answers, dataset metadata)."""
        return {
            "task": self.task,
            "seed": self.seed,
            "instruction": self.instruction,
            "target_colour": self.target_colour,
            "cube_size_m": self.cube_size_m,
            "cubes": [
                {"colour": c.colour, "position": list(c.position), "yaw": c.yaw} for c in self.cubes
            ],
        }


@dataclass(frozen=True)
class SimState:
    """What the success detectors read from the simulator.

    Attributes:
        ee_position: TCP position (m).
        gripper_opening: 0 = closed .. 1 = open.
        cubes: colour -> current cube centre (m).
        cube_yaws: colour -> current yaw about z (rad).
        cube_size_m: cube edge length (m).
    """

    ee_position: tuple[float, float, float]
    gripper_opening: float
    cubes: Mapping[str, tuple[float, float, float]]
    cube_yaws: Mapping[str, float] = field(default_factory=dict)
    cube_size_m: float = DEFAULT_CUBE_SIZE_M


def sample_scene(
    task: str,
    rng: np.random.Generator | int,
    cube_size_m: float = DEFAULT_CUBE_SIZE_M,
    config: TaskConfig | None = None,
) -> Scene:
    """Draw a scene of ``task``: target colour, cube poses (non-overlapping), instruction.

    Args:
        task: a key of :data:`TASKS`.
        rng: a generator, or a seed (the scene's ``seed`` field is then that seed; -1 else).
        cube_size_m: cube edge (m; the sim's ``SimConfig.cube_size_m``).
        config: sampling ranges and thresholds.

    Raises:
        ConfigError: an unknown task, a cube size the hand cannot grasp, or a workspace too
            small for the cubes.
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {task_names()}")
    if not 0.01 <= cube_size_m <= 0.07:
        raise ConfigError(
            f"cube_size_m {cube_size_m} is outside [0.01, 0.07] m (the Panda hand opens 8 cm)"
        )
    cfg = config or TaskConfig()
    if cfg.min_separation_m < cube_size_m * math.sqrt(2) + 0.02:
        raise ConfigError(
            f"min_separation_m {cfg.min_separation_m} m must exceed the cube diagonal "
            f"({cube_size_m * math.sqrt(2):.3f} m) + 2 cm, or cubes could touch"
        )
    seed = int(rng) if isinstance(rng, int | np.integer) else -1
    gen = np.random.default_rng(rng) if seed >= 0 else rng
    assert isinstance(gen, np.random.Generator)
    spec = TASKS[task]
    target = COLOURS[int(gen.integers(len(COLOURS)))]
    colours = list(COLOURS) if spec.all_colours else [target]
    if cfg.colour_order not in COLOUR_ORDERS:
        raise ConfigError(f"colour_order {cfg.colour_order!r}: choose one of {COLOUR_ORDERS}")
    placed = _place(gen, len(colours), cfg)
    if cfg.colour_order == "by_y" and spec.all_colours:
        placed.sort(key=lambda xy: float(xy[1]))
    half = cube_size_m / 2.0
    cubes = tuple(
        CubeSpec(
            colour,
            (float(xy[0]), float(xy[1]), half),
            float(gen.uniform(-cfg.max_yaw_rad, cfg.max_yaw_rad)),
        )
        for colour, xy in zip(colours, placed, strict=True)
    )
    return Scene(task, seed, cubes, target, spec.instruction(target), cube_size_m)


def instructed_colour(task: str, text: str) -> str | None:
    """The colour ``text`` instructs in ``task`` (its template with that colour; case, runs of
    white space and one final ``.``, ``?`` or ``!`` ignored), or None: another text, or a task
    without colours."""
    spec = TASKS.get(task)
    if spec is None or not spec.all_colours:
        return None
    words = " ".join(text.split()).lower()
    if words[-1:] in (".", "?", "!"):
        words = words[:-1].rstrip()
    for colour in COLOURS:
        if words == spec.instruction(colour):
            return colour
    return None


def _place(gen: np.random.Generator, n: int, cfg: TaskConfig) -> list[npt.NDArray[np.float64]]:
    lo = np.array([cfg.x_range_m[0], cfg.y_range_m[0]])
    hi = np.array([cfg.x_range_m[1], cfg.y_range_m[1]])
    home = np.array(cfg.home_xy_m)
    for _ in range(200):
        placed: list[npt.NDArray[np.float64]] = []
        for _ in range(100 * n):
            xy = gen.uniform(lo, hi)
            if np.linalg.norm(xy - home) < cfg.home_clearance_m:
                continue
            if all(np.linalg.norm(xy - o) >= cfg.min_separation_m for o in placed):
                placed.append(xy)
                if len(placed) == n:
                    return placed
    raise ConfigError(
        f"could not place {n} cubes {cfg.min_separation_m} m apart in x {cfg.x_range_m}, "
        f"y {cfg.y_range_m}: widen the ranges or shrink min_separation_m"
    )


def reached_object(state: SimState, config: TaskConfig | None = None) -> str | None:
    """The colour of the cube the TCP is at (see module doc), the nearest if several."""
    cfg = config or TaskConfig()
    ee = np.asarray(state.ee_position, dtype=np.float64)
    best: tuple[float, str] | None = None
    for colour, pos in state.cubes.items():
        c = np.asarray(pos, dtype=np.float64)
        horizontal = float(np.hypot(*(ee[:2] - c[:2])))
        above_top = float(ee[2] - (c[2] + state.cube_size_m / 2.0))
        if (
            horizontal <= cfg.reach_xy_m
            and above_top <= cfg.reach_height_m
            and (best is None or horizontal < best[0])
        ):
            best = (horizontal, colour)
    return None if best is None else best[1]


def is_lifted(scene: Scene, state: SimState, config: TaskConfig | None = None) -> bool:
    """The target cube is off the table by ``lift_m`` and held within ``hold_m`` of the TCP."""
    cfg = config or TaskConfig()
    pos = state.cubes.get(scene.target_colour)
    if pos is None:
        return False
    c = np.asarray(pos, dtype=np.float64)
    lifted = c[2] >= scene.cube_size_m / 2.0 + cfg.lift_m
    held = np.linalg.norm(c - np.asarray(state.ee_position)) <= cfg.hold_m
    return bool(lifted and held)


def is_success(scene: Scene, state: SimState, config: TaskConfig | None = None) -> bool:
    """Whether ``state`` solves ``scene`` (reach: the target is reached; pick: it is lifted)."""
    if TASKS[scene.task].kind == "pick":
        return is_lifted(scene, state, config)
    return reached_object(state, config) == scene.target_colour
