# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The small-checkpoint generator and the model CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from openvla_ros.model import cli
from openvla_ros.model.make_checkpoint import (
    BRIDGE_Q01,
    FRACTAL_Q99,
    synthetic_scene,
    write_small_checkpoint,
)


def _digest(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def test_deterministic(tmp_path: Path, small_ckpt: Path) -> None:
    again = write_small_checkpoint(tmp_path / "again", seed=0)
    assert _digest(again) == _digest(small_ckpt)
    other = write_small_checkpoint(tmp_path / "other", seed=1)
    assert (
        _digest(other)["model-00001-of-00002.safetensors"]
        != _digest(small_ckpt)["model-00001-of-00002.safetensors"]
    )


def test_published_config_fields(small_ckpt: Path) -> None:
    cfg = json.loads((small_ckpt / "config.json").read_text())
    assert cfg["model_type"] == "openvla"
    assert cfg["architectures"] == ["OpenVLAForActionPrediction"]
    assert cfg["arch_specifier"] == "no-align+fused-gelu-mlp"
    assert cfg["timm_model_ids"] == [
        "vit_large_patch14_reg4_dinov2.lvd142m",
        "vit_so400m_patch14_siglip_224",
    ]
    assert cfg["timm_override_act_layers"] == [None, None]
    assert cfg["image_sizes"] == [224, 224] and cfg["image_resize_strategy"] == "resize-naive"
    assert cfg["n_action_bins"] == 256 and cfg["pad_token_id"] == 32000
    assert cfg["pad_to_multiple_of"] == 64 and cfg["llm_max_length"] == 2048
    assert cfg["text_config"]["vocab_size"] == 32064
    assert cfg["norm_stats"]["bridge_orig"]["action"]["q01"] == BRIDGE_Q01
    assert cfg["norm_stats"]["fractal20220817_data"]["action"]["q99"] == FRACTAL_Q99
    assert cfg["norm_stats"]["bridge_orig"]["action"]["mask"][-1] is False
    assert len(cfg["vision_tower_overrides"]) == 2
    index = json.loads((small_ckpt / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    }
    assert json.loads((small_ckpt / "added_tokens.json").read_text()) == {"<PAD>": 32000}


def test_tokenizer_layout(small_ckpt: Path) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(small_ckpt / "tokenizer.json"))
    assert tok.token_to_id("<unk>") == 0 and tok.token_to_id("<s>") == 1
    assert tok.token_to_id("</s>") == 2 and tok.token_to_id("<0x0A>") == 13
    assert tok.token_to_id("\u2581") == 29871 and tok.token_to_id("<PAD>") == 32000
    assert tok.get_vocab_size() == 32001
    assert tok.encode("pick up").ids[0] == 1  # BOS via the post-processor


def test_sentencepiece_model_agrees_with_tokenizer_json(small_ckpt: Path) -> None:
    spm = pytest.importorskip("sentencepiece")
    from tokenizers import Tokenizer

    sp = spm.SentencePieceProcessor(model_file=str(small_ckpt / "tokenizer.model"))
    tok = Tokenizer.from_file(str(small_ckpt / "tokenizer.json"))
    assert sp.get_piece_size() == 32000 and sp.id_to_piece(29871) == "\u2581"
    for text in (
        "In: What action should the robot take to pick up the red cup?\nOut:",
        "put the eggplant into the pot near the stove",
        "h\u00e9llo w\u00f6rld \u65e5\u672c",
    ):
        assert sp.encode(text) == tok.encode(text, add_special_tokens=False).ids


def test_generation_writes_the_requested_shards(tmp_path: Path) -> None:
    # How long it takes is a benchmark (benchmarks/bench_make_checkpoint.py), not a test.
    write_small_checkpoint(tmp_path / "sharded", seed=3, shards=3)
    assert len(list((tmp_path / "sharded").glob("model-*-of-00003.safetensors"))) == 3


def test_cli_make_checkpoint_and_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli-ckpt"
    assert cli.main(["make-checkpoint", str(out), "--seed", "0", "--shards", "1"]) == 0
    assert (out / "model.safetensors").is_file()
    image = tmp_path / "frame.png"
    Image.fromarray(synthetic_scene(0)).save(image)
    capsys.readouterr()
    args = [
        "predict",
        "--checkpoint",
        str(out),
        "--image",
        str(image),
        "--instruction",
        "Pick up the cup",
        "--unnorm-key",
        "bridge_orig",
        "--precision",
        "fp32",
        "--device",
        "cpu",
        "--repeat",
        "2",
        "--json",
    ]
    assert cli.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["action"]) == 7 and len(report["token_ids"]) == 7
    assert report["runs"] == 2 and report["unnorm_key"] == "bridge_orig"
    assert set(report["timings_ms_median"]) == {"preprocess", "prefill", "decode", "total"}
    # Human-readable output.
    assert cli.main(args[:-1]) == 0
    text = capsys.readouterr().out
    assert text.startswith("action: ") and "timings (median of 2)" in text


def test_cli_errors(tmp_path: Path, small_ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "frame.png"
    Image.fromarray(synthetic_scene(0)).save(image)
    base = ["predict", "--checkpoint", str(small_ckpt), "--image", str(image), "--device", "cpu"]
    assert cli.main([*base, "--instruction", "pick"]) == 1
    assert "pass unnorm_key, one of: bridge_orig" in capsys.readouterr().err
    assert cli.main([*base, "--instruction", "", "--unnorm-key", "bridge_orig"]) == 1
    assert "instruction is empty" in capsys.readouterr().err
    missing = ["predict", "--checkpoint", str(small_ckpt), "--image", str(tmp_path / "no.png")]
    assert cli.main([*missing, "--instruction", "pick", "--unnorm-key", "bridge_orig"]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert cli.main(["make-checkpoint", str(tmp_path / "x"), "--shards", "0"]) == 2
