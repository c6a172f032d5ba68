# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Inference-core benchmark: speed, memory and exactness of the model path, with baselines.

Three parts, each printing its figures next to its baseline:

* ``infer``: per (precision, decode path), each in a fresh subprocess: load time, peak RSS /
  CUDA memory, preprocess / prefill / decode times, actions/s, p50/p95 latency, and whether the
  static / compiled decode paths give the eager path's token ids on the same frames.
* ``preprocess``: the official processor's algorithm (PIL resize per tower + to_tensor +
  normalize) vs ``process_image`` at 640x480, and whether the outputs are bit-identical.
* ``timm``: the hand-written vision towers vs timm's at full size (only where timm imports,
  e.g. the GPU machine; no pytest needed there).
* ``load``: this tree's loader vs the loader of an earlier commit (``--baseline-rev``) on the
  same checkpoint, weights-only and with the image self-check, each in a fresh subprocess.

Examples:
    # CPU, small generated checkpoint (all three parts)
    python benchmarks/bench_inference.py --device cpu --precision fp32 bf16 --decode eager static
    # the GPU figures in one command: full 7B geometry, random weights, bf16/int8/int4,
    # eager vs compiled (CUDA graphs), plus the preprocessing comparison
    python benchmarks/bench_inference.py --gpu
    # loading: 0.77 B-parameter real-size towers + small LLM vs the loader at 1c2c6f1
    python benchmarks/bench_inference.py --parts load --real-towers --baseline-rev 1c2c6f1

