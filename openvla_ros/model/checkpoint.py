# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Load OpenVLA weights from the published safetensors layout, all-or-nothing.

Order of work, so a bad checkpoint never yields a half-loaded model:
1. read every safetensors header (and the shard index) and check it against the file sizes;
2. build the network on the meta device (no memory) and compare key names and shapes;
3. only then read tensors, casting and placing each on its final device as it is read
   (bitsandbytes layers are quantised on placement and cannot be moved afterwards).
Any failure raises :class:`CheckpointError` naming the file and the key.
"""

from __future__ import annotations

import io
import json
import logging
import math
import struct
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from openvla_ros.errors import CheckpointError
from openvla_ros.model.config import OpenVLAConfig
from openvla_ros.model.network import OpenVLANetwork
from openvla_ros.model.precision import Placement, make_quantized_linear
from openvla_ros.model.threads import one_intra_op_thread

LOG = logging.getLogger(__name__)

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"

#: safetensors dtype names -> bytes per element (float types only are valid weights).
_FLOAT_DTYPE_BYTES = {"F32": 4, "BF16": 2, "F16": 2, "F64": 8}
_ANY_DTYPE_BYTES = {
    **_FLOAT_DTYPE_BYTES,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
# transformers < 4.31 saved the rotary inverse frequencies; they are recomputed, not loaded.
_IGNORED_SUFFIXES = (".rotary_emb.inv_freq",)
_MAX_HEADER_BYTES = 100 * 1024 * 1024

#: ``progress(done_bytes, total_bytes, message)``; called while tensors are read.
ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class TensorEntry:
    """One stored tensor, from its file's header."""

    key: str
    file: Path
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    #: Absolute byte offset of the data in the file (after the 8-byte length and the header).
    offset: int = 0


