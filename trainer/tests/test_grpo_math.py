"""GRPO math: each formula against numbers worked out by hand or with plain-Python loops."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers_trainer.grpo.math import (
    aggregate_loss,
    clipped_surrogate,
    completion_mask_from_lengths,
    entropy_from_logits,
    group_advantages,
    grouped_advantages,
    grpo_loss,
    importance_ratio,
    masked_mean,
    per_token_kl,
    sampler_correction,
    selective_log_softmax,
    token_entropy,
)

LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo"]


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# -- plain-Python references -----------------------------------------------------------------


def py_surrogate(logp, old, adv, eps_low, eps_high, delta=None):
    ratio = math.exp(logp - old)
    clipped = min(max(ratio, 1 - eps_low), 1 + eps_high)
    unclipped = min(ratio, delta) if delta is not None else ratio
    return -min(unclipped * adv, clipped * adv)


def py_k3(logp, ref):
    d = ref - logp
    return math.exp(d) - d - 1


def py_aggregate(per_token, mask, loss_type, max_len=None, num_items=None):
    B = len(per_token)
    if loss_type == "grpo":
        total = 0.0
        for row, mrow in zip(per_token, mask):
            n = sum(mrow)
            total += sum(x * m for x, m in zip(row, mrow)) / max(n, 1)
        return total / B
    s = sum(x * m for row, mrow in zip(per_token, mask) for x, m in zip(row, mrow))
    n = sum(sum(mrow) for mrow in mask)
    if loss_type == "bnpo":
        return s / max(n, 1)
    if loss_type == "dr_grpo":
        return s / (B * max_len)
    return s / max(num_items if num_items is not None else n, 1)


# A hand-built off-policy batch: 2 completions × 4 tokens; row 1 is shorter.
LOGPS = [[-0.5, -1.0, -0.2, -2.0], [-0.3, -0.9, -1.5, -0.7]]
OLD = [[-0.6, -0.7, -0.2, -1.0], [-0.3, -1.6, -1.0, -0.7]]
REF = [[-0.4, -1.2, -0.1, -2.0], [-0.5, -0.8, -1.5, -0.7]]
MASK = [[1, 1, 1, 1], [1, 1, 0, 0]]
ADV = [0.8, -1.3]


def expected_loss(loss_type, beta, eps_low, eps_high, delta=None, weights=None, num_items=None):
    per_token = []
    for i in range(2):
        row = []
        for j in range(4):
            value = py_surrogate(LOGPS[i][j], OLD[i][j], ADV[i], eps_low, eps_high, delta)
            if weights is not None:
                value *= weights[i][j]
            value += beta * py_k3(LOGPS[i][j], REF[i][j])
            row.append(value)
        per_token.append(row)
    return py_aggregate(per_token, MASK, loss_type, max_len=6, num_items=num_items)


# -- aggregation: each loss type is its formula ----------------------------------------------


def test_loss_types_on_policy_by_hand():
    """On-policy, β = 0: every trained token's loss is -A. Row 0 has 3 tokens with A = 1,
    row 1 has 2 tokens with A = -0.5, so the token sum is -3 + 1 = -2."""
    mask = t([[1, 1, 1, 0], [1, 1, 0, 0]])
    logps = torch.zeros(2, 4, dtype=torch.float64, requires_grad=True)
    adv = t([1.0, -0.5])
    expected = {
        "grpo": (-3 / 3 + 1 / 2) / 2,  # mean of per-completion means
        "bnpo": -2 / 5,  # 5 trained tokens
        "dr_grpo": -2 / (2 * 4),  # B × max_completion_length
        "dapo": -2 / 10,  # 10 tokens in the global batch
    }
    for loss_type, value in expected.items():
        loss, _ = grpo_loss(logps, None, None, adv, mask, beta=0.0, epsilon_low=0.2,
                            epsilon_high=0.2, loss_type=loss_type, max_completion_length=4,
                            num_items_in_batch=10)
        assert loss.item() == pytest.approx(value), loss_type


def test_dapo_falls_back_to_local_token_count():
    per_token = t([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = t([[1, 1, 0], [1, 0, 0]])
    assert aggregate_loss(per_token, mask, "dapo").item() == pytest.approx((1 + 2 + 4) / 3)
    assert aggregate_loss(per_token, mask, "dapo", num_items_in_batch=14).item() == \
        pytest.approx(7 / 14)
    assert aggregate_loss(per_token, mask, "dapo", num_items_in_batch=torch.tensor(14)).item() == \
        pytest.approx(7 / 14)


def test_grpo_counts_rows_without_tokens_in_the_mean():
    """TRL's grpo divides by all B rows, a fully masked row contributing 0."""
    per_token = t([[2.0, 4.0], [9.0, 9.0]])
    mask = t([[1, 1], [0, 0]])
    assert aggregate_loss(per_token, mask, "grpo").item() == pytest.approx(3.0 / 2)
    assert aggregate_loss(per_token, mask, "bnpo").item() == pytest.approx(3.0)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("delta", [None, 1.5])
