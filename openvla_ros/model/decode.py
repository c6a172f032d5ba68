# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Greedy decoding with a static (preallocated) KV cache, optionally ``torch.compile``d.

The eager path (:func:`openvla_ros.model.network.generate_greedy`) grows a dynamic cache by
concatenation and runs every decode step through Python and the dispatcher: for a 7B model on
a GPU that overhead, not the weights, dominates the six cached steps of an action. Here the
cache (``transformers.StaticCache``) has a fixed shape, so the per-token step has fixed shapes
too and can be compiled once per (batch, cache length): inductor kernels on CPU, and CUDA
graphs on a GPU (``mode="reduce-overhead"``), which replay the whole step with one launch.

The prefill ([BOS] + 256 image tokens + prompt) stays eager: it runs once per action, is
compute-bound, and its length varies with the instruction. Cache lengths are rounded up to a
multiple of :data:`CACHE_BUCKET` so instructions of similar length share one compiled step.

Token ids are the eager path's: the same network, the same masks and positions; only the
attention runs over a longer, masked cache (tested on every test checkpoint).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch

from openvla_ros.errors import PrecisionError
from openvla_ros.model.network import Generation, OpenVLANetwork, _sync, build_prefill_inputs

LOG = logging.getLogger(__name__)

#: Decoding paths a policy can use.
DECODE_MODES = ("eager", "static", "compiled")
#: Cache lengths are rounded up to this many tokens (one compiled step per bucket).
CACHE_BUCKET = 64

Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def check_decode_mode(mode: str) -> str:
    """Validate a decode mode name.

    Raises:
        PrecisionError: not one of :data:`DECODE_MODES`.
    """
    if mode not in DECODE_MODES:
        raise PrecisionError(f"unknown decode mode '{mode}'; choose one of {list(DECODE_MODES)}")
    return mode


def _precision_faithful(compiled: Step) -> Step:
    """Run (and so compile) ``compiled`` with inductor rounding every bf16/fp16 intermediate
    the way eager does (``emulate_precision_casts``). Without it, fused kernels keep
    intermediates in fp32 and bf16 greedy tokens drifted from eager's (6 of 8 equal on a
    small bf16 checkpoint, 8 of 8 with it); fp32 is unaffected."""
    import torch._inductor.config as inductor_config

    if not hasattr(inductor_config, "emulate_precision_casts"):
        LOG.warning(
            "torch %s's inductor cannot emulate eager's bf16/fp16 rounding: compiled bf16/fp16 "
            "tokens may differ from eager ones",
            torch.__version__,
        )
        run_plain: Step = compiled
        return run_plain

    def run(token: torch.Tensor, mask: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        with inductor_config.patch(emulate_precision_casts=True):
            return compiled(token, mask, position)

    run.compiled = compiled  # type: ignore[attr-defined]
    return run


class StaticDecoder:
    """Greedy generation over a preallocated KV cache, the decode step compiled on demand.

    Args:
        net: the loaded network (not quantised layers' internals: those run as they are).
        compile: compile the per-token step with ``torch.compile``.
        compile_mode: ``torch.compile`` mode; default ``reduce-overhead`` (CUDA graphs) on a
            GPU, inductor's default on CPU.
    """

    def __init__(
        self, net: OpenVLANetwork, *, compile: bool = False, compile_mode: str | None = None
    ) -> None:
        self.net = net
        self.compile = compile
        self.device = net.language_model.get_input_embeddings().weight.device
        if compile_mode is None and self.device.type == "cuda":
            compile_mode = "reduce-overhead"
        self.compile_mode = compile_mode
        self._caches: dict[tuple[int, int], Any] = {}
        self._steps: dict[tuple[int, int], Step] = {}

    def _cache(self, batch: int, length: int) -> tuple[Any, Step]:
        from transformers import StaticCache

        key = (batch, length)
        if key not in self._caches:
            lm = self.net.language_model
            cache = StaticCache(config=lm.config, max_cache_len=length)
            embed = lm.get_input_embeddings()

            def step(token: torch.Tensor, mask: torch.Tensor, position: torch.Tensor) -> Any:
                out = lm(
                    inputs_embeds=embed(token[:, None]),
                    attention_mask=mask,
                    position_ids=position,
                    past_key_values=cache,
                    use_cache=True,
                )
                return out.logits[:, -1].float().argmax(dim=-1)

            fn: Step = step
            if self.compile:
                fn = _precision_faithful(
                    torch.compile(step, mode=self.compile_mode, fullgraph=False, dynamic=False)
                )
            self._caches[key], self._steps[key] = cache, fn
            LOG.info(
                "static KV cache for batch %d, %d tokens%s", batch, length,
                " (decode step compiled on first use)" if self.compile else "",
            )  # fmt: skip
        return self._caches[key], self._steps[key]

    @torch.inference_mode()
    def generate(
        self, pixel_values: torch.Tensor, prompts: list[torch.Tensor], max_new_tokens: int
    ) -> Generation:
        """Greedy decoding of ``max_new_tokens`` tokens, like ``generate_greedy``."""
        device = pixel_values.device
        _sync(device)
        start = time.perf_counter()
        inputs, mask, positions = build_prefill_inputs(
            self.net, self.net.embed_images(pixel_values), prompts
        )
        batch, total = mask.shape
        length = -(-(total + max_new_tokens) // CACHE_BUCKET) * CACHE_BUCKET
        cache, step = self._cache(batch, length)
        cache.reset()
        full_mask = torch.zeros(batch, length, dtype=mask.dtype, device=device)
        full_mask[:, :total] = mask
        out = self.net.language_model(
            inputs_embeds=inputs,
            attention_mask=full_mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        first_logits = out.logits[:, -1].float()
        token = first_logits.argmax(dim=-1)
        tokens = [token]
        _sync(device)
        prefill_done = time.perf_counter()
        position = positions[:, -1:] + 1
        for i in range(max_new_tokens - 1):
            full_mask[:, total + i] = 1
            # Clones: CUDA graphs may reuse their output buffers on the next replay.
            token = step(token, full_mask, position).clone()
            position = position + 1
            tokens.append(token)
        result = torch.stack(tokens, dim=1)
        _sync(device)
        end = time.perf_counter()
        return Generation(
            token_ids=result.cpu(),
            first_logits=first_logits,
            prefill_s=prefill_done - start,
            decode_s=end - prefill_done,
        )
