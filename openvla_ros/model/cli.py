# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``openvla-ros predict`` and ``openvla-ros make-checkpoint``.

:func:`register` adds both subcommands to the top-level console script's subparsers. torch and
transformers are imported inside the handlers only, so ``openvla-ros --help`` stays instant.
Run standalone with ``python -m openvla_ros.model.cli ...``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

PRECISION_CHOICES = ("fp32", "bf16", "fp16", "int8", "int4")


def _predict(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from openvla_ros.errors import OpenVLARosError
    from openvla_ros.model.action_tokenizer import resolve_unnorm_key
    from openvla_ros.model.config import load_config
    from openvla_ros.model.inference import OpenVLAPolicy
    from openvla_ros.model.prompt import validate_instruction

    try:
        # Settle the statistics key before spending time (and GPU memory) on the weights.
        config = load_config(Path(args.checkpoint).expanduser())
        norm_stats = config.norm_stats
        if args.adapter:  # fine-tune adapter on top of the base: its statistics win
            from openvla_ros.train.adapter import adapter_norm_stats

            norm_stats = adapter_norm_stats(args.adapter)
        resolve_unnorm_key(norm_stats, args.unnorm_key)
        validate_instruction(args.instruction)
        try:
            with Image.open(args.image) as img:
                frame = np.asarray(img.convert("RGB"), dtype=np.uint8)
        except OSError as exc:
            print(f"error: cannot read image {args.image}: {exc}", file=sys.stderr)
            return 2
        load = OpenVLAPolicy.from_checkpoint
        if args.adapter:
            from openvla_ros.train.adapter import policy_loader

            load = policy_loader(args.adapter)
        policy = load(
            args.checkpoint,
            precision=args.precision,
            device=args.device,
            attn_implementation=args.attn,
            preprocess=args.preprocess,
            self_check=not args.no_self_check,
            decode=args.decode,
        )
        results = [
            policy.predict(frame, args.instruction, unnorm_key=args.unnorm_key)
            for _ in range(max(1, args.repeat))
        ]
    except OpenVLARosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    last = results[-1]
    timings = {
        name: float(np.median([r.timings_ms[name] for r in results]))
        for name in ("preprocess", "prefill", "decode", "total")
    }
    report: dict[str, Any] = {
        "action": [round(float(v), 6) for v in last.action],
        "normalized_action": [round(float(v), 6) for v in last.normalized_action],
        "token_ids": list(last.token_ids),
        "unnorm_key": last.unnorm_key,
        "timings_ms_median": {k: round(v, 2) for k, v in timings.items()},
        "runs": len(results),
        "load_s": round(policy.load_s, 2),
        "precision": policy.placement.precision,
        "device": str(policy.placement.device),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print("action:", " ".join(f"{v:+.5f}" for v in last.action), f"({last.unnorm_key})")
        print("tokens:", " ".join(str(t) for t in last.token_ids))
        print(
            f"timings (median of {len(results)}): "
            + ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items())
            + f"; load {policy.load_s:.2f} s on {policy.placement.device} "
            f"({policy.placement.precision})"
        )
    return 0


def _make_checkpoint(args: argparse.Namespace) -> int:
    from openvla_ros.model.make_checkpoint import write_small_checkpoint

    if args.shards < 1:
        print("error: --shards must be >= 1", file=sys.stderr)
        return 2
    from openvla_ros.model.make_checkpoint import SmallDims

    base = SmallDims()
    dims = SmallDims(
        llm_hidden=args.llm_hidden or base.llm_hidden,
        llm_layers=args.llm_layers or base.llm_layers,
        llm_heads=args.llm_heads or base.llm_heads,
        llm_kv_heads=args.llm_heads or base.llm_kv_heads,
        llm_intermediate=args.llm_intermediate or 2 * (args.llm_hidden or base.llm_hidden),
    )
    for tower in (dims.dino, dims.siglip):
        if args.vision_dim:
            tower.update(embed_dim=args.vision_dim, mlp_hidden=2 * args.vision_dim)
        if args.vision_depth:
            tower["depth"] = args.vision_depth
        if args.vision_heads:
            tower["num_heads"] = args.vision_heads
        if args.patch_size:
            if 224 % args.patch_size:
                print("error: --patch-size must divide 224 (e.g. 14, 16, 28, 32)", file=sys.stderr)
                return 2
            tower["patch_size"] = args.patch_size
    out = write_small_checkpoint(
        args.out_dir, seed=args.seed, shards=args.shards, dims=dims, dtype=args.dtype
    )
    print(f"wrote small OpenVLA checkpoint to {out}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``predict`` and ``make-checkpoint`` to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "predict",
        help="predict one action from an image and an instruction",
        description="Load an OpenVLA checkpoint directory and print the action and timings.",
    )
    p.add_argument("--checkpoint", required=True, help="OpenVLA checkpoint directory (HF layout)")
    p.add_argument("--image", required=True, help="RGB image file (PNG/JPEG)")
    p.add_argument("--instruction", required=True, help="task, e.g. 'pick up the red cup'")
    p.add_argument("--unnorm-key", default=None, help="dataset statistics key, e.g. bridge_orig")
    p.add_argument(
        "--adapter",
        default=None,
        help="LoRA adapter directory (openvla-ros finetune --save-adapter) on top of --checkpoint",
    )
    p.add_argument("--precision", default="bf16", choices=PRECISION_CHOICES)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument(
        "--attn",
        default="sdpa",
        choices=("sdpa", "eager", "flash_attention_2"),
        help="language-model attention implementation",
    )
    p.add_argument(
        "--preprocess",
        default="none",
        help="preset before the processor: none, bridge, center_crop, libero or '+'-joined steps",
    )
    p.add_argument(
        "--decode",
        default="eager",
        choices=("eager", "static", "compiled"),
        help="decode path: eager (dynamic KV cache), static (preallocated KV cache) or "
        "compiled (static + torch.compile; CUDA graphs on GPU); same tokens",
    )
    p.add_argument("--repeat", type=int, default=1, help="run N times; timings are medians")
    p.add_argument("--no-self-check", action="store_true", help="skip the image self-check")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_predict)

    m = subparsers.add_parser(
        "make-checkpoint",
        help="write a small random OpenVLA checkpoint (published layout, tiny sizes)",
    )
    m.add_argument("out_dir", help="directory to write")
    m.add_argument("--seed", type=int, default=0, help="weights seed (deterministic)")
    m.add_argument("--shards", type=int, default=2, help="safetensors shards (1 = single file)")
    m.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16",
                   help="stored weight dtype (default bf16, as published)")  # fmt: skip
    g = m.add_argument_group("sizes (0 = the tiny default; both towers get the vision sizes)")
    g.add_argument("--llm-hidden", type=int, default=0, help="Llama hidden size (default 64)")
    g.add_argument("--llm-layers", type=int, default=0, help="Llama layers (default 2)")
    g.add_argument("--llm-heads", type=int, default=0, help="Llama attention heads (default 4)")
    g.add_argument("--llm-intermediate", type=int, default=0,
                   help="Llama MLP size (default 2 x hidden)")  # fmt: skip
    g.add_argument("--vision-dim", type=int, default=0,
                   help="ViT width of each tower (default 32 / 48), MLP 2 x width")  # fmt: skip
    g.add_argument("--vision-depth", type=int, default=0,
                   help="ViT blocks per tower (default 3; features of block depth-2)")  # fmt: skip
    g.add_argument("--vision-heads", type=int, default=0, help="ViT heads per tower (default 2)")
    g.add_argument("--patch-size", type=int, default=0,
                   help="ViT patch size in px (default 14: 256 tokens; 32: 49 tokens)")  # fmt: skip
    m.set_defaults(func=_make_checkpoint)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry: ``python -m openvla_ros.model.cli {predict,make-checkpoint} ...``."""
    parser = argparse.ArgumentParser(prog="openvla-ros", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log loading progress")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
