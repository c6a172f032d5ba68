# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The memory plan printed before training: weights, adapters, gradients, optimiser state,
activations for the chosen batch, and (on CPU) the image cache; training refuses early, with
the numbers, when the device cannot hold it.

Parameter counts are exact (the network is built on the meta device from config.json, so the
7B geometry needs no weights). Activations are an estimate: per transformer layer and token,
the tensors autograd keeps (norm inputs and outputs, q/k/v, attention output, residuals, the
MLP's gate/up/activation products) for the Llama layers and, when they train, the ViT blocks;
SDPA keeps only a log-sum-exp per head instead of the attention matrix. Gradient checkpointing
keeps one hidden vector per layer and token instead. A 10 % allowance covers allocator slack
and temporaries; ``benchmarks/bench_finetune.py`` prints plan vs measured peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from openvla_ros.errors import TrainingError
from openvla_ros.model.config import OpenVLAConfig

GB = 1e9
#: Allowance for allocator slack, temporaries and the framework itself.
OVERHEAD = 0.10
#: bytes per parameter of a bitsandbytes NF4 weight (4 bits + block scales).
NF4_BYTES = 0.5 + 4.0 / 64.0


@dataclass
class MemoryPlan:
    """Estimated bytes per item, and the numbers that went into them."""

    mode: str
    items: dict[str, float] = field(default_factory=dict)
    trainable_params: int = 0
    total_params: int = 0
    batch: int = 1
    seq_len: int = 0
    device: str = "cpu"

    @property
    def total(self) -> float:
        """Sum of every item plus the overhead allowance."""
        return sum(self.items.values()) * (1.0 + OVERHEAD)

    def format(self, available: float | None = None) -> str:
        """A table for the log / terminal."""
        lines = [
            f"memory plan ({self.mode}, batch {self.batch}, sequence {self.seq_len} tokens, "
            f"{self.trainable_params:,} of {self.total_params:,} parameters train "
            f"({100.0 * self.trainable_params / max(self.total_params, 1):.2f} %), "
            f"device {self.device}):"
        ]
        for name, value in self.items.items():
            lines.append(f"  {name:<28} {value / GB:9.3f} GB")
        lines.append(
            f"  {'allowance (+10 %)':<28} {sum(self.items.values()) * OVERHEAD / GB:9.3f} GB"
        )
        lines.append(f"  {'total':<28} {self.total / GB:9.3f} GB")
        if available is not None:
            lines.append(f"  {'available':<28} {available / GB:9.3f} GB")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (benchmark output)."""
        return {
            "mode": self.mode,
            "items_gb": {k: round(v / GB, 4) for k, v in self.items.items()},
            "total_gb": round(self.total / GB, 4),
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "batch": self.batch,
            "seq_len": self.seq_len,
        }


def _meta_network(cfg: OpenVLAConfig) -> Any:
    import torch

    from openvla_ros.model.network import OpenVLANetwork

    with torch.device("meta"):
        return OpenVLANetwork(cfg)


def _llama_layer_elems(cfg: OpenVLAConfig) -> float:
    h = cfg.hidden_size
    i = int(cfg.llama["intermediate_size"])
    heads = int(cfg.llama["num_attention_heads"])
    kv = int(cfg.llama["num_key_value_heads"]) * (h // heads)
    # norm in/out (2h), q (h), k/v (2 kv), attention out (h), o_proj out (h), residual (h),
    # post norm in/out (2h), gate/up/act/product (4i), down out (h); lse per head.
    return 9 * h + 2 * kv + 4 * i + heads


def _vit_block_elems(embed_dim: int, mlp_hidden: int, heads: int) -> float:
    # norm in/out (2d), qkv (3d), attention out (d), proj out (d), ls/residual (2d),
    # norm2 in/out (2d), fc1 out + gelu out (2m), fc2 out (d); lse per head.
    return 11 * embed_dim + 2 * mlp_hidden + heads


def _trainable_count(net: Any, mode: str, lora_rank: int, train_vision: bool) -> int:
    from openvla_ros.train.adapters import linear_targets

    if mode in ("lora", "qlora"):
        modules = dict(net.named_modules())
        return sum(
            lora_rank * (modules[n].in_features + modules[n].out_features)
            for n in linear_targets(net, include_vision=train_vision)
        )
    return sum(
        p.numel()
        for n, p in net.named_parameters()
        if (train_vision or not n.startswith("vision_backbone.")) and ".attn_pool." not in n
    )


def plan_memory(
    cfg: OpenVLAConfig,
    *,
    mode: str,
    batch: int,
    prompt_tokens: int,
    action_dim: int = 7,
    lora_rank: int = 32,
    train_vision: bool = True,
    weight_bytes: float = 4.0,
    activation_bytes: float = 4.0,
    grad_checkpointing: bool = False,
    image_cache_bytes: float = 0.0,
    device: str = "cpu",
) -> MemoryPlan:
    """Estimate the training memory of ``cfg``.

    Args:
        cfg: the base config (any size; the network is built on the meta device).
        mode: ``lora``, ``qlora`` or ``full``.
        batch: micro-batch size.
        prompt_tokens: longest prompt ([BOS] ... 29871).
        action_dim: action tokens per sample.
        lora_rank: LoRA rank (lora/qlora).
        train_vision: towers get adapters (LoRA) or train (full).
        weight_bytes: bytes per frozen / trained weight (4 fp32, 2 bf16).
        activation_bytes: bytes per activation element (2 under bf16 autocast).
        grad_checkpointing: keep one hidden vector per Llama layer and token.
        image_cache_bytes: decoded-frame cache held in host memory (counted on CPU).
        device: ``cpu`` or ``cuda...`` (for the table).
    """
    from torch import nn

    net = _meta_network(cfg)
    total = sum(p.numel() for p in net.parameters())
    # [BOS] + image tokens + the rest of the prompt + D action tokens + EOS.
    seq = cfg.num_patches + prompt_tokens + action_dim + 1
    plan = MemoryPlan(mode=mode, total_params=total, batch=batch, seq_len=seq, device=device)
    if mode == "qlora":
        llm_linear = sum(
            m.weight.numel()
            for n, m in net.named_modules()
            if isinstance(m, nn.Linear) and n.startswith("language_model.model.layers.")
        )
        weights = (total - llm_linear) * 2.0 + llm_linear * NF4_BYTES
    else:
        weights = total * weight_bytes
    plan.items["weights"] = weights
    trainable = _trainable_count(net, mode, lora_rank, train_vision)
    if mode in ("lora", "qlora"):
        plan.items["adapters (fp32)"] = trainable * 4.0
    plan.trainable_params = trainable
    plan.items["gradients (fp32)"] = trainable * 4.0
    plan.items["AdamW state (2 x fp32)"] = trainable * 8.0
    layers = int(cfg.llama["num_hidden_layers"])
    if grad_checkpointing:
        llm = batch * seq * (layers * cfg.hidden_size + _llama_layer_elems(cfg))
    else:
        llm = batch * seq * layers * _llama_layer_elems(cfg)
    vision = 0.0
    if train_vision:
        tokens = cfg.num_patches + 5
        vision = (
            batch
            * tokens
            * sum(
                v.depth * _vit_block_elems(v.embed_dim, v.mlp_hidden, v.num_heads)
                for v in cfg.vision
            )
        )
    # The projector's three activations and the 8 labelled positions' logits (+ grads).
    projector = batch * cfg.num_patches * (4 * cfg.vision_dim + 2 * cfg.hidden_size)
    logits = batch * 9 * cfg.llm_vocab_size * 2
    plan.items["activations"] = (llm + vision + projector) * activation_bytes + logits * 4.0
    if image_cache_bytes and device == "cpu":
        plan.items["image cache (host)"] = image_cache_bytes
    return plan


def available_memory(device: Any) -> float:
    """Free bytes on ``device``: CUDA ``mem_get_info``, or the host's available RAM."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free)
    try:
        import psutil

        return float(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil is pinned
        pages = 0
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    pages = int(line.split()[1]) * 1024
        return float(pages)


def check_fits(plan: MemoryPlan, available: float) -> None:
    """Refuse a plan that needs more than is available.

    Raises:
        TrainingError: with the plan's table and what to change.
    """
    if plan.total > available:
        hint = "lower --batch (and raise --grad-accum to keep the effective batch)"
        if plan.mode == "full":
            hint += ", train LoRA instead of --full"
        elif plan.mode == "lora":
            hint += ", use --quantize-base 4bit on a GPU, or --grad-checkpointing"
        raise TrainingError(
            f"not enough memory: the plan needs {plan.total / GB:.2f} GB, "
            f"{available / GB:.2f} GB is available; {hint} (or --skip-memory-check to try "
            f"anyway)\n{plan.format(available)}"
        )


def round_up_gb(value: float) -> float:
    """Round bytes up to 0.1 GB (docs tables)."""
    return math.ceil(value / GB * 10.0) / 10.0
