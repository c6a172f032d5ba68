# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The options of a fine-tuning run, their checks, and what a finished run returns."""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from openvla_ros.errors import TrainingError

TRAINING_DIR = "training"
#: ``--lr-schedule`` choices (see :meth:`FinetuneOptions.lr_at`).
LR_SCHEDULES = ("constant", "cosine", "linear")
ADAPTER_DIR = "adapter"
#: Options that must be the same when a run is resumed (others, e.g. --steps, may change).
RESUME_FIXED = (
    "full",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "train_vision",
    "batch",
    "grad_accum",
    "lr",
    "lr_schedule",
    "warmup_steps",
    "weight_decay",
    "max_grad_norm",
    "image_aug",
    "seed",
    "val_episodes",
    "unnorm_key",
    "quantize_base",
    "autocast",
)


@dataclass
class FinetuneOptions:
    """Everything ``openvla-ros finetune`` accepts (see docs/finetune.md for each)."""

    base: Path
    dataset: Path
    unnorm_key: str
    out: Path
    full: bool = False
    lora_rank: int = 32
    lora_alpha: float | None = None
    lora_dropout: float = 0.0
    quantize_base: str = "none"
    train_vision: bool = False
    steps: int = 1000
    batch: int = 16
    grad_accum: int = 1
    lr: float | None = None
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.01
    max_grad_norm: float | None = None
    image_aug: bool = False
    val_episodes: int | None = None
    val_every: int = 250
    val_frames: int = 256
    save_every: int = 500
    keep_checkpoints: int = 1
    log_every: int = 10
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    save_adapter: bool = False
    overwrite_key: bool = False
    threads: int | None = None
    autocast: str = "auto"
    grad_checkpointing: bool = False
    cache_gb: float | None = None
    save_dtype: str = "auto"
    max_shard_gb: float = 5.0
    skip_memory_check: bool = False
    plan_only: bool = False

    def lr_at(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based): a linear warm-up over
        ``warmup_steps``, then constant (OpenVLA's recipe) or a decay to 0 at ``steps``
        (``cosine`` or ``linear``). A pure function of the step, so a resumed run continues
        on the same curve without scheduler state."""
        base = self.learning_rate
        if step < self.warmup_steps:
            return base * (step + 1) / (self.warmup_steps + 1)
        if self.lr_schedule == "constant":
            return base
        span = max(self.steps - self.warmup_steps, 1)
        done = min(max(step - self.warmup_steps, 0) / span, 1.0)
        if self.lr_schedule == "linear":
            return base * (1.0 - done)
        return base * 0.5 * (1.0 + math.cos(math.pi * done))

    @property
    def mode(self) -> str:
        """``full``, ``qlora`` or ``lora``."""
        if self.full:
            return "full"
        return "qlora" if self.quantize_base == "4bit" else "lora"

    @property
    def learning_rate(self) -> float:
        """--lr, else the official default of the mode (LoRA 5e-4, full 2e-5)."""
        if self.lr is not None:
            return self.lr
        return 2e-5 if self.full else 5e-4

    @property
    def grad_clip(self) -> float:
        """--max-grad-norm, else the official default (full 1.0, LoRA none = 0)."""
        if self.max_grad_norm is not None:
            return self.max_grad_norm
        return 1.0 if self.full else 0.0


@dataclass
class FinetuneResult:
    """What a finished run produced."""

    out: Path
    adapter: Path | None
    steps: int
    rows: list[dict[str, Any]]
    samples_per_s: float
    final_val: dict[str, Any] | None
    samples_per_cpu_s: float = 0.0


def validate_options(opts: FinetuneOptions) -> None:
    """Refuse impossible option values before anything is read.

    Raises:
        TrainingError: naming the flag and the accepted values.
    """
    numbers = {
        "--steps": opts.steps,
        "--batch": opts.batch,
        "--grad-accum": opts.grad_accum,
        "--val-every": opts.val_every,
        "--save-every": opts.save_every,
        "--log-every": opts.log_every,
        "--val-frames": opts.val_frames,
    }
    for name, value in numbers.items():
        if value < 1:
            raise TrainingError(f"{name} must be >= 1, got {value}")
    if opts.quantize_base not in ("none", "4bit"):
        raise TrainingError(f"--quantize-base must be none or 4bit, got '{opts.quantize_base}'")
    if opts.full and opts.quantize_base != "none":
        raise TrainingError(
            "--quantize-base 4bit is QLoRA: it trains adapters on a frozen 4-bit base and "
            "cannot be combined with --full"
        )
    if opts.autocast not in ("auto", "bf16", "fp16", "off"):
        raise TrainingError(f"--autocast must be auto, bf16, fp16 or off, got '{opts.autocast}'")
    if opts.save_dtype not in ("auto", "bf16", "fp32", "fp16"):
        raise TrainingError(f"--save-dtype must be auto, bf16, fp16 or fp32, not {opts.save_dtype}")
    if not opts.unnorm_key.strip():
        raise TrainingError("--unnorm-key must name the dataset (e.g. my_lab_pick_cube)")
    if not math.isfinite(opts.learning_rate) or opts.learning_rate <= 0:
        raise TrainingError(f"--lr must be a positive number, got {opts.learning_rate}")
    if opts.lr_schedule not in LR_SCHEDULES:
        raise TrainingError(
            f"--lr-schedule must be one of {LR_SCHEDULES}, got {opts.lr_schedule!r}"
        )
    if opts.warmup_steps < 0 or opts.warmup_steps >= max(opts.steps, 1):
        raise TrainingError(
            f"--warmup-steps must be in [0, --steps), got {opts.warmup_steps} (steps {opts.steps})"
        )
    if opts.keep_checkpoints < 1:
        raise TrainingError("--keep-checkpoints must be >= 1")
    _validate_ranges(opts)


def _validate_ranges(opts: FinetuneOptions) -> None:
    """The adapter, optimiser and I/O numbers (a bad one failed deep inside peft or torch)."""
    if not opts.full and opts.lora_rank < 1:
        raise TrainingError(f"--lora-rank must be >= 1, got {opts.lora_rank}")
    if opts.lora_alpha is not None and not (math.isfinite(opts.lora_alpha) and opts.lora_alpha > 0):
        raise TrainingError(f"--lora-alpha must be a positive number, got {opts.lora_alpha}")
    if not (0.0 <= opts.lora_dropout < 1.0):
        raise TrainingError(f"--lora-dropout must be in [0, 1), got {opts.lora_dropout}")
    non_negative = {
        "--weight-decay": opts.weight_decay,
        "--max-grad-norm": opts.max_grad_norm,
        "--cache-gb": opts.cache_gb,
        "--val-episodes": opts.val_episodes,
    }
    for name, value in non_negative.items():
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise TrainingError(f"{name} must be a finite number >= 0, got {value}")
    if not (math.isfinite(opts.max_shard_gb) and opts.max_shard_gb > 0):
        raise TrainingError(f"--max-shard-gb must be a positive number, got {opts.max_shard_gb}")
    if opts.threads is not None and opts.threads < 1:
        raise TrainingError(f"--threads must be >= 1, got {opts.threads}")


def check_resume_options(opts: FinetuneOptions, saved: dict[str, Any]) -> None:
    """Refuse --resume when an option that shapes the run changed.

    Raises:
        TrainingError: naming each changed option.
    """
    now = options_dict(opts)
    # A run.json written before an option existed (--lr-schedule, --warmup-steps) ran with
    # that option's default: a missing key means the default, not a changed setting.
    defaults = {f.name: f.default for f in fields(FinetuneOptions) if f.default is not MISSING}
    before = {k: saved.get(k, defaults.get(k)) for k in RESUME_FIXED}
    changed = [k for k in RESUME_FIXED if before[k] != now.get(k)]
    if changed:
        details = ", ".join(f"{k}: {before[k]!r} -> {now.get(k)!r}" for k in changed)
        raise TrainingError(
            f"--resume with different settings than the run in {opts.out} ({details}); "
            "resume with the original options or start a new --out"
        )


def options_dict(opts: FinetuneOptions) -> dict[str, Any]:
    """The options as JSON-ready data (run.json, finetune_info.json)."""
    data = asdict(opts)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}
