# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The ``openvla-ros`` command line: one entry, a subcommand per capability.

Each capability module exposes ``register(subparsers)`` that adds its subcommands and sets
``func`` on them; heavy imports (torch, rclpy, pybullet) happen inside the handlers so
``openvla-ros --help`` stays fast and works on machines without the model stack.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from openvla_ros.errors import OpenVLARosError

#: Modules that contribute subcommands, in help order.
SUBCOMMAND_MODULES = (
    "openvla_ros.model.cli",
    "openvla_ros.serving.cli",
    "openvla_ros.bag.cli",
    "openvla_ros.sim.cli",
    "openvla_ros.data.cli",
    "openvla_ros.train.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="openvla-ros", description="OpenVLA on ROS 2 robot arms: tools and servers."
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only tolerate a capability module that does not exist in this install.
            if exc.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (2 for a usage or input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level), format="[%(levelname)s] %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except OpenVLARosError as exc:
        print(f"openvla-ros {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
