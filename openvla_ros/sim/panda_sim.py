# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""A Franka Panda in PyBullet: Cartesian targets in, end-effector pose and camera frames out.

Pure simulation (no rclpy) so the physics, the inverse kinematics and the camera can be tested
and benchmarked without a ROS graph; :mod:`openvla_ros.nodes.sim_arm_node` is the thin ROS
adapter. Headless (PyBullet DIRECT + TinyRenderer), deterministic for a given seed.

Frames: the robot base ``panda_link0`` sits at the world origin with identity orientation, so
world and base coincide; every pose in and out of this module is in ``panda_link0``. The
end-effector is ``panda_grasptarget`` (the TCP between the finger tips), as OpenVLA's deltas
refer to the gripper tip. Quaternions are ``(x, y, z, w)``, as in ``geometry_msgs``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from openvla_ros.control import se3
from openvla_ros.errors import OpenVLARosError
from openvla_ros.sim.tasks import COLOUR_RGBA, DEFAULT_CUBE_SIZE_M, CubeSpec, Scene, SimState

__all__ = [
    "ARM_JOINT_NAMES",
    "BASE_FRAME",
    "EE_LINK",
    "FINGER_JOINT_NAMES",
    "FINGER_OPEN_M",
    "HOME_POSITION",
    "HOME_QUATERNION",
    "REACH_MAX",
    "REACH_MIN",
    "PandaSim",
    "SimConfig",
    "SimError",
]

BASE_FRAME = "panda_link0"
EE_LINK = "panda_grasptarget"
#: Home TCP position (m, base frame): centre of the demo workspace, 25 cm above the table.
HOME_POSITION = (0.45, 0.0, 0.25)
#: Home TCP orientation: gripper pointing straight down (180 deg about base x).
HOME_QUATERNION = (1.0, 0.0, 0.0, 0.0)
#: The integrated / commanded target is kept inside this box (m): the arm cannot reach beyond it
#: and IK far outside the reach only twists the arm up. Safety limits are the executor's job;
#: this box is wider than any robot config's workspace so it never hides an executor bug.
REACH_MIN = (0.05, -0.75, 0.0)
REACH_MAX = (0.85, 0.75, 0.9)

#: Joint names as panda.urdf (and franka_ros2's joint_states) spell them.
ARM_JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINT_NAMES = ("panda_finger_joint1", "panda_finger_joint2")
#: Finger joint position when fully open (m, each finger).
FINGER_OPEN_M = 0.04
_ARM_JOINTS = tuple(range(7))
_FINGER_JOINTS = (9, 10)
_FINGER_MAX_M = 0.04  # each finger travels 0..4 cm (URDF limit): 8 cm total opening
# Franka's joint torque limits (N m) and a gentle finger force (N): the position controllers
# track with these, so the sim arm moves at plausible speeds instead of snapping.
_ARM_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
_FINGER_FORCE = 20.0
# A 'ready' configuration: elbow up, hand down; IK rest pose (null space) and start state.
_READY_JOINTS = (0.0, -0.4, 0.0, -2.2, 0.0, 1.8, 0.785)
# Legacy scenes (no task Scene given): the first num_objects of these, placed by the seed.
_CUBE_COLOURS = ("red", "green", "blue", "yellow")

Vec3 = npt.NDArray[np.float64]
Quat = npt.NDArray[np.float64]


class SimError(OpenVLARosError, ValueError):
    """A bad command or configuration for the simulated arm."""


