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
    _register_record(subparsers)
    _register_bag(subparsers)
    _register_info(subparsers)


def _add_recorder_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by record-demos and bag-to-dataset (the recorder's parameters)."""
    p.add_argument("--out", type=Path, required=True,
                   help="dataset directory (created, or appended to)")  # fmt: skip
    p.add_argument("--robot", default="sim",
                   help="sim, franka, widowx, or a params .yaml (default: sim)")  # fmt: skip
    p.add_argument("--camera-topic", default="", help="camera topic (default: robot preset)")
    p.add_argument("--pose-topic", default="", help="EE PoseStamped topic (default: preset)")
    p.add_argument(
        "--gripper-topic",
        default="",
        help="finger JointState topic, 'none': no gripper (default: preset)",
    )
    p.add_argument("--instruction-topic", default="/instruction",
                   help="instruction topic (default: /instruction)")  # fmt: skip
    p.add_argument("--control-hz", type=float, default=5.0,
                   help="sampling / label rate in Hz (default: 5)")  # fmt: skip
    p.add_argument("--stale-warn", type=float, default=2.0,
                   help="warn past this many sample intervals stale (default: 2)")  # fmt: skip
    p.add_argument("--stale-drop", type=float, default=4.0,
                   help="drop frames past this many sample intervals (default: 4)")  # fmt: skip
    p.add_argument("--keep-idle", action="store_true", help="keep idle (no-motion) frames")
    p.add_argument("--unnorm-key", default="",
                   help="dataset_statistics.json key (default: the directory name)")  # fmt: skip


def _recorder_params(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "out": str(args.out),
        "robot": args.robot,
        "camera_topic": args.camera_topic,
        "pose_topic": args.pose_topic,
        "gripper_topic": args.gripper_topic,
        "instruction_topic": args.instruction_topic,
        "control_hz": args.control_hz,
        "stale_warn_factor": args.stale_warn,
        "stale_drop_factor": args.stale_drop,
        "filter_idle": not args.keep_idle,
        "unnorm_key": args.unnorm_key,
    }


def _register_record(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "record-demos",
        help="record teleoperated demonstrations from live topics into a LeRobot v3 dataset",
        description="Run the recorder node (openvla_recorder) until Ctrl-C: camera, measured EE "
        "pose, gripper joint state and /instruction in; one episode per instruction (or "
        "~/start, ~/stop with success true/false, ~/discard); each episode is written when it "
        "ends. Ctrl-C mid-episode discards only that episode.",
    )
    _add_recorder_flags(p)
    p.set_defaults(func=_run_record)


def _run_record(args: argparse.Namespace) -> int:
    from openvla_ros.nodes.recorder_node import main as recorder_main

    ros_args = ["openvla-ros-record-demos", "--ros-args"]
    for key, value in _recorder_params(args).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        ros_args += ["-p", f"{key}:={text if text else chr(39) * 2}"]
    return recorder_main(ros_args)


def _register_bag(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bag-to-dataset",
        help="convert rosbag2 demonstrations into a LeRobot v3 dataset (recorder's mapping)",
        description="Feed bags through the live recorder's core: same topics, alignment, "
        "labels and filters. Episodes come from the recorder's /openvla_recorder/episodes "
        "events when recorded (same frames as the live dataset), else from /instruction.",
    )
    p.add_argument("bags", nargs="+", type=Path, help="rosbag2 directories, in order")
    _add_recorder_flags(p)
    p.set_defaults(func=_run_bag)


def _run_bag(args: argparse.Namespace) -> int:
    from openvla_ros.data.bag_convert import bag_to_dataset
    from openvla_ros.data.recorder_config import config_from_params

    config, _ = config_from_params(_recorder_params(args))
    summary = bag_to_dataset(args.bags, config)
    print(json.dumps(summary, indent=2))
    return 0 if summary["episodes_written"] > 0 else 1


def _register_info(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dataset-info",
        help="summary, action histograms, trajectories and a contact sheet of a dataset",
        description="Print episodes, frames, instructions, outcomes, idle/staleness counts and "
        "action ranges; write action_histograms.png, trajectories.png and contact_sheet.png "
        "(first and last frame of each episode).",
    )
    p.add_argument("dataset", type=Path, help="dataset directory")
    p.add_argument("--plots", type=Path, default=None,
                   help="plots directory (default: <dataset>_info next to it)")  # fmt: skip
    p.add_argument("--no-plots", action="store_true", help="only print the summary")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from openvla_ros.data.info import format_summary, summarize, write_plots
    from openvla_ros.data.lerobot import DemoDataset

    ds = DemoDataset(args.dataset)
    summary = summarize(ds)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    if not args.no_plots:
        out = args.plots or args.dataset.parent / f"{args.dataset.name}_info"
        for path in write_plots(ds, out):
            print(f"wrote {path}")
    return 0


def _register_sim_demos(subparsers: Any) -> None:
    from openvla_ros.sim.tasks import COLOUR_ORDERS, task_names

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
    p.add_argument("--workers", type=int, default=1,
                   help="direct: simulator processes, one per free core (default: 1)")  # fmt: skip
    p.add_argument("--transport", choices=("direct", "ros"), default="direct",
                   help="direct: in-process (fastest); ros: sim_arm + sim_expert + recorder "
                   "processes over DDS (default: direct)")  # fmt: skip
    p.add_argument("--bag", type=Path, default=None,
                   help="ros transport: also record a rosbag2 of the run here")  # fmt: skip
    p.add_argument("--perturb-prob", type=float, default=0.0,
                   help="direct: probability per approach/descent step of a random "
                   "displacement that the expert then recovers from; those steps are not "
                   "written (DART-style; default: 0 = clean demos)")  # fmt: skip
    p.add_argument("--perturb-m", type=float, default=0.05,
                   help="direct: largest displacement per axis in metres "
                   "(default: 0.05)")  # fmt: skip
    p.add_argument("--every-colour", action="store_true",
                   help="direct, colour tasks: run each scene layout once per colour "
                   "(episodes 3i, 3i+1, 3i+2 share seed+i and instruct red, green, blue), so "
                   "the instruction is all that tells them apart (default: off)")  # fmt: skip
    p.add_argument("--colour-order", choices=COLOUR_ORDERS, default="random",
                   help="direct, colour tasks: random (the tasks' layouts), or by_y: red, "
                   "green, blue in order of increasing y (m, base frame), a curriculum layout "
                   "in which the colour word alone says on which side the target is "
                   "(default: random)")  # fmt: skip
    p.add_argument("--redirect-after", type=int, default=0, metavar="K",
                   help="direct, colour tasks: the expert first heads for one of the other "
                   "cubes for 1..K steps (drawn per scene seed; not written), then for the "
                   "instructed one, so each episode starts on the way to the wrong cube: what "
                   "eval-sim --redirect-after asks of a policy (default: 0 = off)")  # fmt: skip
    p.set_defaults(func=_run_sim_demos)


def _check_control_hz(hz: float) -> None:
    """``--control-hz`` within the recorder's declared range (its ``control_hz`` spec)."""
    from openvla_ros.data.recorder_config import RECORDER_PARAMS
    from openvla_ros.paramspec import validate

    validate(next(s for s in RECORDER_PARAMS if s.name == "control_hz"), hz)


def _run_sim_demos(args: argparse.Namespace) -> int:
    from openvla_ros.bag.evaluate import load_robot_profile
    from openvla_ros.errors import DatasetError
    from openvla_ros.sim.expert_demos import GenerateConfig, Perturbation, generate_demos
    from openvla_ros.sim.tasks import TaskConfig

    if args.episodes < 1:
        raise DatasetError("--episodes must be at least 1")
    if args.max_steps < 1 or args.workers < 1:
        raise DatasetError("--max-steps and --workers must be at least 1")
    _check_control_hz(args.control_hz)
    if args.transport == "ros":
        return _run_sim_demos_ros(args)
    if args.bag is not None:
        raise DatasetError("--bag needs --transport ros")
    try:
        perturbation = Perturbation(prob=args.perturb_prob, max_m=args.perturb_m)
    except ValueError as exc:
        raise DatasetError(f"--perturb-prob/--perturb-m: {exc}") from None
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
        workers=args.workers,
        perturbation=perturbation if perturbation.prob > 0.0 else None,
        every_colour=args.every_colour,
        task_config=TaskConfig(colour_order=args.colour_order),
        redirect_after=args.redirect_after,
    )

    def progress(k: int, run: Any) -> None:
        verdict = "success" if run.success else "FAILED"
        print(f"episode {k + 1}/{args.episodes} seed {run.scene.seed}: {verdict} in "
              f"{run.steps} steps", flush=True)  # fmt: skip

    summary = generate_demos(cfg, args.out, load_robot_profile(args.robot), progress)
    print(json.dumps(summary, indent=2))
    return 0 if summary["episodes_written"] > 0 else 1


def _run_sim_demos_ros(args: argparse.Namespace) -> int:
    from openvla_ros.errors import DatasetError
    from openvla_ros.nodes.sim_demos_runner import RosDemoConfig, run_ros_demos

    custom = (args.image_size != 224 or args.keep_failed or args.no_idle_filter
              or args.perturb_prob != 0.0 or args.every_colour
              or args.colour_order != "random" or args.redirect_after)  # fmt: skip
    if args.robot != "sim" or custom or args.workers != 1:
        raise DatasetError(
            "--transport ros records with the recorder node's defaults: drop --robot, "
            "--image-size, --keep-failed, --no-idle-filter, --perturb-prob, --every-colour, "
            "--colour-order, --redirect-after and --workers "
            "(or use --transport direct)"
        )
    summary = run_ros_demos(
        RosDemoConfig(task=args.task, episodes=args.episodes, out=args.out, seed=args.seed,
                      max_steps=args.max_steps, control_hz=args.control_hz,
                      unnorm_key=args.unnorm_key, bag=args.bag)
    )  # fmt: skip
    print(json.dumps(summary, indent=2))
    return 0 if summary["episodes_written"] > 0 else 1
