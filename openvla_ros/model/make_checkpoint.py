# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Write small OpenVLA checkpoints in exactly the published layout (tests, demo, benchmarks).

File names, config fields, tokenizer files and state-dict key names are those of
``openvla/openvla-7b``; only the sizes are tiny. The key names and shapes are enumerated here
from the published layout, independently of the network code, so loading a generated
checkpoint is a real check of the loader's key-name fidelity.

The one extension is ``vision_tower_overrides`` in config.json: per-tower sizes that replace
the geometry implied by ``timm_model_ids`` (without it the real 0.7 B towers are built).

The weights are random but not degenerate: the image drives the action tokens (different
frames typically give different actions) and ``lm_head`` favours the 256 action ids, so the
greedy tokens land in the action range 31744..31999 like a trained model's.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Published openvla-7b statistics for the two keys most users need (shared/OPENVLA.md).
BRIDGE_Q01 = [
    -0.02872725307941437,
    -0.04170349963009357,
    -0.026093858778476715,
    -0.08092105075716972,
    -0.09288699507713317,
    -0.20718276381492615,
    0.0,
]
BRIDGE_Q99 = [
    0.028309678435325586,
    0.040855254605412394,
    0.040161586627364146,
    0.08192047759890528,
    0.07792850524187081,
    0.20382574498653397,
    1.0,
]
FRACTAL_Q01 = [
    -0.22453527510166169,
    -0.14820013284683228,
    -0.231589707583189,
    -0.3517994859814644,
    -0.4193011274933815,
    -0.43643461108207704,
    0.0,
]
FRACTAL_Q99 = [
    0.17824687153100965,
    0.14938379630446405,
    0.21842354819178575,
    0.5892666035890578,
    0.35272657424211445,
    0.44796681255102094,
    1.0,
]
GRIPPER_MASK = [True, True, True, True, True, True, False]

DINO_ID = "vit_large_patch14_reg4_dinov2.lvd142m"
SIGLIP_ID = "vit_so400m_patch14_siglip_224"
VOCAB = 32000
PAD_MULTIPLE = 64
SPACE_ID = 29871

# Words whose BPE merges the small tokenizer knows, so prompts tokenise into word pieces.
_WORDS = (
    "In",
    "What",
    "Out",
    "action",
    "should",
    "the",
    "robot",
    "take",
    "to",
    "pick",
    "up",
    "put",
    "place",
    "move",
    "open",
    "close",
    "drawer",
    "cup",
    "block",
    "red",
    "blue",
    "green",
    "yellow",
    "white",
    "black",
    "on",
    "in",
    "into",
    "onto",
    "left",
    "right",
    "of",
    "and",
    "a",
    "an",
    "towel",
    "spoon",
    "pot",
    "sink",
    "stove",
    "carrot",
    "plate",
    "bowl",
    "knife",
    "push",
    "pull",
    "fold",
    "cloth",
    "wipe",
    "table",
    "top",
    "bottom",
    "from",
    "coke",
    "can",
    "apple",
    "object",
    "near",
    "it",
    "down",
    "lift",
    "grasp",
    "rotate",
    "turn",
    "slide",
    "microwave",
    "door",
    "cabinet",
    "shelf",
    "box",
    "bottle",
    "fork",
    "eggplant",
    "corn",
    "banana",
    "marker",
    "pen",
    "cube",
    "ball",
    "toy",
    "front",
    "back",
    "side",
    "middle",
    "center",
)


@dataclass
class SmallDims:
    """Sizes of a small checkpoint. Defaults build in well under a second."""

    llm_hidden: int = 64
    llm_layers: int = 2
    llm_heads: int = 4
    llm_kv_heads: int = 4
    llm_intermediate: int = 128
    dino: dict[str, Any] = field(
        default_factory=lambda: {"embed_dim": 32, "depth": 3, "num_heads": 2, "mlp_hidden": 64}
    )
    siglip: dict[str, Any] = field(
        default_factory=lambda: {"embed_dim": 48, "depth": 3, "num_heads": 2, "mlp_hidden": 96}
    )


