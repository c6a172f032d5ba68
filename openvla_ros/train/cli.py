# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``openvla-ros finetune``: LoRA, QLoRA or full fine-tuning on a recorded dataset.

torch, peft and the dataset reader are imported inside the handler, so ``openvla-ros --help``
stays instant. docs/finetune.md documents every flag with its default.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from openvla_ros.train.options import LR_SCHEDULES


def _finetune(args: argparse.Namespace) -> int:
    from openvla_ros.train.loop import FinetuneOptions, FinetuneResult, run_finetune

    opts = FinetuneOptions(
        base=Path(args.base).expanduser(),
        dataset=Path(args.dataset).expanduser(),
        unnorm_key=args.unnorm_key,
        out=Path(args.out).expanduser(),
        full=args.full,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        quantize_base=args.quantize_base,
        train_vision=args.train_vision,
        steps=args.steps,
        batch=args.batch,
        grad_accum=args.grad_accum,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        image_aug=args.image_aug,
        val_episodes=args.val_episodes,
        val_every=args.val_every,
        val_frames=args.val_frames,
        save_every=args.save_every,
        keep_checkpoints=args.keep_checkpoints,
        log_every=args.log_every,
        device=args.device,
        seed=args.seed,
        resume=args.resume,
        save_adapter=args.save_adapter,
        overwrite_key=args.overwrite_key,
        threads=args.threads,
        autocast=args.autocast,
        grad_checkpointing=args.grad_checkpointing,
        cache_gb=args.cache_gb,
        save_dtype=args.save_dtype,
        max_shard_gb=args.max_shard_gb,
        skip_memory_check=args.skip_memory_check,
        plan_only=args.plan_only,
    )
    result = run_finetune(opts)
    if isinstance(result, FinetuneResult):
        summary: dict[str, Any] = {
            "out": str(result.out),
            "adapter": str(result.adapter) if result.adapter else None,
            "steps": result.steps,
            "samples_per_s": round(result.samples_per_s, 2),
        }
        if result.final_val:
            summary["val"] = {
                k: round(v, 5) if isinstance(v, float) else v
                for k, v in result.final_val.items()
                if k in ("loss", "action_accuracy", "l1", "l1_zero", "l1_median", "swap_change")
            }
        print(json.dumps(summary))
    return 0


