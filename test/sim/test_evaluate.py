# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Evaluation bookkeeping: Wilson intervals, confusion tables, summaries, results.json, pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openvla_ros.sim.evaluate import (
    NONE_REACHED,
    EpisodeResult,
    EvalError,
    confusion_table,
    format_report,
    summarise,
    wilson_interval,
    write_episode_pictures,
    write_results,
)


def _ep(i: int, target: str, reached: str | None, success: bool, task: str = "reach_colour",
        steps: int = 10) -> EpisodeResult:  # fmt: skip
    return EpisodeResult(
        index=i,
        task=task,
        seed=100 + i,
        instruction=f"reach the {target} cube",
        target_colour=target,
        success=success,
        steps=steps,
        steps_to_success=steps if success else None,
        reached=reached,
        end_reason="success" if success else "step_limit",
        outcomes={"executed": steps - 1, "clipped": 1},
        clips={"step_xyz": 1},
    )


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        # Hand-computed from the Wilson score formula with z = 1.96 (e.g. Newcombe 1998,
        # table I: 81/263 -> 0.2553-0.3662; 0/10 -> 0-0.2775; 10/10 -> 0.7225-1).
        (81, 263, 0.2553, 0.3662),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (48, 60, 0.6822, 0.8817),  # by hand: centre 0.78194, half-width 0.09977
    ],
)
def test_wilson_interval_matches_published_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=6e-4)


def test_wilson_interval_rejects_impossible_counts() -> None:
    with pytest.raises(EvalError):
        wilson_interval(5, 4)
    with pytest.raises(EvalError):
        wilson_interval(-1, 4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_confusion_counts_first_reached_cube_per_instructed_colour() -> None:
    results = [
        _ep(0, "red", "red", True),
        _ep(1, "red", "green", False),
        _ep(2, "green", None, False),
        _ep(3, "blue", "blue", True),
        _ep(4, "blue", "red", False),
    ]
    table = confusion_table(results, ("red", "green", "blue"))
    assert table == {
        "red": {"red": 1, "green": 1, "blue": 0, NONE_REACHED: 0},
        "green": {"red": 0, "green": 0, "blue": 0, NONE_REACHED: 1},
        "blue": {"red": 1, "green": 0, "blue": 1, NONE_REACHED: 0},
    }


def test_summary_per_task_rates_steps_safety_and_wrong_cube_rate() -> None:
    results = [
        _ep(0, "red", "red", True, steps=6),
        _ep(1, "green", "red", False, steps=40),
        _ep(2, "blue", "blue", True, steps=10),
        _ep(3, "red", "red", True, task="reach_cube", steps=8),
    ]
    summary = summarise(results, wall_s=36.0)
    colour = summary["tasks"]["reach_colour"]
    assert colour["episodes"] == 3 and colour["successes"] == 2
    assert colour["success_rate"] == pytest.approx(2 / 3)
    assert colour["mean_steps_to_success"] == pytest.approx(8.0)
    assert colour["wrong_cube_rate"] == pytest.approx(1 / 3)
    assert colour["end_reasons"] == {"success": 2, "step_limit": 1, "timeout": 0}
    assert colour["clips"]["step_xyz"] == 3 and colour["outcomes"]["clipped"] == 3
    # A single-colour task has no confusion table.
    assert summary["tasks"]["reach_cube"]["confusion"] is None
    assert summary["episodes_per_hour"] == pytest.approx(400.0)
    text = format_report(summary)
    assert "2/3 = 66.7 %" in text and "400 episodes/hour" in text


def test_episode_result_refuses_inconsistent_success() -> None:
    with pytest.raises(EvalError):
        EpisodeResult(0, "reach_cube", 1, "reach the cube", "red", True, 5, None)
    with pytest.raises(EvalError):
        EpisodeResult(0, "reach_cube", 1, "reach the cube", "red", False, 5, None,
                      end_reason="bored")  # fmt: skip


def test_results_json_and_pictures_read_back(tmp_path: Path) -> None:
    results = [_ep(0, "red", "red", True), _ep(1, "blue", None, False)]
    summary = summarise(results)
    path = write_results(tmp_path, {"task": "reach_colour"}, results, summary)
    doc = json.loads(path.read_text())
    assert doc["config"]["task"] == "reach_colour"
    assert [e["seed"] for e in doc["episodes"]] == [100, 101]
    assert doc["summary"]["tasks"]["reach_colour"]["successes"] == 1
    frames = [np.full((32, 40, 3), 20 * i, dtype=np.uint8) for i in range(12)]
    png, gif = write_episode_pictures(tmp_path, "ep", frames, strip_frames=4, caption="ok")
    strip = np.asarray(Image.open(png).convert("RGB"))
    assert strip.shape == (32 + 18, 4 * 40, 3)
    # Evenly spaced frames 0, 4, 7, 11 (rounded linspace) side by side.
    assert [int(strip[5, 40 * j + 5, 0]) for j in range(4)] == [0, 80, 140, 220]
    with Image.open(gif) as anim:
        assert anim.n_frames == 12
    assert write_episode_pictures(tmp_path, "none", []) == []


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[]", "1" * 5000, "[" * 100_000 + "]" * 100_000, '{"seed": 1}',
     '{"success": true}', "null"],
)  # fmt: skip
def test_task_state_garbage_is_a_clear_error(text: str) -> None:
    # The harness, the demo and the sim expert all parse task_state with this: garbage on the
    # topic (a huge int, nesting deeper than the recursion limit) must never escape as
    # anything but EvalError, which each of them logs and ignores.
    from openvla_ros.sim.evaluate import EvalError, parse_task_state

    with pytest.raises(EvalError, match="task_state"):
        parse_task_state(text)


def test_task_state_parses_what_the_sim_sends() -> None:
    from openvla_ros.sim.evaluate import parse_task_state
    from openvla_ros.sim.tasks import sample_scene

    scene = sample_scene("reach_colour", 5)
    payload = {**scene.to_dict(), "success": False, "reached": None, "step": 1}
    assert parse_task_state(json.dumps(payload)) == payload
