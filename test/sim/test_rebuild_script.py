# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The documented rebuild command of the embedded default runs end to end (in miniature).

``scripts/train_embedded_default.sh`` with every count and step number turned down: the same
commands, the background demonstrations with the stages waiting for them, the two parallel
evaluations. It asserts what each stage left behind, read back independently (pyarrow for
the datasets, the real loader for the model, the evaluations' results.json), and that the
shipped checkpoint is not touched without INSTALL=1.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (run scripts/setup_env.sh)")
pytest.importorskip("pybullet", reason="pybullet not installed")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = [pytest.mark.ros, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "train_embedded_default.sh"
SHIPPED = REPO / "data" / "embedded_default" / "model-00001-of-00001.safetensors"

#: Episode counts of the miniature run; each dataset is a superset of the one before.
COUNTS = {"DEMOS_CUBE": 18, "DEMOS_COLOUR": 9, "DEMOS_COLOUR_MORE": 2, "DART_CUBE": 2,
          "DART_COLOUR": 2, "CONTRAST_COLOUR": 3}  # fmt: skip
EXPECTED_EPISODES = {"demos_cube": 18, "demos_all": 27, "demos_big": 29, "demos_dart": 33,
                     "demos_c": 36}  # fmt: skip


def _episodes_read_back(dataset: Path) -> set[int]:
    """Episode indices in the dataset's parquet data, read with pyarrow (not our reader)."""
    files = sorted((dataset / "data").rglob("*.parquet"))
    assert files, dataset
    return {int(e) for f in files for e in pq.read_table(f, columns=["episode_index"])
            .column("episode_index").to_pylist()}  # fmt: skip


def test_the_rebuild_script_runs_every_stage(tmp_path: Path) -> None:
    work = tmp_path / "build"
    before = hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    env = dict(os.environ, **{k: str(v) for k, v in COUNTS.items()},
               STEPS1="2", STEPS2="2", STEPS3="2", STEPS4="2", STEPS5="2", EVAL_EPISODES="1",
               EVAL_DOMAIN=str(domain))  # fmt: skip
    env.pop("INSTALL", None)
    result = subprocess.run(["bash", str(SCRIPT), str(work)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    demos_log = (work / "demos.log").read_text() if (work / "demos.log").exists() else ""
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-3000:]}\n{demos_log}"
    # Every dataset, complete (no .tmp left), with the episodes of its stage and of all the
    # stages before it (a superset: later stages never lose earlier data).
    assert not list(work.glob("*.tmp"))
    previous: set[int] = set()
    for name, count in EXPECTED_EPISODES.items():
        episodes = _episodes_read_back(work / name)
        assert episodes == set(range(count)), (name, sorted(episodes))
        info = json.loads((work / name / "meta" / "info.json").read_text())
        assert info["total_episodes"] == count
        assert previous <= episodes
        previous = episodes
    # The background job made them in the order the stages need them.
    assert demos_log.index("+ reach_colour x 9") < demos_log.index("contrastive reach_colour x 3")
    # Five fine-tunes, each from the previous one's output, each trained the steps asked for.
    bases, datasets = [], []
    for stage in ("stage1", "stage2", "stage3", "stage4", "model"):
        info = json.loads((work / stage / "finetune_info.json").read_text())
        assert info["steps"] == 2, stage
        bases.append(Path(info["base"]).name)
        datasets.append(Path(info["dataset"]).name)
    assert bases == ["base", "stage1", "stage2", "stage3", "stage4"]
    assert datasets == ["demos_cube", "demos_all", "demos_big", "demos_dart", "demos_c"]
    from openvla_ros.model.inference import OpenVLAPolicy

    policy = OpenVLAPolicy.from_checkpoint(work / "model")
    assert sorted(policy.config.norm_stats) == ["sim_reach"]
    assert policy.config.num_patches == 49
    for task in ("reach_cube", "reach_colour"):
        results = json.loads((work / f"eval_{task}" / "results.json").read_text())
        assert [e["task"] for e in results["episodes"]] == [task]
        assert results["config"]["checkpoint"].endswith("model")
    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() == before
