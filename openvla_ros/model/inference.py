# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The in-process OpenVLA policy: ``OpenVLAPolicy.from_checkpoint(dir).predict(image, text)``."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
import torch

from openvla_ros.errors import CheckpointError, InputError, PolicyError
from openvla_ros.model.action_tokenizer import ActionTokenizer, resolve_unnorm_key, unnormalize
from openvla_ros.model.checkpoint import ProgressCallback, load_network
from openvla_ros.model.config import OpenVLAConfig, load_config
from openvla_ros.model.decode import StaticDecoder, check_decode_mode
from openvla_ros.model.network import (
    OpenVLANetwork,
    generate_greedy,
    prefill_with_image_tokens,
)
from openvla_ros.model.precision import Placement, resolve_placement
from openvla_ros.model.preprocess import (
    ProcessorSpec,
    apply_preset,
    load_processor_spec,
    parse_preset,
    process_image,
    validate_image,
)
from openvla_ros.model.prompt import PromptTokenizer, validate_instruction
from openvla_ros.model.threads import one_intra_op_thread
from openvla_ros.policy.base import PolicyResult

LOG = logging.getLogger(__name__)


def self_check_images() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Two fixed, very different synthetic frames (a colour gradient and a checkerboard)."""
    yy, xx = np.mgrid[0:224, 0:224]
    gradient = np.stack([xx, yy, 255 - xx], axis=-1).astype(np.uint8)
    checker = (((yy // 28) + (xx // 28)) % 2 * 255).astype(np.uint8)
    board = np.stack([checker, 255 - checker, np.full_like(checker, 64)], axis=-1)
    return gradient, board


def self_check_patches(num_patches: int, per_side: int = 4) -> torch.Tensor | None:
    """Indices of a ``per_side`` x ``per_side`` grid spread over the square patch grid
    (centres of equal cells), the patches the self-check runs the towers on; None (all
    patches) when the grid is not square or not larger than that."""
    side = math.isqrt(num_patches)
    if side * side != num_patches or side <= per_side:
        return None
    # Centre of each of per_side equal cells, floored: also spread when per_side does not
    # divide the side (7x7 patches of 32 px: rows 0, 2, 4, 6, not the 4x4 corner).
    rows = (2 * torch.arange(per_side) + 1) * side // (2 * per_side)
    return (rows[:, None] * side + rows[None, :]).reshape(-1)


class OpenVLAPolicy:
    """OpenVLA running in this process; implements :class:`openvla_ros.policy.base.Policy`.

    Build it with :meth:`from_checkpoint`. ``predict`` is thread-safe (calls are serialised):
    a node may call it from a worker thread while another thread reads :meth:`info`.
    """

    def __init__(
        self,
        *,
        root: Path,
        config: OpenVLAConfig,
        network: OpenVLANetwork,
        tokenizer: PromptTokenizer,
        processor: ProcessorSpec,
        placement: Placement,
        preprocess: str = "none",
        default_unnorm_key: str | None = None,
        load_s: float = 0.0,
        decode: str = "eager",
    ) -> None:
        self.root = root
        self.config = config
        self.network = network
        self.tokenizer = tokenizer
        self.processor = processor
        self.placement = placement
        self.preprocess = preprocess
        self._steps = parse_preset(preprocess)
        self.action_tokenizer = ActionTokenizer(config.action_vocab_size, config.n_action_bins)
        if default_unnorm_key is not None:
            resolve_unnorm_key(config.norm_stats, default_unnorm_key)
        self.default_unnorm_key = default_unnorm_key
        self.load_s = load_s
        self._lock = threading.Lock()
        self.decode = check_decode_mode(decode)
        self._static: StaticDecoder | None = None
        if decode != "eager":
            self._static = StaticDecoder(network, compile=decode == "compiled")

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        precision: str = "bf16",
        device: str = "auto",
        attn_implementation: str = "sdpa",
        preprocess: str = "none",
        default_unnorm_key: str | None = None,
        vision_precision: str | None = None,
        quantize_vision: bool = False,
        self_check: bool = True,
        progress: ProgressCallback | None = None,
        decode: str = "eager",
    ) -> OpenVLAPolicy:
        """Load an OpenVLA checkpoint directory in the published Hugging Face layout.

        Args:
            path: directory with config.json, safetensors weights, tokenizer.json,
                preprocessor_config.json and optionally dataset_statistics.json.
            precision: fp32, bf16, fp16, int8 or int4 (NF4) for the language model.
            device: cpu, cuda, cuda:N or auto.
            attn_implementation: sdpa, eager or flash_attention_2 (language model).
            preprocess: preset run before the processor (none, bridge, center_crop, libero,
                or '+'-joined steps).
            default_unnorm_key: statistics key used when predict() gets none.
            vision_precision: fp32 / bf16 / fp16 for towers + projector (see resolve_placement).
            quantize_vision: quantise towers + projector too (int8 / int4 only).
            self_check: verify that the image reaches the model (two images -> different logits).
            progress: ``progress(done_bytes, total_bytes, message)`` while weights load.
            decode: ``eager`` (dynamic KV cache, the reference), ``static`` (preallocated KV
                cache) or ``compiled`` (static cache + ``torch.compile``d decode step, CUDA
                graphs on a GPU; compiled and warmed up here, so loading takes longer).

        Raises:
            CheckpointError: missing/corrupt files, key or shape mismatches, failed self-check.
            PrecisionError: the precision / device / attention combination cannot work here.
            InputError: unknown preprocess preset or default_unnorm_key.
        """
        start = time.perf_counter()
        root = Path(path).expanduser()
        if not root.is_dir():
            raise CheckpointError(f"{root}: checkpoint directory does not exist")
        parse_preset(preprocess)
        check_decode_mode(decode)
        # Cheap files first, so a typo'd tokenizer never costs a 15 GB read.
        config = load_config(root)
        if default_unnorm_key is not None:
            resolve_unnorm_key(config.norm_stats, default_unnorm_key)
        tokenizer = PromptTokenizer.from_dir(root)
        processor = load_processor_spec(root / "preprocessor_config.json", len(config.vision))
        placement = resolve_placement(
            precision,
            device,
            attn_implementation,
            vision_precision=vision_precision,
            quantize_vision=quantize_vision,
        )
        LOG.info("loading %s as %s on %s", root, placement.precision, placement.device)
        network = load_network(root, config, placement, progress)
        policy = cls(
            root=root,
            config=config,
            network=network,
            tokenizer=tokenizer,
            processor=processor,
            placement=placement,
            preprocess=preprocess,
            default_unnorm_key=default_unnorm_key,
            decode=decode,
        )
        if self_check:
            policy.self_check()
        if decode == "compiled":
            policy.warm_up()
        policy.load_s = time.perf_counter() - start
        LOG.info("loaded %s in %.1f s", root, policy.load_s)
        return policy

    def self_check(self) -> float:
        """Prove the image reaches the logits, at a fraction of the cost of one prediction.

        The towers run on 16 of the frame's 256 patches (a spread 4x4 grid, each with its
        position embedding: every block's weights take part, ~1/12 of a tower pass), with
        three checks that together cover each way an image can be lost (a zeroed or unloaded
        tower, projector or patch embedding, or a language model that drops the image tokens,
        as upstream transformers 4.54-4.57 did):

        1. two different frames give different patch embeddings in every tower (pixels reach
           the towers; a conv over 256 patches, negligible cost);
        2. the towers' output for one frame differs between patches (the towers pass
           spatial content on instead of a constant);
        3. the projected image tokens of that frame, given to the language model in their
           order and rolled by one patch, change the first-token logits (the image tokens
           reach the logits through the projector).

        It runs on one intra-op thread (:func:`~openvla_ros.model.threads.one_intra_op_thread`):
        hundreds of small operations, each a synchronisation point that stalls on torch's
        default threads when another process holds a core (7x slower towers, 20x slower
        small-LM passes measured). On a GPU the thread count does not apply.

        Returns:
            the largest absolute first-token logit difference of check 3.

        Raises:
            CheckpointError: a check failed; the message says which part loses the image.
        """
        net = self.network
        prompt = self._prompt_ids("pick up the object")
        with torch.inference_mode(), one_intra_op_thread():
            tokens = self._self_check_image_tokens()
            logits = [
                prefill_with_image_tokens(net, image_tokens, [prompt])[0][0]
                for image_tokens in (tokens, tokens.roll(1, dims=1))
            ]
        diff = float((logits[0] - logits[1]).abs().max().item())
        if not diff > 0.0:
            self._blind(
                "reordering the image tokens leaves the first-token logits unchanged, so the "
                "image is not reaching the language model (e.g. a zeroed projector, or a "
                "library change that drops the image tokens)"
            )
        return diff

    def _self_check_image_tokens(self) -> torch.Tensor:
        """Checks 1 and 2 of :meth:`self_check`; returns the kept patches' image tokens."""
        first, second = self_check_images()
        net = self.network
        with torch.inference_mode():
            pixels = self._pixels([first, second]).to(net.vision_dtype)
            towers = [net.vision_backbone.featurizer]
            if net.vision_backbone.fused_featurizer is not None:
                towers.append(net.vision_backbone.fused_featurizer)
            for i, tower in enumerate(towers):
                embedded = tower.patch_embed(pixels[:, 3 * i : 3 * i + 3])
                if not bool((embedded[0] != embedded[1]).any()):
                    self._blind(f"vision tower {i} gives the same patch embedding to two "
                                "different images (a zeroed or unloaded patch_embed)")  # fmt: skip
            keep = self_check_patches(self.config.num_patches)
            patches = net.vision_features(
                pixels[:1], None if keep is None else keep.to(pixels.device)
            )
            if not bool((patches[0] != patches[0, :1]).any()):
                self._blind("the vision towers output the same feature for every patch")
            return net.project(patches)

    def warm_up(self, runs: int = 3) -> float:
        """Run a few predictions on a fixed frame so compilation (and CUDA graph capture)
        happens now, not on the robot's first step. Returns the seconds it took."""
        start = time.perf_counter()
        image = self_check_images()[0]
        key = sorted(self.config.norm_stats)[0]
        for _ in range(runs):
            self.predict(image, "pick up the object", key)
        LOG.info("warm-up (%s decode) took %.1f s", self.decode, time.perf_counter() - start)
        return time.perf_counter() - start

    def _blind(self, what: str) -> NoReturn:
        raise CheckpointError(
            f"{self.root}: self-check failed: {what}. Refusing to run a blind policy; check "
            "the checkpoint files and the installed torch/transformers versions."
        )

    # -- prediction ---------------------------------------------------------------------------

    def _prompt_ids(self, instruction: Any) -> torch.Tensor:
        text = validate_instruction(instruction)
        ids = self.tokenizer.encode(text)
        # The context must hold [BOS] + image tokens + prompt + the generated action tokens.
        limit = min(self.config.llm_max_length, int(self.config.llama["max_position_embeddings"]))
        action_dim = max(s.action_dim for s in self.config.norm_stats.values())
        if len(ids) + self.config.num_patches + action_dim > limit:
            raise InputError(
                f"instruction is too long: {len(ids)} prompt tokens + {self.config.num_patches} "
                f"image tokens + {action_dim} action tokens exceed the model's context of "
                f"{limit} tokens"
            )
        return torch.tensor(ids, dtype=torch.long, device=self.placement.device)

    def _pixels(self, images: Sequence[npt.NDArray[np.uint8]]) -> torch.Tensor:
        size = self.processor.size
        batch = np.empty((len(images), 3 * len(self.processor.means), size, size), np.float32)
        for row, img in zip(batch, images, strict=True):
            # Each frame is normalised straight into its row of the batch (no stack copy).
            process_image(apply_preset(img, self._steps), self.processor, out=row)
        return torch.from_numpy(batch).to(self.placement.device)

    def predict(
        self, image: npt.NDArray[np.uint8], instruction: str, unnorm_key: str | None = None
    ) -> PolicyResult:
        """Predict one action for an HxWx3 uint8 RGB frame and an instruction.

        Raises:
            InputError: bad image, instruction or unnorm key.
            PolicyError: the model failed (e.g. out of GPU memory).
        """
        return self.predict_batch([image], [instruction], unnorm_key)[0]

    def predict_batch(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        instructions: Sequence[str],
        unnorm_key: str | None = None,
    ) -> list[PolicyResult]:
        """Predict one action per (image, instruction) pair in one batched forward pass.

        Prompts of different lengths are left-padded with positions that skip the padding, so
        each row gets the action it would get alone (up to floating-point reduction order).
        """
        start = time.perf_counter()
        if isinstance(instructions, str) or len(images) != len(instructions) or not images:
            raise InputError(
                "predict_batch needs equally long, non-empty lists of images and instructions"
            )
        key = resolve_unnorm_key(self.config.norm_stats, unnorm_key, self.default_unnorm_key)
        stats = self.config.norm_stats[key]
        frames = [validate_image(img) for img in images]
        prompts = [self._prompt_ids(text) for text in instructions]
        with self._lock:
            try:
                pixels = self._pixels(frames)
                if self.placement.device.type == "cuda":
                    torch.cuda.synchronize(self.placement.device)
                preprocess_s = time.perf_counter() - start
                if self._static is not None:
                    gen = self._static.generate(pixels, prompts, stats.action_dim)
                else:
                    gen = generate_greedy(self.network, pixels, prompts, stats.action_dim)
            except InputError:
                raise
            except torch.cuda.OutOfMemoryError as exc:
                raise PolicyError(f"out of GPU memory during inference: {exc}") from exc
            except RuntimeError as exc:
                raise PolicyError(f"inference failed: {exc}") from exc
        total_s = time.perf_counter() - start
        results = []
        batch = len(frames)
        for row in gen.token_ids.tolist():
            normalized = self.action_tokenizer.decode(row)
            results.append(
                PolicyResult(
                    action=unnormalize(normalized, stats),
                    normalized_action=normalized,
                    token_ids=tuple(int(t) for t in row),
                    unnorm_key=key,
                    timings_ms={
                        "preprocess": 1e3 * preprocess_s,
                        "prefill": 1e3 * gen.prefill_s,
                        "decode": 1e3 * gen.decode_s,
                        "total": 1e3 * total_s,
                        "batch": float(batch),
                    },
                )
            )
        return results

    def reset(self) -> None:
        """No per-episode state: OpenVLA sees one frame per step. Kept for the Policy contract."""

    def info(self) -> dict[str, Any]:
        """Model path, precision, device, unnorm keys, action dims and library versions."""
        import tokenizers
        import transformers

        versions = {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        }
        if self.placement.quantized:
            import bitsandbytes

            versions["bitsandbytes"] = bitsandbytes.__version__
        params = sum(p.numel() for p in self.network.parameters())
        return {
            "policy": "openvla",
            "model_path": str(self.root),
            "model_id": str(self.config.raw.get("_name_or_path") or self.root.name),
            "precision": self.placement.precision,
            "device": str(self.placement.device),
            "compute_dtype": str(self.placement.compute_dtype).removeprefix("torch."),
            "vision_dtype": str(self.placement.vision_dtype).removeprefix("torch."),
            "attn_implementation": self.placement.attn_implementation,
            "decode": self.decode,
            "preprocess": self.preprocess,
            "normalization_constants": self.processor.constants_source,
            "unnorm_keys": sorted(self.config.norm_stats),
            "default_unnorm_key": self.default_unnorm_key,
            "norm_stats_source": self.config.norm_stats_source,
            "action_dim": {k: s.action_dim for k, s in self.config.norm_stats.items()},
            "vision_towers": [v.timm_id for v in self.config.vision],
            "parameters": params,
            "load_s": self.load_s,
            "versions": versions,
        }
