# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``openvla-ros demo``: the whole graph against the simulated arm (see :mod:`.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="run the whole graph (sim arm, policy, executor) for a fixed number of steps",
        description="Start the simulated Panda, the policy node (the shipped embedded default, "
        "data/embedded_default, unless --checkpoint is given; --checkpoint random: a small "
        "random one) and the executor over real DDS, enable them, publish "
        "an instruction and print a per-step table; writes steps.csv, camera_strip.png, "
        "trajectory.png and summary.json to --out.",
    )
    p.add_argument("--out", type=Path, default=Path("out/demo"),
                   help="output directory (default: out/demo)")  # fmt: skip
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="OpenVLA checkpoint directory, or 'random' for a small random one "
                   "(default: the shipped embedded default, data/embedded_default)")  # fmt: skip
    p.add_argument("--task", default="reach_cube",
                   help="sim task scene on the table (default: reach_cube: one cube, which the "
                   "embedded default reaches in 80 %% of held-out scenes; reach_colour: red, "
                   "green and blue cubes; '' for the plain seeded scene)")  # fmt: skip
    p.add_argument("--scene-seed", type=int, default=1_000_000,
                   help="seed of the scene (default: 1000000, not a training seed)")  # fmt: skip
    p.add_argument("--steps", type=int, default=20, help="policy steps to run (default: 20)")
    p.add_argument("--instruction", default="reach the cube",
                   help="instruction on /instruction (default: 'reach the cube')")  # fmt: skip
    p.add_argument("--mode", choices=("non_blocking", "blocking"), default="non_blocking",
                   help="control mode (default: non_blocking)")  # fmt: skip
    p.add_argument("--command-type", choices=("pose", "twist"), default="pose",
                   help="executor output: PoseStamped or TwistStamped (default: pose)")  # fmt: skip
    p.add_argument("--precision", default="fp32",
                   choices=("fp32", "bf16", "fp16", "int8", "int4"),
                   help="model precision (default: fp32, fastest on a CPU)")  # fmt: skip
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--policy", choices=("model", "scripted"), default="model",
                   help="model: OpenVLA; scripted: config/sim.yaml's fixed actions")  # fmt: skip
    p.add_argument("--timeout", type=float, default=240.0,
                   help="give up after this many seconds (default: 240)")  # fmt: skip
    p.set_defaults(func=_run)
    _register_eval(subparsers)


def _run(args: argparse.Namespace) -> int:
    from openvla_ros.sim.demo import DemoConfig, run_demo

    summary = run_demo(
        DemoConfig(
            out_dir=args.out,
            checkpoint=args.checkpoint,
            task=args.task,
            scene_seed=args.scene_seed,
            steps=args.steps,
            instruction=args.instruction,
            mode=args.mode,
            command_type=args.command_type,
            precision=args.precision,
            device=args.device,
            policy=args.policy,
            timeout_s=args.timeout,
        )
    )
    return 0 if summary["steps"] > 0 else 1


def _register_eval(subparsers: Any) -> None:
    from openvla_ros.sim.tasks import task_names

    e = subparsers.add_parser(
        "eval-sim",
        help="closed-loop success rate of a checkpoint through the ROS graph (simulated Panda)",
        description="Run N episodes of a sim task through the real graph (sim_arm, policy "
        "node, executor as separate processes over DDS): reset + randomise the scene between "
        "episodes, success from the simulator's detectors. Writes results.json (per-task "
        "success with a Wilson 95 %% interval, colour confusion table, steps, safety-filter "
        "counts, every episode) and a strip + GIF per episode to --out.",
    )
    e.add_argument("--checkpoint", default=None,
                   help="OpenVLA checkpoint directory, or 'random' for a small random one "
                   "(the floor); default: the shipped embedded default")  # fmt: skip
    e.add_argument("--remote", default="",
                   help="URL of an openvla-ros serve server instead of a local model")  # fmt: skip
    e.add_argument("--policy", choices=("model", "expert"), default="model",
                   help="model: OpenVLA; expert: the sim's scripted expert in the policy's "
                   "place, through the same executor (the ceiling)")  # fmt: skip
    e.add_argument("--task", choices=task_names(), default="reach_colour",
                   help="sim task (default: reach_colour)")  # fmt: skip
    e.add_argument("--episodes", type=int, default=20, help="episodes to run (default: 20)")
    e.add_argument("--seed", type=int, default=1_000_000,
                   help="scene seed of the first episode (default 1000000: held out from "
                   "demo seeds, which start at 0)")  # fmt: skip
    e.add_argument("--mode", choices=("non_blocking", "blocking"), default="non_blocking",
                   help="control mode (default: non_blocking)")  # fmt: skip
    e.add_argument("--command-type", choices=("pose", "twist"), default="pose",
                   help="executor output: PoseStamped or TwistStamped (default: pose)")  # fmt: skip
    e.add_argument("--max-steps", type=int, default=40,
                   help="policy steps per episode before it fails (default: 40)")  # fmt: skip
    e.add_argument("--episode-timeout", type=float, default=60.0,
                   help="wall-time limit per episode in s (default: 60)")  # fmt: skip
    e.add_argument("--unnorm-key", default="",
                   help="statistics key (default: the checkpoint's only key, else the "
                   "params file's)")  # fmt: skip
    e.add_argument("--params-file", type=Path, default=None,
                   help="extra ROS params YAML over config/sim.yaml, e.g. your robot's "
                   "executor limits (safety)")  # fmt: skip
    e.add_argument("--precision", default="fp32",
                   choices=("fp32", "bf16", "fp16", "int8", "int4"),
                   help="model precision (default: fp32, fastest on a CPU)")  # fmt: skip
    e.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    e.add_argument("--pictures", type=int, default=-1,
                   help="episodes with a strip + GIF, the first N (default -1: all)")  # fmt: skip
    e.add_argument("--out", type=Path, default=Path("out/eval"),
                   help="output directory (default: out/eval)")  # fmt: skip
    e.add_argument("--redirect-after", type=int, default=0,
                   help="colour tasks: after N policy steps instruct the next colour (red -> "
                   "green -> blue -> red); success is then reaching that cube (default 0: "
                   "off)")  # fmt: skip
    e.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from openvla_ros.nodes.eval_harness import EvalConfig, resolve_checkpoint, run_eval

    config = EvalConfig(
        out_dir=args.out,
        task=args.task,
        episodes=args.episodes,
        seed=args.seed,
        remote_url=args.remote,
        policy=args.policy,
        mode=args.mode,
        command_type=args.command_type,
        max_steps=args.max_steps,
        episode_timeout_s=args.episode_timeout,
        unnorm_key=args.unnorm_key,
        params_file=args.params_file,
        precision=args.precision,
        device=args.device,
        pictures=args.pictures,
        redirect_after=args.redirect_after,
    )
    checkpoint = None
    if args.policy == "model" and not args.remote:
        checkpoint = resolve_checkpoint(args.checkpoint, args.out)
    summary = run_eval(config, checkpoint)
    return 0 if summary["episodes"] == config.episodes else 1
