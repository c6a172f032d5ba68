# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Held-out metrics that cannot flatter.

Action-token accuracy alone misleads: constant dimensions and mode bins give 0.7+ for a
policy that ignores the image. On held-out episodes this reports, besides loss and accuracy
(teacher-forced), the per-dimension L1 between the *greedy* actions the policy would output
(:func:`openvla_ros.model.network.generate_greedy`, the inference code) and the true
normalised actions, next to two constant baselines computed from the training episodes:
always zero, and the per-timestep median (the median training action at the same step of an
episode). An instruction-swap test runs the same frames with another instruction of the
dataset and reports how much the actions change and the L1 they would then have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from openvla_ros.model.network import OpenVLANetwork, generate_greedy
from openvla_ros.train.forward import action_forward
from openvla_ros.train.samples import FrameTable, SampleCoder

#: Builds (pixel batch, prompt id tensors) for frame indices and an instruction per frame.
BatchFn = Callable[[npt.NDArray[np.int64], list[str]], tuple[torch.Tensor, list[torch.Tensor]]]


@dataclass
class Baselines:
    """Constant predictors fitted on the training episodes (normalised actions)."""

    median_by_step: npt.NDArray[np.float64]  # [T, D]

    def median_for(self, frame_index: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Per-timestep median; steps past the longest training episode use its last one."""
        idx = np.clip(frame_index, 0, self.median_by_step.shape[0] - 1)
        return self.median_by_step[idx]


def fit_baselines(
    targets: npt.NDArray[np.float64], frame_index: npt.NDArray[np.int64]
) -> Baselines:
    """Median of the training targets at each within-episode step."""
    steps = int(frame_index.max()) + 1
    dim = targets.shape[1]
    medians = np.zeros((steps, dim), dtype=np.float64)
    last = np.median(targets, axis=0)
    for t in range(steps):
        rows = targets[frame_index == t]
        if rows.shape[0]:
            last = np.median(rows, axis=0)
        medians[t] = last
    return Baselines(median_by_step=medians)


def swapped_instructions(instructions: list[str], ids: npt.NDArray[np.int64]) -> list[str] | None:
    """Another instruction of the dataset for every frame (the next one, cyclically)."""
    if len(instructions) < 2:
        return None
    return [instructions[(int(k) + 1) % len(instructions)] for k in ids]


def _greedy(
    net: OpenVLANetwork, pixels: torch.Tensor, prompts: list[torch.Tensor], dim: int
) -> npt.NDArray[np.int64]:
    return generate_greedy(net, pixels, prompts, dim).token_ids.numpy()


def evaluate(
    net: OpenVLANetwork,
    coder: SampleCoder,
    table: FrameTable,
    frames: npt.NDArray[np.int64],
    targets: npt.NDArray[np.float64],
    baselines: Baselines,
    batch_fn: BatchFn,
    sequences_fn: Callable[[npt.NDArray[np.int64]], list[torch.Tensor]],
    batch: int,
    autocast: Any,
) -> dict[str, Any]:
    """All held-out metrics for ``frames`` (global frame indices).

    Args:
        targets: [N, D] normalised true actions of ``frames`` (clipped to [-1, 1]).
        batch_fn: pixels + prompt ids for frames and instructions.
        sequences_fn: full training sequences (prompt + action ids + EOS) for frames.
        autocast: a context-manager factory (the training autocast setting).
    """
    net.eval()
    dim = targets.shape[1]
    losses, correct, token_correct, count = [], 0, 0, 0
    preds, swaps = [], []
    texts = [table.instructions[k] for k in table.instruction_ids[frames]]
    swap_texts = swapped_instructions(table.instructions, table.instruction_ids[frames])
    decode = coder.action_tokenizer.decode
    for start in range(0, len(frames), batch):
        chunk = frames[start : start + batch]
        pixels, prompts = batch_fn(chunk, texts[start : start + batch])
        with torch.no_grad(), autocast():
            out = action_forward(net, pixels, sequences_fn(chunk), dim + 1)
            losses.append(float(out.loss) * len(chunk))
            assert out.predictions is not None
            hits = out.predictions == out.labels
            correct += int(hits[:, :dim].sum())
            token_correct += int(hits.sum())
            count += len(chunk)
            preds.append(_greedy(net, pixels, prompts, dim))
            if swap_texts is not None:
                _, swap_prompts = batch_fn(chunk, swap_texts[start : start + batch])
                swaps.append(_greedy(net, pixels, swap_prompts, dim))
    net.train()
    tokens = np.concatenate(preds)
    actions = decode(tokens)
    l1 = np.abs(actions - targets).mean(axis=0)
    zero = np.abs(targets).mean(axis=0)
    median = np.abs(baselines.median_for(table.frame_index[frames]) - targets).mean(axis=0)
    row: dict[str, Any] = {
        "loss": sum(losses) / max(count, 1),
        "action_accuracy": correct / max(count * dim, 1),
        "token_accuracy": token_correct / max(count * (dim + 1), 1),
        "l1": float(l1.mean()),
        "l1_zero": float(zero.mean()),
        "l1_median": float(median.mean()),
        "frames": len(frames),
    }
    for i in range(dim):
        row[f"l1_d{i}"] = float(l1[i])
        row[f"l1_zero_d{i}"] = float(zero[i])
        row[f"l1_median_d{i}"] = float(median[i])
    if swaps:
        swap_tokens = np.concatenate(swaps)
        swap_actions = decode(swap_tokens)
        row["swap_change"] = float(np.abs(swap_actions - actions).mean())
        row["swap_l1"] = float(np.abs(swap_actions - targets).mean())
        row["swap_token_change"] = float((swap_tokens != tokens).mean())
    return row


def format_report(row: dict[str, Any], dim: int) -> str:
    """A few lines for the terminal: the model next to the baselines, per dimension."""
    head = "dim      " + " ".join(f"{i:>7d}" for i in range(dim)) + "     mean"
    lines = [
        f"val loss {row['loss']:.4f}  action-token acc {row['action_accuracy']:.3f}  "
        f"({row['frames']} held-out frames)",
        head,
    ]
    for key, label in (("l1", "model  "), ("l1_zero", "zero   "), ("l1_median", "median ")):
        values = " ".join(f"{row[f'{key}_d{i}']:7.4f}" for i in range(dim))
        lines.append(f"{label}  {values}  {row[key]:7.4f}")
    if "swap_change" in row:
        lines.append(
            f"instruction swap: actions change by {row['swap_change']:.4f} (L1, normalised), "
            f"{100 * row['swap_token_change']:.1f} % of tokens differ; L1 to the true actions "
            f"with the wrong instruction {row['swap_l1']:.4f}"
        )
    else:
        lines.append("instruction swap: n/a (the dataset has a single instruction)")
    return "\n".join(lines)
