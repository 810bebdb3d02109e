"""vf-train's report: the statistics against their formulas, the time split, and the plots."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from verifiers_trainer.cli.report import (
    eval_command,
    make_plots,
    read_metrics,
    reward_range,
    sample_pairs,
    time_split,
)
from verifiers_trainer.cli.stats import (
    mcnemar_exact,
    mean_interval,
    newcombe_paired_interval,
    paired_difference,
    square_and_add,
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


def test_mcnemar_exact_against_hand_computed_values():
    # b = 3, c = 0: 2 * (1/2)^3; no split of 3 changed problems can reach p < 0.05
    assert mcnemar_exact(3, 0) == pytest.approx(0.25)
    assert mcnemar_exact(0, 3) == pytest.approx(0.25)
    assert mcnemar_exact(4, 0) == pytest.approx(0.125)
    # b = 6, c = 1: 2 * (C(7,0) + C(7,1)) / 2^7 = 16 / 128
    assert mcnemar_exact(6, 1) == pytest.approx(0.125)


def test_square_and_add_matches_newcombes_independent_example():
    # Newcombe (1998, independent proportions), method 10: 56/70 - 48/80 = 0.2,
    # 95% interval 0.0524 to 0.3339
    low, high = square_and_add(56 / 70, wilson_interval(56, 70), 48 / 80, wilson_interval(48, 80))
    assert (low, high) == (pytest.approx(0.0524, abs=1e-4), pytest.approx(0.3339, abs=1e-4))


def test_newcombe_paired_interval_matches_published_examples():
    # Newcombe (1998, paired data), example (a): cells 36, 12, 2, 0 (n = 50), difference
    # 0.2, method 10: 0.0569 to 0.3404
    low, high = newcombe_paired_interval(36, 12, 2, 0)
    assert (low, high) == (pytest.approx(0.0569, abs=1e-4), pytest.approx(0.3404, abs=1e-4))
    # Fagerland, Lydersen & Laake (2014), airway hyper-responsiveness before/after stem cell
    # transplantation: cells 1, 1, 7, 12; difference -0.286, Newcombe: -0.502 to -0.036
    low, high = newcombe_paired_interval(1, 1, 7, 12)
    assert (low, high) == (pytest.approx(-0.502, abs=1e-3), pytest.approx(-0.036, abs=1e-3))
    # phi = 0 (a margin is empty): the independent square-and-add interval
    low, high = newcombe_paired_interval(0, 3, 0, 37)
    assert (low, high) == pytest.approx(square_and_add(3 / 40, wilson_interval(3, 40), 0.0,
                                                       wilson_interval(0, 40)))
    assert low < 0 < high


def test_paired_difference_and_its_verdict():
    before = {str(i): 0.0 for i in range(40)}
    after = {str(i): 1.0 if i < 20 else 0.0 for i in range(40)}
    diff = paired_difference(before, after)
    assert diff.mean == pytest.approx(0.5) and diff.n == 40
    assert (diff.improved, diff.worsened) == (20, 0)
    assert (diff.low, diff.high) == pytest.approx(newcombe_paired_interval(0, 20, 0, 20))
    assert diff.p_value == pytest.approx(2 / 2**20)
    assert diff.significant_rise and diff.verdict.startswith("the score rose: p = 1.91e-06 < 0.05")
    assert diff.test_text == ("b = 20 improved, c = 0 got worse: exact McNemar test, "
                              "two-sided p = 1.91e-06")

    # 3 of 40 improved, none worse: p = 0.25, not a rise, whatever the mean says
    few = paired_difference(before, {str(i): 1.0 if i < 3 else 0.0 for i in range(40)})
    assert few.p_value == pytest.approx(0.25) and not few.significant_rise
    assert few.verdict == ("no real change shown: p = 0.25 ≥ 0.05 in the exact McNemar test "
                           "(b = 3, c = 0); with only 3 changed problems no split could reach "
                           "p < 0.05 (the smallest p is 0.25)")

    noisy = paired_difference({"a": 0.0, "b": 1.0, "c": 0.0, "d": 1.0},
                              {"a": 1.0, "b": 0.0, "c": 1.0, "d": 1.0, "e": 1.0})
    assert noisy.n == 4  # only problems evaluated both times
    assert (noisy.improved, noisy.worsened) == (2, 1) and noisy.p_value == pytest.approx(1.0)
    assert not noisy.significant_rise and noisy.verdict.startswith("no real change shown")

    same = paired_difference({"a": 1.0}, {"a": 1.0})
    assert same.verdict == "no problem changed its score: no difference to test"


def test_paired_difference_of_non_binary_scores_uses_the_sign_test():
    before = {str(i): 0.5 for i in range(10)}
    after = {str(i): 0.75 for i in range(10)}
    after["9"] = 0.25
    diff = paired_difference(before, after)
    assert not diff.binary and (diff.improved, diff.worsened) == (9, 1)
    assert diff.p_value == pytest.approx(2 * 11 / 1024)
    assert "exact sign test" in diff.verdict and diff.significant_rise
    half = 1.959963984540054 * statistics.stdev([0.25] * 9 + [-0.25]) / math.sqrt(10)
    assert (diff.low, diff.high) == pytest.approx((diff.mean - half, diff.mean + half))


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
              "completions/mean_length": 40 + s, "completions/truncated_ratio": 0.1,
              "grad_norm": 0.5 / s, "rewards/correct_answer": 0.1 * s,
              "rewards/format_penalty": 0.5} for s in range(1, 6)]
    written, notes = make_plots(steps, tmp_path / "plots")
    assert [p.name for p in written] == ["reward.png", "kl.png", "completion_length.png",
                                         "truncated.png", "grad_norm.png",
                                         "reward_functions.png"]
    assert notes == []
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width = imread(path).shape[:2]
        assert (width, height) == (640, 360)

    without = [{k: v for k, v in e.items() if k not in ("kl", "grad_norm")} for e in steps]
    written, notes = make_plots(without, tmp_path / "plots2")
    assert "kl.png" not in [p.name for p in written]
    assert notes == ["`kl` was not logged (beta = 0: no reference model, so no KL)",
                     "`grad_norm` was not logged"]


def test_the_reward_band_is_clipped_to_the_reachable_range(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    steps = [{"step": s, "reward": r, "reward_std": 0.5, "rewards/correct_answer": r + 0.1,
              "rewards/format_penalty": 1.0, "rewards/total_tool_calls": 2.0}
             for s, r in ((1, -0.1), (2, 0.9))]
    weights = {"correct_answer": 1.0, "format_penalty": -0.1, "total_tool_calls": 0.0}
    bounds = reward_range(weights, steps, [])
    assert (bounds.low, bounds.high) == (-0.1, 1.0)
    assert bounds.how == "reward = 1·correct_answer - 0.1·format_penalty, each function scoring 0 to 1"

    bands, lines = [], []
    original_fill, original_plot = Axes.fill_between, Axes.plot

    def fill(self, x, low, high, **kwargs):
        bands.append((list(low), list(high), kwargs.get("label")))
        return original_fill(self, x, low, high, **kwargs)

    def plot(self, *args, **kwargs):
        lines.append((kwargs.get("label"), list(args[1]) if len(args) > 1 else None))
        return original_plot(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "fill_between", fill)
    monkeypatch.setattr(Axes, "plot", plot)
    _, notes = make_plots(steps, tmp_path / "plots", bounds, weights)
    ((low, high, label),) = bands
    assert low == [-0.1, pytest.approx(0.4)] and high == [pytest.approx(0.4), 1.0]
    assert label == "± std within the round, clipped to [-0.1, 1]"
    labels = dict(lines)
    assert labels["1 × correct_answer"] == pytest.approx([0.0, 1.0])
    assert labels["-0.1 × format_penalty (penalty: lower raw value is better)"] == \
        pytest.approx([-0.1, -0.1])
    assert "logged but not part of the reward (weight 0): `total_tool_calls`" in notes
    assert not any("total_tool_calls" in (label or "") for label, _ in lines)


def test_reward_range_falls_back_to_what_was_seen():
    steps = [{"step": 1, "reward": 0.2, "rewards/length": 3.0}]
    rows = [{"reward": -1.5}, {"reward": 2.5}]
    bounds = reward_range({"length": 1.0}, steps, rows)  # a function beyond [0, 1]
    assert (bounds.low, bounds.high) == (-1.5, 2.5)
    assert bounds.how == "the smallest and largest rewards seen"
    assert reward_range(None, [], []) is None


def test_sample_pairs_show_the_same_problems_changes_first():
    before = [{"example_id": i, "score": s} for i, s in enumerate([0.0, 1.0, 0.0, 0.0, 1.0])]
    after = [{"example_id": i, "score": s} for i, s in enumerate([0.0, 0.0, 1.0, 1.0, 1.0])]
    pairs = sample_pairs(before, list(reversed(after)))
    assert [(b["example_id"], a["example_id"]) for b, a in pairs] == [(2, 2), (3, 3), (1, 1)]


def test_eval_command_round_trips_through_the_shell():
    import shlex
    from pathlib import Path

    config = {"env": {"id": "vf-math-python", "args": {
        "system_prompt": "Answer in \\boxed{}. It's fine.", "difficulty": {"name": "x"}}},
        "eval": {"num_examples": 40, "temperature": 0.0, "max_tokens": 24, "seed": 3}}
    command = eval_command(config, Path("outputs/runs/my run/final"))
    argv = shlex.split(command)
    assert argv[:4] == ["vf-eval", "vf-math-python", "--model-path", "outputs/runs/my run/final"]
    assert argv[argv.index("-n") + 1] == "40" and argv[argv.index("-t") + 1] == "24"
    assert argv[argv.index("-T") + 1] == "0" and argv[argv.index("--seed") + 1] == "3"
    assert json.loads(argv[argv.index("-a") + 1]) == config["env"]["args"]
    assert argv[-1] == "-s"
