# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
"""--resume of a run whose run.json predates an option (--lr-schedule, --warmup-steps): the
missing key is that option's default, so the run resumes unless the option was changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from openvla_ros.errors import TrainingError
from openvla_ros.train.options import FinetuneOptions, check_resume_options, options_dict


def _opts(**kw: object) -> FinetuneOptions:
    base = {"base": Path("b"), "dataset": Path("d"), "unnorm_key": "k", "out": Path("o")}
    base.update(kw)
    return FinetuneOptions(**base)  # type: ignore[arg-type]


def _old_run_json(opts: FinetuneOptions) -> dict[str, object]:
    saved = options_dict(opts)
    del saved["lr_schedule"], saved["warmup_steps"]  # written before the options existed
    return saved


def test_a_run_from_before_the_schedule_options_resumes_with_their_defaults() -> None:
    check_resume_options(_opts(), _old_run_json(_opts()))


def test_a_changed_schedule_on_an_old_run_is_still_refused() -> None:
    with pytest.raises(TrainingError, match=r"lr_schedule: 'constant' -> 'cosine'"):
        check_resume_options(_opts(lr_schedule="cosine"), _old_run_json(_opts()))
    with pytest.raises(TrainingError, match=r"warmup_steps: 0 -> 5"):
        check_resume_options(_opts(warmup_steps=5), _old_run_json(_opts()))
