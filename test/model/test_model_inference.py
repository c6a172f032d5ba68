# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""OpenVLAPolicy: precisions, generation correctness, bad inputs, self-check, GPU placement."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from openvla_ros.errors import CheckpointError, InputError, PrecisionError
from openvla_ros.model.inference import OpenVLAPolicy
from openvla_ros.model.make_checkpoint import synthetic_scene as scene
from openvla_ros.model.precision import resolve_device, resolve_placement
from openvla_ros.model.prompt import SPACE_TOKEN_ID, PromptTokenizer, format_prompt
from openvla_ros.policy.base import Policy, PolicyResult

INSTRUCTION = "pick up the red cup"
ACTION_IDS = range(31744, 32000)


def test_implements_policy_protocol(policy: OpenVLAPolicy) -> None:
    assert isinstance(policy, Policy)
    policy.reset()


def test_predict_result(policy: OpenVLAPolicy) -> None:
    res = policy.predict(scene(0), INSTRUCTION, unnorm_key="bridge_orig")
    assert isinstance(res, PolicyResult)
    assert res.action.dtype == np.float64 and res.action.shape == (7,)
    assert res.normalized_action.shape == (7,)
    assert len(res.token_ids) == 7 and all(t in ACTION_IDS for t in res.token_ids)
    assert res.unnorm_key == "bridge_orig"
    assert {"preprocess", "prefill", "decode", "total"} <= set(res.timings_ms)
    assert res.timings_ms["total"] >= res.timings_ms["prefill"] > 0
    # Deterministic.
    assert (
        policy.predict(scene(0), INSTRUCTION, unnorm_key="bridge_orig").token_ids == res.token_ids
    )


def test_actions_depend_on_the_image(policy: OpenVLAPolicy) -> None:
    tokens = {
        policy.predict(scene(seed), INSTRUCTION, unnorm_key="bridge_orig").token_ids
        for seed in range(8)
    }
    assert len(tokens) >= 4


def test_kv_cache_generation_matches_full_recompute(policy: OpenVLAPolicy) -> None:
    """Reference without a cache: rerun the whole [BOS]+image+prompt+generated sequence."""
    net = policy.network
    img = scene(3)
    res = policy.predict(img, INSTRUCTION, unnorm_key="bridge_orig")
    ids = torch.tensor(policy.tokenizer.encode(INSTRUCTION))
    pixels = policy._pixels([img])
    embed = net.language_model.get_input_embeddings()
    with torch.inference_mode():
        text = embed(ids[None])
        seq = torch.cat([text[:, :1], net.embed_images(pixels), text[:, 1:]], dim=1)
        tokens = []
        for _ in range(7):
            logits = net.language_model(inputs_embeds=seq, use_cache=False).logits[0, -1]
            tok = int(logits.argmax())
            tokens.append(tok)
            seq = torch.cat([seq, embed(torch.tensor([[tok]]))], dim=1)
    assert tuple(tokens) == res.token_ids


def test_batch_matches_single(policy: OpenVLAPolicy) -> None:
    images = [scene(i, 100 + 20 * i, 160) for i in range(3)]
    texts = ["open the drawer", "put the eggplant in the pot and close the microwave door", "push"]
    batch = policy.predict_batch(images, texts, unnorm_key="fractal20220817_data")
    for img, text, got in zip(images, texts, batch, strict=True):
        alone = policy.predict(img, text, unnorm_key="fractal20220817_data")
        assert got.token_ids == alone.token_ids
        np.testing.assert_array_equal(got.action, alone.action)


def test_unnorm_applies_statistics(policy: OpenVLAPolicy) -> None:
    res = policy.predict(scene(2), INSTRUCTION, unnorm_key="bridge_orig")
    st = policy.config.norm_stats["bridge_orig"]
    q01, q99 = np.array(st.q01), np.array(st.q99)
    expected = 0.5 * (res.normalized_action + 1) * (q99 - q01) + q01
    np.testing.assert_allclose(res.action[:6], expected[:6])
    assert res.action[6] == res.normalized_action[6]  # gripper: mask false


def test_eager_attention_matches_sdpa(small_ckpt: Path, policy: OpenVLAPolicy) -> None:
    eager = OpenVLAPolicy.from_checkpoint(
        small_ckpt, precision="fp32", device="cpu", attn_implementation="eager"
    )
    for seed in range(2):
        a = eager.predict(scene(seed), INSTRUCTION, unnorm_key="bridge_orig")
        b = policy.predict(scene(seed), INSTRUCTION, unnorm_key="bridge_orig")
        assert a.token_ids == b.token_ids


