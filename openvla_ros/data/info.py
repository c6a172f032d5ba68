# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``dataset-info``: look at a dataset before training on it (summary, plots, contact sheet).

:func:`summarize` gathers episodes, frames, instructions, outcomes, idle and staleness counts
and per-dimension action ranges; :func:`write_plots` draws per-dimension action histograms,
end-effector trajectories and a contact sheet of each episode's first and last frame
(matplotlib, Agg backend: no display needed).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from openvla_ros.data.lerobot import ACTION_NAMES, DemoDataset

__all__ = ["format_summary", "summarize", "write_plots"]


def summarize(ds: DemoDataset) -> dict[str, Any]:
    """Counts and ranges of ``ds`` (JSON-able)."""
    eps = [ds.episode(e) for e in ds.episode_indices()]
    lengths = np.array([int(e["length"]) for e in eps])
    tasks: Counter[str] = Counter()
    for e in eps:
        tasks.update(e["tasks"])
    outcomes = Counter({True: "success", False: "failed", None: "unknown"}[e.get("success")]
                       for e in eps)  # fmt: skip
    rec = [e["recording"] for e in eps]
    staleness: dict[str, dict[str, float]] = {}
    for r in rec:
        for stream, st in (r.get("alignment") or {}).items():
            agg = staleness.setdefault(stream, {"max_s": 0.0, "warned": 0, "dropped": 0})
            agg["max_s"] = max(agg["max_s"], float(st.get("max_staleness_s", 0.0)))
            agg["warned"] += int(st.get("stale_warned", 0))
            agg["dropped"] += int(st.get("dropped_points", 0))
    acts = ds.actions
    return {
        "path": str(ds.root),
        "fps": ds.fps,
        "episodes": ds.num_episodes,
        "frames": ds.num_frames,
        "episode_length": {
            "min": int(lengths.min()),
            "mean": float(lengths.mean()),
            "max": int(lengths.max()),
        },
        "instructions": dict(tasks.most_common()),
        "outcomes": dict(outcomes),
        "idle_frames_dropped": sum(int(r.get("idle_frames_dropped", 0)) for r in rec),
        "stale_frames_dropped": sum(int(r.get("stale_dropped_frames", 0)) for r in rec),
        "staleness": staleness,
        "unnorm_keys": ds.unnorm_keys(),
        "action": {
            name: {
                "min": float(acts[:, i].min()),
                "max": float(acts[:, i].max()),
                "q01": float(np.quantile(acts[:, i], 0.01)),
                "q99": float(np.quantile(acts[:, i], 0.99)),
            }
            for i, name in enumerate(ACTION_NAMES)
        },
    }


def format_summary(s: dict[str, Any]) -> str:
    """Human-readable text of :func:`summarize`'s result."""
    lines = [
        f"dataset {s['path']}: {s['episodes']} episodes, {s['frames']} frames at {s['fps']:g} Hz "
        f"(episode length {s['episode_length']['min']}..{s['episode_length']['max']}, mean "
        f"{s['episode_length']['mean']:.1f})",
        f"outcomes: {s['outcomes']}; idle frames dropped: {s['idle_frames_dropped']}; "
        f"stale frames dropped: {s['stale_frames_dropped']}",
        f"unnorm_key(s): {', '.join(s['unnorm_keys'])}",
        "instructions:",
        *(f"  {n:5d}  {text}" for text, n in s["instructions"].items()),
    ]
    if s["staleness"]:
        lines.append("staleness per stream (max s / warned / dropped grid points):")
        lines += [f"  {k}: {v['max_s']:.3f} / {v['warned']} / {v['dropped']}"
                  for k, v in s["staleness"].items()]  # fmt: skip
    lines.append("action ranges (min / q01 / q99 / max):")
    lines += [f"  {k:7s} {v['min']:+.4f} / {v['q01']:+.4f} / {v['q99']:+.4f} / {v['max']:+.4f}"
              for k, v in s["action"].items()]  # fmt: skip
    return "\n".join(lines)


def write_plots(ds: DemoDataset, out: Path, max_episodes: int = 40) -> list[Path]:
    """Write ``action_histograms.png``, ``trajectories.png``, ``contact_sheet.png`` to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "action_histograms.png", out / "trajectories.png", out / "contact_sheet.png"]
    acts = ds.actions
    fig, axes = plt.subplots(1, 7, figsize=(21, 3))
    for i, ax in enumerate(axes):
        ax.hist(acts[:, i], bins=40, color="tab:blue")
        ax.set_title(ACTION_NAMES[i])
    fig.tight_layout()
    fig.savefig(paths[0], dpi=80)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ep in ds.episode_indices()[:max_episodes]:
        r = ds.episode_range(ep)
        xyz = ds.states[r.start : r.stop, :3]
        axes[0].plot(xyz[:, 1], xyz[:, 0], marker=".", lw=1)
        axes[1].plot(np.arange(len(xyz)) / max(ds.fps, 1e-9), xyz[:, 2], lw=1)
    axes[0].set(xlabel="y (m)", ylabel="x (m)", title="end-effector, top view (base frame)")
    axes[0].invert_xaxis()
    axes[1].set(xlabel="t (s)", ylabel="z (m)", title="end-effector height")
    fig.tight_layout()
    fig.savefig(paths[1], dpi=80)
    plt.close(fig)

    eps = ds.episode_indices()[:max_episodes]
    rows = []
    for ep in eps:
        r = ds.episode_range(ep)
        rows.append(np.concatenate([ds.frame(r.start).image, ds.frame(r.stop - 1).image], axis=1))
    cols = 4
    h, w = rows[0].shape[:2]
    sheet = np.full((h * -(-len(rows) // cols), w * cols, 3), 255, np.uint8)
    for i, img in enumerate(rows):
        y, x = (i // cols) * h, (i % cols) * w
        sheet[y : y + h, x : x + w] = img
    from PIL import Image

    Image.fromarray(sheet).save(paths[2])
    return paths