def action_stats(
    q01: Sequence[float],
    q99: Sequence[float],
    mask: Sequence[bool] | None = None,
    *,
    num_transitions: int = 1000,
    num_trajectories: int = 10,
) -> dict[str, Any]:
    """One ``norm_stats`` / ``dataset_statistics.json`` entry with every published field."""
    q01 = [float(v) for v in q01]
    q99 = [float(v) for v in q99]
    mean = [(a + b) / 2 for a, b in zip(q01, q99, strict=True)]
    std = [max((b - a) / 4, 1e-6) for a, b in zip(q01, q99, strict=True)]
    action = {
        "mean": mean,
        "std": std,
        "max": [b * 1.5 for b in q99],
        "min": [a * 1.5 for a in q01],
        "q01": q01,
        "q99": q99,
    }
    if mask is not None:
        action["mask"] = [bool(m) for m in mask]
    zeros = [0.0] * 7
    proprio = {k: zeros for k in ("mean", "std", "max", "min", "q01", "q99")}
    return {
        "action": action,
        "proprio": proprio,
        "num_transitions": num_transitions,
        "num_trajectories": num_trajectories,
    }


def default_norm_stats() -> dict[str, Any]:
    """bridge_orig and fractal20220817_data with openvla-7b's published q01/q99/mask."""
    return {
        "bridge_orig": action_stats(
            BRIDGE_Q01, BRIDGE_Q99, GRIPPER_MASK, num_transitions=2135463, num_trajectories=60064
        ),
        "fractal20220817_data": action_stats(
            FRACTAL_Q01, FRACTAL_Q99, GRIPPER_MASK, num_transitions=3786400, num_trajectories=87212
        ),
    }