def test_full_objective_matches_python_loops(loss_type, delta):
    weights = [[1.0, 0.5, 2.0, 1.5], [1.0, 0.8, 1.0, 1.0]]
    got, _ = grpo_loss(t(LOGPS), t(OLD), t(REF), t(ADV), t(MASK), beta=0.04, epsilon_low=0.2,
                       epsilon_high=0.28, delta=delta, loss_type=loss_type,
                       max_completion_length=6, sampler_weights=t(weights),
                       num_items_in_batch=12)
    want = expected_loss(loss_type, 0.04, 0.2, 0.28, delta, weights, num_items=12)
    assert got.item() == pytest.approx(want, rel=1e-12)


def test_beta_zero_drops_the_kl_term_and_kl_needs_ref():
    a, _ = grpo_loss(t(LOGPS), t(OLD), t(REF), t(ADV), t(MASK), beta=0.0, epsilon_low=0.2,
                     epsilon_high=0.2, loss_type="bnpo")
    b, _ = grpo_loss(t(LOGPS), t(OLD), None, t(ADV), t(MASK), beta=0.0, epsilon_low=0.2,
                     epsilon_high=0.2, loss_type="bnpo")
    assert a.item() == pytest.approx(expected_loss("bnpo", 0.0, 0.2, 0.2))
    assert a.item() == b.item()
    with pytest.raises(ValueError, match="ref_logps"):
        grpo_loss(t(LOGPS), t(OLD), None, t(ADV), t(MASK), beta=0.1, epsilon_low=0.2,
                  epsilon_high=0.2, loss_type="bnpo")


def test_bias_correction_kl_multiplies_kl_by_the_ratio():
    got, _ = grpo_loss(t(LOGPS), t(OLD), t(REF), t(ADV), t(MASK), beta=0.5, epsilon_low=0.2,
                       epsilon_high=0.2, loss_type="bnpo", use_bias_correction_kl=True)
    per_token = [[py_surrogate(LOGPS[i][j], OLD[i][j], ADV[i], 0.2, 0.2)
                  + 0.5 * math.exp(LOGPS[i][j] - OLD[i][j]) * py_k3(LOGPS[i][j], REF[i][j])
                  for j in range(4)] for i in range(2)]
    assert got.item() == pytest.approx(py_aggregate(per_token, MASK, "bnpo"), rel=1e-12)


def test_aggregate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="loss_type must be one of"):
        aggregate_loss(t([[1.0]]), t([[1]]), "ppo")
    with pytest.raises(ValueError, match="max_completion_length"):
        aggregate_loss(t([[1.0]]), t([[1]]), "dr_grpo")


# -- advantages ------------------------------------------------------------------------------