@dataclass(frozen=True)
class SimConfig:
    """How the simulated scene is built.

    Attributes:
        seed: seeds the object placement (same seed, same scene, same trajectory).
        physics_hz: physics substep rate (Hz); PyBullet is tuned for 240.
        num_objects: coloured cubes on the table (0..4).
        cube_size_m: cube edge length (m).
        camera_eye: third-person camera position (m, base frame).
        camera_target: the point the camera looks at (m, base frame).
        camera_fov_deg: vertical field of view (deg).
    """

    seed: int = 0
    physics_hz: float = 240.0
    num_objects: int = 3
    cube_size_m: float = DEFAULT_CUBE_SIZE_M
    # Front-right, above the table, looking back at the arm (like BridgeData's third-person
    # view) and framing the cube area tightly: the table fills most of the 224 px frame, so
    # the cubes and the gripper cover several patches each (docs/sim.md, camera).
    camera_eye: tuple[float, float, float] = (1.05, 0.35, 0.65)
    camera_target: tuple[float, float, float] = (0.48, 0.0, 0.08)
    camera_fov_deg: float = 45.0

    def __post_init__(self) -> None:
        if not 10.0 <= self.physics_hz <= 2000.0:
            raise SimError(f"physics_hz {self.physics_hz} is outside [10, 2000] Hz")
        if not 0 <= self.num_objects <= len(_CUBE_COLOURS):
            raise SimError(f"num_objects {self.num_objects} is outside [0, {len(_CUBE_COLOURS)}]")


def _check_vec(name: str, value: npt.ArrayLike, n: int) -> npt.NDArray[np.float64]:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape != (n,):
        raise SimError(f"{name} must have {n} elements, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise SimError(f"{name} must be finite, got {arr.tolist()}")
    return arr


def normalize_quaternion(quat: npt.ArrayLike) -> Quat:
    """Return the unit quaternion ``(x, y, z, w)``; reject zero or non-finite ones."""
    q = _check_vec("quaternion", quat, 4)
    try:
        return se3.quat_normalize(q)
    except ValueError as exc:
        raise SimError(str(exc)) from exc


def quat_multiply(a: npt.ArrayLike, b: npt.ArrayLike) -> Quat:
    """Hamilton product ``a * b`` of ``(x, y, z, w)`` quaternions (:func:`se3.quat_multiply`)."""
    return se3.quat_multiply(
        np.asarray(a, dtype=np.float64).reshape(4), np.asarray(b, dtype=np.float64).reshape(4)
    )


def quat_from_rotvec(rotvec: npt.ArrayLike) -> Quat:
    """Quaternion ``(x, y, z, w)`` of a rotation vector (axis * angle, rad)."""
    v = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0])
    axis = v / angle
    return np.concatenate([axis * math.sin(angle / 2.0), [math.cos(angle / 2.0)]])


def quat_to_rotvec(quat: npt.ArrayLike) -> Vec3:
    """Rotation vector (axis * angle, rad, angle in [0, pi]) of a quaternion ``(x, y, z, w)``."""
    return se3.quat_to_rotvec(normalize_quaternion(quat))


