# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The dataset subcommands' wiring: flags reach the generator and the recorder config."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from openvla_ros.cli import build_parser, main
from openvla_ros.data.cli import _recorder_params
from openvla_ros.data.recorder_config import config_from_params
from openvla_ros.errors import ConfigError


def test_sim_demos_writes_the_requested_episodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    code = main(["sim-demos", "--task", "reach_cube", "--episodes", "2", "--seed", "5",
                 "--out", str(out), "--unnorm-key", "my_key", "--image-size", "64"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.split("\n", 2)[-1])
    assert summary["episodes_written"] == 2 and summary["expert_success_rate"] == 1.0
    info = json.loads((out / "meta/info.json").read_text())
    assert info["features"]["observation.images.primary"]["shape"] == [64, 64, 3]
    assert list(json.loads((out / "dataset_statistics.json").read_text())) == ["my_key"]


def test_sim_demos_refuses_direct_only_flags_with_ros(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["sim-demos", "--task", "reach_cube", "--episodes", "1", "--out",
                 str(tmp_path / "x"), "--transport", "ros", "--workers", "2"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "drop --robot, --image-size, --keep-failed, --no-idle-filter, --perturb-prob, " \
        "--every-colour, --colour-order, --redirect-after and --workers" in err  # fmt: skip
    assert main(["sim-demos", "--task", "reach_cube", "--episodes", "1", "--out",
                 str(tmp_path / "y"), "--bag", str(tmp_path / "b")]) == 2  # fmt: skip
    z = str(tmp_path / "z")
    assert main(["sim-demos", "--task", "reach_cube", "--episodes", "1", "--out", z,
                 "--transport", "ros", "--perturb-prob", "0.2"]) == 2  # fmt: skip
    assert not (tmp_path / "z").exists()
    assert main(["sim-demos", "--task", "reach_colour", "--episodes", "3", "--out", z,
                 "--transport", "ros", "--every-colour"]) == 2  # fmt: skip
    assert main(["sim-demos", "--task", "reach_colour", "--episodes", "3", "--out", z,
                 "--transport", "ros", "--colour-order", "by_y"]) == 2  # fmt: skip
    # One cube has no other colour to instruct: refused before anything is written.
    assert main(["sim-demos", "--task", "reach_cube", "--episodes", "3", "--out", z,
                 "--every-colour"]) == 2  # fmt: skip
    assert "all three cubes" in capsys.readouterr().err
    assert main(["sim-demos", "--task", "reach_cube", "--episodes", "3", "--out", z,
                 "--colour-order", "by_y"]) == 2  # fmt: skip
    assert "colour_order 'by_y' needs a task with all three cubes" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()


def _recorder_args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["record-demos", "--out", "/tmp/unused", *flags])


def test_record_flags_map_onto_the_recorder_parameters() -> None:
    args = _recorder_args("--robot", "franka", "--gripper-topic", "none", "--camera-topic",
                          "/cam/compressed", "--control-hz", "10", "--keep-idle",
                          "--stale-drop", "6")  # fmt: skip
    config, types = config_from_params(_recorder_params(args))
    assert config.profile.base_frame == "fr3_link0"
    assert config.topics.pose == "/franka_robot_state_broadcaster/current_pose"
    assert config.topics.gripper == "" and config.topics.camera == "/cam/compressed"
    assert types["/cam/compressed"] == "sensor_msgs/msg/CompressedImage"
    assert (config.control_hz, config.drop_factor, config.filter_idle) == (10.0, 6.0, False)
    with pytest.raises(ConfigError, match="must not exceed"):
        config_from_params(_recorder_params(_recorder_args("--stale-warn", "5", "--stale-drop",
                                                           "3")))  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--control-hz", "0"), "'control_hz' = 0.0: 0 is below the minimum 0.5"),  # was: 1/0
        (("--control-hz", "-3"), "'control_hz' = -3.0"),  # was: every instruction rejected
        (("--stale-warn", "0.1"), "'stale_warn_factor' = 0.1"),
    ],
)
def test_recorder_flags_are_range_checked_like_the_node_parameters(flags, message) -> None:
    # The recorder node's declared ranges (docs/datasets.md: control_hz [0.5, 50], factors
    # [1, 100]) hold for the CLIs too: a clear ConfigError before any bag is read.
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_params(_recorder_params(_recorder_args(*flags)))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--control-hz", "0"), "'control_hz' = 0.0: 0 is below the minimum 0.5"),  # was: 1/0
        (("--max-steps", "0"), "--max-steps and --workers must be at least 1"),  # was: exit 1
        (("--workers", "0"), "--max-steps and --workers must be at least 1"),  # was: ran as 1
        (("--perturb-prob", "1.0"), "perturbation probability must be in [0, 1)"),
        (("--perturb-prob", "nan"), "perturbation probability must be in [0, 1)"),
        (("--perturb-prob", "0.2", "--perturb-m", "-0.01"), "sizes finite and >= 0"),
        (("--perturb-prob", "0.2", "--perturb-m", "inf"), "sizes finite and >= 0"),
        (("--redirect-after", "2"), "needs a task with all three cubes (got 2 on 'reach_cube')"),
        # (a later --task overrides the first)
        (("--task", "reach_colour", "--redirect-after", "-1"), "redirect_after must be >= 0"),
        (("--task", "pick_colour", "--redirect-after", "-5"), "(got -5 on 'pick_colour')"),
    ],
)
def test_sim_demos_refuses_rates_and_counts_out_of_range(
    flags, message, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    code = main(["sim-demos", "--task", "reach_cube", "--episodes", "1", "--out", str(out),
                 *flags])  # fmt: skip
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
    assert not out.exists()  # refused before the simulator or the writer started


@pytest.mark.parametrize("value", ["abc", "1.5", "", "nan", "1e3"])
def test_sim_demos_refuses_a_redirect_count_that_is_not_a_whole_number(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    with pytest.raises(SystemExit) as stop:  # argparse's usage error
        main(["sim-demos", "--task", "reach_colour", "--episodes", "1", "--out", str(out),
              "--redirect-after", value])  # fmt: skip
    assert stop.value.code == 2
    assert "--redirect-after: invalid int value" in capsys.readouterr().err
    assert not out.exists()
