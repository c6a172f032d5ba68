# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Fixtures for the fine-tuning tests: one small fp32 base and small datasets per session
(written with the real checkpoint generator and dataset writer), and a helper that runs
``run_finetune`` in this process with test-sized defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="torch not installed")
pytest.importorskip("peft", reason="peft not installed (run scripts/setup_env.sh)")
pytest.importorskip("pyarrow", reason="pyarrow not installed (run scripts/setup_env.sh)")

from openvla_ros.model.make_checkpoint import write_small_checkpoint
from test.nodes.conftest import probe, start_policy  # noqa: F401 (node fixtures reused)
from test.train.datasets import write_dataset


@pytest.fixture(scope="session")
def base_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small base in the published layout, stored in fp32 (exact merge comparisons)."""
    return write_small_checkpoint(tmp_path_factory.mktemp("base") / "base", seed=0, dtype="fp32")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 episodes x 4 frames, two instructions (one episode is held out by default)."""
    return write_dataset(tmp_path_factory.mktemp("ds") / "toy", episodes=6, frames=4)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 episodes x 2 frames: a handful of frames to overfit."""
    return write_dataset(tmp_path_factory.mktemp("ds4") / "tiny", episodes=2, frames=2)


@pytest.fixture
def finetune(base_ckpt: Path, dataset: Path, tmp_path: Path) -> Callable[..., Any]:
    """``finetune(out_name, **options)`` -> (result, log lines); test-sized defaults."""
    from openvla_ros.train.loop import FinetuneOptions, run_finetune

    def run(name: str = "out", **kw: Any) -> tuple[Any, list[str]]:
        lines: list[str] = []
        defaults: dict[str, Any] = {
            "base": base_ckpt,
            "dataset": dataset,
            "unnorm_key": "toy_lab",
            "out": tmp_path / name,
            "batch": 4,
            "steps": 4,
            "log_every": 1,
            "val_every": 1000,
            "save_every": 1000,
            "lora_rank": 4,
            "threads": 1,
        }
        defaults.update(kw)
        result = run_finetune(FinetuneOptions(**defaults), echo=lines.append)
        return result, lines

    return run
