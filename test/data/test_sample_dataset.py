# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The committed sample dataset (data/sim_reach_colour) is what its documented command makes:

    openvla-ros sim-demos --task reach_colour --episodes 50 --seed 0 --out data/sim_reach_colour

Read with plain pyarrow; episode 0 is regenerated with the same settings and compared.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from openvla_ros.bag.evaluate import load_robot_profile
from openvla_ros.sim.expert_demos import GenerateConfig, generate_demos
from openvla_ros.sim.tasks import sample_scene
from test.conftest import REPO

SAMPLE = REPO / "data" / "sim_reach_colour"


def test_sample_dataset_layout_and_instructions() -> None:
    info = json.loads((SAMPLE / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 50
    episodes = pq.read_table(SAMPLE / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["tasks"][0] for e in episodes] == [
        sample_scene("reach_colour", k).instruction for k in range(50)
    ]
    assert all(e["success"] for e in episodes)
    assert sum(e["length"] for e in episodes) == info["total_frames"]
    stats = json.loads((SAMPLE / "dataset_statistics.json").read_text())
    assert stats["sim_reach_colour"]["num_trajectories"] == 50
    assert stats["sim_reach_colour"]["num_transitions"] == info["total_frames"]


@pytest.mark.slow
def test_sample_episode_0_is_reproduced_by_the_documented_command(tmp_path: Path) -> None:
    generate_demos(GenerateConfig("reach_colour", 1, seed=0), tmp_path / "again",
                   load_robot_profile("sim"))  # fmt: skip
    committed = pq.read_table(SAMPLE / "data/chunk-000/file-000.parquet")
    fresh = pq.read_table(tmp_path / "again/data/chunk-000/file-000.parquet")
    for column in ("action", "observation.state", "timestamp"):
        np.testing.assert_allclose(
            np.asarray(fresh.column(column).to_pylist(), dtype=np.float64),
            np.asarray(committed.column(column).to_pylist(), dtype=np.float64),
            atol=1e-5,
            err_msg=f"{column}: sim defaults changed? regenerate the sample (docstring command)",
        )
