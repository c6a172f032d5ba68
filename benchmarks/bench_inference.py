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
* ``load``: this tree's loader vs the loader of an earlier commit (``--baseline-rev``) and,
  with ``--official-python``, the official OpenVLA loader (``AutoModelForVision2Seq`` +
  ``AutoProcessor`` with the remote code, run in that second environment) on the same
  checkpoint files, weights-only and with the image self-check, interleaved fresh subprocesses.

Examples:
    # CPU, small generated checkpoint (all three parts)
    python benchmarks/bench_inference.py --device cpu --precision fp32 bf16 --decode eager static
    # the GPU figures in one command: full 7B geometry, random weights, bf16/int8/int4,
    # eager vs compiled (CUDA graphs), plus the preprocessing comparison
    python benchmarks/bench_inference.py --gpu
    # loading: 0.77 B-parameter real-size towers + small LLM vs the loader at 1c2c6f1
    python benchmarks/bench_inference.py --parts load --real-towers --baseline-rev 1c2c6f1
    # loading: ours vs the official loader (second env, see docs/BENCHMARKS.md)
    python benchmarks/bench_inference.py --parts load --real-towers --baseline-rev "" \
        --official-python /tmp/offvenv/bin/python --official-src /tmp/official \
        --official-pythonpath /tmp/tvstub --load-repeats 5

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


# Fingerprint of the loaded weights (float64 sums of a few tensors present in both loaders'
# state dicts), so the table can show that both sides loaded the same values.
_FINGERPRINT_KEYS = (
    "projector.fc1.weight",
    "language_model.lm_head.weight",
    "vision_backbone.featurizer.patch_embed.proj.weight",
    "vision_backbone.fused_featurizer.blocks.0.attn.qkv.weight",
)

# Both children: the clock starts after ``import torch`` + transformers' Llama modelling (the
# framework both loaders sit on, reported as "framework import s" and left out of the totals)
# and includes importing each loader's own code (ours: openvla_ros.model.inference; official:
# timm, then its remote modules inside from_pretrained).
_LOAD_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch, transformers.models.llama.modeling_llama  # noqa: F401
import_s = time.perf_counter() - t0
root, precision, keys = sys.argv[1], sys.argv[2], json.loads(sys.argv[4])
torch.set_num_threads(int(sys.argv[3]) or torch.get_num_threads())
t0, c0 = time.perf_counter(), time.process_time()
from openvla_ros.model.inference import OpenVLAPolicy
module_s, module_cpu = time.perf_counter() - t0, time.process_time() - c0
t0, c0 = time.perf_counter(), time.process_time()
policy = OpenVLAPolicy.from_checkpoint(root, precision=precision, device="cpu", self_check=False)
weights_s, weights_cpu = time.perf_counter() - t0, time.process_time() - c0
t0, c0 = time.perf_counter(), time.process_time()
policy.self_check()
check_s, check_cpu = time.perf_counter() - t0, time.process_time() - c0
import openvla_ros
state = policy.network.state_dict()
print(json.dumps({"import_s": import_s, "module_s": module_s, "module_cpu_s": module_cpu,
                  "weights_s": weights_s, "self_check_s": check_s,
                  "weights_cpu_s": weights_cpu, "self_check_cpu_s": check_cpu,
                  "params": sum(p.numel() for p in policy.network.parameters()),
                  "fingerprint": [state[k].double().sum().item() for k in keys],
                  "package": openvla_ros.__file__}))
