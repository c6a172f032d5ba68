# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Where the loader's checks spend their time: the NaN/inf sums and the image self-check.

Loads one checkpoint (by default the real-size DINOv2-L + SigLIP-So400m towers + small Llama
of the official cross-check, stored bf16) in this process, alternating two modes for
``--rounds`` rounds: as shipped (the finite sums and the self-check on one intra-op thread,
``openvla_ros/model/threads.py``) and with that scope switched off (torch's configured
threads throughout, as the loader did before). Prints per stage wall and process CPU
seconds: the weight step's finite sums and casts, then the self-check's DINOv2 pass, SigLIP
pass, projector, the two language-model prefills and the rest (pixels, patch-embedding
check); medians over rounds of the median of ``--repeats`` self-checks per load.

Example (docs/BENCHMARKS.md, loading):
    python benchmarks/bench_self_check.py --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))


class Spans:
    """Accumulated (wall s, CPU s, calls) per stage name."""

    def __init__(self) -> None:
        self.data: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            entry = self.data[name]
            entry[0] += time.perf_counter() - t
            entry[1] += time.process_time() - c
            entry[2] += 1

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.span(name):
                return fn(*args, **kwargs)

        return timed


def _hook(spans: Spans, module: Any, name: str) -> list[Any]:
    """Time every forward of ``module`` under ``name``; returns the hook handles."""
    state: dict[str, float] = {}

    def pre(*_: Any) -> None:
        state["t"], state["c"] = time.perf_counter(), time.process_time()

    def post(*_: Any) -> None:
        entry = spans.data[name]
        entry[0] += time.perf_counter() - state["t"]
        entry[1] += time.process_time() - state["c"]
        entry[2] += 1

    return [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]


def measure(root: Path, precision: str, scoped: bool, repeats: int) -> dict[str, list[float]]:
    """Load ``root`` and run ``repeats`` self-checks; per-stage (wall, CPU, calls) medians."""
    import openvla_ros.model.checkpoint as checkpoint
    import openvla_ros.model.inference as inference

    shipped = (inference.one_intra_op_thread, checkpoint.one_intra_op_thread)
    originals = (checkpoint.all_finite, checkpoint._place)
    load = Spans()
    if not scoped:
        inference.one_intra_op_thread = checkpoint.one_intra_op_thread = contextlib.nullcontext
    checkpoint.all_finite = load.wrap("weights: NaN/inf sums", checkpoint.all_finite)
    checkpoint._place = load.wrap("weights: casts (.to)", checkpoint._place)
    try:
        with load.span("weights: whole step"):
            policy = inference.OpenVLAPolicy.from_checkpoint(
                root, precision=precision, device="cpu", self_check=False
            )
        net = policy.network
        runs = []
        for _ in range(repeats):
            spans = Spans()
            handles = _hook(spans, net.vision_backbone.featurizer, "self-check: DINOv2 pass")
            if net.vision_backbone.fused_featurizer is not None:
                tower = net.vision_backbone.fused_featurizer
                handles += _hook(spans, tower, "self-check: SigLIP pass")
            handles += _hook(spans, net.projector, "self-check: projector")
            handles += _hook(spans, net.language_model, "self-check: LLM prefills")
            with spans.span("self-check: whole"):
                policy.self_check()
            for handle in handles:
                handle.remove()
            whole = spans.data["self-check: whole"]
            parts = [v for k, v in spans.data.items() if k != "self-check: whole"]
            spans.data["self-check: rest (pixels, patch check)"] = [
                whole[0] - sum(v[0] for v in parts),
                whole[1] - sum(v[1] for v in parts),
                1.0,
            ]
            runs.append(dict(spans.data))
    finally:
        inference.one_intra_op_thread, checkpoint.one_intra_op_thread = shipped
        checkpoint.all_finite, checkpoint._place = originals
    out = {k: list(v) for k, v in load.data.items()}
    for name in runs[0]:
        out[name] = [statistics.median(r[name][i] for r in runs) for i in range(3)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="checkpoint dir (default: real-size towers)")
    parser.add_argument("--precision", default="fp32", help="fp32 or bf16 (default fp32)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--repeats", type=int, default=3, help="self-checks per load")
    parser.add_argument("--rounds", type=int, default=2, help="loads per mode, alternating")
    args = parser.parse_args(argv)
    import torch
    import transformers.models.llama.modeling_llama  # noqa: F401  (import not timed)

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmpdir:
        if args.checkpoint:
            root = Path(args.checkpoint)
        else:
            from crosscheck_official import write_real_tower_checkpoint

            root = write_real_tower_checkpoint(Path(tmpdir) / "real-towers")
        modes = {"one thread (shipped)": True, "configured threads": False}
        rounds: dict[str, list[dict[str, list[float]]]] = {name: [] for name in modes}
        for _ in range(args.rounds):
            for name, scoped in modes.items():
                rounds[name].append(measure(root, args.precision, scoped, args.repeats))
    figures = {
        name: {
            stage: [statistics.median(r[stage][i] for r in runs) for i in range(3)]
            for stage in runs[0]
        }
        for name, runs in rounds.items()
    }
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"# checks of {root.name} as {args.precision} on CPU, torch threads "
        f"{torch.get_num_threads()}, medians of {args.rounds} alternating loads per mode x "
        f"{args.repeats} self-checks; load average {load}"
    )
    names = list(figures)
    print(f"| stage | {' | '.join(f'{n} s (CPU s)' for n in names)} | calls |")
    print("|---|" + "---|" * (len(names) + 1))
    for stage in figures[names[0]]:
        cells = [f"{figures[n][stage][0]:.3f} ({figures[n][stage][1]:.3f})" for n in names]
        print(f"| {stage} | {' | '.join(cells)} | {figures[names[0]][stage][2]:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