def test_group_advantages_by_hand():
    """Group 1: rewards 1,0,0,0: mean 0.25, unbiased std sqrt((0.75² + 3·0.25²) / 3) = 0.5.
    Group 2: all 1: zero variance, so advantage 0 in every mode."""
    rewards = t([1, 0, 0, 0, 1, 1, 1, 1])
    group = group_advantages(rewards, 4, "group")
    assert group.tolist() == pytest.approx(
        [0.75 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001, 0, 0, 0, 0])
    none = group_advantages(rewards, 4, "none")
    assert none.tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0])
    # batch: the group baseline, divided by the std of all 8 rewards (mean 0.625).
    batch_std = math.sqrt((4 * 0.375**2 + 3 * 0.625**2 + 0.375**2) / 7)
    batch = group_advantages(rewards, 4, "batch")
    assert batch.tolist() == pytest.approx(
        [x / (batch_std + 1e-4) for x in [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0]])


def test_group_advantages_nan_rewards_are_left_out_and_get_zero():
    """[1, nan, 0, 0]: statistics over 1, 0, 0 (mean 1/3, unbiased std sqrt(1/3))."""
    adv = group_advantages(t([1, float("nan"), 0, 0]), 4, "group")
    std = math.sqrt(1 / 3)
    assert adv.tolist() == pytest.approx([(2 / 3) / (std + 1e-4), 0.0, (-1 / 3) / (std + 1e-4),
                                          (-1 / 3) / (std + 1e-4)])


