# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Training checkpoints: written atomically, resumed bit-identically.

A checkpoint is a directory ``training/checkpoints/step-NNNNNNN`` holding the trainable
parameters (``trainable.safetensors``), the optimiser state, every RNG state and
``state.json`` (step, metrics rows so far, run fingerprint). It is written into a temporary
directory, flushed to disk, then renamed into place and only then named in ``latest``; older
checkpoints are deleted after that. A crash or a full disk at any moment therefore leaves the
previous checkpoint intact and ``latest`` pointing at a complete one.

Data order and augmentation draws are functions of (seed, step), so the dataloader position
is the step itself; the RNG states are saved and restored as well, for anything else that
draws from torch's, numpy's or Python's global generators.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openvla_ros.errors import TrainingError

LOG = logging.getLogger(__name__)

LATEST = "latest"
_PARAMS = "trainable.safetensors"
_OPTIM = "optimizer.pt"
_RNG = "rng.pt"
_STATE = "state.json"


@dataclass
class Resumed:
    """What a checkpoint restores besides the tensors loaded in place."""

    step: int
    rows: list[dict[str, Any]]
    path: Path


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for child in path.iterdir():
        with child.open("rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(path)


def rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python global generator states."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_atomic_text(path: Path, text: str) -> None:
    """Write a small file via a temporary file + rename (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_checkpoint(
    root: Path,
    step: int,
    params: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    keep: int = 1,
) -> Path:
    """Write checkpoint ``step`` under ``root`` atomically; keep the newest ``keep``.

    Raises:
        TrainingError: the write failed (e.g. disk full); the previous checkpoint is intact.
    """
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        save_file({k: v.detach().cpu().contiguous() for k, v in params.items()}, str(tmp / _PARAMS))
        torch.save(optimizer.state_dict(), tmp / _OPTIM)
        torch.save(rng_state(), tmp / _RNG)
        (tmp / _STATE).write_text(json.dumps({**state, "step": step}), encoding="utf-8")
        _fsync_tree(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
        write_atomic_text(root / LATEST, final.name + "\n")
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        previous = latest_checkpoint(root)
        raise TrainingError(
            f"saving the checkpoint of step {step} failed ({exc}); "
            + (
                f"the previous checkpoint {previous} is intact: free disk space and rerun with "
                "--resume"
                if previous is not None
                else "no earlier checkpoint exists"
            )
        ) from exc
    for old in sorted(root.glob("step-*"))[:-keep] if keep > 0 else []:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    """The checkpoint ``latest`` names, if it exists and is complete."""
    pointer = root / LATEST
    if not pointer.is_file():
        return None
    path = root / pointer.read_text(encoding="utf-8").strip()
    if not (path / _STATE).is_file():
        return None
    return path


def load_checkpoint(
    path: Path, params: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer
) -> Resumed:
    """Load a checkpoint into ``params`` (in place) and ``optimizer``; restore the RNGs.

    Raises:
        TrainingError: the checkpoint does not match the run's trainable parameters.
    """
    from safetensors.torch import load_file

    stored = load_file(str(path / _PARAMS))
    if set(stored) != set(params):
        missing = sorted(set(params) - set(stored))[:3]
        extra = sorted(set(stored) - set(params))[:3]
        raise TrainingError(
            f"{path}: checkpoint parameters do not match this run (missing {missing}, "
            f"unexpected {extra}); resume with the same mode, rank and --train-vision"
        )
    with torch.no_grad():
        for name, tensor in params.items():
            tensor.copy_(stored[name].to(tensor.device, tensor.dtype))
    optimizer.load_state_dict(torch.load(path / _OPTIM, weights_only=False))
    set_rng_state(torch.load(path / _RNG, weights_only=False))
    state = json.loads((path / _STATE).read_text(encoding="utf-8"))
    return Resumed(step=int(state["step"]), rows=list(state.get("rows", [])), path=path)


def read_state(path: Path) -> dict[str, Any]:
    """``state.json`` of a checkpoint."""
    data: dict[str, Any] = json.loads((path / _STATE).read_text(encoding="utf-8"))
    return data