@pytest.mark.parametrize("precision", ["bf16", "fp16", "int8", "int4"])
def test_cpu_precisions(small_ckpt: Path, policy: OpenVLAPolicy, precision: str) -> None:
    try:
        pol = OpenVLAPolicy.from_checkpoint(small_ckpt, precision=precision, device="cpu")
    except PrecisionError as exc:
        pytest.skip(f"{precision} unavailable on this CPU: {exc}")
    info = pol.info()
    assert info["precision"] == precision and info["device"] == "cpu"
    agree = 0
    for seed in range(3):
        res = pol.predict(scene(seed), INSTRUCTION, unnorm_key="bridge_orig")
        ref = policy.predict(scene(seed), INSTRUCTION, unnorm_key="bridge_orig")
        assert len(res.token_ids) == 7 and np.isfinite(res.action).all()
        assert all(t in ACTION_IDS for t in res.token_ids)
        agree += sum(a == b for a, b in zip(res.token_ids, ref.token_ids, strict=True))
    if precision in ("int8", "int4"):
        import bitsandbytes as bnb

        layer = pol.network.language_model.model.layers[0].self_attn.q_proj
        assert isinstance(layer, bnb.nn.Linear8bitLt | bnb.nn.Linear4bit)
        # Vision towers and projector stay unquantised by default.
        assert isinstance(pol.network.projector.fc1, torch.nn.Linear)
        assert pol.network.projector.fc1.weight.dtype == torch.bfloat16
        assert "bitsandbytes" in info["versions"]
    if precision != "int4":
        # Same tiny model, lower precision: mostly the same greedy tokens.
        assert agree >= 12, f"only {agree}/21 tokens agree with fp32"


def test_quantize_vision_option(small_ckpt: Path) -> None:
    import bitsandbytes as bnb

    pol = OpenVLAPolicy.from_checkpoint(
        small_ckpt, precision="int8", device="cpu", quantize_vision=True
    )
    assert isinstance(pol.network.projector.fc1, bnb.nn.Linear8bitLt)
    block = pol.network.vision_backbone.featurizer.blocks[0]
    assert isinstance(block.mlp.fc1, bnb.nn.Linear8bitLt)
    res = pol.predict(scene(0), INSTRUCTION, unnorm_key="bridge_orig")
    assert len(res.token_ids) == 7


def test_quantize_vision_with_fp32_vision_precision(small_ckpt: Path) -> None:
    # The quantised projector's bias is in the compute dtype (bf16); the towers' unquantised
    # parts (patch embedding, norms) are fp32: the pixels must follow the towers, not the bias.
    pol = OpenVLAPolicy.from_checkpoint(
        small_ckpt, precision="int8", device="cpu", quantize_vision=True, vision_precision="fp32"
    )
    proj = pol.network.vision_backbone.featurizer.patch_embed.proj
    assert proj.weight.dtype == torch.float32
    res = pol.predict(scene(0), INSTRUCTION, unnorm_key="bridge_orig")
    assert len(res.token_ids) == 7 and np.all(np.isfinite(res.action))


def test_precision_errors() -> None:
    with pytest.raises(PrecisionError, match="unknown precision 'int3'"):
        resolve_placement("int3", "cpu")
    with pytest.raises(PrecisionError, match="flash_attention_2 needs a CUDA device"):
        resolve_placement("bf16", "cpu", "flash_attention_2")
    with pytest.raises(PrecisionError, match="unknown attn_implementation"):
        resolve_placement("bf16", "cpu", "magic")
    with pytest.raises(PrecisionError, match="quantize_vision"):
        resolve_placement("fp32", "cpu", quantize_vision=True)
    with pytest.raises(PrecisionError, match="vision_precision"):
        resolve_placement("int8", "cpu", vision_precision="int4")
    with pytest.raises(PrecisionError, match="not supported"):
        resolve_device("mps")
    assert resolve_placement("int4", "cpu").vision_dtype == torch.bfloat16
    assert resolve_placement("fp32", "cpu").compute_dtype == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error path")
def test_cuda_requested_without_gpu(small_ckpt: Path) -> None:
    with pytest.raises(PrecisionError, match="no CUDA GPU"):
        OpenVLAPolicy.from_checkpoint(small_ckpt, precision="bf16", device="cuda")
    with pytest.raises(PrecisionError, match="no CUDA GPU"):
        resolve_device("cuda:1")
    assert resolve_device("auto") == torch.device("cpu")


