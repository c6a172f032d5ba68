# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Demonstration throughput: expert success, frames/s recorded, MB per episode, per-frame costs.

    python benchmarks/bench_datasets.py [--episodes 20] [--success-episodes 100] [--ros]

Prints JSON lines:
- ``expert_success``: the scripted expert's success rate per task (no rendering);
- ``frame_costs``: median render / PNG encode / decode ms of one 224x224 frame;
- ``direct``: in-process ``sim-demos`` frames/s and MB per episode per task;
- ``ros`` (with ``--ros``): the same through sim_arm + sim_expert + recorder over DDS.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _frame_costs() -> dict[str, float]:
    from openvla_ros.data.lerobot import decode_png, encode_png
    from openvla_ros.sim.panda_sim import PandaSim
    from openvla_ros.sim.tasks import sample_scene

    with PandaSim(scene=sample_scene("pick_colour", 0)) as sim:
        render, enc, dec, size = [], [], [], []
        for _ in range(20):
            t0 = time.perf_counter()
            img = sim.render(224, 224)
            t1 = time.perf_counter()
            png = encode_png(img)
            t2 = time.perf_counter()
            decode_png(png)
            t3 = time.perf_counter()
            render.append(t1 - t0)
            enc.append(t2 - t1)
            dec.append(t3 - t2)
            size.append(len(png))
            sim.step(0.2)
    return {
        "render_ms": 1e3 * float(np.median(render)),
        "png_encode_ms": 1e3 * float(np.median(enc)),
        "png_decode_ms": 1e3 * float(np.median(dec)),
        "png_kb": float(np.median(size)) / 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--episodes", type=int, default=20, help="episodes per task for frames/s")
    ap.add_argument("--success-episodes", type=int, default=100, help="episodes per task")
    ap.add_argument("--ros", action="store_true", help="also time the ROS transport")
    args = ap.parse_args()

    from openvla_ros.bag.evaluate import load_robot_profile
    from openvla_ros.sim.expert_demos import GenerateConfig, generate_demos, measure_success

    tasks = ("reach_cube", "reach_colour", "pick_colour")
    for task in tasks:
        r = measure_success(task, args.success_episodes, seed=1000)
        print(json.dumps({"expert_success": task, **r}))
    print(json.dumps({"frame_costs": _frame_costs()}))
    profile = load_robot_profile("sim")
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            out = Path(tmp) / f"direct_{task}"
            s = generate_demos(GenerateConfig(task, args.episodes, seed=0), out, profile)
            print(json.dumps({"direct": task, **s}))
        if args.ros:
            from openvla_ros.nodes.sim_demos_runner import RosDemoConfig, run_ros_demos

            for task in tasks:
                out = Path(tmp) / f"ros_{task}"
                s = run_ros_demos(RosDemoConfig(task, args.episodes, out, seed=0))
                size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
                s["mb_per_episode"] = size / 1e6 / max(s["episodes_written"], 1)
                print(json.dumps({"ros": task, **s}))


if __name__ == "__main__":
    main()
