# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The README's run command works: `openvla-ros demo` drives the whole graph over DDS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("pybullet", reason="pybullet not installed")

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.mark.parametrize(
    ("mode", "command_type"), [("non_blocking", "pose"), ("blocking", "twist")]
)
def test_demo_runs_the_graph_and_writes_outputs(
    tmp_path: Path, mode: str, command_type: str
) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "openvla_ros.cli", "demo", "--out", str(out), "--steps", "4",
         "--mode", mode, "--command-type", command_type, "--timeout", "120"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    logs = "\n".join(p.read_text()[-2000:] for p in (out / "logs").glob("*.log"))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{logs}"
    # The per-step table: a header and one row per step.
    rows = [line for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 4, result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 4
    moved = summary["outcomes"]["executed"] + summary["outcomes"]["clipped"]
    assert moved >= 1, summary  # the executor commanded the arm (not all held or rejected)
    assert summary["latency_ms_median"] > 0
    strip = np.asarray(Image.open(out / "camera_strip.png"))
    assert strip.shape[0] == 224 and strip.shape[1] % 224 == 0
    assert strip.std() > 10  # a rendered scene, not a blank image
    assert (out / "trajectory.png").stat().st_size > 10_000
    assert (out / "steps.csv").read_text().count("\n") == 5
    # The sim's verdict on its default task scene (reach_cube, seed 1000000), from task_state.
    sim = summary["sim"]
    assert (sim["task"], sim["seed"], sim["instruction"]) == ("reach_cube", 1_000_000,
                                                              "reach the cube")  # fmt: skip
    from openvla_ros.sim.tasks import sample_scene

    assert sim["target_colour"] == sample_scene("reach_cube", 1_000_000).target_colour
    assert "sim: 'reach the cube':" in result.stdout


def test_the_demo_refuses_a_domain_where_a_graph_runs(tmp_path: Path) -> None:
    """A second demo (or an eval-sim) on the same ROS domain would drive the same simulator:
    the demo refuses before it starts or writes anything, naming the domain."""
    import rclpy

    from openvla_ros.sim.demo import DemoConfig, DemoError, refuse_a_running_graph, run_demo

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        squatter = rclpy.create_node("openvla_executor", context=ctx)
        with pytest.raises(DemoError):  # discovered (waits up to 10 s under load)
            refuse_a_running_graph(wait_s=10.0)
        out = tmp_path / "refused"
        with pytest.raises(DemoError, match="openvla_executor already running on ROS_DOMAIN_ID"):
            run_demo(DemoConfig(out_dir=out, steps=1))
        assert not out.exists()
        squatter.destroy_node()
    finally:
        ctx.try_shutdown()