class PandaSim:
    """Franka Panda on a table with coloured cubes, tracking Cartesian targets with IK.

    The arm holds a *target* TCP pose; :meth:`step` solves IK for it and drives the joint
    position controllers. :meth:`set_target_pose` replaces the target; :meth:`set_twist` makes
    :meth:`step` integrate it (base-frame linear m/s and angular rad/s, as MoveIt Servo does).

    Args:
        config: scene settings (seed, physics rate, objects, camera).
        scene: a task scene (:func:`openvla_ros.sim.tasks.sample_scene`) to put on the table
            instead of ``config.num_objects`` cubes placed by ``config.seed``.

    Raises:
        SimError: pybullet is missing or the configuration is invalid.
    """

    def __init__(self, config: SimConfig | None = None, scene: Scene | None = None) -> None:
        try:
            import pybullet
            import pybullet_data
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise SimError(
                "pybullet is not installed: pip install pybullet (see requirements.txt)"
            ) from exc
        self.config = config or SimConfig()
        self._p = pybullet
        # DIRECT: headless, no GUI thread, and one physics client per PandaSim (tests create many).
        self._cid = pybullet.connect(pybullet.DIRECT)
        p = self._p
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self._cid)
        p.setGravity(0.0, 0.0, -9.81, physicsClientId=self._cid)
        p.setTimeStep(1.0 / self.config.physics_hz, physicsClientId=self._cid)
        self._substep_s = 1.0 / self.config.physics_hz
        self._ik_every = max(1, round(self.config.physics_hz / 60.0))
        self.time_s = 0.0
        self._leftover_s = 0.0

        # The floor is the table top (z = 0 in panda_link0): the robot stands on it as a
        # Panda bolted to a bench does; a coloured slab under the workspace reads as a table.
        p.loadURDF("plane.urdf", [0.0, 0.0, -0.001], physicsClientId=self._cid)
        slab = p.createVisualShape(
            p.GEOM_BOX,
            halfExtents=[0.35, 0.45, 0.0005],
            rgbaColor=[0.72, 0.55, 0.38, 1.0],
            physicsClientId=self._cid,
        )
        p.createMultiBody(0.0, -1, slab, [0.5, 0.0, 0.0], physicsClientId=self._cid)
        self._robot = p.loadURDF(
            "franka_panda/panda.urdf",
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
            useFixedBase=True,
            flags=p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT,
            physicsClientId=self._cid,
        )
        self._ee = self._find_link(EE_LINK)
        info = [p.getJointInfo(self._robot, j, physicsClientId=self._cid) for j in _ARM_JOINTS]
        self._lower = [float(i[8]) for i in info]
        self._upper = [float(i[9]) for i in info]
        self._ranges = [u - lo for lo, u in zip(self._lower, self._upper, strict=True)]
        # Arm joints dominate IK; fingers are not part of the chain but IK reports them.
        self._damping = [0.01] * 7 + [1.0, 1.0]

        self.object_ids: list[int] = []
        self.object_colours: list[str] = []
        self._object_starts: list[tuple[Sequence[float], Sequence[float]]] = []
        self.scene: Scene | None = None
        if scene is None:
            self._spawn_objects()
        else:
            self._spawn_scene(scene)
        self._go_home()

    # --- scene --------------------------------------------------------------------------
    def _find_link(self, name: str) -> int:
        p = self._p
        for j in range(p.getNumJoints(self._robot, physicsClientId=self._cid)):
            if p.getJointInfo(self._robot, j, physicsClientId=self._cid)[12].decode() == name:
                return j
        raise SimError(f"link {name!r} not found in panda.urdf")  # pragma: no cover

    def _spawn_objects(self) -> None:
        rng = np.random.default_rng(self.config.seed)
        placed: list[npt.NDArray[np.float64]] = []
        for colour in _CUBE_COLOURS[: self.config.num_objects]:
            # Rejection-sample positions on the table in front of the arm, 8 cm apart, so the
            # cubes never overlap and stay out of the gripper's home column (x 0.45, y 0).
            for _ in range(1000):
                xy = rng.uniform([0.35, -0.25], [0.65, 0.25])
                far_home = np.hypot(xy[0] - HOME_POSITION[0], xy[1] - HOME_POSITION[1]) > 0.08
                if far_home and all(np.hypot(*(xy - o)) > 0.08 for o in placed):
                    break
            placed.append(xy)
            yaw = float(rng.uniform(-math.pi / 4, math.pi / 4))
            half = self.config.cube_size_m / 2.0
            self._create_cube(CubeSpec(colour, (float(xy[0]), float(xy[1]), half), yaw))

    def _spawn_scene(self, scene: Scene) -> None:
        if abs(scene.cube_size_m - self.config.cube_size_m) > 1e-9:
            raise SimError(
                f"scene cubes are {scene.cube_size_m} m but the sim's cube_size_m is "
                f"{self.config.cube_size_m} m: sample the scene with the sim's size"
            )
        for cube in scene.cubes:
            self._create_cube(cube)
        self.scene = scene

    def _create_cube(self, cube: CubeSpec) -> None:
        p = self._p
        half = self.config.cube_size_m / 2.0
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[half] * 3, physicsClientId=self._cid)
        vis = p.createVisualShape(
            p.GEOM_BOX,
            halfExtents=[half] * 3,
            rgbaColor=list(COLOUR_RGBA[cube.colour]),
            physicsClientId=self._cid,
        )
        body = p.createMultiBody(
            0.1,
            col,
            vis,
            list(cube.position),
            p.getQuaternionFromEuler([0.0, 0.0, cube.yaw]),
            physicsClientId=self._cid,
        )
        p.changeDynamics(body, -1, lateralFriction=1.0, physicsClientId=self._cid)
        self.object_ids.append(body)
        self.object_colours.append(cube.colour)
        self._object_starts.append(p.getBasePositionAndOrientation(body, physicsClientId=self._cid))

    def set_scene(self, scene: Scene) -> None:
        """Replace the cubes by ``scene``'s and put the arm home (gripper open, twist zero).

        Raises:
            SimError: the scene's cube size is not this sim's.
        """
        for body in self.object_ids:
            self._p.removeBody(body, physicsClientId=self._cid)
        self.object_ids, self.object_colours, self._object_starts = [], [], []
        self.scene = None
        self._spawn_scene(scene)
        self._go_home()

    def _go_home(self) -> None:
        p = self._p
        for j, q in zip(_ARM_JOINTS, _READY_JOINTS, strict=True):
            p.resetJointState(self._robot, j, q, physicsClientId=self._cid)
        for j in _FINGER_JOINTS:
            p.resetJointState(self._robot, j, _FINGER_MAX_M, physicsClientId=self._cid)
        # IK starts from the current joints: a few solve-and-reset rounds land exactly on home.
        home_p = np.array(HOME_POSITION)
        home_q = np.array(HOME_QUATERNION)
        for _ in range(20):
            joints = self._solve_ik(home_p, home_q)
            for j, q in zip(_ARM_JOINTS, joints, strict=True):
                p.resetJointState(self._robot, j, q, physicsClientId=self._cid)
        self._target_pos = home_p.copy()
        self._target_quat = home_q.copy()
        self._twist_lin = np.zeros(3)
        self._twist_ang = np.zeros(3)
        self._gripper = 1.0
        self._apply_joint_targets()
        self._apply_gripper()

    def reset(self) -> None:
        """Put the arm back home (gripper open, twist zero) and the cubes where the seed
        placed them; simulated time keeps running."""
        p = self._p
        for body, (pos, orn) in zip(self.object_ids, self._object_starts, strict=True):
            p.resetBasePositionAndOrientation(body, pos, orn, physicsClientId=self._cid)
            p.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=self._cid)
        self._go_home()

    # --- commands -----------------------------------------------------------------------
    def set_target_pose(self, position: Sequence[float], quaternion: Sequence[float]) -> None:
        """Track TCP pose ``position`` (m) / ``quaternion`` (x, y, z, w) in ``panda_link0``.

        The position is kept inside :data:`REACH_MIN`..:data:`REACH_MAX` (what the arm can
        physically reach); the quaternion is normalised.

        Raises:
            SimError: non-finite values, wrong lengths or a zero quaternion.
        """
        pos = _check_vec("position", position, 3)
        quat = normalize_quaternion(quaternion)
        self._target_pos = np.clip(pos, REACH_MIN, REACH_MAX)
        self._target_quat = quat

    def set_twist(self, linear: Sequence[float], angular: Sequence[float]) -> None:
        """Integrate the target at ``linear`` (m/s) and ``angular`` (rad/s), both in the base
        frame, on every :meth:`step` until replaced (zero twist holds the target).

        Raises:
            SimError: non-finite values or wrong lengths.
        """
        self._twist_lin = _check_vec("linear", linear, 3)
        self._twist_ang = _check_vec("angular", angular, 3)

    def set_gripper(self, opening: float) -> None:
        """Command the gripper: ``opening`` 0 = closed .. 1 = open (8 cm), clamped into [0, 1].

        Raises:
            SimError: a non-finite value.
        """
        value = float(opening)
        if not math.isfinite(value):
            raise SimError(f"gripper opening must be finite, got {opening!r}")
        self._gripper = min(1.0, max(0.0, value))

    # --- stepping -----------------------------------------------------------------------
    def step(self, dt: float) -> None:
        """Advance the simulation by ``dt`` seconds of simulated time (whole physics substeps;
        a remainder carries over to the next call so time never drifts).

        Raises:
            SimError: ``dt`` negative, non-finite or above 10 s.
        """
        if not (math.isfinite(dt) and 0.0 <= dt <= 10.0):
            raise SimError(f"step dt must be in [0, 10] s, got {dt!r}")
        total = self._leftover_s + dt
        n = int(total / self._substep_s + 1e-9)
        self._leftover_s = total - n * self._substep_s
        if n == 0:
            return
        # Integrate the twist over the whole interval first, then track: Servo-like behaviour.
        span = n * self._substep_s
        if np.any(self._twist_lin) or np.any(self._twist_ang):
            pos = self._target_pos + self._twist_lin * span
            self._target_pos = np.clip(pos, REACH_MIN, REACH_MAX)
            dq = quat_from_rotvec(self._twist_ang * span)
            # Angular velocity in the base frame: the increment multiplies from the left.
            self._target_quat = normalize_quaternion(quat_multiply(dq, self._target_quat))
        self._apply_gripper()
        p = self._p
        for i in range(n):
            # PyBullet's IK is one damped-least-squares solve from the current joints: re-solve
            # at ~60 Hz as the arm moves so the measured pose converges onto the target.
            if i % self._ik_every == 0:
                self._apply_joint_targets()
            p.stepSimulation(physicsClientId=self._cid)
        self.time_s += span

    def _solve_ik(self, pos: Vec3, quat: Quat) -> list[float]:
        # Null-space IK (limits, ranges, rest pose) keeps the elbow up and away from the joint
        # limits; without it PyBullet's IK drifts into odd configurations over long episodes.
        sol = self._p.calculateInverseKinematics(
            self._robot,
            self._ee,
            pos.tolist(),
            quat.tolist(),
            lowerLimits=self._lower,
            upperLimits=self._upper,
            jointRanges=self._ranges,
            restPoses=list(_READY_JOINTS),
            jointDamping=self._damping,
            maxNumIterations=100,
            residualThreshold=1e-5,
            physicsClientId=self._cid,
        )
        return [
            min(hi, max(lo, float(q)))
            for q, lo, hi in zip(sol[:7], self._lower, self._upper, strict=True)
        ]

    def _apply_joint_targets(self) -> None:
        joints = self._solve_ik(self._target_pos, self._target_quat)
        self._p.setJointMotorControlArray(
            self._robot,
            list(_ARM_JOINTS),
            self._p.POSITION_CONTROL,
            targetPositions=joints,
            forces=list(_ARM_FORCES),
            physicsClientId=self._cid,
        )

    def _apply_gripper(self) -> None:
        width = self._gripper * _FINGER_MAX_M
        self._p.setJointMotorControlArray(
            self._robot,
            list(_FINGER_JOINTS),
            self._p.POSITION_CONTROL,
            targetPositions=[width, width],
            forces=[_FINGER_FORCE, _FINGER_FORCE],
            physicsClientId=self._cid,
        )

    # --- observations -------------------------------------------------------------------
    def ee_pose(self) -> tuple[Vec3, Quat]:
        """Measured TCP position (m) and quaternion (x, y, z, w) in ``panda_link0``."""
        state = self._p.getLinkState(
            self._robot, self._ee, computeForwardKinematics=True, physicsClientId=self._cid
        )
        return np.array(state[4], dtype=np.float64), np.array(state[5], dtype=np.float64)

    def target_pose(self) -> tuple[Vec3, Quat]:
        """The TCP pose the arm is tracking (m; x, y, z, w) in ``panda_link0``."""
        return self._target_pos.copy(), self._target_quat.copy()

    def gripper_opening(self) -> float:
        """Measured gripper opening, 0 = closed .. 1 = open."""
        widths = [
            self._p.getJointState(self._robot, j, physicsClientId=self._cid)[0]
            for j in _FINGER_JOINTS
        ]
        return float(np.clip(np.mean(widths) / _FINGER_MAX_M, 0.0, 1.0))

    def finger_positions(self) -> npt.NDArray[np.float64]:
        """The two finger joint positions (m, 0 = closed .. 0.04 = open each)."""
        return np.array(
            [
                self._p.getJointState(self._robot, j, physicsClientId=self._cid)[0]
                for j in _FINGER_JOINTS
            ]
        )

    def joint_positions(self) -> npt.NDArray[np.float64]:
        """The 7 arm joint angles (rad)."""
        return np.array(
            [
                self._p.getJointState(self._robot, j, physicsClientId=self._cid)[0]
                for j in _ARM_JOINTS
            ]
        )

    def object_positions(self) -> npt.NDArray[np.float64]:
        """Positions (m, base frame) of the cubes, one row each."""
        rows = [
            self._p.getBasePositionAndOrientation(b, physicsClientId=self._cid)[0]
            for b in self.object_ids
        ]
        return np.array(rows, dtype=np.float64).reshape(-1, 3)

    def task_state(self) -> SimState:
        """Privileged state for success detectors and the expert: TCP, gripper, cube poses."""
        p = self._p
        cubes: dict[str, tuple[float, float, float]] = {}
        yaws: dict[str, float] = {}
        for body, colour in zip(self.object_ids, self.object_colours, strict=True):
            pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=self._cid)
            cubes[colour] = (float(pos[0]), float(pos[1]), float(pos[2]))
            yaws[colour] = float(se3.quat_to_rpy(np.asarray(orn, dtype=np.float64))[2])
        ee = self.ee_pose()[0]
        return SimState(
            ee_position=(float(ee[0]), float(ee[1]), float(ee[2])),
            gripper_opening=self.gripper_opening(),
            cubes=cubes,
            cube_yaws=yaws,
            cube_size_m=self.config.cube_size_m,
        )

    def render(self, width: int = 224, height: int = 224) -> npt.NDArray[np.uint8]:
        """Render the third-person camera: an ``height x width x 3`` uint8 RGB array.

        Uses the CPU TinyRenderer (~29 ms at 224x224 on one core), so it runs headless.

        Raises:
            SimError: a size outside 16..2048 px.
        """
        if not (16 <= width <= 2048 and 16 <= height <= 2048):
            raise SimError(f"render size {width}x{height} is outside 16..2048 px")
        p = self._p
        cfg = self.config
        view = p.computeViewMatrix(
            list(cfg.camera_eye), list(cfg.camera_target), [0.0, 0.0, 1.0],
            physicsClientId=self._cid,
        )  # fmt: skip
        proj = p.computeProjectionMatrixFOV(
            cfg.camera_fov_deg, width / height, 0.05, 5.0, physicsClientId=self._cid
        )
        _, _, rgba, _, _ = p.getCameraImage(
            width,
            height,
            view,
            proj,
            renderer=p.ER_TINY_RENDERER,
            flags=p.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self._cid,
        )
        img = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)
        return np.ascontiguousarray(img[:, :, :3])

    # --- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        """Disconnect the physics client (idempotent)."""
        if self._cid >= 0:
            try:
                self._p.disconnect(physicsClientId=self._cid)
            finally:
                self._cid = -1

    def __enter__(self) -> PandaSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