def write_dataset_statistics(out_dir: str | Path, stats: Mapping[str, Any]) -> Path:
    """Write ``dataset_statistics.json`` (what fine-tuning saves; it replaces norm_stats).

    Args:
        out_dir: checkpoint directory.
        stats: ``{key: action_stats(...)}`` entries.
    """
    path = Path(out_dir) / "dataset_statistics.json"
    path.write_text(json.dumps(dict(stats), indent=2), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Published key names.


def _vit_keys(prefix: str, spec: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    d, m, ps = spec["embed_dim"], spec["mlp_hidden"], spec.get("patch_size", 14)
    grid = 224 // ps
    prefix_tokens = int(spec["class_token"]) + spec["reg_tokens"]
    pos_len = grid * grid + (0 if spec["no_embed_class"] else prefix_tokens)
    keys: dict[str, tuple[int, ...]] = {}
    if spec["class_token"]:
        keys[f"{prefix}.cls_token"] = (1, 1, d)
    if spec["reg_tokens"]:
        keys[f"{prefix}.reg_token"] = (1, spec["reg_tokens"], d)
    keys[f"{prefix}.pos_embed"] = (1, pos_len, d)
    keys[f"{prefix}.patch_embed.proj.weight"] = (d, 3, ps, ps)
    keys[f"{prefix}.patch_embed.proj.bias"] = (d,)
    for i in range(spec["depth"]):
        b = f"{prefix}.blocks.{i}"
        keys.update(
            {
                f"{b}.norm1.weight": (d,),
                f"{b}.norm1.bias": (d,),
                f"{b}.attn.qkv.weight": (3 * d, d),
                f"{b}.attn.qkv.bias": (3 * d,),
                f"{b}.attn.proj.weight": (d, d),
                f"{b}.attn.proj.bias": (d,),
                f"{b}.norm2.weight": (d,),
                f"{b}.norm2.bias": (d,),
                f"{b}.mlp.fc1.weight": (m, d),
                f"{b}.mlp.fc1.bias": (m,),
                f"{b}.mlp.fc2.weight": (d, m),
                f"{b}.mlp.fc2.bias": (d,),
            }
        )
        if spec["layer_scale"]:
            keys[f"{b}.ls1.scale_factor"] = (d,)
            keys[f"{b}.ls2.scale_factor"] = (d,)
    keys[f"{prefix}.norm.weight"] = (d,)
    keys[f"{prefix}.norm.bias"] = (d,)
    if spec["attn_pool"]:
        a = f"{prefix}.attn_pool"
        keys.update(
            {
                f"{a}.latent": (1, 1, d),
                f"{a}.q.weight": (d, d),
                f"{a}.q.bias": (d,),
                f"{a}.kv.weight": (2 * d, d),
                f"{a}.kv.bias": (2 * d,),
                f"{a}.proj.weight": (d, d),
                f"{a}.proj.bias": (d,),
                f"{a}.norm.weight": (d,),
                f"{a}.norm.bias": (d,),
                f"{a}.mlp.fc1.weight": (m, d),
                f"{a}.mlp.fc1.bias": (m,),
                f"{a}.mlp.fc2.weight": (d, m),
                f"{a}.mlp.fc2.bias": (d,),
            }
        )
    return keys


def published_key_shapes(
    dino: Mapping[str, Any],
    siglip: Mapping[str, Any],
    *,
    hidden: int,
    layers: int,
    heads: int,
    kv_heads: int,
    intermediate: int,
    vocab: int = VOCAB + PAD_MULTIPLE,
) -> dict[str, tuple[int, ...]]:
    """Every key of an OpenVLA (fused DINOv2 + SigLIP) state dict with its shape."""
    keys = _vit_keys("vision_backbone.featurizer", dino)
    keys.update(_vit_keys("vision_backbone.fused_featurizer", siglip))
    v = dino["embed_dim"] + siglip["embed_dim"]
    keys.update(
        {
            "projector.fc1.weight": (4 * v, v),
            "projector.fc1.bias": (4 * v,),
            "projector.fc2.weight": (hidden, 4 * v),
            "projector.fc2.bias": (hidden,),
            "projector.fc3.weight": (hidden, hidden),
            "projector.fc3.bias": (hidden,),
        }
    )
    head_dim = hidden // heads
    keys["language_model.model.embed_tokens.weight"] = (vocab, hidden)
    for i in range(layers):
        b = f"language_model.model.layers.{i}"
        keys.update(
            {
                f"{b}.self_attn.q_proj.weight": (hidden, hidden),
                f"{b}.self_attn.k_proj.weight": (kv_heads * head_dim, hidden),
                f"{b}.self_attn.v_proj.weight": (kv_heads * head_dim, hidden),
                f"{b}.self_attn.o_proj.weight": (hidden, hidden),
                f"{b}.mlp.gate_proj.weight": (intermediate, hidden),
                f"{b}.mlp.up_proj.weight": (intermediate, hidden),
                f"{b}.mlp.down_proj.weight": (hidden, intermediate),
                f"{b}.input_layernorm.weight": (hidden,),
                f"{b}.post_attention_layernorm.weight": (hidden,),
            }
        )
    keys["language_model.model.norm.weight"] = (hidden,)
    keys["language_model.lm_head.weight"] = (vocab, hidden)
    return keys


def _full_vit(base: Mapping[str, Any], real_id: str) -> dict[str, Any]:
    real = {
        DINO_ID: {
            "class_token": True,
            "reg_tokens": 4,
            "no_embed_class": True,
            "layer_scale": True,
            "attn_pool": False,
        },
        SIGLIP_ID: {
            "class_token": False,
            "reg_tokens": 0,
            "no_embed_class": False,
            "layer_scale": False,
            "attn_pool": True,
        },
    }[real_id]
    return {**real, **base}


# ---------------------------------------------------------------------------------------------
# Weights.


def _init_tensor(key: str, shape: tuple[int, ...], gen: Any, action_first: int) -> Any:
    """Random init chosen so the small model is image-driven and emits action tokens."""
    import torch

    def normal(std: float) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * std

    fan_in = shape[-1] if len(shape) > 1 else 1
    if len(shape) == 4:  # patch conv: fan-in is 3 * p * p
        fan_in = shape[1] * shape[2] * shape[3]
    if key.endswith(("norm1.weight", "norm2.weight", "norm.weight", "layernorm.weight")):
        return 1.0 + normal(0.05)
    if key.endswith(".bias"):
        return normal(0.02)
    if key.endswith("scale_factor"):
        return 0.5 + normal(0.05)
    if key.endswith(("cls_token", "reg_token", "latent")):
        return normal(0.5)
    if key.endswith("pos_embed"):
        return normal(0.2)
    if key.endswith("embed_tokens.weight"):
        # Small token embeddings: the residual stream at the query positions is then dominated
        # by what attention brings from the (large) image tokens.
        return normal(0.05)
    if key.endswith("lm_head.weight"):
        # Action rows get large weights, every other row nearly none: greedy picks action ids,
        # and which one depends on the hidden state, i.e. on the image.
        w = normal(1e-3)
        w[action_first : action_first + 256] = torch.randn((256, shape[1]), generator=gen) * (
            4.0 / math.sqrt(shape[1])
        )
        return w
    if key.endswith(("q_proj.weight", "k_proj.weight")):
        # Sharper attention so single image regions matter, not only the image mean.
        return normal(2.0 / math.sqrt(fan_in))
    return normal(1.0 / math.sqrt(fan_in))


def _write_safetensors(path: Path, tensors: Mapping[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file(dict(tensors), str(path), metadata={"format": "pt"})


def _shard(keys: list[str], sizes: Mapping[str, int], shards: int) -> list[list[str]]:
    total = sum(sizes.values())
    groups: list[list[str]] = [[] for _ in range(shards)]
    done = 0
    for key in keys:
        index = min(shards - 1, int(done * shards / max(total, 1)))
        groups[index].append(key)
        done += sizes[key]
    # Every shard must hold something: move keys forward into empty ones.
    for i in range(shards):
        if not groups[i]:
            donor = max(range(shards), key=lambda j: len(groups[j]))
            groups[i].append(groups[donor].pop())
    return groups


# ---------------------------------------------------------------------------------------------
# Tokenizer files.


def _tokenizer_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    vocab: dict[str, int] = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = 3 + b
    chars = [chr(c) for c in range(33, 127)]
    extra = (chr(c) for c in range(0xA1, 0x3000))
    for ch in extra:
        if len(chars) >= VOCAB - SPACE_ID - 1:
            break
        if ch.isprintable() and not ch.isspace() and ch != "\u2581" and ch not in chars:
            chars.append(ch)
    pieces: list[str] = []
    seen: set[str] = set()
    for word in _WORDS:
        for text in (f"\u2581{word}", word):
            for end in range(2, len(text) + 1):
                if text[:end] not in seen:
                    seen.add(text[:end])
                    pieces.append(text[:end])
    next_id = 259
    for piece in pieces:
        vocab[piece] = next_id
        next_id += 1
    while next_id < SPACE_ID:
        vocab[f"<extra_{next_id}>"] = next_id
        next_id += 1
    vocab["\u2581"] = SPACE_ID
    for i, ch in enumerate(chars):
        vocab[ch] = SPACE_ID + 1 + i
    if len(vocab) != VOCAB:
        raise RuntimeError(f"internal error: tokenizer vocab has {len(vocab)} entries")
    # Like HF's SentencePiece converter: every split of a piece into two known pieces is a
    # merge, ranked by the piece's id. The BPE of tokenizer.json then segments exactly like
    # SentencePiece's score-driven BPE in tokenizer.model.
    merges = [
        (piece[:i], piece[i:])
        for piece in pieces
        for i in range(1, len(piece))
        if piece[:i] in vocab and piece[i:] in vocab
    ]
    return vocab, merges


def write_tokenizer(out_dir: Path) -> None:
    """A Llama-2-style SentencePiece-BPE ``tokenizer.json`` (byte fallback, '▁' = 29871,
    ``<PAD>`` = 32000) plus tokenizer_config / special_tokens_map / added_tokens / tokenizer.model.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE

    vocab, merges = _tokenizer_vocab()
    tok = Tokenizer(
        BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")]
    )
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("\u2581", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.add_special_tokens(
        [
            AddedToken("<unk>", normalized=False, special=True),
            AddedToken("<s>", normalized=False, special=True),
            AddedToken("</s>", normalized=False, special=True),
        ]
    )
    tok.add_special_tokens([AddedToken("<PAD>", normalized=False, special=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    tok.save(str(out_dir / "tokenizer.json"))
    # tokenizers >= 0.20 saves merges as pairs; the official stack (tokenizers 0.19.1) only
    # reads the "a b" strings the published tokenizer.json uses. No piece contains a space.
    saved = json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8"))
    saved["model"]["merges"] = [
        m if isinstance(m, str) else " ".join(m) for m in saved["model"]["merges"]
    ]
    (out_dir / "tokenizer.json").write_text(
        json.dumps(saved, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    if tok.token_to_id("<PAD>") != VOCAB:
        raise RuntimeError("internal error: <PAD> is not id 32000")
    added = {
        str(i): {
            "content": name,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for i, name in ((0, "<unk>"), (1, "<s>"), (2, "</s>"), (VOCAB, "<PAD>"))
    }
    _write_json(
        out_dir / "tokenizer_config.json",
        {
            "add_bos_token": True,
            "add_eos_token": False,
            "added_tokens_decoder": added,
            "bos_token": "<s>",
            "clean_up_tokenization_spaces": False,
            "eos_token": "</s>",
            "legacy": False,
            "model_max_length": 2048,
            "pad_token": "<PAD>",
            "padding_side": "right",
            "processor_class": "PrismaticProcessor",
            "sp_model_kwargs": {},
            "tokenizer_class": "LlamaTokenizer",
            "unk_token": "<unk>",
            "use_default_system_prompt": False,
        },
    )
    _write_json(
        out_dir / "special_tokens_map.json",
        {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<PAD>", "unk_token": "<unk>"},
    )
    _write_json(out_dir / "added_tokens.json", {"<PAD>": VOCAB})
    (out_dir / "tokenizer.model").write_bytes(_sentencepiece_model(vocab, merges))


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint((number << 3) | wire) + payload


def _pb_bytes(number: int, data: bytes) -> bytes:
    return _field(number, 2, _varint(len(data)) + data)


def _pb_int(number: int, value: int) -> bytes:
    return _field(number, 0, _varint(value))


def _pb_float(number: int, value: float) -> bytes:
    return _field(number, 5, struct.pack("<f", value))


def _sentencepiece_model(vocab: Mapping[str, int], merges: Sequence[tuple[str, str]]) -> bytes:
    """A SentencePiece BPE ModelProto with the same pieces, serialised by hand (no protobuf).

    BPE merge order in SentencePiece comes from piece scores: earlier merges score higher.
    """
    rank = {a + b: vocab[a + b] for a, b in merges}
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    body = bytearray()
    for piece, idx in by_id:
        if idx == 0:
            kind, score = 2, 0.0  # UNKNOWN
        elif idx in (1, 2):
            kind, score = 3, 0.0  # CONTROL
        elif idx < 259:
            kind, score = 6, 0.0  # BYTE
        elif piece.startswith("<extra_"):
            kind, score = 5, -1e9  # UNUSED
        elif piece in rank:
            kind, score = 1, -float(rank[piece])
        else:
            kind, score = 1, -1e6 - idx
        body += _pb_bytes(
            1, _pb_bytes(1, piece.encode("utf-8")) + _pb_float(2, score) + _pb_int(3, kind)
        )
    trainer = (
        _pb_int(3, 2)  # model_type BPE
        + _pb_int(4, len(vocab))  # vocab_size
        + _pb_int(35, 1)  # byte_fallback
        + _pb_int(40, 0)  # unk_id
        + _pb_int(41, 1)  # bos_id
        + _pb_int(42, 2)  # eos_id
        + _pb_int(43, -1)  # pad_id
    )
    normalizer = (
        _pb_bytes(1, b"identity")
        + _pb_int(3, 1)  # add_dummy_prefix
        + _pb_int(4, 0)  # remove_extra_whitespaces
        + _pb_int(5, 1)  # escape_whitespaces
    )
    body += _pb_bytes(2, trainer) + _pb_bytes(3, normalizer)
    return bytes(body)


# ---------------------------------------------------------------------------------------------


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def published_config(norm_stats: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``config.json`` of the published ``openvla/openvla-7b`` checkpoint (full geometry:
    every Llama size left at its transformers default, the real timm tower ids).

    Args:
        norm_stats: ``norm_stats`` entries (default: :func:`default_norm_stats`).
    """
    return {
        "arch_specifier": "no-align+fused-gelu-mlp",
        "architectures": ["OpenVLAForActionPrediction"],
        "auto_map": {
            "AutoConfig": "configuration_prismatic.OpenVLAConfig",
            "AutoModelForVision2Seq": "modeling_prismatic.OpenVLAForActionPrediction",
        },
        "hf_llm_id": "meta-llama/Llama-2-7b-hf",
        "image_resize_strategy": "resize-naive",
        "image_sizes": [224, 224],
        "llm_backbone_id": "llama2-7b-pure",
        "llm_max_length": 2048,
        "model_type": "openvla",
        "n_action_bins": 256,
        "norm_stats": dict(norm_stats) if norm_stats is not None else default_norm_stats(),
        "output_projector_states": False,
        "pad_to_multiple_of": PAD_MULTIPLE,
        "pad_token_id": VOCAB,
        "text_config": {
            "model_type": "llama",
            "pad_token_id": VOCAB,
            "torch_dtype": "bfloat16",
            "vocab_size": VOCAB + PAD_MULTIPLE,
        },
        "timm_model_ids": [DINO_ID, SIGLIP_ID],
        "timm_override_act_layers": [None, None],
        "torch_dtype": "bfloat16",
        "transformers_version": "4.40.1",
        "use_fused_vision_backbone": True,
        "vision_backbone_id": "dinosiglip-vit-so-224px",
    }


def write_small_checkpoint(
    out_dir: str | Path,
    seed: int = 0,
    shards: int = 2,
    *,
    dims: SmallDims | None = None,
    norm_stats: Mapping[str, Any] | None = None,
    dtype: str = "bf16",
    dataset_statistics: Mapping[str, Any] | None = None,
) -> Path:
    """Write a small random OpenVLA checkpoint in the published Hugging Face layout.

    Args:
        out_dir: directory to create (may exist; files are overwritten).
        seed: weights seed; the same seed always gives the same files.
        shards: >= 2 writes ``model-0000N-of-0000M.safetensors`` + index, 1 a single
            ``model.safetensors``.
        dims: sizes (tiny by default).
        norm_stats: ``norm_stats`` for config.json (default: bridge_orig + fractal).
        dtype: stored weight dtype, bf16 (as published) or fp32.
        dataset_statistics: also write a fine-tune style ``dataset_statistics.json``.

    Returns:
        the checkpoint directory.
    """
    import torch

    if shards < 1:
        raise ValueError("shards must be >= 1")
    dims = dims or SmallDims()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dino = _full_vit(dims.dino, DINO_ID)
    siglip = _full_vit(dims.siglip, SIGLIP_ID)
    vocab = VOCAB + PAD_MULTIPLE
    shapes = published_key_shapes(
        dino,
        siglip,
        hidden=dims.llm_hidden,
        layers=dims.llm_layers,
        heads=dims.llm_heads,
        kv_heads=dims.llm_kv_heads,
        intermediate=dims.llm_intermediate,
        vocab=vocab,
    )
    torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    gen = torch.Generator().manual_seed(seed)
    tensors = {
        key: _init_tensor(key, shape, gen, VOCAB - 256).to(torch_dtype).contiguous()
        for key, shape in shapes.items()
    }

    for stale in [*out.glob("model*.safetensors"), out / "model.safetensors.index.json"]:
        stale.unlink(missing_ok=True)
    keys = sorted(tensors)
    if shards == 1:
        _write_safetensors(out / "model.safetensors", tensors)
    else:
        sizes = {k: tensors[k].numel() * tensors[k].element_size() for k in keys}
        weight_map: dict[str, str] = {}
        for i, group in enumerate(_shard(keys, sizes, shards), start=1):
            name = f"model-{i:05d}-of-{shards:05d}.safetensors"
            _write_safetensors(out / name, {k: tensors[k] for k in group})
            weight_map.update(dict.fromkeys(group, name))
        _write_json(
            out / "model.safetensors.index.json",
            {"metadata": {"total_size": sum(sizes.values())}, "weight_map": weight_map},
        )

    def override(spec: Mapping[str, Any]) -> dict[str, Any]:
        keys = ("embed_dim", "depth", "num_heads", "mlp_hidden", "patch_size")
        return {k: spec[k] for k in keys if k in spec}

    config = published_config(norm_stats)
    # Small-checkpoint sizes; the published 7B config leaves these at Llama defaults.
    config["text_config"].update(
        {
            "hidden_size": dims.llm_hidden,
            "intermediate_size": dims.llm_intermediate,
            "num_hidden_layers": dims.llm_layers,
            "num_attention_heads": dims.llm_heads,
            "num_key_value_heads": dims.llm_kv_heads,
        }
    )
    # Extension (not in the published config): tiny tower sizes for this small checkpoint.
    config["vision_tower_overrides"] = [override(dims.dino), override(dims.siglip)]
    _write_json(out / "config.json", config)
    _write_json(
        out / "generation_config.json",
        {
            "_from_model_config": True,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": VOCAB,
            "transformers_version": "4.40.1",
        },
    )
    # As in openvla-7b's file: means/stds hold the exact ImageNet values, while
    # tvf_normalize_params (what the official processor normalises with) holds them rounded
    # to bf16. Writing the two differently lets tests see which one a loader reads.
    means = [[0.485, 0.456, 0.406], [0.5, 0.5, 0.5]]
    stds = [[0.229, 0.224, 0.225], [0.5, 0.5, 0.5]]
    tvf_means = [[0.484375, 0.455078125, 0.40625], [0.5, 0.5, 0.5]]
    tvf_stds = [[0.228515625, 0.2236328125, 0.224609375], [0.5, 0.5, 0.5]]
    _write_json(
        out / "preprocessor_config.json",
        {
            "auto_map": {
                "AutoImageProcessor": "processing_prismatic.PrismaticImageProcessor",
                "AutoProcessor": "processing_prismatic.PrismaticProcessor",
            },
            "image_processor_type": "PrismaticImageProcessor",
            "image_resize_strategy": "resize-naive",
            "input_sizes": [[3, 224, 224], [3, 224, 224]],
            "interpolations": ["bicubic", "bicubic"],
            "means": means,
            "processor_class": "PrismaticProcessor",
            "stds": stds,
            "tvf_crop_params": [{"output_size": [224, 224]}, {"output_size": [224, 224]}],
            "tvf_do_letterbox": False,
            "tvf_letterbox_fill": None,
            "tvf_normalize_params": [
                {"inplace": False, "mean": m, "std": s}
                for m, s in zip(tvf_means, tvf_stds, strict=True)
            ],
            "tvf_resize_params": [
                {"antialias": True, "interpolation": 3, "max_size": None, "size": [224, 224]}
            ]
            * 2,
            "use_fused_vision_backbone": True,
        },
    )
    _write_json(
        out / "processor_config.json",
        {
            "auto_map": {"AutoProcessor": "processing_prismatic.PrismaticProcessor"},
            "processor_class": "PrismaticProcessor",
        },
    )
    write_tokenizer(out)
    (out / "dataset_statistics.json").unlink(missing_ok=True)
    if dataset_statistics is not None:
        write_dataset_statistics(out, dataset_statistics)
    return out


def synthetic_scene(seed: int, height: int = 180, width: int = 240) -> Any:
    """A deterministic HxWx3 uint8 test frame: background colour, gradient, a coloured block.

    Different seeds give visibly different frames (tests, demo, benchmarks).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=3)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), dtype=np.float64)
    for c in range(3):
        img[..., c] = base[c] * 0.6 + 0.4 * 255 * ((xx + c * yy) % width) / width
    y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
    img[y0 : y0 + height // 3, x0 : x0 + width // 3] = rng.integers(0, 256, size=3)
    return np.clip(img, 0, 255).astype(np.uint8)


def dims_dict(dims: SmallDims) -> dict[str, Any]:
    """SmallDims as plain data (for logs and benchmark output)."""
    return asdict(dims)
