# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Bad input is refused early with a message that says what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from openvla_ros.errors import TrainingError
from openvla_ros.model.make_checkpoint import action_stats
from test.train.datasets import write_dataset

pytestmark = pytest.mark.timeout(120)


def _cli(*args: str) -> list[str]:
    return ["finetune", *args]


def test_qlora_refuses_without_cuda(base_ckpt: Path, dataset: Path, tmp_path: Path, capsys) -> None:
    import torch

    from openvla_ros.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal is for CPU-only machines")
    argv = ["--base", str(base_ckpt), "--dataset", str(dataset), "--unnorm-key", "k"]
    code = main(_cli(*argv, "--out", str(tmp_path / "q"), "--quantize-base", "4bit"))
    err = capsys.readouterr().err
    assert code == 2 and "needs a CUDA GPU" in err and "drop --quantize-base" in err
    assert not (tmp_path / "q").exists(), "nothing may be written before refusing"
    code = main(_cli(*argv, "--out", str(tmp_path / "q"), "--quantize-base", "4bit", "--full"))
    assert code == 2 and "cannot be combined with --full" in capsys.readouterr().err


def test_existing_unnorm_key_needs_overwrite_key(finetune) -> None:
    with pytest.raises(TrainingError, match=r"'bridge_orig' already exists.*--overwrite-key"):
        finetune("k", unnorm_key="bridge_orig")
    plan = finetune("k", unnorm_key="bridge_orig", overwrite_key=True, plan_only=True)[0]
    assert plan.mode == "lora"


def test_action_dimension_must_fit_the_base(finetune, base_ckpt: Path, tmp_path: Path) -> None:
    six_dim = tmp_path / "six-dim-base"
    shutil.copytree(base_ckpt, six_dim)
    config = json.loads((six_dim / "config.json").read_text())
    config["norm_stats"] = {"six": action_stats([-1.0] * 6, [1.0] * 6)}
    (six_dim / "config.json").write_text(json.dumps(config))
    with pytest.raises(TrainingError, match="7 dimensions but the base predicts \\[6\\]"):
        finetune("six", base=six_dim)


def test_tiny_images_are_refused(finetune, tmp_path: Path) -> None:
    small = write_dataset(tmp_path / "small", episodes=2, frames=2, side=16)
    with pytest.raises(TrainingError, match=r"16x16 px.*smaller than 32 px"):
        finetune("small-out", dataset=small)


def test_memory_plan_refuses_with_numbers(finetune, tmp_path: Path) -> None:
    with pytest.raises(TrainingError) as info:
        finetune("huge", batch=2_000_000)
    text = str(info.value)
    assert "not enough memory" in text and "activations" in text and "available" in text
    assert not (tmp_path / "huge").exists(), "refused before anything was written"


def test_out_dir_and_resume_mismatches(finetune, tiny_dataset: Path) -> None:
    finetune("run", dataset=tiny_dataset, steps=1, val_episodes=0)
    with pytest.raises(TrainingError, match=r"not empty.*--resume"):
        finetune("run", dataset=tiny_dataset, steps=1, val_episodes=0)
    with pytest.raises(TrainingError, match=r"lr: None -> 0.1"):
        finetune("run", dataset=tiny_dataset, steps=2, val_episodes=0, resume=True, lr=0.1)
    with pytest.raises(TrainingError, match="dataset differs"):
        finetune("run", steps=2, val_episodes=0, resume=True)  # the 6-episode dataset
    # Same options and dataset with more steps: continues.
    result, lines = finetune("run", dataset=tiny_dataset, steps=2, val_episodes=0, resume=True)
    assert result.steps == 2 and any("resumed from" in line for line in lines)


@pytest.mark.parametrize(
    ("option", "flag"),
    [
        ({"lora_rank": 0}, "--lora-rank"),  # peft 0.21 accepts r=0 (alpha / r then divides by 0)
        ({"lora_alpha": -1.0}, "--lora-alpha"),
        ({"lora_dropout": 1.5}, "--lora-dropout"),  # peft accepts it; torch's Dropout refuses late
        ({"weight_decay": -0.1}, "--weight-decay"),
        ({"max_grad_norm": float("nan")}, "--max-grad-norm"),
        ({"cache_gb": -1.0}, "--cache-gb"),
        ({"val_episodes": -2}, "--val-episodes"),
        ({"max_shard_gb": 0.0}, "--max-shard-gb"),
        ({"threads": 0}, "--threads"),
    ],
)
def test_out_of_range_numbers_are_refused_before_anything_is_read(option, flag) -> None:
    from openvla_ros.train.options import FinetuneOptions, validate_options

    # Paths that do not exist: the refusal must come before the base or dataset is opened.
    opts = FinetuneOptions(Path("/nonexistent/base"), Path("/nonexistent/ds"), "k",
                           Path("/nonexistent/out"), **option)  # fmt: skip
    with pytest.raises(TrainingError, match=f"^{flag} must be"):
        validate_options(opts)


def test_full_fine_tune_ignores_the_lora_rank() -> None:
    from openvla_ros.train.options import FinetuneOptions, validate_options

    validate_options(FinetuneOptions(Path("b"), Path("d"), "k", Path("o"), full=True, lora_rank=0))