def read_safetensors_header(path: Path) -> dict[str, TensorEntry]:
    """Parse and validate a safetensors header without reading the data.

    Raises:
        CheckpointError: missing file, truncated or corrupt header, offsets past the end of the
            file, or a tensor whose byte size disagrees with its shape and dtype.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: weight file is missing")
    size = path.stat().st_size
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path}: corrupt safetensors file (shorter than 8 bytes)")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > min(size - 8, _MAX_HEADER_BYTES):
                raise CheckpointError(
                    f"{path}: corrupt safetensors file (header length {header_len} does not fit "
                    f"a {size}-byte file); re-download this shard"
                )
            header = json.loads(fh.read(header_len).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path}: corrupt safetensors header ({exc}); re-download it"
        ) from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not an object)")
    data_size = size - 8 - header_len
    entries: dict[str, TensorEntry] = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = str(meta["dtype"])
            shape = tuple(int(s) for s in meta["shape"])
            start, end = (int(o) for o in meta["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: corrupt header entry for key '{key}'") from exc
        if dtype not in _ANY_DTYPE_BYTES:
            raise CheckpointError(f"{path}: key '{key}' has unknown dtype {dtype}")
        nbytes = math.prod(shape) * _ANY_DTYPE_BYTES[dtype]
        if not 0 <= start <= end <= data_size or end - start != nbytes:
            raise CheckpointError(
                f"{path}: key '{key}' points outside the file or has the wrong byte size "
                f"(offsets {start}..{end}, data {data_size} bytes): the shard is truncated or "
                "corrupt; re-download it"
            )
        entries[key] = TensorEntry(
            key=key,
            file=path,
            shape=shape,
            dtype=dtype,
            nbytes=nbytes,
            offset=8 + header_len + start,
        )
    return entries


def index_checkpoint(root: Path) -> dict[str, TensorEntry]:
    """Every stored tensor of a checkpoint directory, sharded (index + shards) or single-file.

    Raises:
        CheckpointError: no weights, a shard named by the index is missing or corrupt, or the
            index and the shards disagree about where a key lives.
    """
    index_path = root / INDEX_FILE
    single = root / SINGLE_FILE
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            weight_map: dict[str, str] = dict(index["weight_map"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index_path}: not a valid safetensors index ({exc})") from exc
        shards: dict[str, dict[str, TensorEntry]] = {}
        for shard_name in sorted(set(weight_map.values())):
            shard_path = root / shard_name
            if not shard_path.is_file():
                missing_key = next(k for k, v in weight_map.items() if v == shard_name)
                raise CheckpointError(
                    f"{shard_path}: shard listed in {INDEX_FILE} is missing "
                    f"(it holds e.g. '{missing_key}'); download every shard"
                )
            shards[shard_name] = read_safetensors_header(shard_path)
        entries: dict[str, TensorEntry] = {}
        for key, shard_name in weight_map.items():
            if key not in shards[shard_name]:
                raise CheckpointError(
                    f"{root / shard_name}: key '{key}' is listed in {INDEX_FILE} but not stored "
                    "in this shard"
                )
            entries[key] = shards[shard_name][key]
        for shard_name, shard in shards.items():
            for key in shard:
                if key not in weight_map:
                    raise CheckpointError(
                        f"{root / shard_name}: key '{key}' is stored but not listed in {INDEX_FILE}"
                    )
        return entries
    if single.is_file():
        return read_safetensors_header(single)
    raise CheckpointError(
        f"{root}: no weights found: expected {SINGLE_FILE} or {INDEX_FILE} with its shards"
    )


#: safetensors float dtype names -> torch dtypes (weights are validated to be floats).
_TORCH_DTYPES = {
    "F32": torch.float32,
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F64": torch.float64,
}


def read_tensor(fh: io.BufferedReader, entry: TensorEntry, buf: torch.Tensor) -> torch.Tensor:
    """Read one stored tensor into ``buf`` (uint8, ``entry.nbytes`` long) and view it typed.

    One sequential ``readinto`` per tensor instead of faulting a memory map in page by page:
    on a small CPU the map's page faults cost ~4x a plain read of the same bytes (0.77 B
    parameters: 2.6 s vs 0.65 s). safetensors data is little-endian, like every host we run on.

    Raises:
        CheckpointError: the file ends before the tensor does.
    """
    if sys.byteorder != "little":
        raise CheckpointError("big-endian hosts are not supported (safetensors is little-endian)")
    try:
        fh.seek(entry.offset)
        got = fh.readinto(buf.numpy().data)
    except OSError as exc:
        raise CheckpointError(f"{entry.file}: cannot read key '{entry.key}' ({exc})") from exc
    if got != entry.nbytes:
        raise CheckpointError(
            f"{entry.file}: key '{entry.key}' is truncated ({got} of {entry.nbytes} bytes); "
            "re-download this shard"
        )
    return buf.view(_TORCH_DTYPES[entry.dtype]).reshape(entry.shape)


def _ignored(key: str) -> bool:
    return key.endswith(_IGNORED_SUFFIXES)


def validate_tensors(
    expected: dict[str, tuple[int, ...]], stored: dict[str, TensorEntry], root: Path
) -> None:
    """Compare the network's parameter names and shapes with the stored ones.

    Raises:
        CheckpointError: listing missing, unexpected, wrongly shaped or non-float tensors, each
            with its file and key.
    """
    problems: list[str] = []
    for key, entry in stored.items():
        if _ignored(key):
            continue
        if key not in expected:
            problems.append(
                f"{entry.file.name}: unexpected key '{key}' (shape {list(entry.shape)})"
            )
        elif entry.shape != expected[key]:
            problems.append(
                f"{entry.file.name}: key '{key}' has shape {list(entry.shape)}, the model built "
                f"from config.json expects {list(expected[key])}"
            )
        elif entry.dtype not in _FLOAT_DTYPE_BYTES:
            problems.append(f"{entry.file.name}: key '{key}' has non-float dtype {entry.dtype}")
    files = sorted({e.file.name for e in stored.values()}) or [SINGLE_FILE]
    for key, shape in expected.items():
        if key not in stored:
            problems.append(
                f"{', '.join(files)}: missing key '{key}' (expected shape {list(shape)})"
            )
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise CheckpointError(
            f"checkpoint {root} does not match its config.json: " + "; ".join(problems[:10]) + more
        )


def _quantized_modules(net: OpenVLANetwork, placement: Placement) -> set[str]:
    """Names of the Linear layers to quantise: the decoder layers (lm_head stays unquantised,
    as in HF ``load_in_*bit``), plus the towers and projector when asked."""
    if not placement.quantized:
        return set()
    prefixes = ["language_model.model.layers."]
    if placement.quantize_vision:
        prefixes += ["vision_backbone.", "projector."]
    return {
        name
        for name, module in net.named_modules()
        if isinstance(module, nn.Linear)
        and name.startswith(tuple(prefixes))
        and ".attn_pool." not in name
    }


def _target_dtype(key: str, placement: Placement) -> torch.dtype:
    if key.startswith(("vision_backbone.", "projector.")):
        return placement.vision_dtype
    return placement.compute_dtype


def _place(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # Cast where the data is smaller first, so host->device copies move the fewest bytes.
    if tensor.element_size() > torch.empty((), dtype=dtype).element_size():
        return tensor.to(dtype=dtype).to(device)
    return tensor.to(device).to(dtype=dtype)


def all_finite(tensor: torch.Tensor) -> bool:
    """Whether every value is finite, in one streaming pass without temporaries.

    A sum is NaN or inf exactly when an element is (or when finite values overflow it, which
    the exact check below then rules out). ``torch.isfinite(t).all()`` builds several
    tensor-sized temporaries: 20x slower, and most of the load time of a 0.75 B-parameter
    checkpoint on a small CPU. fp16 sums are accumulated in fp32 so they cannot overflow.
    """
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return True
    total = tensor.sum(dtype=torch.float32) if tensor.dtype == torch.float16 else tensor.sum()
    if bool(torch.isfinite(total)):
        return True
    return bool(torch.isfinite(tensor).all())


def _default_progress(done: int, total: int, message: str) -> None:
    LOG.info(
        "loading weights %5.1f%% (%.2f / %.2f GB) %s",
        100.0 * done / max(total, 1),
        done / 1e9,
        total / 1e9,
        message,
    )


def load_network(
    root: Path,
    cfg: OpenVLAConfig,
    placement: Placement,
    progress: ProgressCallback | None = None,
) -> OpenVLANetwork:
    """Build the network from ``cfg`` and load ``root``'s weights onto ``placement``.

    Args:
        root: the checkpoint directory.
        cfg: its parsed config.
        placement: precision / device decisions (see :func:`resolve_placement`).
        progress: called as tensors are read; default logs about every 10 %.

    Raises:
        CheckpointError: the weights do not match the config or cannot be read.
    """
    stored = index_checkpoint(root)
    with torch.device("meta"):
        net = OpenVLANetwork(cfg, placement.attn_implementation)
    expected = {k: tuple(v.shape) for k, v in net.state_dict(keep_vars=True).items()}
    validate_tensors(expected, stored, root)

    report = progress or _default_progress
    total = sum(stored[k].nbytes for k in expected)
    done = 0
    next_report = 0.0
    with ExitStack() as stack:
        handles: dict[Path, io.BufferedReader] = {}
        # Reused read buffer for tensors that are cast or moved anyway (never kept).
        scratch = torch.empty(0, dtype=torch.uint8)

        def check_finite(key: str, tensor: torch.Tensor) -> torch.Tensor:
            # Bit rot inside the data section is invisible to the header checks; NaN/inf is its
            # usual symptom and would otherwise surface as silent garbage actions. One thread:
            # a sum per tensor is a barrier per tensor, which stalls when a core is busy.
            with one_intra_op_thread():
                finite = all_finite(tensor)
            if not finite:
                raise CheckpointError(
                    f"{stored[key].file}: key '{key}' contains NaN or inf values; the file is "
                    "corrupt, re-download it"
                )
            return tensor

        def read(key: str, target: torch.dtype | None) -> torch.Tensor:
            nonlocal done, next_report, scratch
            entry = stored[key]
            # The read buffer becomes the parameter itself only when no cast or move makes a
            # new tensor from it (and always for quantised layers, which keep references).
            keep = target is None or (
                placement.device.type == "cpu" and _TORCH_DTYPES[entry.dtype] == target
            )
            if entry.file not in handles:
                try:
                    handles[entry.file] = stack.enter_context(entry.file.open("rb"))
                except OSError as exc:
                    raise CheckpointError(f"{entry.file}: cannot open ({exc})") from exc
                report(done, total, f"reading {entry.file.name}")
            if keep:
                buf = torch.empty(entry.nbytes, dtype=torch.uint8)
            else:
                if scratch.numel() < entry.nbytes:
                    scratch = torch.empty(entry.nbytes, dtype=torch.uint8)
                buf = scratch[: entry.nbytes]
            tensor = read_tensor(handles[entry.file], entry, buf)
            done += entry.nbytes
            if done >= next_report:
                report(done, total, key)
                next_report = done + total / 10
            return tensor

        _materialize(net, placement, read, check_finite)
    report(total, total, "done")
    _finish(net, placement, str(root))
    return net


def _materialize(
    net: OpenVLANetwork,
    placement: Placement,
    fetch: Callable[[str, torch.dtype | None], torch.Tensor],
    check: Callable[[str, torch.Tensor], torch.Tensor],
) -> None:
    """Replace every meta parameter with ``fetch(key)`` placed on the device (or a quantised
    layer built from it), module by module, so peak host memory stays about one tensor."""
    quantized = _quantized_modules(net, placement)
    device = placement.device
    for name, module in list(net.named_modules()):
        prefix = f"{name}." if name else ""
        if name in quantized:
            weight = check(prefix + "weight", fetch(prefix + "weight", None))
            bias = None
            if module.bias is not None:
                bias = check(prefix + "bias", fetch(prefix + "bias", None))
            try:
                new = make_quantized_linear(
                    placement.precision, weight, bias, device, placement.compute_dtype
                )
            except Exception as exc:
                raise CheckpointError(
                    f"quantising '{prefix}weight' to {placement.precision} failed: {exc}"
                ) from exc
            net.set_submodule(name, new)
            continue
        if any(name.startswith(q + ".") for q in quantized):
            continue
        for pname, _ in list(module.named_parameters(recurse=False)):
            key = prefix + pname
            dtype = _target_dtype(key, placement)
            stored = fetch(key, dtype)
            if dtype == torch.float16 and stored.dtype != torch.float16:
                # Narrowing to fp16 can overflow finite values: check what will be used.
                tensor = check(key, _place(stored, device, dtype))
            else:
                # Otherwise the stored tensor decides (often half the bytes of the cast one).
                tensor = _place(check(key, stored), device, dtype)
            setattr(module, pname, nn.Parameter(tensor, requires_grad=False))


def _finish(net: OpenVLANetwork, placement: Placement, source: str) -> None:
    # Non-persistent buffers (rotary frequencies) are not in the files: rebuild them for real.
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    llama = net.language_model.model
    llama.rotary_emb = LlamaRotaryEmbedding(config=net.language_model.config).to(placement.device)
    for tname, t in [*net.named_parameters(), *net.named_buffers()]:
        if t.is_meta:
            raise CheckpointError(f"internal error: '{tname}' was not loaded from {source}")
    net.eval()


def random_network(cfg: OpenVLAConfig, placement: Placement, seed: int = 0) -> OpenVLANetwork:
    """The network of ``cfg`` with random weights created directly on the device (no file I/O).

    For speed and memory measurements only (e.g. the full 7B geometry on a GPU): inference cost
    does not depend on weight values. Norm weights are ones, everything else N(0, 0.02).
    """
    with torch.device("meta"):
        net = OpenVLANetwork(cfg, placement.attn_implementation)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict(keep_vars=True).items()}
    gen = torch.Generator(device=placement.device).manual_seed(seed)

    def fetch(key: str, target: torch.dtype | None) -> torch.Tensor:
        dtype = _target_dtype(key, placement)
        if "norm" in key.rsplit(".", 2)[-2] and key.endswith("weight"):
            return torch.ones(shapes[key], dtype=dtype, device=placement.device)
        out = torch.empty(shapes[key], dtype=dtype, device=placement.device)
        return out.normal_(0.0, 0.02, generator=gen)

    _materialize(net, placement, fetch, lambda key, t: t)
    _finish(net, placement, "random weights")
    return net