def test_group_advantages_group_size_one_and_errors():
    assert group_advantages(t([3.0, 5.0]), 1, "group").tolist() == [0.0, 0.0]
    assert group_advantages(torch.tensor([1, 0]), 2).dtype == torch.float32
    with pytest.raises(ValueError, match="whole groups of group_size"):
        group_advantages(t([1, 0, 0]), 2)
    with pytest.raises(ValueError, match="scale_rewards must be one of"):
        group_advantages(t([1, 0]), 2, "global")
    with pytest.raises(ValueError, match="1-D"):
        group_advantages(t([[1, 0]]), 2)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_grouped_advantages_follow_the_group_ids_in_any_order(scale):
    rewards = t([1, 0, 0, 0, 3, 1, 2, 2])
    contiguous = group_advantages(rewards, 4, scale)
    order = torch.tensor([5, 0, 7, 2, 1, 6, 4, 3])
    shuffled = grouped_advantages(rewards[order], torch.tensor([10, 20])[order // 4], scale)
    torch.testing.assert_close(shuffled, contiguous[order])


def test_grouped_advantages_on_groups_of_different_sizes_by_hand():
    """Group 7: rewards 2, 0, 1 (mean 1, unbiased std 1); group 3: 5, 5 (all equal: 0);
    group 9: a single reward (no comparison: 0); NaN: left out, 0."""
    rewards = t([2, 5, 0, 4, 5, 1, float("nan")])
    ids = torch.tensor([7, 3, 7, 9, 3, 7, 3])
    assert grouped_advantages(rewards, ids, "group").tolist() == pytest.approx(
        [1 / 1.0001, 0, -1 / 1.0001, 0, 0, 0, 0])
    assert grouped_advantages(rewards, ids, "none").tolist() == pytest.approx([1, 0, -1, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="same length"):
        grouped_advantages(rewards, ids[:3])


def test_trainer_advantages_are_the_math_modules_on_the_usable_rollouts():
    from verifiers_trainer.grpo.batching import advantages_for, groups_by_id

    ids = ["b", "a", "b", "a", "b", "a", "c", "c"]
    failed = [False, False, False, True, False, False, True, False]
    rewards = [1.0, 2.0, 0.0, 9.0, 2.0, 4.0, 5.0, 5.0]
    groups, dropped = groups_by_id(ids, failed)
    assert groups == [[0, 2, 4], [1, 5]] and dropped == 3  # two failed, "c" left with one
    advantages = advantages_for(rewards, groups, "none")
    assert advantages == pytest.approx({0: 0.0, 2: -1.0, 4: 1.0, 1: -1.0, 5: 1.0})


def test_group_std_matches_trl_nanstd():
    utils = pytest.importorskip("trl.trainer.utils")
    rewards = torch.randn(12, dtype=torch.float64)
    ours = group_advantages(rewards, 4, "group")
    grouped = rewards.view(-1, 4)
    std = utils.nanstd(grouped, dim=1).repeat_interleave(4)
    theirs = (rewards - grouped.mean(1).repeat_interleave(4)) / (std + 1e-4)
    torch.testing.assert_close(ours, theirs)


rewards_lists = st.integers(1, 4).flatmap(
    lambda g: st.lists(st.floats(-10, 10, allow_nan=False), min_size=g, max_size=g * 3)
    .filter(lambda xs: len(xs) % g == 0).map(lambda xs: (g, xs)))


@settings(max_examples=60, deadline=None)
@given(rewards_lists)
def test_advantages_are_centred_per_group(case):
    group_size, values = case
    rewards = t(values)
    for mode in ("group", "batch", "none"):
        adv = group_advantages(rewards, group_size, mode).view(-1, group_size)
        assert adv.sum(1).abs().max().item() < 1e-6
    group = group_advantages(rewards, group_size, "group").view(-1, group_size)
    if group_size > 1:
        # Equal to (r - mean) / (unbiased std + eps) group by group.
        grouped = rewards.view(-1, group_size)
        want = (grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)
        torch.testing.assert_close(group, want)


# -- KL --------------------------------------------------------------------------------------


def test_k3_value_and_zero_when_equal():
    # logp = log 1 = 0, ref = log 0.5: e^{-ln 2} + ln 2 - 1 = 0.5 + 0.6931... - 1
    assert per_token_kl(t([0.0]), t([math.log(0.5)])).item() == pytest.approx(math.log(2) - 0.5)
    x = torch.randn(3, 5)
    assert torch.equal(per_token_kl(x, x), torch.zeros(3, 5))


@given(st.floats(-20, 0), st.floats(-20, 0))
def test_k3_is_non_negative(logp, ref):
    assert per_token_kl(t([logp]), t([ref])).item() >= 0.0


# -- ratio and clipping ----------------------------------------------------------------------


def _surrogate_grad(ratio_value, advantage, eps_low=0.2, eps_high=0.2, delta=None):
    """(loss, d loss / d logp) of one token with ratio exp(logp - old) = ratio_value."""
    logp = torch.tensor([[math.log(ratio_value)]], dtype=torch.float64, requires_grad=True)
    ratio = importance_ratio(logp, torch.zeros(1, 1, dtype=torch.float64), t([[1]]))
    loss = clipped_surrogate(ratio, t([advantage]), eps_low, eps_high, delta).sum()
    loss.backward()
    return loss.item(), logp.grad.item()


@pytest.mark.parametrize(
    ("ratio", "adv", "loss", "grad"),
    [
        (1.5, 2.0, -1.2 * 2.0, 0.0),  # A > 0 above 1 + ε: clipped, no gradient
        (1.5, -2.0, 1.5 * 2.0, 1.5 * 2.0),  # A < 0 above 1 + ε: unclipped term is the min
        (0.5, -2.0, 0.8 * 2.0, 0.0),  # A < 0 below 1 - ε: clipped, no gradient
        (0.5, 2.0, -0.5 * 2.0, -0.5 * 2.0),  # A > 0 below 1 - ε: unclipped term is the min
        (1.1, 2.0, -1.1 * 2.0, -1.1 * 2.0),  # inside the range: -A·ρ, gradient -A·ρ
        (0.9, -2.0, 0.9 * 2.0, 0.9 * 2.0),
    ],
)
def test_clipping_branches_and_gradients(ratio, adv, loss, grad):
    got_loss, got_grad = _surrogate_grad(ratio, adv)
    assert got_loss == pytest.approx(loss)
    assert got_grad == pytest.approx(grad, abs=1e-12)


def test_asymmetric_clip_range():
    # ε_high = 0.28: a ratio of 1.25 with A > 0 is still inside the range.
    assert _surrogate_grad(1.25, 1.0, eps_high=0.28) == pytest.approx((-1.25, -1.25))
    assert _surrogate_grad(1.25, 1.0, eps_high=0.2) == pytest.approx((-1.2, 0.0))


def test_delta_caps_the_unclipped_ratio():
    # A < 0, ratio 3: without δ the loss is 3·|A| with gradient; δ = 2 caps it at 2·|A|.
    assert _surrogate_grad(3.0, -1.0) == pytest.approx((3.0, 3.0))
    assert _surrogate_grad(3.0, -1.0, delta=2.0) == pytest.approx((2.0, 0.0))
    # Below δ nothing changes; with A > 0 the clipped term wins as before.
    assert _surrogate_grad(1.5, -1.0, delta=2.0) == pytest.approx((1.5, 1.5))
    assert _surrogate_grad(3.0, 1.0, delta=2.0) == pytest.approx((-1.2, 0.0))


def test_sequence_level_ratio_and_its_gradient():
    """mask [1, 1, 0], log-ratios [0.1, 0.3, 5.0]: s = exp((0.1 + 0.3) / 2) on every token;
    ds/dlogp = s/2 on the two trained tokens, 0 on the padding."""
    logps = t([[0.1, 0.3, 5.0]]).requires_grad_(True)
    ratio = importance_ratio(logps, torch.zeros(1, 3, dtype=torch.float64), t([[1, 1, 0]]),
                             "sequence")
    s = math.exp(0.2)
    assert ratio[0].tolist() == pytest.approx([s, s, s])
    ratio[0, 0].backward()
    assert logps.grad[0].tolist() == pytest.approx([s / 2, s / 2, 0.0])
    token = importance_ratio(logps.detach(), torch.zeros(1, 3, dtype=torch.float64),
                             t([[1, 1, 0]]), "token")
    assert token[0].tolist() == pytest.approx([math.exp(0.1), math.exp(0.3), math.exp(5.0)])
    with pytest.raises(ValueError, match="importance_sampling_level"):
        importance_ratio(logps, logps, t([[1, 1, 0]]), "sentence")


def test_sequence_level_loss_matches_loops():
    """GSPO with loss_type='grpo': per completion, -min(s·A, clip(s)·A)."""
    got, metrics = grpo_loss(t(LOGPS), t(OLD), None, t(ADV), t(MASK), beta=0.0, epsilon_low=0.2,
                             epsilon_high=0.2, loss_type="grpo",
                             importance_sampling_level="sequence")
    per_seq = []
    for i in range(2):
        terms = [LOGPS[i][j] - OLD[i][j] for j in range(4) if MASK[i][j]]
        s = math.exp(sum(terms) / len(terms))
        per_seq.append(-min(s * ADV[i], min(max(s, 0.8), 1.2) * ADV[i]))
    assert got.item() == pytest.approx(sum(per_seq) / 2)
    # At sequence level the ratio metrics average over completions, not tokens.
    s0 = math.exp((0.1 - 0.3 + 0.0 - 1.0) / 4)
    s1 = math.exp((0.0 + 0.7) / 2)
    assert metrics["ratio_mean"].item() == pytest.approx((s0 + s1) / 2)


# -- metrics ---------------------------------------------------------------------------------


def test_metrics_are_masked_means():
    # ratios: row 0 [1.5, 0.5, 1.0, 9.0(masked)], A = +1; row 1 [1.5, 0.5, 1, 1], A = -1.
    lr = [math.log(1.5), math.log(0.5), 0.0]
    logps = t([[*lr, math.log(9.0)], [*lr, 0.0]])
    mask = t([[1, 1, 1, 0], [1, 1, 1, 1]])
    ref = logps.clone()
    ref[0, 0] = logps[0, 0] + math.log(0.5)
    _, m = grpo_loss(logps, torch.zeros(2, 4, dtype=torch.float64), ref, t([1.0, -1.0]), mask,
                     beta=0.1, epsilon_low=0.2, epsilon_high=0.2, loss_type="bnpo")
    # high: ratio > 1.2 with A > 0 -> row 0 token 0 only (token 3 is masked): 1/7.
    # low: ratio < 0.8 with A < 0 -> row 1 token 1: 1/7.
    assert m["clip_ratio/high_mean"].item() == pytest.approx(1 / 7)
    assert m["clip_ratio/low_mean"].item() == pytest.approx(1 / 7)
    assert m["clip_ratio/region_mean"].item() == pytest.approx(2 / 7)
    assert m["ratio_mean"].item() == pytest.approx((1.5 + 0.5 + 1 + 1.5 + 0.5 + 1 + 1) / 7)
    assert m["kl"].item() == pytest.approx((math.log(2) - 0.5) / 7)
    assert all(not v.requires_grad for v in m.values())


# -- sampler correction ----------------------------------------------------------------------


def test_sampler_correction_truncates_and_is_detached():
    trainer = t([[math.log(1.5), math.log(4.0), 0.0, 3.0, math.log(0.25)]]).requires_grad_(True)
    sampler = t([[0.0, 0.0, float("nan"), 0.0, 0.0]])
    mask = t([[1, 1, 1, 0, 1]])
    w = sampler_correction(trainer, sampler, mask, cap=2.0)
    # 1.5 kept, 4 truncated to 2, NaN sampler logprob -> 1, masked token -> 1, 0.25 kept.
    assert w[0].tolist() == pytest.approx([1.5, 2.0, 1.0, 1.0, 0.25])
    assert not w.requires_grad
    assert sampler_correction(trainer, sampler, mask, cap=None)[0, 1].item() == pytest.approx(4.0)


def test_sampler_weights_scale_the_surrogate_not_the_kl():
    logps = torch.zeros(1, 2, dtype=torch.float64)
    ref = t([[math.log(0.5), 0.0]])
    w = t([[2.0, 0.5]])
    loss, _ = grpo_loss(logps, None, ref, t([1.0]), t([[1, 1]]), beta=0.1, epsilon_low=0.2,
                        epsilon_high=0.2, loss_type="bnpo", sampler_weights=w)
    want = ((-1 * 2.0 + 0.1 * (math.log(2) - 0.5)) + (-1 * 0.5)) / 2
    assert loss.item() == pytest.approx(want)


# -- masks and multi-turn records ------------------------------------------------------------


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("level", ["token", "sequence"])
def test_env_tokens_contribute_nothing(loss_type, level):
    """A multi-turn completion [model, model, env, env, model]: whatever the env tokens'
    log-probs are, the loss is the same and their gradient is exactly zero."""
    mask = t([[1, 1, 0, 0, 1], [1, 1, 1, 0, 0]])
    base = t([[-0.5, -1.0, -0.3, -0.2, -0.8], [-0.4, -0.6, -0.9, -0.1, -0.1]])
    old = base - 0.1
    ref = base + 0.05
    results = []
    for env_value in (-0.3, -25.0):
        logps = base.clone()
        logps[0, 2:4] = env_value
        logps.requires_grad_(True)
        loss, _ = grpo_loss(logps, old, ref, t([1.0, -0.5]), mask, beta=0.1, epsilon_low=0.2,
                            epsilon_high=0.28, loss_type=loss_type,
                            importance_sampling_level=level, max_completion_length=5)
        loss.backward()
        assert logps.grad[0, 2:4].tolist() == [0.0, 0.0]
        assert logps.grad[1, 3:].tolist() == [0.0, 0.0]
        assert logps.grad[0, [0, 1, 4]].abs().min().item() > 0
        results.append(loss.item())
    assert results[0] == pytest.approx(results[1], rel=1e-12)


def test_env_token_gap_counts_only_model_tokens():
    """grpo divides row 0 by its 3 model tokens, not by 5."""
    per_token = t([[1.0, 2.0, 100.0, 100.0, 3.0]])
    assert aggregate_loss(per_token, t([[1, 1, 0, 0, 1]]), "grpo").item() == pytest.approx(2.0)
    assert aggregate_loss(per_token, t([[1, 1, 0, 0, 1]]), "dr_grpo",
                          max_completion_length=10).item() == pytest.approx(0.6)


def test_completion_mask_from_lengths():
    assert completion_mask_from_lengths([3, 0, 1]).tolist() == [[1, 1, 1], [0, 0, 0], [1, 0, 0]]
    mask = completion_mask_from_lengths(torch.tensor([2]), max_length=4)
    assert mask.tolist() == [[1, 1, 0, 0]] and mask.dtype == torch.long
    with pytest.raises(ValueError, match="shorter than the longest"):
        completion_mask_from_lengths([5], max_length=3)
    with pytest.raises(ValueError, match="non-negative"):
        completion_mask_from_lengths([-1])


def test_masked_mean_of_empty_mask_is_zero():
    assert masked_mean(t([[5.0, 6.0]]), t([[0, 0]])).item() == 0.0


# -- helpers on logits -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_selective_log_softmax_equals_full_log_softmax(dtype):
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 11).to(dtype)
    ids = torch.randint(0, 11, (3, 4))
    got = selective_log_softmax(logits, ids)
    want = logits.float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    assert got.shape == (3, 4)
    torch.testing.assert_close(got.float(), want, atol=1e-5, rtol=1e-5)
    hot = selective_log_softmax(logits, ids, temperature=0.5)
    want_hot = (logits.float() / 0.5).log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    # half-precision rows are upcast before the temperature divides them: float32-exact
    torch.testing.assert_close(hot.float(), want_hot, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        selective_log_softmax(logits, ids, temperature=0.0)


def test_selective_log_softmax_gradient_matches_naive():
    logits = torch.randn(2, 3, 7, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, 7, (2, 3))
    selective_log_softmax(logits, ids).sum().backward()
    ours = logits.grad.clone()
    logits.grad = None
    logits.log_softmax(-1).gather(-1, ids.unsqueeze(-1)).sum().backward()
    torch.testing.assert_close(ours, logits.grad)


def test_entropy():
    # Uniform over 8 tokens: log 8 nats; a one-hot-ish distribution: ~0.
    logits = torch.zeros(1, 3, 8)
    logits[0, 1] = torch.tensor([50.0] + [0.0] * 7)
    h = token_entropy(logits, chunk_size=2)
    assert h.shape == (1, 3)
    assert h[0, 0].item() == pytest.approx(math.log(8), rel=1e-6)
    assert h[0, 1].item() == pytest.approx(0.0, abs=1e-12)
    mask = t([[1, 0, 1]])
    assert entropy_from_logits(logits, mask).item() == pytest.approx(math.log(8), rel=1e-6)
    p = [0.5, 0.25, 0.25]
    h3 = token_entropy(torch.tensor(p).log().view(1, 1, 3)).item()
    assert h3 == pytest.approx(-sum(x * math.log(x) for x in p), rel=1e-6)


# -- properties ------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=2, max_size=2),
       st.lists(st.integers(0, 5), min_size=2, max_size=2))
def test_on_policy_gradient_is_minus_advantage_over_normaliser(advantages, lengths):
    """On-policy, β = 0, dr_grpo: ∂loss/∂logp_it = -A_i / (B·L) on trained tokens, else 0."""
    L = 5
    mask = completion_mask_from_lengths(lengths, max_length=L).double()
    logps = torch.randn(2, L, dtype=torch.float64, requires_grad=True)
    loss, _ = grpo_loss(logps, None, None, t(advantages), mask, beta=0.0, epsilon_low=0.2,
                        epsilon_high=0.2, loss_type="dr_grpo", max_completion_length=L)
    loss.backward()
    want = -t(advantages).unsqueeze(1) * mask / (2 * L)
    torch.testing.assert_close(logps.grad, want)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-2, 2), min_size=6, max_size=6), st.integers(1, 6))
def test_single_row_grpo_equals_bnpo(values, length):
    per_token = t([values])
    mask = completion_mask_from_lengths([length], max_length=6)
    assert aggregate_loss(per_token, mask, "grpo").item() == pytest.approx(
        aggregate_loss(per_token, mask, "bnpo").item())