Numbers are medians over ``--runs`` predictions after ``--warmup`` untimed ones (compiled
paths are warmed up at load, as ``OpenVLAPolicy`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "scripts"))

INSTRUCTION = "pick up the red cup"


def _random_policy(args: argparse.Namespace, tmp: Path) -> Any:
    from openvla_ros.model.checkpoint import random_network
    from openvla_ros.model.config import config_from_dict
    from openvla_ros.model.inference import OpenVLAPolicy
    from openvla_ros.model.make_checkpoint import published_config, write_tokenizer
    from openvla_ros.model.precision import resolve_placement
    from openvla_ros.model.preprocess import ProcessorSpec
    from openvla_ros.model.prompt import PromptTokenizer

    raw = published_config()
    if args.llm_layers is not None:
        raw["text_config"]["num_hidden_layers"] = args.llm_layers
    if args.vision_layers is not None:
        raw["vision_tower_overrides"] = [{"depth": args.vision_layers}] * 2
    config = config_from_dict(raw)
    placement = resolve_placement(args.precision, args.device, args.attn)
    start = time.perf_counter()
    network = random_network(config, placement)
    write_tokenizer(tmp)
    policy = OpenVLAPolicy(
        root=Path("<random-7b>"),
        config=config,
        network=network,
        tokenizer=PromptTokenizer.from_dir(tmp),
        processor=ProcessorSpec.default(),
        placement=placement,
        decode=args.decode,
    )
    if args.decode == "compiled":
        policy.warm_up()
    policy.load_s = time.perf_counter() - start
    return policy


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


def run_infer(args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark one (precision, decode) in this process and return the figures."""
    import torch

    from openvla_ros.model.inference import OpenVLAPolicy
    from openvla_ros.model.make_checkpoint import synthetic_scene, write_small_checkpoint

    torch.set_num_threads(args.threads or torch.get_num_threads())
    start = time.perf_counter()
    import transformers.models.llama.modeling_llama  # noqa: F401

    if args.precision in ("int8", "int4"):
        import bitsandbytes  # noqa: F401
    import_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if args.random_7b:
            policy = _random_policy(args, tmp)
            extra = [f"llm_layers={args.llm_layers}"] if args.llm_layers else []
            extra += [f"vision_layers={args.vision_layers}"] if args.vision_layers else []
            source = "random-7b" + (f" ({', '.join(extra)})" if extra else "")
        else:
            ckpt = Path(args.checkpoint) if args.checkpoint else write_small_checkpoint(tmp / "ck")
            source = str(args.checkpoint or "small generated checkpoint (seed 0)")
            start = time.perf_counter()
            policy = OpenVLAPolicy.from_checkpoint(
                ckpt,
                precision=args.precision,
                device=args.device,
                attn_implementation=args.attn,
                self_check=False,
                decode=args.decode,
            )
            policy.load_s = time.perf_counter() - start
        device = policy.placement.device
        key = args.unnorm_key or sorted(policy.config.norm_stats)[0]
        frames = [synthetic_scene(i, 480, 640) for i in range(8)]
        for i in range(args.warmup):
            policy.predict(frames[i % 8], INSTRUCTION, unnorm_key=key)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        results = [
            policy.predict(frames[i % 8], INSTRUCTION, unnorm_key=key) for i in range(args.runs)
        ]
        # Token ids of the 8 distinct frames (compared across decode paths by the parent) and
        # the smallest first-token top-1/top-2 gap of the reference (random weights give small
        # gaps; a mismatch at a tiny gap is float noise, not a different algorithm).
        tokens = [list(policy.predict(f, INSTRUCTION, unnorm_key=key).token_ids) for f in frames]

    def med(name: str) -> float:
        return float(statistics.median(r.timings_ms[name] for r in results))

    totals = [r.timings_ms["total"] for r in results]
    n_tokens = len(results[0].token_ids)
    report: dict[str, Any] = {
        "source": source,
        "precision": policy.placement.precision,
        "decode": args.decode,
        "device": str(device),
        "attn": policy.placement.attn_implementation,
        "threads": torch.get_num_threads(),
        "runs": args.runs,
        "import_s": round(import_s, 3),
        "load_s": round(policy.load_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "preprocess_ms": round(med("preprocess"), 2),
        "prefill_ms": round(med("prefill"), 2),
        "decode_ms_per_token": round(med("decode") / max(n_tokens - 1, 1), 2),
        "total_ms": round(med("total"), 2),
        "p95_ms": round(_percentile(totals, 95), 2),
        "actions_per_s": round(1000.0 / med("total"), 2),
        "tokens": tokens,
    }
    if device.type == "cuda":
        report["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        report["gpu"] = torch.cuda.get_device_name(device)
    return report


def _child(args: argparse.Namespace, *extra: str) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "--child", *extra]
    for flag in ("checkpoint", "device", "attn", "unnorm_key", "llm_layers", "vision_layers"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    cmd += ["--runs", str(args.runs), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    if args.random_7b:
        cmd.append("--random-7b")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode != 0:
        print(f"{' '.join(extra)}: FAILED\n{proc.stderr.strip()[-2000:]}", file=sys.stderr)
        return None
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def part_infer(args: argparse.Namespace) -> bool:
    """Every (precision, decode) pair in a fresh process; token identity vs eager."""
    rows = []
    for precision in args.precision:
        eager_tokens = None
        for decode in args.decode:
            row = _child(args, "--precision", precision, "--decode", decode)
            if row is None:
                continue
            if decode == "eager":
                eager_tokens = row["tokens"]
            if eager_tokens is not None:
                same = sum(a == b for a, b in zip(row["tokens"], eager_tokens, strict=True))
                row["tokens_vs_eager"] = f"{same}/{len(eager_tokens)}"
            else:
                row["tokens_vs_eager"] = "no eager run"
            rows.append(row)
            if args.json:
                print(json.dumps({k: v for k, v in row.items() if k != "tokens"}), flush=True)
    if not rows:
        return False
    cols = [
        ("precision", "precision"),
        ("decode", "decode"),
        ("load_s", "load s"),
        ("peak_rss_mb", "peak RSS MB"),
        ("cuda_peak_mb", "CUDA peak MB"),
        ("preprocess_ms", "preprocess ms"),
        ("prefill_ms", "prefill ms"),
        ("decode_ms_per_token", "decode ms/token"),
        ("total_ms", "p50 ms"),
        ("p95_ms", "p95 ms"),
        ("actions_per_s", "actions/s"),
        ("tokens_vs_eager", "tokens = eager"),
    ]
    cols = [c for c in cols if any(c[0] in r for r in rows)]
    first = rows[0]
    print(
        f"# infer: {first['source']} on {first.get('gpu', first['device'])}, median of "
        f"{first['runs']} runs, {first['threads']} threads, 640x480 frames"
    )
    print("| " + " | ".join(h for _, h in cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k, _ in cols) + " |")
    return len(rows) == len(args.precision) * len(args.decode)


def part_preprocess(args: argparse.Namespace) -> bool:
    """Official processor algorithm vs ours at 640x480, side by side, with bit identity."""
    import numpy as np
    from baselines import official_processor, previous_processor

    from openvla_ros.model.preprocess import ProcessorSpec, process_image

    spec = ProcessorSpec.default()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(4)]
    identical = all(
        np.array_equal(process_image(f, spec), official_processor(f, spec.means, spec.stds))
        for f in frames
    )
    candidates = {
        "official algorithm (resize per tower + to_tensor + normalize)": lambda f: (
            official_processor(f, spec.means, spec.stds)
        ),
        "previous process_image (1c2c6f1)": lambda f: previous_processor(f, spec.means, spec.stds),
        "process_image (one resize + lookup table)": lambda f: process_image(f, spec),
    }
    medians = {}
    for name, fn in candidates.items():
        for f in frames:
            fn(f)
        times = []
        for i in range(args.preprocess_runs):
            t0 = time.perf_counter()
            fn(frames[i % 4])
            times.append(1e3 * (time.perf_counter() - t0))
        medians[name] = (statistics.median(times), _percentile(times, 95))
    base = medians["official algorithm (resize per tower + to_tensor + normalize)"][0]
    print(f"# preprocess: 640x480 RGB -> [6, 224, 224] float32, {args.preprocess_runs} runs each")
    print("| implementation | p50 ms | p95 ms | speed-up vs official |")
    print("|---|---|---|---|")
    for name, (p50, p95) in medians.items():
        print(f"| {name} | {p50:.3f} | {p95:.3f} | {base / p50:.2f}x |")
    print(f"bit-identical to the official algorithm: {identical}")
    return identical


_LOAD_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch, transformers.models.llama.modeling_llama  # noqa: F401
import_s = time.perf_counter() - t0
from openvla_ros.model.inference import OpenVLAPolicy
root, precision = sys.argv[1], sys.argv[2]
torch.set_num_threads(int(sys.argv[3]) or torch.get_num_threads())
t0, c0 = time.perf_counter(), time.process_time()
policy = OpenVLAPolicy.from_checkpoint(root, precision=precision, device="cpu", self_check=False)
weights_s, weights_cpu = time.perf_counter() - t0, time.process_time() - c0
t0, c0 = time.perf_counter(), time.process_time()
policy.self_check()
check_s, check_cpu = time.perf_counter() - t0, time.process_time() - c0
import openvla_ros
print(json.dumps({"import_s": import_s, "weights_s": weights_s, "self_check_s": check_s,
                  "weights_cpu_s": weights_cpu, "self_check_cpu_s": check_cpu,
                  "params": sum(p.numel() for p in policy.network.parameters()),
                  "package": openvla_ros.__file__}))
"""


def part_load(args: argparse.Namespace) -> bool:
    """This tree's loader vs an earlier commit's, same checkpoint, alternating fresh processes."""
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if args.checkpoint:
            ckpt = Path(args.checkpoint)
        elif args.real_towers:
            from crosscheck_official import write_real_tower_checkpoint

            ckpt = write_real_tower_checkpoint(tmp / "real-towers")
        else:
            from openvla_ros.model.make_checkpoint import write_small_checkpoint

            ckpt = write_small_checkpoint(tmp / "small")
        trees = {"this tree": REPO}
        if args.baseline_rev:
            base = tmp / "baseline"
            base.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", args.baseline_rev, "openvla_ros"],
                capture_output=True,
                check=True,
            )
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
            trees = {f"loader at {args.baseline_rev}": base, **trees}
        figures: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for _ in range(args.load_repeats):
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree)}
                proc = subprocess.run(
                    [sys.executable, "-c", _LOAD_CHILD, str(ckpt), args.load_precision,
                     str(args.threads)],
                    capture_output=True, text=True, env=env, cwd=tmp,
                )  # fmt: skip
                if proc.returncode != 0:
                    print(f"load {name}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
                    return False
                figures[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    params = next(iter(figures.values()))[0]["params"]
    for name, runs in figures.items():
        print(f"  {name}: {runs[0]['package']}")
    print(
        f"# load: {ckpt.name} ({params / 1e6:.0f} M parameters, stored bf16) as "
        f"{args.load_precision} on CPU, median of {args.load_repeats} fresh processes each "
        "(alternating)"
    )
    print(
        "| loader | weights s (CPU s) | self-check s (CPU s) | total s (CPU s) | "
        "torch+transformers import s |"
    )
    print("|---|---|---|---|---|")

    def med(runs: list[dict[str, float]], *keys: str) -> float:
        return float(statistics.median(sum(r[k] for k in keys) for r in runs))

    for name, runs in figures.items():
        print(
            f"| {name} | {med(runs, 'weights_s'):.2f} ({med(runs, 'weights_cpu_s'):.2f}) | "
            f"{med(runs, 'self_check_s'):.2f} ({med(runs, 'self_check_cpu_s'):.2f}) | "
            f"{med(runs, 'weights_s', 'self_check_s'):.2f} "
            f"({med(runs, 'weights_cpu_s', 'self_check_cpu_s'):.2f}) | "
            f"{med(runs, 'import_s'):.2f} |"
        )
    print("CPU s = process CPU time (all threads): steadier than wall time on a shared machine.")
    return True


def part_timm(args: argparse.Namespace) -> bool:
    """The hand-written towers vs timm's (where timm imports), real sizes, random weights."""
    try:
        import timm
    except Exception as exc:  # ImportError, or torchvision failing inside timm's import
        print(f"# timm: not importable here ({type(exc).__name__}: {exc}); skipped\n")
        return True
    import torch

    from openvla_ros.model.config import KNOWN_VITS
    from openvla_ros.model.vision import VisionTransformer

    device = torch.device("cuda" if args.device in ("cuda", "auto") and torch.cuda.is_available()
                          else "cpu")  # fmt: skip
    print(f"# timm {timm.__version__}: native towers vs timm.create_model, fp32 on {device}")
    print("| tower | max abs diff | max abs value | identical within 1e-4 |")
    print("|---|---|---|---|")
    ok = True
    for timm_id in ("vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"):
        torch.manual_seed(0)
        kwargs: dict[str, Any] = {"pretrained": False, "num_classes": 0, "img_size": 224}
        ref = timm.create_model(timm_id, act_layer="gelu", **kwargs).eval()
        with torch.no_grad():
            for p in ref.parameters():
                p.add_(torch.randn_like(p) * 0.02)
        ours = VisionTransformer(KNOWN_VITS[timm_id]).eval()
        state = {k.replace(".gamma", ".scale_factor"): v for k, v in ref.state_dict().items()}
        ours.load_state_dict(state, strict=True)
        ref, ours = ref.to(device), ours.to(device)
        x = torch.randn(2, 3, 224, 224, device=device)
        with torch.no_grad():
            got = ours(x)
            out = ref.get_intermediate_layers(x, n={len(ref.blocks) - 2})
            want = out[0] if isinstance(out, list | tuple) else out
        diff = float((got - want).abs().max())
        good = diff <= 1e-4 * max(1.0, float(want.abs().max()))
        ok = ok and good
        print(f"| {timm_id} | {diff:.3g} | {float(want.abs().max()):.3g} | {good} |")
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the requested parts and print their tables."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--parts", nargs="+", default=["preprocess", "infer", "load"],
                        choices=["preprocess", "infer", "load", "timm"])  # fmt: skip
    parser.add_argument("--checkpoint", help="checkpoint dir (default: generate a small one)")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--decode", nargs="+", default=["eager", "static", "compiled"],
                        help="decode paths (eager first: the token reference)")  # fmt: skip
    parser.add_argument("--device", default="auto")
    parser.add_argument("--attn", default="sdpa")
    parser.add_argument("--unnorm-key", default=None)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--random-7b", action="store_true", help="full 7B geometry, random weights")
    parser.add_argument("--llm-layers", type=int, default=None, help="override (random-7b only)")
    parser.add_argument("--vision-layers", type=int, default=None, help="override (random-7b)")
    parser.add_argument("--preprocess-runs", type=int, default=200)
    parser.add_argument(
        "--real-towers",
        action="store_true",
        help="load part: real-size towers + small LLM (0.77 B, 1.5 GB)",
    )
    parser.add_argument("--baseline-rev", default="1c2c6f1", help="load part: baseline commit")
    parser.add_argument("--load-precision", default="fp32")
    parser.add_argument("--load-repeats", type=int, default=3)
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="the GPU suite: --random-7b --device cuda --precision bf16 int8 int4 "
        "--decode eager compiled --parts preprocess timm infer",
    )
    parser.add_argument("--json", action="store_true", help="also print JSON lines")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        args.precision, args.decode = args.precision[0], args.decode[0]
        print(json.dumps(run_infer(args)))
        return 0
    if args.gpu:
        args.random_7b, args.device = True, "cuda"
        args.precision, args.decode = ["bf16", "int8", "int4"], ["eager", "compiled"]
        args.parts = ["preprocess", "timm", "infer"]
    ok = True
    for part in args.parts:
        fn = {
            "preprocess": part_preprocess,
            "infer": part_infer,
            "load": part_load,
            "timm": part_timm,
        }[part]
        ok = fn(args) and ok
        print(flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
