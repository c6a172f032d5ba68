# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""The fine-tuning run: checks, memory plan, data, model, loop, validation, checkpoints, export.

Order of work, so a mistake costs seconds rather than hours: options and output directory,
then the base's config/tokenizer/statistics against the dataset (keys, action dimension,
instructions), then the memory plan (refused with numbers if it does not fit), and only then
frames are decoded and weights loaded.

Determinism: every random draw of the data path is a function of (seed, global sample
position): the epoch permutation and each sample's augmentation generator. With the same
seed, thread count and device, a run resumed from any checkpoint ends bit-identical to an
uninterrupted one on CPU (``test/train/test_train_resume.py``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openvla_ros.errors import TrainingError
from openvla_ros.model.action_tokenizer import ActionTokenizer
from openvla_ros.model.config import ActionStats, OpenVLAConfig, load_config, parse_action_stats
from openvla_ros.model.preprocess import load_processor_spec
from openvla_ros.model.prompt import PromptTokenizer
from openvla_ros.train import memory, metrics, state
from openvla_ros.train.adapters import LoraSettings, apply_lora, set_full_trainable
from openvla_ros.train.batches import RunData, Sampler, aug_generator, fingerprint
from openvla_ros.train.forward import action_forward
from openvla_ros.train.options import (
    ADAPTER_DIR,
    TRAINING_DIR,
    FinetuneOptions,
    FinetuneResult,
    check_resume_options,
    options_dict,
    validate_options,
)
from openvla_ros.train.samples import (
    DatasetLike,
    FrameTable,
    SampleCoder,
    check_instructions,
    default_val_episodes,
    eos_token_id,
    load_frames,
    split_episodes,
)
from openvla_ros.train.validate import Baselines, evaluate, fit_baselines, format_report

__all__ = [
    "CPU_BF16_MIN_HIDDEN",
    "FinetuneOptions",
    "FinetuneResult",
    "cpu_has_bf16",
    "prepare",
    "run_finetune",
]

LOG = logging.getLogger(__name__)


def _resolve_device(opts: FinetuneOptions) -> torch.device:
    from openvla_ros.errors import PrecisionError
    from openvla_ros.model.precision import resolve_device

    try:
        device = resolve_device(opts.device)
    except PrecisionError as exc:
        raise TrainingError(str(exc)) from exc
    if opts.quantize_base == "4bit":
        if device.type != "cuda":
            raise TrainingError(
                "--quantize-base 4bit (QLoRA) needs a CUDA GPU: bitsandbytes' 4-bit training "
                f"kernels do not run on {device.type}. Train plain LoRA here (drop "
                "--quantize-base), or run on a GPU machine with bitsandbytes installed"
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise TrainingError(
                "--quantize-base 4bit needs bitsandbytes: pip install bitsandbytes==0.50.2"
            ) from exc
    return device


#: Smallest language-model width for which bf16 autocast pays off on a CPU with bf16
#: matmul units (measured with bench_finetune.py: slower at width 64, faster at 256 and 512).
CPU_BF16_MIN_HIDDEN = 256


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 matmul instructions (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _autocast_dtype(
    opts: FinetuneOptions, device: torch.device, cfg: OpenVLAConfig
) -> torch.dtype | None:
    if opts.autocast == "off":
        return None
    if opts.autocast == "bf16":
        return torch.bfloat16
    if opts.autocast == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16
    # CPU: bf16 only where it measurably helps (docs/BENCHMARKS.md, Fine-tuning).
    if cpu_has_bf16() and cfg.hidden_size >= CPU_BF16_MIN_HIDDEN:
        return torch.bfloat16
    return None


def _placement(opts: FinetuneOptions, device: torch.device) -> Any:
    from openvla_ros.model.precision import resolve_placement

    if opts.mode == "qlora":
        return resolve_placement("int4", device, vision_precision="bf16")
    if device.type == "cuda" and opts.mode == "lora":
        # Frozen base weights in bf16 (as the official run); adapters train in fp32.
        return resolve_placement("bf16", device, vision_precision="bf16")
    return resolve_placement("fp32", device, vision_precision="fp32")


@dataclass
class _Prepared:
    cfg: OpenVLAConfig
    coder: SampleCoder
    stats_entry: dict[str, Any]
    prompts: dict[str, list[int]]
    action_dim: int


def _dataset_statistics(dataset: DatasetLike, key: str) -> dict[str, Any]:
    stats = dataset.dataset_statistics()
    if key in stats:
        return dict(stats[key])
    if len(stats) == 1:
        (only,) = stats.values()
        return dict(only)
    raise TrainingError(
        f"the dataset's dataset_statistics.json has keys {sorted(stats)}: none is "
        f"'{key}' and there is more than one; pass one of them as --unnorm-key"
    )


def prepare(opts: FinetuneOptions, dataset: DatasetLike) -> _Prepared:
    """Check the base against the dataset before any weight is read.

    Raises:
        TrainingError: unnorm_key already in the base (without --overwrite-key), action
            dimension mismatch, instructions the tokenizer cannot read.
        CheckpointError: a broken base.
    """
    cfg = load_config(opts.base)
    base_keys = set(cfg.norm_stats) | set(cfg.raw.get("norm_stats") or {})
    if opts.unnorm_key in base_keys and not opts.overwrite_key:
        raise TrainingError(
            f"unnorm_key '{opts.unnorm_key}' already exists in the base checkpoint "
            f"({cfg.norm_stats_source}); choose a new name or pass --overwrite-key to replace "
            "its statistics"
        )
    entry = _dataset_statistics(dataset, opts.unnorm_key)
    parsed = parse_action_stats({opts.unnorm_key: entry}, "dataset_statistics.json")
    stats: ActionStats = parsed[opts.unnorm_key]
    base_dims = {s.action_dim for s in cfg.norm_stats.values()} or {stats.action_dim}
    if stats.action_dim not in base_dims:
        raise TrainingError(
            f"the dataset's actions have {stats.action_dim} dimensions but the base predicts "
            f"{sorted(base_dims)}; OpenVLA bases emit 7 (xyz, rpy, gripper)"
        )
    tokenizer = PromptTokenizer.from_dir(opts.base)
    spec = load_processor_spec(opts.base / "preprocessor_config.json", len(cfg.vision))
    coder = SampleCoder(
        spec=spec,
        tokenizer=tokenizer,
        action_tokenizer=ActionTokenizer(cfg.action_vocab_size, cfg.n_action_bins),
        stats=stats,
        eos_id=eos_token_id(tokenizer),
    )
    limit = min(cfg.llm_max_length, int(cfg.llama["max_position_embeddings"]))
    tasks = list(getattr(dataset, "tasks", []) or [])
    unk = tokenizer.tokenizer.token_to_id("<unk>")
    prompts = check_instructions(
        tasks, tokenizer, unk, limit - cfg.num_patches - stats.action_dim - 1
    )
    return _Prepared(cfg, coder, entry, prompts, stats.action_dim)


def _prepare_out(opts: FinetuneOptions) -> Path:
    out = opts.out
    training = out / TRAINING_DIR
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out} exists and is not a directory")
    if not opts.resume and out.is_dir() and any(out.iterdir()):
        hint = (
            "it holds a training run: pass --resume to continue it"
            if (training / "run.json").is_file()
            else "choose a new or empty directory"
        )
        raise TrainingError(f"--out {out} is not empty; {hint}")
    training.mkdir(parents=True, exist_ok=True)
    return training


@contextlib.contextmanager
def _no_autocast() -> Iterator[None]:
    yield


def _autocast_factory(device: torch.device, dtype: torch.dtype | None) -> Callable[[], Any]:
    if dtype is None:
        return _no_autocast
    return lambda: torch.autocast(device.type, dtype=dtype)


def _configure_threads(opts: FinetuneOptions) -> None:
    if opts.threads is not None:
        if opts.threads < 1:
            raise TrainingError("--threads must be >= 1")
        torch.set_num_threads(opts.threads)


def _plan(
    opts: FinetuneOptions, prep: _Prepared, dataset: DatasetLike, device: torch.device
) -> memory.MemoryPlan:
    prompt_tokens = max((len(p) for p in prep.prompts.values()), default=48)
    side = prep.coder.spec.size
    cache = dataset.num_frames * side * side * 3
    budget = _cache_budget(opts, device)
    weight_bytes = 2.0 if (device.type == "cuda" and opts.mode == "lora") else 4.0
    # Autocast over fp32 weights keeps the residual stream and norms in fp32 and only the
    # matmul outputs in bf16 (3 bytes on average); over bf16 weights everything is 2 bytes.
    if _autocast_dtype(opts, device, prep.cfg) is None:
        act_bytes = 4.0
    else:
        act_bytes = 2.0 if weight_bytes == 2.0 else 3.0
    return memory.plan_memory(
        prep.cfg,
        mode=opts.mode,
        batch=opts.batch,
        prompt_tokens=prompt_tokens,
        action_dim=prep.action_dim,
        lora_rank=opts.lora_rank,
        train_vision=opts.train_vision or not opts.full,
        weight_bytes=weight_bytes,
        activation_bytes=act_bytes,
        grad_checkpointing=opts.grad_checkpointing,
        image_cache_bytes=cache if cache <= budget else 0.0,
        device=str(device),
    )


def _cache_budget(opts: FinetuneOptions, device: torch.device) -> float:
    if opts.cache_gb is not None:
        return opts.cache_gb * memory.GB
    return 0.5 * memory.available_memory(torch.device("cpu"))


def _load_model(opts: FinetuneOptions, prep: _Prepared, device: torch.device) -> tuple[Any, Any]:
    """The network with the right parameters trainable; (network, peft wrapper or None)."""
    from openvla_ros.model.checkpoint import load_network

    net = load_network(opts.base, prep.cfg, _placement(opts, device))
    torch.manual_seed(opts.seed)  # the LoRA init draws from the global generator
    peft_model = None
    if opts.full:
        set_full_trainable(net, opts.train_vision)
    else:
        if opts.mode == "qlora":
            from peft import prepare_model_for_kbit_training

            prepare_model_for_kbit_training(net, use_gradient_checkpointing=False)
        settings = LoraSettings(opts.lora_rank, opts.lora_alpha, opts.lora_dropout, True)
        peft_model = apply_lora(net, settings)
        for name, p in net.named_parameters():
            if p.requires_grad and p.dtype != torch.float32:
                p.data = p.data.float()  # adapters train in fp32 on a bf16 / 4-bit base
            del name
    if opts.grad_checkpointing:
        lm = net.language_model
        if hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5.x name
            lm.activation_checkpointing_enable({"use_reentrant": False})
        else:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    net.train()
    return net, peft_model


def run_finetune(
    opts: FinetuneOptions,
    dataset: DatasetLike | None = None,
    echo: Callable[[str], None] | None = None,
) -> FinetuneResult | memory.MemoryPlan:
    """Run (or resume) a fine-tune; returns the result, or the plan with ``plan_only``.

    Raises:
        TrainingError: any refusal (with what to do), NaN loss, failed save.
    """
    say = echo or (lambda text: print(text, file=sys.stderr, flush=True))
    validate_options(opts)
    _configure_threads(opts)
    device = _resolve_device(opts)
    if dataset is None:
        from openvla_ros.data.lerobot import DemoDataset
        from openvla_ros.errors import DatasetError

        try:
            dataset = DemoDataset(opts.dataset)
        except DatasetError as exc:
            raise TrainingError(f"cannot read --dataset {opts.dataset}: {exc}") from exc
    prep = prepare(opts, dataset)
    plan = _plan(opts, prep, dataset, device)
    available = memory.available_memory(device)
    say(plan.format(available))
    if opts.plan_only:
        return plan
    if not opts.skip_memory_check:
        memory.check_fits(plan, available)
    training = _prepare_out(opts)
    return _Run(opts, dataset, prep, device, training, say).run()


def _progress_bar(total: int, done: int) -> Any:
    """A tqdm bar on an interactive terminal, else None (log lines only)."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=done, unit="step", dynamic_ncols=True, leave=False)


class _Run:
    """One training run's state (kept small: the loop lives in :meth:`run`)."""

    def __init__(
        self,
        opts: FinetuneOptions,
        dataset: DatasetLike,
        prep: _Prepared,
        device: torch.device,
        training: Path,
        say: Callable[[str], None],
    ) -> None:
        self.opts = opts
        self.prep = prep
        self.device = device
        self.training = training
        self.say = say
        table = self._load_table(dataset)
        episodes = sorted({int(e) for e in table.episodes})
        n_val = (
            opts.val_episodes
            if opts.val_episodes is not None
            else default_val_episodes(len(episodes))
        )
        self.train_eps, self.val_eps = split_episodes(episodes, n_val, opts.seed)
        self.data = RunData(table, dataset, prep.coder, prep.prompts, device)
        is_train = np.isin(table.episodes, self.train_eps)
        self.train_frames = np.flatnonzero(is_train).astype(np.int64)
        val_all = np.flatnonzero(~is_train).astype(np.int64)
        if len(val_all) > opts.val_frames:
            pick = np.linspace(0, len(val_all) - 1, opts.val_frames).round().astype(np.int64)
            val_all = val_all[np.unique(pick)]
        self.val_frames = val_all
        self.baselines: Baselines = fit_baselines(
            self.data.targets[self.train_frames], table.frame_index[self.train_frames]
        )
        if not self.val_eps:
            say(
                "warning: no held-out episodes (--val-episodes 0 or fewer than 5 episodes): "
                "only training metrics, which flatter; hold out episodes to see real error"
            )
        self._warn_unseen_instructions(table)
        self.fingerprint = fingerprint(table, self.train_eps, self.val_eps)
        autocast = _autocast_dtype(opts, device, prep.cfg)
        self.autocast = _autocast_factory(device, autocast)
        self.say(f"autocast: {str(autocast).removeprefix('torch.') if autocast else 'off (fp32)'}")
        self.sampler = Sampler(self.train_frames, opts.seed)
        self.net, self.peft_model = _load_model(opts, prep, device)
        self.named = [(n, p) for n, p in self.net.named_parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            [p for _, p in self.named],
            lr=opts.learning_rate,
            weight_decay=opts.weight_decay,
            # fused: one kernel for all parameters; 4x faster than the per-tensor loop on
            # this CPU (bench_finetune.py) and deterministic, so resume stays bit-identical.
            fused=all(p.dtype == torch.float32 for _, p in self.named),
        )
        self.rows: list[dict[str, Any]] = []
        #: CPU seconds of this process in training steps (all threads): on a shared machine
        #: samples per CPU-second is the figure that does not depend on other jobs' load.
        self.train_cpu_s = 0.0
        self.step = 0
        self.last_checkpoint: Path | None = None

    def _warn_unseen_instructions(self, table: FrameTable) -> None:
        """Held-out instructions the training episodes never contain test generalisation to
        new language, not the fit: say so, so the numbers are read right."""
        seen = {int(k) for k in table.instruction_ids[self.train_frames]}
        unseen = sorted(
            {table.instructions[int(k)] for k in table.instruction_ids[self.val_frames]}
            - {table.instructions[k] for k in seen}
        )
        if unseen:
            self.say(
                f"warning: held-out episodes use instructions no training episode has: "
                f"{unseen}; their L1 measures generalisation to new instructions"
            )

    def _load_table(self, dataset: DatasetLike) -> FrameTable:
        """Decode every frame once; check instructions a reader without a task list hid."""
        prep, start = self.prep, time.perf_counter()
        table = load_frames(
            dataset,
            prep.coder.spec,
            action_dim=prep.action_dim,
            cache_budget_bytes=int(_cache_budget(self.opts, self.device)),
        )
        unknown = [t for t in table.instructions if t not in prep.prompts]
        if unknown:
            limit = min(prep.cfg.llm_max_length, int(prep.cfg.llama["max_position_embeddings"]))
            prep.prompts.update(
                check_instructions(
                    unknown,
                    prep.coder.tokenizer,
                    prep.coder.tokenizer.tokenizer.token_to_id("<unk>"),
                    limit - prep.cfg.num_patches - prep.action_dim - 1,
                )
            )
        side = prep.coder.spec.size
        cache = table.num_frames * side * side * 3 / 1e6 if table.images is not None else None
        self.say(
            f"decoded {table.num_frames} frames ({table.image_hw[1]}x{table.image_hw[0]} px, "
            f"{len(table.instructions)} instruction(s)) in {time.perf_counter() - start:.1f} s"
            + (f"; cache {cache:.0f} MB" if cache is not None else "")
        )
        return table

    # -- checkpoints ---------------------------------------------------------------------

    def _params(self) -> dict[str, torch.Tensor]:
        return {n: p.data for n, p in self.named}

    def _save(self) -> None:
        path = state.save_checkpoint(
            self.training / "checkpoints",
            self.step,
            self._params(),
            self.optimizer,
            {
                "rows": self.rows,
                "fingerprint": self.fingerprint,
                # The data position: sample k of the run is frame sampler(k) (see _Sampler).
                "samples_seen": self.step * self.opts.batch * self.opts.grad_accum,
            },
            keep=self.opts.keep_checkpoints,
        )
        self.last_checkpoint = path

    def _resume_or_start(self) -> None:
        run_file = self.training / "run.json"
        options = options_dict(self.opts)
        if self.opts.resume and run_file.is_file():
            saved = json.loads(run_file.read_text(encoding="utf-8"))
            check_resume_options(self.opts, saved["options"])
            if saved["fingerprint"] != self.fingerprint:
                raise TrainingError(
                    "--resume: the dataset differs from the one this run started on (frames, "
                    "episodes, instructions or actions changed); start a new --out"
                )
        state.write_atomic_text(
            run_file, json.dumps({"options": options, "fingerprint": self.fingerprint}, indent=2)
        )
        latest = state.latest_checkpoint(self.training / "checkpoints")
        if self.opts.resume and latest is not None:
            resumed = state.load_checkpoint(latest, self._params(), self.optimizer)
            self.step, self.rows = resumed.step, resumed.rows
            self.last_checkpoint = latest
            self.say(f"resumed from {latest} (step {self.step})")
        elif self.opts.resume:
            self.say("--resume: no checkpoint yet, starting from step 0")

    # -- the loop ------------------------------------------------------------------------

    def _micro_batch(self, step: int, micro: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        first = (step * self.opts.grad_accum + micro) * self.opts.batch
        positions = range(first, first + self.opts.batch)
        frames = np.asarray([self.sampler(p) for p in positions], dtype=np.int64)
        gens = (
            [aug_generator(self.opts.seed, p) for p in positions] if self.opts.image_aug else None
        )
        return self.data.pixels(frames, gens), self.data.sequences(frames)

    def _train_step(self, with_metrics: bool) -> dict[str, Any]:
        opts = self.opts
        self.optimizer.zero_grad(set_to_none=True)
        total_loss, hits, token_hits, count = 0.0, 0, 0, 0
        dim = self.prep.action_dim
        l1 = 0.0
        decode = self.prep.coder.action_tokenizer.decode
        for micro in range(opts.grad_accum):
            pixels, seqs = self._micro_batch(self.step, micro)
            with self.autocast():
                out = action_forward(self.net, pixels, seqs, dim + 1, with_metrics)
            loss = out.loss
            if not bool(torch.isfinite(loss)):
                self._nan_stop(f"the loss is {float(loss.detach())}")
            (loss / opts.grad_accum).backward()
            total_loss += float(loss.detach())
            if out.predictions is None:
                continue
            match = out.predictions == out.labels
            hits += int(match[:, :dim].sum())
            token_hits += int(match.sum())
            count += len(seqs)
            pred = decode(out.predictions[:, :dim].cpu().numpy())
            true = decode(out.labels[:, :dim].cpu().numpy())
            l1 += float(np.abs(pred - true).sum())
        params = [p for _, p in self.named]
        clip = opts.grad_clip if opts.grad_clip > 0 else float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        if not math.isfinite(norm):
            self._nan_stop(f"the gradient norm is {norm}")
        lr = opts.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        row: dict[str, Any] = {
            "loss": total_loss / opts.grad_accum,
            "grad_norm": norm,
            "lr": lr,
        }
        if count:
            row["action_accuracy"] = hits / (count * dim)
            row["token_accuracy"] = token_hits / (count * (dim + 1))
            row["l1"] = l1 / (count * dim)
        return row

    def _nan_stop(self, what: str) -> None:
        where = (
            f"the last good checkpoint is {self.last_checkpoint}"
            if self.last_checkpoint is not None
            else "no checkpoint was written yet"
        )
        raise TrainingError(
            f"training stopped at step {self.step + 1}: {what}. {where} (nothing newer was "
            f"saved). Lower --lr (now {self.opts.learning_rate:g}), set --max-grad-norm, or "
            "check the dataset's actions and statistics, then rerun with --resume"
        )

    def _validate(self) -> dict[str, Any] | None:
        if not len(self.val_frames):
            return None
        row = evaluate(
            self.net,
            self.prep.coder,
            self.data.table,
            self.val_frames,
            self.data.targets[self.val_frames],
            self.baselines,
            self.data.eval_batch,
            self.data.sequences,
            self.opts.batch,
            self.autocast,
        )
        row.update({"step": self.step, "split": "val"})
        self.say(format_report(row, self.prep.action_dim))
        return row

    def _write_metrics(self) -> None:
        metrics.write_csv(self.training / "metrics.csv", self.rows, self.prep.action_dim)
        try:
            metrics.plot(self.training / "metrics.png", self.rows)
        except Exception as exc:  # a plot must never stop a run
            LOG.warning("metrics plot failed: %s", exc)

    def run(self) -> FinetuneResult:
        """Train to ``--steps`` (from the last checkpoint with --resume), validate, export."""
        opts = self.opts
        self._resume_or_start()
        self.say(
            f"training {opts.mode} on {len(self.train_frames)} frames of "
            f"{len(self.train_eps)} episodes (held out: {len(self.val_eps)} episodes, "
            f"{len(self.val_frames)} frames) for {opts.steps} steps of "
            f"{opts.batch} x {opts.grad_accum} on {self.device}"
        )
        started = time.perf_counter()
        first_step = self.step
        train_s, window_s, window_samples = 0.0, 0.0, 0
        per_step = opts.batch * opts.grad_accum
        bar = _progress_bar(opts.steps, self.step)
        while self.step < opts.steps:
            log_now = (self.step + 1) % opts.log_every == 0 or self.step + 1 == opts.steps
            tick, tick_cpu = time.perf_counter(), time.process_time()
            row = self._train_step(with_metrics=log_now)
            elapsed = time.perf_counter() - tick
            self.train_cpu_s += time.process_time() - tick_cpu
            self.step += 1
            train_s, window_s, window_samples = (
                train_s + elapsed,
                window_s + elapsed,
                window_samples + per_step,
            )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.4f}", rate=f"{per_step / elapsed:.1f}/s")
            if log_now:
                row.update(
                    step=self.step,
                    split="train",
                    samples_per_s=window_samples / max(window_s, 1e-9),
                    elapsed_s=time.perf_counter() - started,
                )
                self.rows.append(row)
                self._log_train(row)
                window_s, window_samples = 0.0, 0
            self._periodic()
        if bar is not None:
            bar.close()
        self._write_metrics()
        done = self.step - first_step
        samples_per_s = done * per_step / train_s if train_s > 0 else 0.0
        if done:
            per_cpu_s = done * per_step / max(self.train_cpu_s, 1e-9)
            self.say(
                f"trained {done} steps: {samples_per_s:.1f} samples/s in the training steps "
                f"({per_cpu_s:.1f} per CPU-second), "
                f"{time.perf_counter() - started:.1f} s wall with validation and checkpoints"
            )
        final_val = next((r for r in reversed(self.rows) if r.get("split") == "val"), None)
        adapter = self._export(final_val)
        per_cpu = done * per_step / self.train_cpu_s if self.train_cpu_s > 0 else 0.0
        return FinetuneResult(
            opts.out, adapter, self.step, self.rows, samples_per_s, final_val, per_cpu
        )

    def _log_train(self, row: dict[str, Any]) -> None:
        opts = self.opts
        rate = float(row["samples_per_s"])
        eta = (opts.steps - self.step) * opts.batch * opts.grad_accum / max(rate, 1e-9)
        self.say(
            f"step {self.step}/{opts.steps} loss {row['loss']:.4f} "
            f"acc {row['action_accuracy']:.3f} l1 {row['l1']:.4f} "
            f"grad {row['grad_norm']:.3g} {rate:.1f} samples/s eta {eta:.0f} s"
        )

    def _periodic(self) -> None:
        """Validation and checkpoints on their schedules (and always after the last step)."""
        last = self.step == self.opts.steps
        if self.step % self.opts.val_every == 0 or last:
            val = self._validate()
            if val is not None:
                self.rows.append(val)
        if self.step % self.opts.save_every == 0 or last:
            self._write_metrics()
            self._save()

    def _merged_state_dict(self, adapter: Path | None) -> dict[str, torch.Tensor]:
        """The weights to publish: the network itself, or base + adapters merged.

        A QLoRA base holds NF4 weights, which are not the published format: the adapters are
        merged into the base re-read in bf16 on the CPU instead (peft's merge, as the adapter
        loader does).
        """
        if self.peft_model is None:
            return dict(self.net.state_dict())
        if self.opts.mode != "qlora":
            return dict(self.peft_model.merge_and_unload().state_dict())
        from openvla_ros.model.checkpoint import load_network
        from openvla_ros.model.precision import resolve_placement
        from openvla_ros.train.adapter import attach_adapter

        source = adapter or self.training / "adapter-final"
        if adapter is None:
            self._write_adapter(source)
        self.say("QLoRA: merging the adapters into the base re-read in bf16 on the CPU")
        base = load_network(
            self.opts.base, self.prep.cfg, resolve_placement("bf16", "cpu", vision_precision="bf16")
        )
        return dict(attach_adapter(base, source, merge=True).state_dict())

    def _write_adapter(self, path: Path) -> None:
        assert self.peft_model is not None
        self.peft_model.save_pretrained(str(path))
        (path / "README.md").unlink(missing_ok=True)
        stats = {self.opts.unnorm_key: self.prep.stats_entry}
        (path / "dataset_statistics.json").write_text(json.dumps(stats, indent=2) + "\n")

    def _export(self, final_val: dict[str, Any] | None) -> Path | None:
        from openvla_ros.train.export import export_checkpoint, stored_dtype

        opts = self.opts
        adapter = None
        if self.peft_model is not None and opts.save_adapter:
            adapter = opts.out / ADAPTER_DIR
            self._write_adapter(adapter)
        state_dict = self._merged_state_dict(adapter)
        dtype = {
            "bf16": torch.bfloat16,
            "fp16": torch.float16,
            "fp32": torch.float32,
        }.get(opts.save_dtype) or stored_dtype(opts.base)
        info = {
            "base": str(opts.base),
            "dataset": str(opts.dataset),
            "mode": opts.mode,
            "steps": self.step,
            "options": options_dict(opts),
            "final_val": final_val,
        }
        export_checkpoint(
            state_dict,
            opts.base,
            opts.out,
            unnorm_key=opts.unnorm_key,
            statistics=self.prep.stats_entry,
            dtype=dtype,
            max_shard_bytes=int(opts.max_shard_gb * memory.GB),
            info=info,
        )
        self.say(f"wrote the fine-tuned checkpoint to {opts.out} ({opts.unnorm_key})")
        return adapter
