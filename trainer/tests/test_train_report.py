"""vf-train's report: the statistics against their formulas, the time split, and the plots."""

from __future__ import annotations

import json
import math

import pytest

from verifiers_trainer.cli.report import make_plots, read_metrics, time_split
from verifiers_trainer.cli.stats import (
    mcnemar_exact,
    mean_interval,
    paired_difference,
    wilson_interval,
)


def test_wilson_interval_matches_the_formula():
    low, high = wilson_interval(0, 8)
    assert low == 0.0 and high == pytest.approx(0.3244, abs=1e-4)
    low, high = wilson_interval(50, 100)
    assert (low, high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    low, high = wilson_interval(81, 263)  # a textbook example: 0.3080 in [0.2553, 0.3662]
    assert (low, high) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))


def test_mean_interval_uses_wilson_for_accuracies_and_a_normal_interval_otherwise():
    accuracy = mean_interval([1.0] * 30 + [0.0] * 70)
    assert accuracy.mean == pytest.approx(0.3) and accuracy.n == 100
    assert (accuracy.low, accuracy.high) == pytest.approx(wilson_interval(30, 100))
    rewards = mean_interval([0.5, 1.0, 1.5, 2.0])
    half = 1.959963984540054 * 0.6454972243679028 / 2  # z * stdev / sqrt(n)
    assert (rewards.low, rewards.high) == pytest.approx((1.25 - half, 1.25 + half))
    assert math.isnan(mean_interval([]).mean)


def test_mcnemar_exact():
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 2**10)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    # 8 improved, 2 worse: 2 * P(X <= 2), X ~ Binomial(10, 1/2) = 2 * 56 / 1024
    assert mcnemar_exact(8, 2) == pytest.approx(112 / 1024)


def test_paired_difference_and_its_verdict():
    before = {str(i): 0.0 for i in range(40)}
    after = {str(i): 1.0 if i < 20 else 0.0 for i in range(40)}
    diff = paired_difference(before, after)
    assert diff.mean == pytest.approx(0.5) and diff.n == 40
    assert (diff.improved, diff.worsened) == (20, 0)
    half = 1.959963984540054 * math.sqrt(0.25 * 40 / 39) / math.sqrt(40)
    assert (diff.low, diff.high) == pytest.approx((0.5 - half, 0.5 + half))
    assert diff.significant_rise and "exceeds its noise" in diff.verdict
    assert diff.p_value == pytest.approx(2 / 2**20)

    noisy = paired_difference({"a": 0.0, "b": 1.0, "c": 0.0, "d": 1.0},
                              {"a": 1.0, "b": 0.0, "c": 1.0, "d": 1.0, "e": 1.0})
    assert noisy.n == 4  # only problems evaluated both times
    assert not noisy.significant_rise and "within the noise" in noisy.verdict


def test_time_split_weighs_each_entry_by_its_rounds():
    steps = [{"step": 1, "timing/generation_s": 2.0},
             {"step": 3, "timing/generation_s": 1.0, "timing/weight_sync_s": 0.5},
             {"step": 4, "timing/generation_s": float("nan")}]
    split = time_split(steps)
    assert split["generation_s"] == pytest.approx(2.0 + 2 * 1.0)
    assert split["weight_sync_s"] == pytest.approx(2 * 0.5)
    assert time_split(steps, num_iterations=2)["generation_s"] == pytest.approx(2.0 + 1.0)


def test_read_metrics_keeps_the_latest_entry_of_each_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [{"step": 1, "reward": 0.1}, {"step": 2, "reward": 0.2}, {"step": 2, "reward": 0.3},
             {"step": 2, "train_runtime": 5.0}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert read_metrics(path) == [{"step": 1, "reward": 0.1}, {"step": 2, "reward": 0.3}]


def test_plots_are_png_images_of_the_logged_curves(tmp_path):
    from matplotlib.image import imread

    steps = [{"step": s, "reward": 0.1 * s, "reward_std": 0.05, "kl": 0.001 * s,
              "completions/mean_length": 40 + s, "rewards/correct_answer": 0.1 * s,
              "rewards/format_penalty": 0.5} for s in range(1, 6)]
    written, notes = make_plots(steps, tmp_path / "plots")
    assert [p.name for p in written] == ["reward.png", "kl.png", "completion_length.png",
                                         "reward_functions.png"]
    assert notes == []
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width = imread(path).shape[:2]
        assert (width, height) == (640, 360)

    without_kl = [{k: v for k, v in e.items() if k != "kl"} for e in steps]
    written, notes = make_plots(without_kl, tmp_path / "plots2")
    assert "kl.png" not in [p.name for p in written]
    assert notes == ["`kl` was not logged (beta = 0: no reference model, so no KL)"]
