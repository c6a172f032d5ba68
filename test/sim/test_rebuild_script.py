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
import signal
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


def _episodes_read_back(dataset: Path) -> list[tuple[str, int, float]]:
    """Per episode, in order: (instruction, frames, sum of its actions), read with pyarrow
    (not the project's reader) from the dataset's parquet data and meta/tasks.parquet."""
    tasks = {int(r["task_index"]): r["task"]
             for r in pq.read_table(dataset / "meta" / "tasks.parquet").to_pylist()}  # fmt: skip
    files = sorted((dataset / "data").rglob("*.parquet"))
    assert files, dataset
    rows: dict[int, list[tuple[int, list[float]]]] = {}
    for f in files:
        t = pq.read_table(f, columns=["episode_index", "task_index", "action"]).to_pydict()
        for e, k, a in zip(t["episode_index"], t["task_index"], t["action"], strict=True):
            rows.setdefault(int(e), []).append((int(k), a))
    assert sorted(rows) == list(range(len(rows))), sorted(rows)
    out = []
    for e in range(len(rows)):
        ks = {k for k, _ in rows[e]}
        assert len(ks) == 1, (dataset, e, ks)
        out.append((tasks[ks.pop()], len(rows[e]), round(sum(sum(a) for _, a in rows[e]), 6)))
    return out


def _miniature_env() -> dict[str, str]:
    """The script's environment for a run in miniature (tiny counts and steps)."""
    env = dict(os.environ, **{k: str(v) for k, v in COUNTS.items()},
               STEPS1="2", STEPS2="2", STEPS3="2", STEPS4="2", STEPS5="2", EVAL_EPISODES="1",
               EVAL_DOMAIN=os.environ.get("ROS_DOMAIN_ID", "0"))  # fmt: skip
    env.pop("INSTALL", None)
    return env


def _run_script(work: Path, env: dict[str, str], log: Path, timeout_s: float) -> tuple[int, str]:
    """Run the script in its own session, so that on a timeout the whole tree (demos,
    training, graphs) goes; returns its exit status (-9 if killed) and output."""
    with log.open("w") as sink:
        proc = subprocess.Popen(["bash", str(SCRIPT), str(work)], cwd=REPO, env=env,
                                stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return proc.returncode, log.read_text()


def test_the_rebuild_script_runs_every_stage(tmp_path: Path) -> None:
    work = tmp_path / "build"
    before = hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    env = _miniature_env()
    returncode, log = _run_script(work, env, tmp_path / "script.log", timeout_s=480)
    demos_log = (work / "demos.log").read_text() if (work / "demos.log").exists() else ""
    assert returncode == 0, f"{log[-5000:]}\n{demos_log[-3000:]}"
    # Every dataset complete (no .tmp left), each the previous one with its own episodes
    # appended unchanged (same instructions, frames and actions), in the order of the stages.
    assert not list(work.glob("*.tmp"))
    previous: list[tuple[str, int, float]] = []
    for name, count in EXPECTED_EPISODES.items():
        episodes = _episodes_read_back(work / name)
        assert len(episodes) == count, (name, len(episodes))
        assert episodes[: len(previous)] == previous, name
        info = json.loads((work / name / "meta" / "info.json").read_text())
        assert info["total_episodes"] == count
        previous = episodes
    instructions = [i for i, _, _ in previous]
    assert instructions[:18] == ["reach the cube"] * 18
    assert all(i != "reach the cube" for i in instructions[18:29])  # the colour sets
    # ... from consecutive new seeds: a repeated seed would repeat an episode exactly.
    assert len(set(previous[18:29])) == 11
    assert instructions[29:31] == ["reach the cube"] * 2  # the perturbed reach_cube set
    # The contrastive set: one layout instructed red, green and blue in turn.
    assert instructions[33:36] == [f"reach the {c} cube" for c in ("red", "green", "blue")]
    # Five fine-tunes, each from the previous one's output, each trained the steps asked for.
    bases, datasets, threads = [], [], []
    for stage in ("stage1", "stage2", "stage3", "stage4", "model"):
        info = json.loads((work / stage / "finetune_info.json").read_text())
        assert info["steps"] == 2, stage
        bases.append(Path(info["base"]).name)
        datasets.append(Path(info["dataset"]).name)
        threads.append(info["options"]["threads"])
    assert bases == ["base", "stage1", "stage2", "stage3", "stage4"]
    assert datasets == ["demos_cube", "demos_all", "demos_big", "demos_dart", "demos_c"]
    # Stages 1-2 beside the demos on one thread; 3-5 after every set, on every core.
    assert threads == [1, 1] + [len(os.sched_getaffinity(0))] * 3
    # ... and stage 3 started only once the last set (the contrastive demos) was complete.
    stage3_started = (work / "stage3" / "training" / "run.json").stat().st_mtime
    assert (work / "demos_c" / "meta" / "info.json").stat().st_mtime <= stage3_started
    from openvla_ros.model.inference import OpenVLAPolicy

    policy = OpenVLAPolicy.from_checkpoint(work / "model")
    assert sorted(policy.config.norm_stats) == ["sim_reach"]
    assert policy.config.num_patches == 49
    for task in ("reach_cube", "reach_colour"):
        results = json.loads((work / f"eval_{task}" / "results.json").read_text())
        assert [e["task"] for e in results["episodes"]] == [task]
        assert results["config"]["checkpoint"].endswith("model")
    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() == before


#: (setting, bad value): each refused with "<setting> must be ... not '<value>'".
BAD_SETTINGS = [
    ("STEPS1", "abc"),
    ("STEPS5", "1e3"),
    ("STEPS4", "0"),
    ("STEPS2", "010"),
    ("THREADS", "-1"),
    ("THREADS", "999"),
    ("THREADS_LATE", "0"),
    ("THREADS_LATE", "two"),
    ("DEMOS_CUBE", " 5"),
    ("DEMOS_CUBE", "100000"),
    ("CONTRAST_COLOUR", "12345678"),
    ("EVAL_DOMAIN", "101"),
    ("EVAL_DOMAIN", "08"),
    ("EVAL_DOMAIN", "x"),
    ("INSTALL", "yes"),
]


@pytest.mark.parametrize(
    ("overrides", "messages"),
    [({name: value}, (f"{name} must be", f"not '{value}'")) for name, value in BAD_SETTINGS]
    + [
        (
            {"DEMOS_COLOUR": "50000", "DEMOS_COLOUR_MORE": "50000"},
            ("DEMOS_COLOUR + DEMOS_COLOUR_MORE",),
        ),
        ({"OPENVLA_ROS_VENV": "/nonexistent/openvla_ros_venv"}, ("no openvla-ros in",)),
    ],
)
def test_a_bad_setting_is_refused_before_anything_is_made(
    tmp_path: Path, overrides: dict[str, str], messages: tuple[str, ...]
) -> None:
    """Bash arithmetic would read "abc" as 0 and "08" as an error halfway through; a count
    over 99999 would reach the next set's (or the evaluation's) scene seeds: every setting is
    checked first, named in the error, and nothing is created. (An empty variable means its
    default, as unset.) The other settings are the miniature ones, and the run has its own
    session, so a check that let a value through costs seconds and leaves nothing running."""
    work = tmp_path / "work"
    returncode, out = _run_script(work, {**_miniature_env(), **overrides},
                                  tmp_path / "script.log", timeout_s=30)  # fmt: skip
    assert returncode == 2, out
    assert all(m in out for m in messages), out
    assert not work.exists()
