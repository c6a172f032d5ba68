# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Write the fine-tuned network as a checkpoint in the published layout.

Files: ``config.json`` (the base's, with ``norm_stats`` extended by the new key),
``dataset_statistics.json`` (the new key only, as official fine-tunes ship it; the loader then
uses it instead of ``norm_stats``), ``model-0000N-of-0000M.safetensors`` +
``model.safetensors.index.json`` with the published key names, and the base's tokenizer,
processor and generation files copied unchanged. Everything is written to a temporary
directory first and renamed into place file by file, the index last; stale shards of an
earlier export are removed afterwards.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from openvla_ros.errors import TrainingError
from openvla_ros.model.checkpoint import INDEX_FILE, SINGLE_FILE, index_checkpoint, validate_tensors

#: Files copied from the base unchanged (those that exist).
COPIED_FILES = (
    "generation_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "configuration_prismatic.py",
    "modeling_prismatic.py",
    "processing_prismatic.py",
)
STATS_FILE = "dataset_statistics.json"


def stored_dtype(base: Path) -> torch.dtype:
    """The dtype most of the base's weights are stored in (bf16 for the published model)."""
    sizes: dict[str, int] = {}
    for entry in index_checkpoint(base).values():
        sizes[entry.dtype] = sizes.get(entry.dtype, 0) + entry.nbytes
    name = max(sizes, key=lambda k: sizes[k])
    return {"BF16": torch.bfloat16, "F16": torch.float16}.get(name, torch.float32)


def _shards(tensors: Mapping[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(tensors):
        nbytes = tensors[key].numel() * tensors[key].element_size()
        if groups[-1] and size + nbytes > max_bytes:
            groups.append({})
            size = 0
        groups[-1][key] = tensors[key]
        size += nbytes
    return groups


def export_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    base: Path,
    out: Path,
    *,
    unnorm_key: str,
    statistics: Mapping[str, Any],
    dtype: torch.dtype,
    max_shard_bytes: int = 5 * 10**9,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``state_dict`` (published key names) and the base's files into ``out``.

    Args:
        state_dict: the merged network's tensors.
        base: the base checkpoint (config, tokenizer and processor files come from it).
        out: the output directory (created; may hold ``training/``).
        unnorm_key: the new statistics key.
        statistics: its ``dataset_statistics.json`` entry.
        dtype: the stored weight dtype.
        max_shard_bytes: shard size limit.
        info: extra run facts written to ``finetune_info.json``.

    Raises:
        TrainingError: a write failed (the previous export, if any, stays complete).
    """
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".export-tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state_dict.items()}
    groups = _shards(tensors, max_shard_bytes)
    try:
        tmp.mkdir()
        weight_map: dict[str, str] = {}
        for i, group in enumerate(groups, start=1):
            name = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
            save_file(group, str(tmp / name), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(group, name))
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (tmp / INDEX_FILE).write_text(json.dumps(index, indent=2), encoding="utf-8")
        config = json.loads((base / "config.json").read_text(encoding="utf-8"))
        config["norm_stats"] = {**dict(config.get("norm_stats") or {}), unnorm_key: statistics}
        config["torch_dtype"] = str(dtype).removeprefix("torch.").replace("bfloat16", "bfloat16")
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        stats = {unnorm_key: dict(statistics)}
        (tmp / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
        for name in COPIED_FILES:
            if (base / name).is_file():
                shutil.copy2(base / name, tmp / name)
        if info is not None:
            (tmp / "finetune_info.json").write_text(json.dumps(dict(info), indent=2) + "\n")
        _check_layout(tmp, state_dict)
        new_names = {p.name for p in tmp.iterdir()}
        for path in sorted(tmp.iterdir(), key=lambda p: p.name == INDEX_FILE):
            os.replace(path, out / path.name)
    except OSError as exc:
        raise TrainingError(f"writing the fine-tuned checkpoint to {out} failed: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for stale in [*out.glob("model-*.safetensors"), out / SINGLE_FILE]:
        if stale.name not in new_names:
            stale.unlink(missing_ok=True)
    return out


def _check_layout(root: Path, state_dict: Mapping[str, torch.Tensor]) -> None:
    """The written shards hold exactly the network's keys and shapes (loader's own check)."""
    expected = {k: tuple(v.shape) for k, v in state_dict.items()}
    validate_tensors(expected, index_checkpoint(root), root)


def shard_count(total_bytes: int, max_shard_bytes: int) -> int:
    """Shards an export of ``total_bytes`` needs (docs)."""
    return max(1, math.ceil(total_bytes / max_shard_bytes))
