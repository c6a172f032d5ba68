# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Serve a base checkpoint plus a LoRA adapter saved by ``openvla-ros finetune --save-adapter``.

An adapter directory holds peft's ``adapter_config.json`` + ``adapter_model.safetensors`` and
the fine-tune's ``dataset_statistics.json``. :func:`load_policy_with_adapter` loads the base
with the real loader, adds the adapter with peft, merges it into unquantised weights (so the
result computes exactly what the merged checkpoint computes) or keeps it as a side branch on a
quantised base, and replaces the statistics with the adapter's, as a merged fine-tune would.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from openvla_ros.errors import CheckpointError

LOG = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
STATS_FILE = "dataset_statistics.json"


def check_adapter_dir(adapter: Path) -> None:
    """Refuse a directory that is not a saved adapter, naming the missing file.

    Raises:
        CheckpointError: a file is missing.
    """
    if not adapter.is_dir():
        raise CheckpointError(f"{adapter}: adapter directory does not exist")
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS, STATS_FILE):
        if not (adapter / name).is_file():
            raise CheckpointError(
                f"{adapter / name}: file is missing; an adapter directory written by "
                "'openvla-ros finetune --save-adapter' has adapter_config.json, "
                "adapter_model.safetensors and dataset_statistics.json"
            )


def attach_adapter(network: Any, adapter: Path, merge: bool) -> Any:
    """Add the adapter to ``network`` in place; merge it into the weights when ``merge``.

    Raises:
        CheckpointError: the adapter does not fit the network (a module or shape mismatch).
    """
    from peft import PeftModel
    from safetensors import safe_open

    check_adapter_dir(adapter)
    with safe_open(str(adapter / ADAPTER_WEIGHTS), framework="pt") as fh:
        stored = [k for k in fh.keys() if ".lora_A." in k]  # noqa: SIM118 (safe_open API)
    try:
        model = PeftModel.from_pretrained(network, str(adapter), is_trainable=False)
    except Exception as exc:
        raise CheckpointError(f"{adapter}: the adapter does not fit this base ({exc})") from exc
    wrapped = [n for n, _ in model.named_modules() if n.endswith(".lora_A.default")]
    if len(wrapped) != len(stored):
        raise CheckpointError(
            f"{adapter}: {len(stored)} adapted layers stored but {len(wrapped)} attached to the "
            "base; this adapter was trained on another base"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    if merge:
        return model.merge_and_unload()
    return model.base_model.model


def load_policy_with_adapter(base: str | Path, adapter: str | Path, **kwargs: Any) -> Any:
    """An :class:`~openvla_ros.model.inference.OpenVLAPolicy` of ``base`` + ``adapter``.

    Args:
        base: the base checkpoint directory (published layout).
        adapter: the adapter directory.
        **kwargs: passed to ``OpenVLAPolicy.from_checkpoint`` (precision, device, ...).

    Raises:
        CheckpointError: a bad base or adapter.
    """
    from openvla_ros.model.action_tokenizer import resolve_unnorm_key
    from openvla_ros.model.config import parse_action_stats, read_json
    from openvla_ros.model.inference import OpenVLAPolicy

    adapter_dir = Path(adapter).expanduser()
    check_adapter_dir(adapter_dir)
    stats_path = adapter_dir / STATS_FILE
    stats = parse_action_stats(read_json(stats_path), str(stats_path))
    self_check = bool(kwargs.pop("self_check", True))
    default_key = kwargs.pop("default_unnorm_key", None)
    if default_key is not None:
        resolve_unnorm_key(stats, default_key)
    policy = OpenVLAPolicy.from_checkpoint(base, self_check=False, **kwargs)
    quantized = policy.placement.quantized
    policy.network = attach_adapter(policy.network, adapter_dir, merge=not quantized)
    policy.network.eval()
    policy.config = dataclasses.replace(
        policy.config, norm_stats=stats, norm_stats_source=f"{adapter_dir.name}/{STATS_FILE}"
    )
    policy.default_unnorm_key = default_key
    policy.adapter_path = adapter_dir  # type: ignore[attr-defined]
    if self_check:
        policy.self_check()
    LOG.info("adapter %s on %s (%s)", adapter_dir, base, "kept" if quantized else "merged")
    return policy


def adapter_norm_stats(adapter: str | Path) -> dict[str, Any]:
    """The adapter's statistics (``dataset_statistics.json``), parsed like a checkpoint's.

    Raises:
        CheckpointError: not an adapter directory, or malformed statistics.
    """
    from openvla_ros.model.config import parse_action_stats, read_json

    root = Path(adapter).expanduser()
    check_adapter_dir(root)
    return dict(parse_action_stats(read_json(root / STATS_FILE), str(root / STATS_FILE)))


def policy_loader(adapter: str | Path | None) -> Any:
    """``OpenVLAPolicy.from_checkpoint``, or the same call with ``adapter`` stacked on the base
    (the ``--adapter`` hook of ``predict`` and ``serve``)."""
    from openvla_ros.model.inference import OpenVLAPolicy

    if not adapter:
        return OpenVLAPolicy.from_checkpoint

    def load(path: str | Path, **kwargs: Any) -> Any:
        return load_policy_with_adapter(path, adapter, **kwargs)

    return load


def adapter_info(adapter: Path) -> dict[str, Any]:
    """The adapter's peft settings (rank, alpha, targets count) for logs."""
    cfg = json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    return {
        "r": cfg.get("r"),
        "lora_alpha": cfg.get("lora_alpha"),
        "targets": len(cfg.get("target_modules") or []),
    }
