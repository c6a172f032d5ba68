# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Training metrics: one CSV (rewritten whole, so a resumed run never duplicates rows) and a
plot of loss, accuracy and held-out L1 against the constant baselines."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openvla_ros.train.state import write_atomic_text

#: Columns of metrics.csv, in order (empty where a row has no value).
COLUMNS = (
    "step",
    "split",
    "loss",
    "action_accuracy",
    "token_accuracy",
    "l1",
    "l1_zero",
    "l1_median",
    "swap_change",
    "swap_l1",
    "swap_token_change",
    "lr",
    "grad_norm",
    "samples_per_s",
    "elapsed_s",
    "frames",
)


def write_csv(path: Path, rows: Sequence[dict[str, Any]], action_dim: int = 7) -> None:
    """Write every row; per-dimension L1 columns (``l1_d0`` ...) follow the fixed ones."""
    extra = [f"{p}_d{i}" for p in ("l1", "l1_zero", "l1_median") for i in range(action_dim)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*COLUMNS, *extra], extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(v) for k, v in row.items()})
    write_atomic_text(path, buf.getvalue())


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _series(rows: Sequence[dict[str, Any]], split: str, key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if row.get("split") == split and isinstance(value, int | float) and math.isfinite(value):
            xs.append(int(row["step"]))
            ys.append(float(value))
    return xs, ys


def plot(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Three panels: loss (train/val), action-token accuracy, val L1 vs baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for split, style in (("train", "-"), ("val", "o-")):
        axes[0].plot(*_series(rows, split, "loss"), style, label=split)
        axes[1].plot(*_series(rows, split, "action_accuracy"), style, label=split)
    axes[0].set_title("loss (action tokens + EOS)")
    axes[0].set_yscale("log")
    axes[1].set_title("action-token accuracy")
    for key, label in (
        ("l1", "model (greedy)"),
        ("l1_zero", "always zero"),
        ("l1_median", "per-timestep median"),
        ("swap_l1", "model, swapped instruction"),
    ):
        axes[2].plot(*_series(rows, "val", key), "o-", label=label)
    axes[2].set_title("held-out L1 (normalised actions)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
