# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The dataset and sim-task layers are pure: importing them loads neither rclpy nor torch."""

from __future__ import annotations

import subprocess
import sys

PURE = ["openvla_ros.data.lerobot", "openvla_ros.data.statistics", "openvla_ros.data.labels",
        "openvla_ros.data.alignment", "openvla_ros.data.recorder", "openvla_ros.data.messages",
        "openvla_ros.data.recorder_config", "openvla_ros.data.bag_convert",
        "openvla_ros.data.info", "openvla_ros.data.cli", "openvla_ros.sim.tasks",
        "openvla_ros.sim.expert", "openvla_ros.sim.expert_demos"]  # fmt: skip


def test_pure_modules_import_no_rclpy_and_no_torch() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in PURE)
        + "print(sorted(m for m in ('rclpy', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
