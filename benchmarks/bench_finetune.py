# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Fine-tuning speed and memory.

CPU (this machine): small generated bases, a generated 224 px dataset, ``run_finetune`` in a
fresh subprocess per configuration (so peak RSS is that run's), samples/s over the training
steps, peak RSS next to the memory plan's total::

    python benchmarks/bench_finetune.py --cpu                       # small + medium, fp32 vs bf16
    python benchmarks/bench_finetune.py --cpu --sizes small --threads 1 2 --steps 40

7B geometry without weights (exact parameter counts, estimated activations)::

    python benchmarks/bench_finetune.py --plan-7b

GPU (not measured in this project yet: no GPU machine in the task that wrote it): random 7B
weights of the real geometry built on the GPU, step time and peak memory per mode::

    python benchmarks/bench_finetune.py --gpu --modes lora full --batch 16 --steps 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: Base sizes: "small" is make-checkpoint's default; "medium" and "large" from-scratch sim
#: policy sizes (LLM width 256 / 512).
SIZES: dict[str, dict[str, Any]] = {
    "small": {},
    "medium": {
        "llm_hidden": 256,
        "llm_layers": 4,
        "llm_heads": 4,
        "llm_kv_heads": 4,
        "llm_intermediate": 688,
        "dino": {"embed_dim": 128, "depth": 4, "num_heads": 4, "mlp_hidden": 512},
        "siglip": {"embed_dim": 128, "depth": 4, "num_heads": 4, "mlp_hidden": 512},
    },
    "large": {
        "llm_hidden": 512,
        "llm_layers": 6,
        "llm_heads": 8,
        "llm_kv_heads": 8,
        "llm_intermediate": 1376,
        "dino": {"embed_dim": 192, "depth": 6, "num_heads": 4, "mlp_hidden": 768},
        "siglip": {"embed_dim": 192, "depth": 6, "num_heads": 4, "mlp_hidden": 768},
    },
}


def _dataset(root: Path, episodes: int = 8, frames: int = 16) -> Path:
    import numpy as np

    from openvla_ros.data.lerobot import DatasetWriter, EpisodeRecord
    from openvla_ros.model.make_checkpoint import synthetic_scene

    writer = DatasetWriter(
        root, fps=5.0, image_shape=(224, 224, 3), robot_type="sim_panda", unnorm_key="bench"
    )
    rng = np.random.default_rng(0)
    for ep in range(episodes):
        images = [synthetic_scene(ep * 100 + t, 224, 224) for t in range(frames)]
        actions = rng.normal(0, 0.01, size=(frames, 7)).astype(np.float32)
        actions[:, 6] = (np.arange(frames) < frames // 2).astype(np.float32)
        writer.add_episode(
            EpisodeRecord(
                instruction=("reach the red cube", "reach the blue cube")[ep % 2],
                images=images,
                states=np.zeros((frames, 8), np.float32),
                actions=actions,
                timestamps=np.arange(frames) / 5.0,
            )
        )
    return root


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """One configuration in this process; prints its figures as JSON."""
    from openvla_ros.train.loop import FinetuneOptions, run_finetune

    opts = FinetuneOptions(
        base=Path(spec["base"]),
        dataset=Path(spec["dataset"]),
        unnorm_key="bench",
        out=Path(spec["out"]),
        full=spec["mode"] == "full",
        train_vision=spec["mode"] == "full",
        steps=spec["steps"],
        batch=spec["batch"],
        val_episodes=0,
        val_every=10**9,
        save_every=10**9,
        log_every=max(1, spec["steps"] // 2),
        autocast=spec["autocast"],
        threads=spec["threads"],
    )
    import peft  # noqa: F401  (libraries loaded before the baseline RSS is taken)
    import transformers.models.llama.modeling_llama  # noqa: F401

    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    lines: list[str] = []
    start = time.perf_counter()
    result = run_finetune(opts, echo=lines.append)
    text = "\n".join(lines).splitlines()
    total = next(line for line in text if line.strip().startswith("total"))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        **{k: spec[k] for k in ("size", "mode", "autocast", "threads", "batch", "steps")},
        "samples_per_s": round(result.samples_per_s, 2),  # type: ignore[union-attr]
        # Robust to other jobs on a shared machine (with --threads 1 equal to samples/s idle).
        "samples_per_cpu_s": round(result.samples_per_cpu_s, 2),  # type: ignore[union-attr]
        "peak_rss_mb": round(peak_mb),
        "libraries_rss_mb": round(baseline_mb),
        "plan_total_gb": float(total.split()[-2]),
        "wall_s": round(time.perf_counter() - start, 1),
        "final_loss": round(float(result.rows[-1]["loss"]), 4),  # type: ignore[union-attr]
    }


def run_cpu(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (size, mode, autocast, threads) combination in its own subprocess."""
    from openvla_ros.model.make_checkpoint import SmallDims, write_small_checkpoint

    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        dataset = _dataset(tmp / "ds")
        for size in args.sizes:
            base = write_small_checkpoint(tmp / f"base-{size}", dims=SmallDims(**SIZES[size]))
            for mode in args.modes:
                for autocast in args.autocast:
                    for threads in args.threads:
                        spec = {
                            "size": size,
                            "mode": mode,
                            "autocast": autocast,
                            "threads": threads,
                            "batch": args.batch,
                            "steps": args.steps,
                            "base": str(base),
                            "dataset": str(dataset),
                            "out": str(tmp / f"out-{size}-{mode}-{autocast}-{threads}"),
                        }
                        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
                        proc = subprocess.run(
                            [sys.executable, __file__, "--child", json.dumps(spec)],
                            capture_output=True,
                            text=True,
                            env=env,
                            check=False,
                        )
                        if proc.returncode != 0:
                            print(proc.stderr[-2000:], file=sys.stderr)
                            continue
                        row = json.loads(proc.stdout.strip().splitlines()[-1])
                        print(json.dumps(row), flush=True)
                        rows.append(row)
    return rows


def _config_7b() -> Any:
    from openvla_ros.model.config import config_from_dict
    from openvla_ros.model.make_checkpoint import published_config

    return config_from_dict(published_config())


def _config_small() -> Any:
    import tempfile

    from openvla_ros.model.config import load_config
    from openvla_ros.model.make_checkpoint import write_small_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        return load_config(write_small_checkpoint(Path(tmp) / "c"))


def plan_7b(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Memory plans of the 7B geometry on a GPU, per mode (prompt of 20 tokens)."""
    from openvla_ros.train.memory import plan_memory

    cfg = _config_7b()
    rows = []
    cases = [
        ("lora", 2.0, False),
        ("lora", 2.0, True),
        ("qlora", 2.0, False),
        ("full", 4.0, False),
        ("full", 4.0, True),
    ]
    for batch in args.plan_batches:
        for mode, weight_bytes, ckpt in cases:
            plan = plan_memory(
                cfg,
                mode=mode,
                batch=batch,
                prompt_tokens=20,
                weight_bytes=weight_bytes,
                activation_bytes=2.0,
                grad_checkpointing=ckpt,
                train_vision=mode != "full",
                device="cuda",
            )
            row = {**plan.as_dict(), "grad_checkpointing": ckpt}
            print(plan.format())
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def run_gpu(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Step time and peak memory with random 7B weights on CUDA (synthetic batches)."""
    import torch

    from openvla_ros.model.checkpoint import random_network
    from openvla_ros.model.precision import resolve_placement
    from openvla_ros.train.adapters import LoraSettings, apply_lora, set_full_trainable
    from openvla_ros.train.forward import action_forward

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "--gpu needs a CUDA GPU (or --device cpu --geometry small for a smoke run)"
        )
    cuda = device.type == "cuda"
    cfg = _config_7b() if args.geometry == "7b" else _config_small()
    rows = []
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for mode in args.modes:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        precision = "bf16" if mode == "lora" and cuda else "fp32"
        placement = resolve_placement(precision, device, vision_precision=precision)
        net = random_network(cfg, placement)
        if mode == "full":
            set_full_trainable(net, train_vision=False)
        else:
            apply_lora(net, LoraSettings(rank=32))
            for p in net.parameters():
                if p.requires_grad:
                    p.data = p.data.float()
        if args.grad_checkpointing:
            net.language_model.activation_checkpointing_enable({"use_reentrant": False})
        net.train()
        params = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5, fused=True)
        pixels = torch.randn(args.batch, 6, 224, 224, device=device)
        seq = torch.randint(300, 31000, (20,)).tolist() + list(range(31744, 31751)) + [2]
        seqs = [torch.tensor([1, *seq], device=device) for _ in range(args.batch)]
        times = []
        for step in range(args.steps):
            sync()
            start = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                out = action_forward(net, pixels, seqs, 8, predictions=False)
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            if step >= 2:
                times.append(time.perf_counter() - start)
        row = {
            "mode": mode,
            "batch": args.batch,
            "grad_checkpointing": args.grad_checkpointing,
            "step_s": round(sorted(times)[len(times) // 2], 3) if times else None,
            "h_per_1000_steps": round(1000 * sorted(times)[len(times) // 2] / 3600, 2)
            if times
            else None,
            "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if cuda else None,
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "geometry": args.geometry,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
        del net, opt, out
    return rows


def main() -> int:
    """Parse the arguments and run the chosen benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", action="store_true", help="CPU steps/s + peak RSS (default)")
    parser.add_argument("--plan-7b", action="store_true", help="memory plans, 7B geometry")
    parser.add_argument("--gpu", action="store_true", help="random-7B step time on CUDA")
    parser.add_argument("--sizes", nargs="+", default=["small", "medium"], choices=list(SIZES))
    parser.add_argument("--modes", nargs="+", default=["full", "lora"], choices=["full", "lora"])
    parser.add_argument("--autocast", nargs="+", default=["off", "bf16"], choices=["off", "bf16"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--plan-batches", nargs="+", type=int, default=[16, 1])
    parser.add_argument("--grad-checkpointing", action="store_true", help="--gpu only")
    parser.add_argument("--device", default="cuda", help="--gpu: cuda (or cpu for a smoke run)")
    parser.add_argument("--geometry", default="7b", choices=["7b", "small"], help="--gpu only")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    if args.plan_7b:
        plan_7b(args)
    if args.gpu:
        run_gpu(args)
    if args.cpu or not (args.plan_7b or args.gpu):
        run_cpu(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