"""

# The official way (README / deploy.py), in fp32 on the CPU: AutoModelForVision2Seq with the
# remote code + AutoProcessor; sdpa as ours. No self-check exists there (reported as 0).
_OFFICIAL_LOAD_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch, transformers.models.llama.modeling_llama  # noqa: F401
from transformers import AutoModelForVision2Seq, AutoProcessor
import_s = time.perf_counter() - t0
root, low_cpu, keys = sys.argv[1], sys.argv[2] == "1", json.loads(sys.argv[4])
torch.set_num_threads(int(sys.argv[3]) or torch.get_num_threads())
t0, c0 = time.perf_counter(), time.process_time()
import timm
module_s, module_cpu = time.perf_counter() - t0, time.process_time() - c0
t0, c0 = time.perf_counter(), time.process_time()
vla, info = AutoModelForVision2Seq.from_pretrained(
    root, torch_dtype=torch.float32, attn_implementation="sdpa", trust_remote_code=True,
    low_cpu_mem_usage=low_cpu, output_loading_info=True)
processor = AutoProcessor.from_pretrained(root, trust_remote_code=True)
weights_s, weights_cpu = time.perf_counter() - t0, time.process_time() - c0
problems = {k: list(v) for k, v in info.items() if v}
dtypes = {str(p.dtype) for p in vla.parameters()}
if problems or dtypes != {"torch.float32"}:
    raise SystemExit(f"official load: key problems {problems}, dtypes {dtypes}")
import transformers
state = vla.state_dict()
print(json.dumps({"import_s": import_s, "module_s": module_s, "module_cpu_s": module_cpu,
                  "weights_s": weights_s, "self_check_s": 0.0,
                  "weights_cpu_s": weights_cpu, "self_check_cpu_s": 0.0,
                  "params": sum(p.numel() for p in vla.parameters()),
                  "fingerprint": [state[k].double().sum().item() for k in keys],
                  "package": f"transformers {transformers.__version__}, timm {timm.__version__}, "
                             f"torch {torch.__version__}, {type(processor).__name__}"}))
"""


def _load_checkpoint(args: argparse.Namespace, tmp: Path) -> Path:
    """The checkpoint the load part times (given, real-size towers, or a small one)."""
    if args.checkpoint:
        return Path(args.checkpoint)
    if args.real_towers:
        from crosscheck_official import write_real_tower_checkpoint

        return write_real_tower_checkpoint(tmp / "real-towers")
    from openvla_ros.model.make_checkpoint import write_small_checkpoint

    return write_small_checkpoint(tmp / "small")


