# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""``--lr-schedule`` / ``--warmup-steps``: the curve's properties, its refusals, and that the
optimiser really steps with the rate the metrics report (resume on the curve is covered by
test_train_resume.py, which runs a cosine schedule with warm-up)."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from openvla_ros.errors import TrainingError
from openvla_ros.train.options import FinetuneOptions, validate_options

pytestmark = pytest.mark.timeout(120)


def _opts(**kw: object) -> FinetuneOptions:
    base = {"base": Path("b"), "dataset": Path("d"), "unnorm_key": "k", "out": Path("o")}
    base.update(kw)
    return FinetuneOptions(**base)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    steps=st.integers(2, 5000),
    warm_frac=st.floats(0.0, 0.9),
    schedule=st.sampled_from(["constant", "cosine", "linear"]),
    lr=st.floats(1e-6, 1e-1),
)
def test_curve_warms_up_then_holds_or_decays(
    steps: int, warm_frac: float, schedule: str, lr: float
) -> None:
    warmup = int(warm_frac * (steps - 1))
    opts = _opts(steps=steps, warmup_steps=warmup, lr_schedule=schedule, lr=lr)
    curve = [opts.lr_at(s) for s in range(steps)]
    assert all(0.0 <= v <= lr * (1 + 1e-12) for v in curve)
    # Warm-up: strictly increasing, below the peak.
    assert all(a < b for a, b in itertools.pairwise(curve[: warmup + 1]))
    assert all(v < lr for v in curve[:warmup])
    # The first step after warm-up runs at the peak.
    assert curve[warmup] == pytest.approx(lr)
    after = curve[warmup:]
    if schedule == "constant":
        assert all(v == lr for v in after)
    else:
        assert all(a >= b for a, b in itertools.pairwise(after))
        # Decays towards 0 at --steps (the last step is one step short of it).
        span = steps - warmup
        if schedule == "linear":
            assert curve[-1] == pytest.approx(lr / span)
        else:
            last = 0.5 * (1 + math.cos(math.pi * (span - 1) / span))
            assert curve[-1] == pytest.approx(lr * last)


def test_cosine_is_half_way_at_the_middle() -> None:
    opts = _opts(steps=1000, warmup_steps=0, lr_schedule="cosine", lr=1e-3)
    assert opts.lr_at(500) == pytest.approx(5e-4)
    assert opts.lr_at(250) == pytest.approx(1e-3 * (1 + math.sqrt(0.5)) / 2)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"lr_schedule": "exponential"}, "--lr-schedule"),
        ({"warmup_steps": -1}, "--warmup-steps"),
        ({"warmup_steps": 10, "steps": 10}, "--warmup-steps"),
    ],
)
def test_bad_schedule_options_are_refused(kw: dict[str, object], match: str) -> None:
    with pytest.raises(TrainingError, match=match):
        validate_options(_opts(**kw))


def test_the_optimiser_steps_with_the_logged_rate(finetune, monkeypatch) -> None:
    used: list[float] = []
    real_step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        used.append(float(self.param_groups[0]["lr"]))
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    result, _ = finetune("linear", steps=5, warmup_steps=1, lr_schedule="linear", lr=2e-3)
    # Written out by hand: warm-up step 0 at 2e-3 * 1/2, then 2e-3 * (1 - k/4) for k = 0..3.
    want = [1e-3, 2e-3, 1.5e-3, 1e-3, 0.5e-3]
    assert used == pytest.approx(want)
    rows = list(csv.DictReader((result.out / "training" / "metrics.csv").open()))
    logged = [float(r["lr"]) for r in rows if r["split"] == "train"]
    assert logged == pytest.approx(want)
