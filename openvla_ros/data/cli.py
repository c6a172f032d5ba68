# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Dataset subcommands: ``sim-demos``, ``record-demos``, ``bag-to-dataset``, ``dataset-info``.

Heavy imports (pybullet, rclpy, matplotlib) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the dataset subcommands."""
    _register_sim_demos(subparsers)


def _register_sim_demos(subparsers: Any) -> None:
    from openvla_ros.sim.tasks import task_names

    p = subparsers.add_parser(
        "sim-demos",
        help="scripted-expert demonstrations in the simulated arm -> LeRobot v3 dataset",
        description="Run the scripted expert on randomised scenes of a sim task and write the "
        "episodes (camera, measured pose, labels in the executor's convention) to a LeRobot v3 "
        "dataset with OpenVLA dataset_statistics.json. --transport direct steps the simulator "
        "in-process (fastest); ros drives sim_arm through its command topics and records with "
        "the live recorder node over DDS.",
    )
    p.add_argument("--task", required=True, choices=task_names(), help="sim task")
    p.add_argument("--episodes", type=int, default=50, help="episodes to run (default: 50)")
    p.add_argument("--seed", type=int, default=0,
                   help="scene seed of episode 0; episode k uses seed+k (default: 0)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True,
                   help="dataset directory (created, or appended to)")  # fmt: skip
    p.add_argument("--unnorm-key", default="",
                   help="dataset_statistics.json key (default: sim_<task>)")  # fmt: skip
    p.add_argument("--control-hz", type=float, default=5.0,
                   help="control/sampling rate in Hz (default: 5, as Bridge)")  # fmt: skip
    p.add_argument("--max-steps", type=int, default=60,
                   help="give up an episode after this many steps (default: 60)")  # fmt: skip
    p.add_argument("--image-size", type=int, default=224,
                   help="square camera image size in px (default: 224)")  # fmt: skip
    p.add_argument("--keep-failed", action="store_true",
                   help="also write failed episodes (success false in meta/episodes)")  # fmt: skip
    p.add_argument("--no-idle-filter", action="store_true",
                   help="keep idle (no-motion) frames")  # fmt: skip
    p.add_argument("--robot", default="sim",
                   help="robot profile for the gripper convention (default: sim)")  # fmt: skip
    p.set_defaults(func=_run_sim_demos)


def _run_sim_demos(args: argparse.Namespace) -> int:
    from openvla_ros.bag.evaluate import load_robot_profile
    from openvla_ros.errors import DatasetError
    from openvla_ros.sim.expert_demos import GenerateConfig, generate_demos

    if args.episodes < 1:
        raise DatasetError("--episodes must be at least 1")
    cfg = GenerateConfig(
        task=args.task,
        episodes=args.episodes,
        seed=args.seed,
        control_hz=args.control_hz,
        max_steps=args.max_steps,
        image_size=(args.image_size, args.image_size),
        unnorm_key=args.unnorm_key,
        keep_failed=args.keep_failed,
        filter_idle=not args.no_idle_filter,
    )

    def progress(k: int, run: Any) -> None:
        verdict = "success" if run.success else "FAILED"
        print(f"episode {k + 1}/{args.episodes} seed {run.scene.seed}: {verdict} in "
              f"{run.steps} steps", flush=True)  # fmt: skip

    summary = generate_demos(cfg, args.out, load_robot_profile(args.robot), progress)
    print(json.dumps(summary, indent=2))
    return 0 if summary["episodes_written"] > 0 else 1
