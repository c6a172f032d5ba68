# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Checkpoints and resume: a run that fails at a save (disk full) and then crashes mid-step
ends bit-identical to an uninterrupted one; NaN stops with the last good checkpoint kept."""

from __future__ import annotations

import csv
import errno
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from openvla_ros.errors import TrainingError
from openvla_ros.train import loop as loop_module
from openvla_ros.train import state as state_module

pytestmark = pytest.mark.timeout(120)

#: LoRA with augmentation, gradient accumulation and a cosine schedule with warm-up: every
#: random draw of the loop and the step-dependent learning rate matter.
RUN = {"steps": 6, "save_every": 2, "image_aug": True, "grad_accum": 2, "batch": 3, "lr": 1e-3,
       "lr_schedule": "cosine", "warmup_steps": 1}  # fmt: skip


def _weights(out: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(out.glob("model-*.safetensors")):
        tensors.update(load_file(shard))
    return tensors


def _rows(out: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader((out / "training" / "metrics.csv").open()))
    for row in rows:  # wall-clock columns differ between runs by nature
        row.pop("samples_per_s")
        row.pop("elapsed_s")
    return rows


class _CrashError(Exception):
    """Stands in for the process dying (kill -9, power loss) in the middle of a step."""


def test_interrupted_runs_resume_bit_identically(finetune, monkeypatch) -> None:
    reference, _ = finetune("uninterrupted", **RUN)

    # 1) The disk fills while step 4's checkpoint is written: the run stops, step 2's stays.
    real_save = torch.save

    def full_disk(obj, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "step-0000004" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(state_module.torch, "save", full_disk)
    with pytest.raises(TrainingError, match=r"step-0000002 is intact"):
        finetune("interrupted", **RUN)
    monkeypatch.setattr(state_module.torch, "save", real_save)
    checkpoints = reference.out.parent / "interrupted" / "training" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["latest", "step-0000002"]

    # 2) Resumed, it dies after step 5's optimiser update (parameters already moved).
    real_step = loop_module._Run._train_step

    def dying_step(self, with_metrics):  # type: ignore[no-untyped-def]
        row = real_step(self, with_metrics)
        if self.step == 4:
            raise _CrashError
        return row

    monkeypatch.setattr(loop_module._Run, "_train_step", dying_step)
    with pytest.raises(_CrashError):
        finetune("interrupted", resume=True, **RUN)
    monkeypatch.setattr(loop_module._Run, "_train_step", real_step)
    assert (checkpoints / "latest").read_text().strip() == "step-0000004"

    # 3) Resumed again, it finishes: same weights bit for bit, same metric rows.
    resumed, lines = finetune("interrupted", resume=True, **RUN)
    assert any("resumed from" in line and "step 4" in line for line in lines)
    want, got = _weights(reference.out), _weights(resumed.out)
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert _rows(reference.out) == _rows(resumed.out)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(finetune, monkeypatch) -> None:
    real_forward = loop_module.action_forward
    calls = {"n": 0}

    def poisoned(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = real_forward(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:  # step 3 (one micro-batch per step)
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(loop_module, "action_forward", poisoned)
    with pytest.raises(TrainingError) as info:
        finetune("nan", full=True, steps=5, save_every=2)
    message = str(info.value)
    assert "step 3" in message and "loss is nan" in message and "step-0000002" in message
    out = Path(str(message).split("the last good checkpoint is ")[1].split(" ")[0])
    assert out.name == "step-0000002" and (out / "trainable.safetensors").is_file()
    assert not (out.parent.parent.parent / "config.json").exists(), "nothing may be exported"
    assert state_module.latest_checkpoint(out.parent) == out