def register(subparsers: Any) -> None:
    """Add ``finetune`` to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune OpenVLA (LoRA, QLoRA or full) on a recorded LeRobot dataset",
        description=(
            "Fine-tune an OpenVLA checkpoint on a dataset written by openvla-ros (LeRobot v3 "
            "with images). Writes a merged checkpoint in the published layout to --out, "
            "metrics and resumable checkpoints to --out/training."
        ),
    )
    p.add_argument("--base", required=True, help="base checkpoint directory (published layout)")
    p.add_argument("--dataset", required=True, help="LeRobot v3 dataset directory")
    p.add_argument(
        "--unnorm-key", required=True, help="name of the new statistics key, e.g. my_lab_pick"
    )
    p.add_argument("--out", required=True, help="output directory (merged checkpoint)")
    _mode_flags(p.add_argument_group("what trains"))
    _optimisation_flags(p.add_argument_group("optimisation"))
    _checkpoint_flags(p.add_argument_group("validation and checkpoints"))
    _output_flags(p.add_argument_group("output"))
    _device_flags(p.add_argument_group("device and speed"))
    p.set_defaults(func=_finetune)


def _mode_flags(mode: Any) -> None:
    mode.add_argument("--full", action="store_true", help="full fine-tune instead of LoRA")
    mode.add_argument("--lora-rank", type=int, default=32, help="LoRA rank (default 32)")
    mode.add_argument(
        "--lora-alpha", type=float, default=None, help="LoRA alpha (default min(rank, 16))"
    )
    mode.add_argument("--lora-dropout", type=float, default=0.0, help="LoRA dropout (default 0)")
    mode.add_argument(
        "--quantize-base",
        default="none",
        choices=("none", "4bit"),
        help="4bit: QLoRA on an NF4 base (CUDA + bitsandbytes only; default none)",
    )
    mode.add_argument(
        "--train-vision",
        action="store_true",
        help="--full: train the vision towers too (default frozen; LoRA always adapts them)",
    )


def _optimisation_flags(opt: Any) -> None:
    opt.add_argument("--steps", type=int, default=1000, help="optimiser steps (default 1000)")
    opt.add_argument("--batch", type=int, default=16, help="samples per micro-batch (default 16)")
    opt.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step (default 1)")
    opt.add_argument(
        "--lr", type=float, default=None, help="AdamW learning rate (default 5e-4 LoRA, 2e-5 full)"
    )
    opt.add_argument(
        "--lr-schedule", choices=LR_SCHEDULES, default="constant",
        help="learning-rate curve over --steps: constant (OpenVLA's recipe), cosine or linear "
        "decay to 0 (default constant)",
    )  # fmt: skip
    opt.add_argument(
        "--warmup-steps", type=int, default=0,
        help="linear warm-up from ~0 to --lr over this many steps (default 0)",
    )  # fmt: skip
    opt.add_argument(
        "--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)"
    )
    opt.add_argument(
        "--max-grad-norm",
        type=float,
        default=None,
        help="gradient clipping norm, 0 = off (default 1.0 full, off LoRA)",
    )
    opt.add_argument(
        "--image-aug",
        action="store_true",
        help="random 0.9-area crop + colour jitter (serve with --preprocess center_crop)",
    )
    opt.add_argument("--seed", type=int, default=0, help="seed of data order, split, init")


def _checkpoint_flags(val: Any) -> None:
    val.add_argument(
        "--val-episodes",
        type=int,
        default=None,
        help="episodes held out (default 10 %% when >= 5 episodes, else 0)",
    )
    val.add_argument("--val-every", type=int, default=250, help="validate every N steps (250)")
    val.add_argument(
        "--val-frames", type=int, default=256, help="held-out frames evaluated at most (256)"
    )
    val.add_argument(
        "--save-every", type=int, default=500, help="training checkpoint every N steps (500)"
    )
    val.add_argument(
        "--keep-checkpoints", type=int, default=1, help="training checkpoints kept (default 1)"
    )
    val.add_argument("--log-every", type=int, default=10, help="log a line every N steps (10)")
    val.add_argument("--resume", action="store_true", help="continue the run in --out")


def _output_flags(out: Any) -> None:
    out.add_argument(
        "--save-adapter", action="store_true", help="also write the LoRA adapter to --out/adapter"
    )
    out.add_argument(
        "--overwrite-key",
        action="store_true",
        help="allow an --unnorm-key that already exists in the base",
    )
    out.add_argument(
        "--save-dtype",
        default="auto",
        choices=("auto", "bf16", "fp16", "fp32"),
        help="stored weight dtype (default auto: the base's)",
    )
    out.add_argument(
        "--max-shard-gb", type=float, default=5.0, help="safetensors shard size limit (5 GB)"
    )


def _device_flags(run: Any) -> None:
    run.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    run.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    run.add_argument(
        "--autocast",
        default="auto",
        choices=("auto", "bf16", "fp16", "off"),
        help="mixed precision (auto: bf16 on CUDA and on bf16 CPUs for LLM width >= 256)",
    )
    run.add_argument(
        "--grad-checkpointing",
        action="store_true",
        help="recompute Llama activations in backward (less memory, ~30 %% slower)",
    )
    run.add_argument(
        "--cache-gb",
        type=float,
        default=None,
        help="RAM for decoded frames (default half the available memory)",
    )
    run.add_argument(
        "--skip-memory-check", action="store_true", help="train even if the plan does not fit"
    )
    run.add_argument("--plan-only", action="store_true", help="print the memory plan and exit")


def main(argv: list[str] | None = None) -> int:
    """Standalone entry: ``python -m openvla_ros.train.cli finetune ...``."""
    from openvla_ros.cli import main as cli_main

    return cli_main(["finetune", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