# -- bad inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instruction, match",
    [
        ("", "empty"),
        ("   \n", "empty"),
        (None, "must be a str, got NoneType"),
        (42, "must be a str, got int"),
        (b"pick", "must be a str, got bytes"),
        ("pick " * 1000, "characters long"),
        ("\u65e5" * 1500, "too long: .* exceed the model's context of 2048"),
    ],
)
def test_bad_instructions(policy: OpenVLAPolicy, instruction: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        policy.predict(scene(0), instruction, unnorm_key="bridge_orig")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((64, 64, 3), np.float32), "dtype uint8"),
        (np.zeros((64, 64), np.uint8), "HxWx3"),
        (np.zeros((64, 64, 4), np.uint8), "HxWx3"),
        (np.zeros((0, 64, 3), np.uint8), "outside"),
        ([[0, 0, 0]], "numpy array"),
        (None, "numpy array"),
    ],
)
def test_bad_images(policy: OpenVLAPolicy, image: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        policy.predict(image, INSTRUCTION, unnorm_key="bridge_orig")  # type: ignore[arg-type]


def test_unnorm_key_errors(policy: OpenVLAPolicy) -> None:
    with pytest.raises(InputError, match="unknown unnorm_key 'bridge'; available: bridge_orig, "):
        policy.predict(scene(0), INSTRUCTION, unnorm_key="bridge")
    with pytest.raises(InputError, match="2 datasets; pass unnorm_key, one of: bridge_orig"):
        policy.predict(scene(0), INSTRUCTION)
    with pytest.raises(InputError, match="predict_batch needs"):
        policy.predict_batch([scene(0)], [INSTRUCTION, INSTRUCTION], unnorm_key="bridge_orig")


def test_default_unnorm_key(small_ckpt: Path) -> None:
    pol = OpenVLAPolicy.from_checkpoint(
        small_ckpt, precision="fp32", device="cpu", default_unnorm_key="fractal20220817_data"
    )
    assert pol.predict(scene(0), INSTRUCTION).unnorm_key == "fractal20220817_data"
    with pytest.raises(InputError, match="unknown unnorm_key 'nope'"):
        OpenVLAPolicy.from_checkpoint(small_ckpt, device="cpu", default_unnorm_key="nope")
    with pytest.raises(InputError, match="unknown preprocess preset"):
        OpenVLAPolicy.from_checkpoint(small_ckpt, device="cpu", preprocess="sharpen")


# -- prompt -----------------------------------------------------------------------------------


def test_prompt_tokens(policy: OpenVLAPolicy) -> None:
    assert format_prompt("Pick Up The Cup") == (
        "In: What action should the robot take to pick up the cup?\nOut:"
    )
    ids = policy.tokenizer.encode("Pick Up The Cup")
    assert ids[0] == 1 and ids[-1] == SPACE_TOKEN_ID and ids.count(SPACE_TOKEN_ID) == 1
    assert 13 in ids  # "\n" is the byte-fallback token <0x0A>, as in Llama-2
    assert ids == policy.tokenizer.encode("pick up the cup")
    decoded = policy.tokenizer.tokenizer.decode(ids, skip_special_tokens=True)
    assert decoded.startswith("In: What action should the robot take to pick up the cup?\nOut:")


def test_space_token_not_duplicated() -> None:
    fake = SimpleNamespace(encode=lambda text, add_special_tokens: SimpleNamespace(ids=[5, 29871]))
    tok = PromptTokenizer(tokenizer=fake, bos_id=1, eos_id=None, path=Path("x"))
    assert tok.encode("x") == [1, 5, 29871]
    fake2 = SimpleNamespace(encode=lambda text, add_special_tokens: SimpleNamespace(ids=[5, 6]))
    assert PromptTokenizer(fake2, 1, None, Path("x")).encode("x") == [1, 5, 6, 29871]


# -- self-check -------------------------------------------------------------------------------


def test_self_check_catches_image_blind_model(ckpt_copy: Callable[[], Path]) -> None:
    root = ckpt_copy()
    for shard in root.glob("model-*.safetensors"):
        tensors = load_file(str(shard))
        for key in ("projector.fc3.weight", "projector.fc3.bias"):
            if key in tensors:
                tensors[key] = torch.zeros_like(tensors[key])
        save_file(tensors, str(shard), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="image is not reaching the language model"):
        OpenVLAPolicy.from_checkpoint(root, precision="fp32", device="cpu")
    blind = OpenVLAPolicy.from_checkpoint(root, precision="fp32", device="cpu", self_check=False)
    a = blind.predict(scene(0), INSTRUCTION, unnorm_key="bridge_orig")
    b = blind.predict(scene(5), INSTRUCTION, unnorm_key="bridge_orig")
    assert a.token_ids == b.token_ids


def _zero_keys(root: Path, keys: tuple[str, ...]) -> None:
    for shard in root.glob("model-*.safetensors"):
        tensors = load_file(str(shard))
        for key in keys:
            if key in tensors:
                tensors[key] = torch.zeros_like(tensors[key])
        save_file(tensors, str(shard), metadata={"format": "pt"})


@pytest.mark.parametrize("tower", ["featurizer", "fused_featurizer"])
def test_self_check_catches_a_tower_that_ignores_pixels(
    ckpt_copy: Callable[[], Path], tower: str
) -> None:
    # With a zeroed patch projection the tower still outputs position-dependent features, so
    # only the pixel check can see that the image never got in.
    root = ckpt_copy()
    _zero_keys(root, (f"vision_backbone.{tower}.patch_embed.proj.weight",))
    index = 0 if tower == "featurizer" else 1
    with pytest.raises(CheckpointError, match=f"vision tower {index} gives the same patch"):
        OpenVLAPolicy.from_checkpoint(root, precision="fp32", device="cpu")
    blind = OpenVLAPolicy.from_checkpoint(root, precision="fp32", device="cpu", self_check=False)
    a = blind.network.vision_features(blind._pixels([scene(0)]))
    b = blind.network.vision_features(blind._pixels([scene(5)]))
    width = blind.config.vision[0].embed_dim
    part = slice(0, width) if index == 0 else slice(width, None)
    assert torch.equal(a[..., part], b[..., part])  # that tower really is image-blind


def test_self_check_passes(policy: OpenVLAPolicy) -> None:
    assert policy.self_check() > 0


def test_info(policy: OpenVLAPolicy, small_ckpt: Path) -> None:
    info = policy.info()
    assert info["model_path"] == str(small_ckpt)
    assert info["precision"] == "fp32" and info["device"] == "cpu"
    assert info["action_dim"] == {"bridge_orig": 7, "fractal20220817_data": 7}
    assert set(info["versions"]) >= {"torch", "transformers", "tokenizers"}
    assert info["vision_towers"] == [
        "vit_large_patch14_reg4_dinov2.lvd142m",
        "vit_so400m_patch14_siglip_224",
    ]


# -- GPU --------------------------------------------------------------------------------------

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16", "int8", "int4"])
def test_gpu_precisions(small_ckpt: Path, policy: OpenVLAPolicy, precision: str) -> None:
    pol = OpenVLAPolicy.from_checkpoint(small_ckpt, precision=precision, device="cuda")
    assert all(p.device.type == "cuda" for p in pol.network.parameters())
    res = pol.predict(scene(0), INSTRUCTION, unnorm_key="bridge_orig")
    assert len(res.token_ids) == 7 and np.isfinite(res.action).all()
    if precision == "fp32":
        ref = policy.predict(scene(0), INSTRUCTION, unnorm_key="bridge_orig")
        assert res.token_ids == ref.token_ids


@pytest.mark.gpu
@needs_gpu
def test_gpu_batch(small_ckpt: Path) -> None:
    pol = OpenVLAPolicy.from_checkpoint(small_ckpt, precision="bf16", device="cuda:0")
    out = pol.predict_batch([scene(i) for i in range(4)], [INSTRUCTION] * 4, "bridge_orig")
    assert [len(r.token_ids) for r in out] == [7] * 4


# -- real weights -----------------------------------------------------------------------------


@pytest.mark.weights
@pytest.mark.skipif(
    not os.environ.get("OPENVLA_CHECKPOINT"),
    reason="set OPENVLA_CHECKPOINT to a real OpenVLA checkpoint directory",
)
def test_real_checkpoint() -> None:
    precision = os.environ.get("OPENVLA_PRECISION", "bf16")
    pol = OpenVLAPolicy.from_checkpoint(
        os.environ["OPENVLA_CHECKPOINT"], precision=precision, device="auto"
    )
    key = "bridge_orig" if "bridge_orig" in pol.config.norm_stats else None
    res = pol.predict(scene(0, 256, 256), "put the eggplant in the pot", unnorm_key=key)
    assert len(res.token_ids) == 7 and all(t in ACTION_IDS for t in res.token_ids)
    assert np.isfinite(res.action).all()
