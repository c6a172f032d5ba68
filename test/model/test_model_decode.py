# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The static-KV-cache decode path (plain and torch.compile'd) gives the eager path's tokens.

The reference is the eager path (dynamic cache, ``generate_greedy``), itself cross-checked
against the official OpenVLA code (docs/verification.md). Checked on every kind of test
checkpoint: the shared one, a single-file copy, bf16 compute, grouped-query attention, and a
left-padded batch of prompts of different lengths.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from openvla_ros.errors import PrecisionError
from openvla_ros.model.inference import OpenVLAPolicy
from openvla_ros.model.make_checkpoint import SmallDims, write_small_checkpoint
from openvla_ros.model.make_checkpoint import synthetic_scene as scene

INSTRUCTIONS = ["pick up the red block", "Put The Spoon In The Pot next to the blue towel", "go"]
KEYS = ["bridge_orig", "fractal20220817_data"]


def _pairs(policy_a: OpenVLAPolicy, policy_b: OpenVLAPolicy, frames: int = 4) -> int:
    checked = 0
    for i in range(frames):
        image = scene(40 + i, 240 if i % 2 else 480, 320 if i % 2 else 640)
        text, key = INSTRUCTIONS[i % 3], KEYS[i % 2]
        a = policy_a.predict(image, text, key)
        b = policy_b.predict(image, text, key)
        assert a.token_ids == b.token_ids, (i, text)
        assert (a.action == b.action).all()
        checked += 1
    return checked


def _load(root: Path, decode: str, precision: str = "fp32") -> OpenVLAPolicy:
    return OpenVLAPolicy.from_checkpoint(
        root, precision=precision, device="cpu", decode=decode, self_check=False
    )


@pytest.fixture(scope="module")
def gqa_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Grouped-query attention (4 query heads share 2 kv heads), 3 layers, another seed."""
    dims = SmallDims(llm_layers=3, llm_heads=4, llm_kv_heads=2)
    return write_small_checkpoint(tmp_path_factory.mktemp("gqa") / "ck", seed=7, dims=dims)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_static_cache_matches_eager(small_ckpt: Path, precision: str) -> None:
    assert _pairs(_load(small_ckpt, "eager", precision), _load(small_ckpt, "static", precision))


def test_static_cache_matches_eager_single_file_and_gqa(single_ckpt: Path, gqa_ckpt: Path) -> None:
    for root in (single_ckpt, gqa_ckpt):
        assert _pairs(_load(root, "eager"), _load(root, "static"))


def test_static_cache_matches_eager_on_a_left_padded_batch(small_ckpt: Path) -> None:
    eager, static = _load(small_ckpt, "eager"), _load(small_ckpt, "static")
    images = [scene(60 + i) for i in range(3)]
    want = eager.predict_batch(images, INSTRUCTIONS, "bridge_orig")
    got = static.predict_batch(images, INSTRUCTIONS, "bridge_orig")
    assert [r.token_ids for r in got] == [r.token_ids for r in want]
    # A second call reuses the cache: nothing from the previous action may leak into it.
    again = static.predict_batch(images[::-1], INSTRUCTIONS[::-1], "bridge_orig")
    want2 = eager.predict_batch(images[::-1], INSTRUCTIONS[::-1], "bridge_orig")
    assert [r.token_ids for r in again] == [r.token_ids for r in want2]


def test_unknown_decode_mode_is_refused(small_ckpt: Path) -> None:
    with pytest.raises(PrecisionError, match="unknown decode mode 'fast'"):
        _load(small_ckpt, "fast")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16"])
def test_compiled_decode_matches_eager(tmp_path: Path, precision: str) -> None:
    """torch.compile on this CPU takes ~15-45 s, so once, on a one-layer checkpoint, in bf16:
    the precision where fused kernels round differently from eager unless told not to (fp32
    compiled = eager is in benchmarks/bench_inference.py's table; add "fp32" here to test it)."""
    root = write_small_checkpoint(tmp_path / "ck", seed=3, dims=SmallDims(llm_layers=1))
    eager = _load(root, "eager", precision)
    compiled = OpenVLAPolicy.from_checkpoint(
        root, precision=precision, device="cpu", decode="compiled"
    )
    assert compiled.info()["decode"] == "compiled"
    assert compiled._static is not None and compiled._static.compile
    assert _pairs(eager, compiled, frames=8)
    # The step really is a compiled function (not the eager fallback).
    steps = list(compiled._static._steps.values())
    assert steps and all(hasattr(s.compiled, "_torchdynamo_orig_callable") for s in steps)
