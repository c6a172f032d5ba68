# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""Loader: key-name fidelity, sharded vs single file, and every way a checkpoint can be broken."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from openvla_ros.errors import CheckpointError
from openvla_ros.model.config import KNOWN_VITS, load_config
from openvla_ros.model.inference import OpenVLAPolicy
from openvla_ros.model.make_checkpoint import (
    DINO_ID,
    SIGLIP_ID,
    action_stats,
    published_key_shapes,
    write_dataset_statistics,
)
from openvla_ros.model.make_checkpoint import synthetic_scene as scene
from openvla_ros.model.network import OpenVLANetwork

SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"


def _load(path: Path, **kw: object) -> OpenVLAPolicy:
    return OpenVLAPolicy.from_checkpoint(path, precision="fp32", device="cpu", **kw)  # type: ignore[arg-type]


def _shard_of(root: Path, key: str) -> str:
    index = json.loads((root / "model.safetensors.index.json").read_text())
    return str(index["weight_map"][key])


def _rewrite_shard(root: Path, shard: str, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    tensors = load_file(str(root / shard))
    edit(tensors)
    save_file(tensors, str(root / shard), metadata={"format": "pt"})


def _rewrite_index(root: Path, edit: Callable[[dict[str, str]], None]) -> None:
    path = root / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    edit(index["weight_map"])
    path.write_text(json.dumps(index))


def test_real_geometry_matches_published_key_names() -> None:
    """The full 7B network (built on meta, no memory) has exactly the published keys/shapes."""
    cfg_dir_keys = published_key_shapes(
        {**_vit_dict(DINO_ID)},
        {**_vit_dict(SIGLIP_ID)},
        hidden=4096,
        layers=32,
        heads=32,
        kv_heads=32,
        intermediate=11008,
    )
    from openvla_ros.model import config as cfgmod

    raw = {
        "model_type": "openvla",
        "timm_model_ids": [DINO_ID, SIGLIP_ID],
        "use_fused_vision_backbone": True,
        "norm_stats": {"k": action_stats([0.0] * 7, [1.0] * 7)},
        "text_config": {"model_type": "llama", "pad_token_id": 32000, "vocab_size": 32064},
    }
    cfg = _config_from_raw(cfgmod, raw)
    with torch.device("meta"):
        net = OpenVLANetwork(cfg)
    ours = {k: tuple(v.shape) for k, v in net.state_dict(keep_vars=True).items()}
    assert ours == cfg_dir_keys
    n_params = sum(int(np.prod(s)) for s in ours.values())
    # ~7.54 B parameters for openvla-7b (shared/OPENVLA.md).
    assert 7.50e9 < n_params < 7.60e9
    assert ours["vision_backbone.featurizer.pos_embed"] == (1, 256, 1024)
    assert ours["vision_backbone.fused_featurizer.pos_embed"] == (1, 256, 1152)
    assert ours["projector.fc1.weight"] == (8704, 2176)
    assert ours["language_model.lm_head.weight"] == (32064, 4096)
    assert net.language_model.config.rms_norm_eps == 1e-6


def _vit_dict(timm_id: str) -> dict[str, object]:
    spec = KNOWN_VITS[timm_id]
    return {
        "embed_dim": spec.embed_dim,
        "depth": spec.depth,
        "num_heads": spec.num_heads,
        "mlp_hidden": spec.mlp_hidden,
        "class_token": spec.class_token,
        "reg_tokens": spec.reg_tokens,
        "no_embed_class": spec.no_embed_class,
        "layer_scale": spec.layer_scale,
        "attn_pool": spec.attn_pool,
    }


def _config_from_raw(cfgmod: object, raw: dict[str, object]):  # type: ignore[no-untyped-def]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "config.json").write_text(json.dumps(raw))
        return load_config(Path(tmp))


def test_published_layout_loads(policy: OpenVLAPolicy, small_ckpt: Path) -> None:
    files = sorted(p.name for p in small_ckpt.iterdir())
    for name in (
        "config.json",
        "generation_config.json",
        SHARD1,
        SHARD2,
        "model.safetensors.index.json",
        "preprocessor_config.json",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
    ):
        assert name in files
    assert policy.info()["unnorm_keys"] == ["bridge_orig", "fractal20220817_data"]


def test_sharded_and_single_file_give_identical_actions(
    policy: OpenVLAPolicy, single_ckpt: Path
) -> None:
    single = _load(single_ckpt)
    for seed in range(3):
        img = scene(seed)
        a = policy.predict(img, "pick up the red cup", unnorm_key="bridge_orig")
        b = single.predict(img, "pick up the red cup", unnorm_key="bridge_orig")
        assert a.token_ids == b.token_ids
        np.testing.assert_array_equal(a.action, b.action)


def test_renamed_key_names_file_and_key(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    key = "vision_backbone.featurizer.blocks.1.ls1.scale_factor"
    shard = _shard_of(root, key)

    def rename(t: dict[str, torch.Tensor]) -> None:
        t[key.replace("scale_factor", "gamma")] = t.pop(key)

    _rewrite_shard(root, shard, rename)
    _rewrite_index(root, lambda m: m.update({key.replace("scale_factor", "gamma"): m.pop(key)}))
    with pytest.raises(CheckpointError) as err:
        _load(root)
    msg = str(err.value)
    assert shard in msg and "blocks.1.ls1.gamma" in msg and "unexpected" in msg
    assert f"missing key '{key}'" in msg


def test_missing_key(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    key = "projector.fc2.bias"
    shard = _shard_of(root, key)
    _rewrite_shard(root, shard, lambda t: t.__delitem__(key))
    _rewrite_index(root, lambda m: m.__delitem__(key))
    with pytest.raises(CheckpointError, match=r"missing key 'projector\.fc2\.bias'"):
        _load(root)


def test_extra_key(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    _rewrite_shard(root, SHARD2, lambda t: t.update({"language_model.extra.weight": torch.ones(3)}))
    _rewrite_index(root, lambda m: m.update({"language_model.extra.weight": SHARD2}))
    with pytest.raises(CheckpointError) as err:
        _load(root)
    assert SHARD2 in str(err.value) and "unexpected key 'language_model.extra.weight'" in str(
        err.value
    )


def test_key_in_shard_but_not_in_index(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    _rewrite_shard(root, SHARD2, lambda t: t.update({"stray.weight": torch.ones(3)}))
    with pytest.raises(CheckpointError, match=f"{SHARD2}: key 'stray.weight' is stored but not"):
        _load(root)


def test_index_points_at_wrong_shard(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    key = "language_model.model.norm.weight"
    other = SHARD1 if _shard_of(root, key) == SHARD2 else SHARD2
    _rewrite_index(root, lambda m: m.update({key: other}))
    with pytest.raises(CheckpointError, match=f"{other}: key '{key}' is listed"):
        _load(root)


def test_wrong_shape(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    key = "language_model.model.layers.0.self_attn.q_proj.weight"
    shard = _shard_of(root, key)
    _rewrite_shard(root, shard, lambda t: t.update({key: t[key][:, :32].contiguous()}))
    with pytest.raises(CheckpointError) as err:
        _load(root)
    assert shard in str(err.value) and key in str(err.value) and "[64, 32]" in str(err.value)


def test_missing_shard(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    (root / SHARD2).unlink()
    with pytest.raises(CheckpointError, match=f"{SHARD2}: shard listed in .* is missing"):
        _load(root)


def test_truncated_shard(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    data = (root / SHARD1).read_bytes()
    (root / SHARD1).write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError) as err:
        _load(root)
    assert SHARD1 in str(err.value) and "truncated or corrupt" in str(err.value)
    assert "key '" in str(err.value)


def test_garbage_shard(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    (root / SHARD2).write_bytes(b"\x00" * 7)
    with pytest.raises(CheckpointError, match=f"{SHARD2}: corrupt safetensors"):
        _load(root)
    (root / SHARD2).write_bytes((50).to_bytes(8, "little") + b"{not json" + b" " * 100)
    with pytest.raises(CheckpointError, match=f"{SHARD2}: corrupt safetensors header"):
        _load(root)


def test_nan_weights_are_corruption(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    key = "projector.fc3.weight"
    shard = _shard_of(root, key)

    def poison(t: dict[str, torch.Tensor]) -> None:
        t[key] = t[key].clone()
        t[key][0, 0] = float("nan")

    _rewrite_shard(root, shard, poison)
    with pytest.raises(CheckpointError, match=f"{shard}: key '{key}' contains NaN"):
        _load(root)


@pytest.mark.parametrize(
    "name",
    ["config.json", "tokenizer.json", "preprocessor_config.json", "model.safetensors.index.json"],
)
def test_missing_file(ckpt_copy: Callable[[], Path], name: str) -> None:
    root = ckpt_copy()
    (root / name).unlink()
    with pytest.raises(CheckpointError) as err:
        _load(root)
    expected = "model.safetensors" if name.startswith("model.") else name
    assert expected in str(err.value)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        _load(tmp_path / "nope")


def test_bad_config_fields(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    cfg = json.loads((root / "config.json").read_text())
    cfg["text_config"]["rope_scaling"] = {"type": "linear", "factor": 2.0}
    (root / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="rope scaling"):
        _load(root)
    cfg["text_config"].pop("rope_scaling")
    cfg["timm_model_ids"][0] = "vit_unknown_tower"
    cfg.pop("vision_tower_overrides")
    (root / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="unknown vision tower 'vit_unknown_tower'"):
        _load(root)


def test_override_shape_mismatch_reports_keys(ckpt_copy: Callable[[], Path]) -> None:
    """Without the small-tower overrides the real towers are built and every key mismatches."""
    root = ckpt_copy()
    cfg = json.loads((root / "config.json").read_text())
    cfg.pop("vision_tower_overrides")
    (root / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as err:
        _load(root)
    assert "vision_backbone.featurizer" in str(err.value) and "more" in str(err.value)


def test_dataset_statistics_override(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    write_dataset_statistics(
        root,
        {"my_robot": action_stats([-1.0] * 6 + [0.0], [1.0] * 6 + [1.0], [True] * 6 + [False])},
    )
    pol = _load(root)
    assert pol.info()["unnorm_keys"] == ["my_robot"]
    assert pol.info()["norm_stats_source"] == "dataset_statistics.json"
    # A single key needs no unnorm_key.
    res = pol.predict(scene(0), "pick up the cup")
    assert res.unnorm_key == "my_robot"
    np.testing.assert_allclose(res.action[:6], res.normalized_action[:6])


def test_six_dim_key_generates_six_tokens(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    write_dataset_statistics(
        root,
        {
            "six": action_stats([-2.0] * 6, [2.0] * 6),
            "seven": action_stats([-1.0] * 7, [1.0] * 7),
        },
    )
    pol = _load(root)
    six = pol.predict(scene(1), "push the block", unnorm_key="six")
    assert len(six.token_ids) == 6 and six.action.shape == (6,)
    np.testing.assert_allclose(six.action, 2.0 * six.normalized_action)
    seven = pol.predict(scene(1), "push the block", unnorm_key="seven")
    assert len(seven.token_ids) == 7
    # Greedy decoding: the 6-token run is a prefix of the 7-token run.
    assert seven.token_ids[:6] == six.token_ids


def test_bad_dataset_statistics(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    (root / "dataset_statistics.json").write_text(json.dumps({"k": {"action": {"q01": [0.0]}}}))
    with pytest.raises(CheckpointError, match=r"dataset_statistics\.json.*'k'"):
        _load(root)
    (root / "dataset_statistics.json").write_text("{oops")
    with pytest.raises(CheckpointError, match=r"dataset_statistics\.json: not valid JSON"):
        _load(root)


def test_ignores_legacy_rotary_buffers(ckpt_copy: Callable[[], Path]) -> None:
    """transformers < 4.31 saved rotary inv_freq buffers; they are recomputed, not loaded."""
    root = ckpt_copy()
    key = "language_model.model.layers.0.self_attn.rotary_emb.inv_freq"
    _rewrite_shard(root, SHARD2, lambda t: t.update({key: torch.ones(8)}))
    _rewrite_index(root, lambda m: m.update({key: SHARD2}))
    policy = _load(root)
    llama = json.loads((root / "config.json").read_text())["text_config"]
    head_dim = llama["hidden_size"] // llama["num_attention_heads"]
    theta = llama.get("rope_theta", 10000.0)  # Llama 2's default; the published config omits it
    # RoPE by its definition, 1 / theta^(2i/d), not the stale all-ones buffer of the file.
    expected = 1.0 / theta ** (np.arange(0, head_dim, 2) / head_dim)
    buffers = [b for n, b in policy.network.named_buffers() if n.endswith("inv_freq")]
    assert buffers, "no rotary inv_freq buffer in the loaded network"
    for buf in buffers:
        np.testing.assert_allclose(buf.float().numpy(), expected, rtol=1e-6)


def test_progress_is_reported(small_ckpt: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    _load(small_ckpt, progress=lambda d, t, m: seen.append((d, t, m)), self_check=False)
    assert seen[-1][0] == seen[-1][1] > 0 and seen[-1][2] == "done"
    assert any("reading model-0000" in m for _, _, m in seen)
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)


def test_config_parses_published_fields(small_ckpt: Path) -> None:
    cfg = load_config(small_ckpt)
    assert cfg.action_vocab_size == 32000 and cfg.llm_vocab_size == 32064
    assert cfg.llama["rms_norm_eps"] == 1e-6 and cfg.llama["rope_theta"] == 1e4
    assert [v.timm_id for v in cfg.vision] == [DINO_ID, SIGLIP_ID]
    assert cfg.vision[0].no_embed_class and cfg.vision[0].reg_tokens == 4
    assert cfg.vision[1].attn_pool and not cfg.vision[1].class_token
    assert cfg.norm_stats["bridge_orig"].mask == (True,) * 6 + (False,)


def test_all_finite_is_exact() -> None:
    from openvla_ros.model.checkpoint import all_finite

    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        t = torch.randn(10_000).to(dtype)
        assert all_finite(t)
        for bad in (float("nan"), float("inf"), -float("inf")):
            u = t.clone()
            u[1234] = bad
            assert not all_finite(u), (dtype, bad)
    # Finite values whose sum overflows are still finite (no false corruption report).
    assert all_finite(torch.full((8,), 3e38))
    assert all_finite(torch.full((100,), 60000.0, dtype=torch.float16))
    both = torch.tensor([float("inf"), -float("inf")])
    assert not all_finite(both)
    assert all_finite(torch.zeros(0)) and all_finite(torch.arange(3))
