# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``OPENVLA_ROS_REQUIRE_ROS=1`` (set by scripts/test.sh) turns ROS skips into failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test.conftest import REPO

MODULE_SKIP = """
import pytest
pytest.importorskip("openvla_ros_no_such_msg", reason="interfaces not built")

def test_never_runs():
    pass
"""
FUNCTION_SKIPS = """
import pytest

def test_needs_rclpy():
    pytest.skip("rclpy not installed (run scripts/setup_env.sh)")

def test_needs_a_gpu():
    pytest.skip("no GPU here")

def test_runs():
    pass
"""


def _pytest(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    (tmp_path / "test_function_skips.py").write_text(FUNCTION_SKIPS)
    env = {k: v for k, v in os.environ.items() if k != "OPENVLA_ROS_REQUIRE_ROS"}
    if require is not None:
        env["OPENVLA_ROS_REQUIRE_ROS"] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "test.ros_gate", "-p", "no:cacheprovider",
         "-q", "-rA", "--continue-on-collection-errors", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_ros_skips_fail_when_ros_is_required(tmp_path: Path) -> None:
    run = _pytest(tmp_path, "1")
    assert run.returncode == 1, run.stdout
    # The rclpy test fails, the module is a collection error, the GPU skip stays a skip.
    assert "1 failed, 1 passed, 1 skipped, 1 error" in run.stdout, run.stdout
    assert run.stdout.count("OPENVLA_ROS_REQUIRE_ROS=1 and this needs ROS") >= 2, run.stdout


def test_ros_skips_are_skips_otherwise(tmp_path: Path) -> None:
    for require in (None, "0"):
        run = _pytest(tmp_path, require)
        assert run.returncode == 0, run.stdout
        assert "1 passed, 3 skipped" in run.stdout, run.stdout


def test_the_test_command_requires_ros() -> None:
    script = (REPO / "scripts" / "test.sh").read_text()
    assert 'export OPENVLA_ROS_REQUIRE_ROS="${OPENVLA_ROS_REQUIRE_ROS:-1}"' in script