def _load_runners(args: argparse.Namespace, tmp: Path, ckpt: Path) -> dict[str, tuple[list, dict]]:
    """name -> (argv, env) of each fresh-process loader to time: official, baseline, this tree."""
    keys = json.dumps(_FINGERPRINT_KEYS)
    threads = str(args.threads)
    runners: dict[str, tuple[list, dict]] = {}
    if args.official_python:
        from crosscheck_official import official_copy

        if not args.official_src:
            raise SystemExit("--official-python needs --official-src (an openvla/openvla checkout)")
        if args.load_precision != "fp32":
            raise SystemExit("the official side loads fp32 (torch_dtype=torch.float32) only")
        if "vision_tower_overrides" in json.loads((ckpt / "config.json").read_text()):
            raise SystemExit(
                "the official code builds the towers from timm_model_ids: use "
                "--real-towers or a checkpoint without vision_tower_overrides"
            )
        off = official_copy(ckpt, Path(args.official_src), tmp / "official_checkpoint")
        env = {**os.environ, "PYTHONPATH": args.official_pythonpath,
               "HF_MODULES_CACHE": str(tmp / "hf_modules"), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
        for mode in args.official_modes:
            flag = "1" if mode == "low_cpu_mem" else "0"
            name = f"official (low_cpu_mem_usage={flag == '1'})"
            argv = [args.official_python, "-c", _OFFICIAL_LOAD_CHILD, str(off), flag, threads, keys]
            runners[name] = (argv, env)
    trees = {}
    if args.baseline_rev:
        base = tmp / "baseline"
        base.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", args.baseline_rev, "openvla_ros"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        trees[f"loader at {args.baseline_rev}"] = base
    trees["this tree"] = REPO
    for name, tree in trees.items():
        argv = [sys.executable, "-c", _LOAD_CHILD, str(ckpt), args.load_precision, threads, keys]
        runners[name] = (argv, {**os.environ, "PYTHONPATH": str(tree)})
    return runners


def _time_loaders(
    runners: dict[str, tuple[list, dict]], repeats: int, cwd: Path
) -> dict[str, list[dict[str, Any]]] | None:
    """One untimed round (page cache, .pyc, remote-code cache), then ``repeats`` interleaved
    rounds (A, B, A, B, ...), each loader in a fresh process; None when one fails."""
    figures: dict[str, list[dict[str, Any]]] = {name: [] for name in runners}
    for round_ in range(repeats + 1):
        for name, (argv, env) in runners.items():
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
            if proc.returncode != 0:
                print(f"load {name}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
                return None
            if round_:
                figures[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return figures


def part_load(args: argparse.Namespace) -> bool:
    """Loaders side by side on one checkpoint, alternating fresh processes: the official code
    (with --official-python), an earlier commit's loader (--baseline-rev) and this tree's."""
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ckpt = _load_checkpoint(args, tmp)
        runners = _load_runners(args, tmp, ckpt)
        figures = _time_loaders(runners, args.load_repeats, tmp)
    if figures is None:
        return False
    return _print_load_table(args, ckpt, figures)


def _print_load_table(
    args: argparse.Namespace, ckpt: Path, figures: dict[str, list[dict[str, Any]]]
) -> bool:
    """The load table (medians, min of the totals), the ratio to the official loader, and
    whether every loader produced the same weight fingerprint."""
    params = next(iter(figures.values()))[0]["params"]
    for name, runs in figures.items():
        print(f"  {name}: {runs[0]['package']}")
    print(
        f"# load: {ckpt.name} ({params / 1e6:.0f} M parameters, stored bf16) as "
        f"{args.load_precision} on CPU, median of {args.load_repeats} fresh processes each "
        f"(interleaved, after one untimed round); load average {_loadavg()}"
    )
    print(
        "| loader | code import s | weights + processor s (CPU s) | self-check s (CPU s) | "
        "total s (CPU s) | total min s | framework import s |"
    )
    print("|---|---|---|---|---|---|---|")

    def med(runs: list[dict[str, Any]], *keys: str) -> float:
        return float(statistics.median(sum(r[k] for k in keys) for r in runs))

    total = ("module_s", "weights_s", "self_check_s")
    total_cpu = ("module_cpu_s", "weights_cpu_s", "self_check_cpu_s")
    for name, runs in figures.items():
        print(
            f"| {name} | {med(runs, 'module_s'):.2f} | {med(runs, 'weights_s'):.2f} "
            f"({med(runs, 'weights_cpu_s'):.2f}) | {med(runs, 'self_check_s'):.2f} "
            f"({med(runs, 'self_check_cpu_s'):.2f}) | {med(runs, *total):.2f} "
            f"({med(runs, *total_cpu):.2f}) | {min(sum(r[k] for k in total) for r in runs):.2f} | "
            f"{med(runs, 'import_s'):.2f} |"
        )
    print("CPU s = process CPU time (all threads): steadier than wall time on a shared machine.")
    ours = figures["this tree"]
    for name, runs in figures.items():
        if not name.startswith("official"):
            continue
        for label, keys in (("with self-check", total), ("without self-check", total[:2])):
            p50 = med(ours, *keys) / med(runs, *total)
            low = min(sum(r[k] for k in keys) for r in ours)
            ratio_min = low / min(sum(r[k] for k in total) for r in runs)
            print(f"this tree / {name}, {label}: p50 {p50:.2f}x, min {ratio_min:.2f}x")
    prints = {name: runs[0]["fingerprint"] for name, runs in figures.items()}
    ref = prints["this tree"]
    same = all(
        abs(a - b) <= 1e-9 * max(1.0, abs(b))
        for fp in prints.values()
        for a, b in zip(fp, ref, strict=True)
    )
    print(f"same weights in every loader (float64 sums of {len(ref)} tensors): {same}")
    return same


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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
        "--official-python",
        default="",
        help="load part: python of an environment that runs the official remote code "
        "(transformers <= 4.48.3, timm 0.9.x); also time the official loader",
    )
    parser.add_argument("--official-src", default="", help="load part: openvla/openvla checkout")
    parser.add_argument(
        "--official-pythonpath", default="", help="load part: PYTHONPATH for the official env"
    )
    parser.add_argument(
        "--official-modes",
        nargs="+",
        default=["low_cpu_mem"],
        choices=["low_cpu_mem", "default"],
        help="load part: official from_pretrained with low_cpu_mem_usage=True (README) and/or "
        "False",
    )
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
