"""GRPO's advantage and loss math: pure functions on tensors, no model code.

Shapes and names used throughout:

- ``B`` completions (rows), laid out group-contiguous: the ``G`` completions of one prompt
  are rows ``g*G .. g*G + G - 1``.
- ``T`` completion tokens per row (right-padded).
- ``mask`` is ``(B, T)``: 1 where a token is trained on (sampled by the policy), 0 for
  padding and for tokens the policy did not write (environment/tool responses inside a
  multi-turn completion, truncated completions when they are masked).
- ``logps`` / ``old_logps`` / ``ref_logps`` / ``sampler_logps`` are ``(B, T)`` log-probabilities
  of the completion tokens under the current policy (with gradient), the policy that
  produced the batch (no gradient), the reference model, and the inference server.

The definitions follow TRL 1.16 (``trl/trainer/grpo_trainer.py``, ``GRPOTrainer``), so a run
here and a TRL run with the same settings optimise the same objective; each docstring says
which part of TRL it matches. Gradient-accumulation scaling (TRL divides by the number of
accumulation steps) and cross-process reductions are the trainer's job, not done here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

ScaleRewards = Literal["group", "batch", "none"]
ImportanceSamplingLevel = Literal["token", "sequence"]
LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]

SCALE_REWARDS: tuple[str, ...] = ("group", "batch", "none")
IMPORTANCE_SAMPLING_LEVELS: tuple[str, ...] = ("token", "sequence")
LOSS_TYPES: tuple[str, ...] = ("grpo", "bnpo", "dr_grpo", "dapo")

__all__ = [
    "IMPORTANCE_SAMPLING_LEVELS",
    "LOSS_TYPES",
    "SCALE_REWARDS",
    "aggregate_loss",
    "clipped_surrogate",
    "completion_mask_from_lengths",
    "dapo_step_tokens",
    "entropy_from_logits",
    "group_advantages",
    "grouped_advantages",
    "grpo_loss",
    "importance_ratio",
    "masked_mean",
    "per_token_kl",
    "sampler_correction",
    "selective_log_softmax",
    "token_entropy",
]


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")


def _nanstd(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Unbiased (Bessel-corrected, ``n - 1``) standard deviation ignoring NaNs; NaN where
    fewer than two values are present."""
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    sq = torch.nanmean((x - mean) ** 2, dim=dim, keepdim=True)
    n = (~torch.isnan(x)).sum(dim=dim, keepdim=True).to(x.dtype)
    var = torch.where(n > 1, sq * n / (n - 1).clamp(min=1), torch.full_like(sq, float("nan")))
    std = var.sqrt()
    if keepdim:
        return std
    return std.reshape(()) if dim is None else std.squeeze(dim)


# -- advantages ------------------------------------------------------------------------------


def group_advantages(
    rewards: Tensor,
    group_size: int,
    scale_rewards: ScaleRewards = "group",
    eps: float = 1e-4,
) -> Tensor:
    """Group-relative advantages of a batch of ``B = num_groups × group_size`` rewards.

    For completion ``i`` of group ``g``::

        A_i = r_i - mean_g(r)                    scale_rewards="none"
        A_i = (r_i - mean_g(r)) / (std_g(r) + eps)   scale_rewards="group"
        A_i = (r_i - mean_g(r)) / (std_B(r) + eps)   scale_rewards="batch"

    The baseline is always the group mean; only the divisor changes (``"batch"`` uses the
    standard deviation of all ``B`` rewards, as in PPO-Lite; ``"none"`` is Dr. GRPO's choice).
    ``std`` is the unbiased (``n - 1``) standard deviation, and ``eps = 1e-4`` is added to
    it, both as in TRL (``_generate_and_score_completions``, the ``sum_then_normalize``
    branch, which uses ``trl.trainer.utils.nanstd``). A group whose rewards are all equal gets
    advantages 0 in every mode.

    NaN rewards mark unscored completions (as in TRL): they are left out of the means and
    standard deviations and get advantage 0. With ``group_size == 1`` (or a one-element batch
    for ``"batch"``) the standard deviation is taken as 0, as TRL does.

    Args:
        rewards: ``(B,)`` rewards, group-contiguous.
        group_size: completions per prompt (``num_generations``).
        scale_rewards: ``"group"``, ``"batch"`` or ``"none"``.
        eps: added to the standard deviation before dividing.

    Returns:
        ``(B,)`` advantages (float).
    """
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D (B,); got shape {tuple(rewards.shape)}.")
    if group_size < 1 or rewards.numel() % group_size != 0:
        raise ValueError(
            f"rewards ({rewards.numel()} values) must split into whole groups of group_size "
            f"({group_size}); lay them out group-contiguous, num_groups × group_size."
        )
    groups = torch.arange(rewards.numel(), device=rewards.device) // group_size
    return grouped_advantages(rewards, groups, scale_rewards, eps)


def grouped_advantages(
    rewards: Tensor,
    group_ids: Tensor,
    scale_rewards: ScaleRewards = "group",
    eps: float = 1e-4,
) -> Tensor:
    """Group-relative advantages where ``group_ids[i]`` names the group of reward ``i``:
    groups may have any size and any order (the rule of :func:`group_advantages`, which
    is this with ``group_ids = i // group_size``).

    The group mean is the baseline; ``"group"`` divides by the group's unbiased standard
    deviation + ``eps``, ``"batch"`` by that of all rewards + ``eps``, ``"none"`` by
    nothing. NaN rewards are left out of the statistics and get advantage 0; a group with
    one (non-NaN) reward gets 0.

    Args:
        rewards: ``(B,)`` rewards.
        group_ids: ``(B,)`` integer group of each reward.
        scale_rewards, eps: as in :func:`group_advantages`.
    """
    _check_choice("scale_rewards", scale_rewards, SCALE_REWARDS)
    if rewards.dim() != 1 or group_ids.shape != rewards.shape:
        raise ValueError(
            f"rewards and group_ids must be 1-D of the same length; got shapes "
            f"{tuple(rewards.shape)} and {tuple(group_ids.shape)}."
        )
    r = rewards if rewards.is_floating_point() else rewards.float()
    if r.numel() == 0:
        return r.clone()
    index = torch.unique(group_ids, return_inverse=True)[1]
    size = int(index.max()) + 1
    valid = ~torch.isnan(r)
    clean = torch.where(valid, r, torch.zeros_like(r))
    count = torch.zeros(size, dtype=r.dtype, device=r.device).index_add_(0, index, valid.to(r.dtype))
    total = torch.zeros(size, dtype=r.dtype, device=r.device).index_add_(0, index, clean)
    advantages = r - (total / count)[index]
    if scale_rewards == "group":
        deviation = torch.where(valid, advantages, torch.zeros_like(r)) ** 2
        squares = torch.zeros(size, dtype=r.dtype, device=r.device).index_add_(0, index, deviation)
        std = torch.where(count > 1, squares / (count - 1).clamp(min=1), torch.full_like(count, float("nan")))
        advantages = advantages / (std.sqrt()[index] + eps)
    elif scale_rewards == "batch":
        std = _nanstd(r) if r.numel() > 1 else torch.zeros((), dtype=r.dtype, device=r.device)
        advantages = advantages / (std + eps)
    return torch.nan_to_num(advantages, nan=0.0)


# -- per-token terms -------------------------------------------------------------------------


def per_token_kl(logps: Tensor, ref_logps: Tensor) -> Tensor:
    """Per-token KL(π_θ ‖ π_ref) by Schulman's k3 estimator, with ``d = ref_logps - logps``::

        kl = exp(d) - d - 1

    Non-negative (``e^x >= 1 + x``), zero exactly where the log-probabilities agree, and an
    unbiased estimate of the KL for tokens sampled from π_θ. Same as TRL's ``per_token_kl``
    in ``GRPOTrainer._compute_loss``.
    """
    d = ref_logps - logps
    return torch.exp(d) - d - 1


def importance_ratio(
    logps: Tensor,
    old_logps: Tensor,
    mask: Tensor,
    level: ImportanceSamplingLevel = "token",
) -> Tensor:
    """The policy ratio π_θ / π_old used by the clipped surrogate, ``(B, T)``.

    - ``"token"`` (GRPO/PPO): ``ρ_t = exp(logps_t - old_logps_t)``.
    - ``"sequence"`` (GSPO): one ratio per completion, the exponential of the mean
      log-ratio over its trained tokens, broadcast to all its tokens::

          s_i = exp( Σ_t m_t (logps_t - old_logps_t) / max(Σ_t m_t, 1) )

      The gradient flows through the mean (each trained token of the sequence gets
      ``s_i / |y_i|`` times its log-prob gradient); there is no stop-gradient trick. This is
      TRL's ``importance_sampling_level="sequence"`` (``log_importance_weights`` in
      ``GRPOTrainer._compute_loss``), which keeps it as ``(B, 1)``; broadcasting gives the
      same loss and gradients.
    """
    _check_choice("importance_sampling_level", level, IMPORTANCE_SAMPLING_LEVELS)
    log_ratio = logps - old_logps
    if level == "token":
        return torch.exp(log_ratio)
    m = mask.to(log_ratio.dtype)
    seq_log_ratio = (log_ratio * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    return torch.exp(seq_log_ratio).unsqueeze(-1).expand_as(log_ratio)


def _per_row(advantages: Tensor) -> Tensor:
    return advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages


def clipped_surrogate(
    ratio: Tensor,
    advantages: Tensor,
    epsilon_low: float,
    epsilon_high: float,
    delta: float | None = None,
) -> Tensor:
    """PPO's clipped surrogate, per token, as a loss (to minimise)::

        loss_t = -min( ρ̃_t · A,  clip(ρ_t, 1 - ε_low, 1 + ε_high) · A )
        ρ̃_t   = min(ρ_t, δ) if delta is set (two-sided clipping, INTELLECT-2), else ρ_t

    With ``A > 0`` the ratio stops being rewarded above ``1 + ε_high``; with ``A < 0`` it
    stops being penalised below ``1 - ε_low``; in those regions the loss is constant in θ
    (zero gradient). ``delta`` additionally caps the unclipped ratio, which bounds the loss
    of tokens with ``A < 0`` whose ratio has grown large (their gradient is zero above δ).
    ``ε_high > ε_low`` is DAPO's "clip-higher". Matches TRL's ``coef_1`` / ``coef_2`` branch for
    ``loss_type`` in grpo/bnpo/dr_grpo/dapo: the clipped ratio is taken from the raw ratio,
    and ``delta`` only caps the unclipped one.

    Args:
        ratio: ``(B, T)`` ratio from ``importance_ratio``.
        advantages: ``(B,)`` (one per completion) or ``(B, T)``.
        epsilon_low, epsilon_high: the clip range ``[1 - ε_low, 1 + ε_high]``.
        delta: optional cap on the unclipped ratio (should be ``> 1 + ε_high``).
    """
    a = _per_row(advantages)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    unclipped = torch.clamp(ratio, max=delta) if delta is not None else ratio
    return -torch.min(unclipped * a, clipped * a)


def sampler_correction(
    logps_old_trainer: Tensor,
    sampler_logps: Tensor,
    mask: Tensor,
    cap: float | None,
) -> Tensor:
    """Truncated importance weight between the trainer's and the sampler's distributions.

    The inference server (vLLM) samples from a slightly different distribution than the
    trainer computes (kernels, precision, stale weights). Each token's loss is reweighted by::

        w_t = min( exp(logps_old_trainer_t - sampler_logps_t), cap )      (no gradient)

    Tokens outside ``mask`` and tokens whose sampler log-prob is NaN (not reported) get
    ``w = 1``. This is TRL's ``vllm_importance_sampling_correction`` in mode
    ``"token_truncate"`` with ``vllm_importance_sampling_clip_min=None`` (its default) and
    ``clip_max = cap`` (``GRPOTrainer._generate_and_score_completions``). ``cap=None`` means
    no truncation. Multiply the per-token surrogate by it before adding the KL term.
    """
    m = mask.to(logps_old_trainer.dtype)
    diff = torch.nan_to_num((logps_old_trainer - sampler_logps) * m, nan=0.0)
    weights = torch.exp(diff)
    if cap is not None:
        weights = torch.clamp(weights, max=cap)
    return weights.detach()


# -- aggregation -----------------------------------------------------------------------------


def aggregate_loss(
    per_token_loss: Tensor,
    mask: Tensor,
    loss_type: LossType,
    max_completion_length: int | None = None,
    num_items_in_batch: Tensor | float | None = None,
) -> Tensor:
    """Reduce a ``(B, T)`` per-token loss to a scalar. With ``ℓ`` the per-token loss and
    ``m`` the mask, and ``|y_i| = Σ_t m_it``:

    - ``"grpo"``: ``(1/B) Σ_i [ Σ_t m_it ℓ_it / max(|y_i|, 1) ]`` — each completion's mean,
      then the mean over all ``B`` rows (rows with no trained token count as 0). Biased
      by length: long completions weigh less per token.
    - ``"bnpo"``: ``Σ_it m_it ℓ_it / max(Σ_it m_it, 1)`` — the mean over the local batch's
      trained tokens.
    - ``"dr_grpo"``: ``Σ_it m_it ℓ_it / (B × max_completion_length)`` — a constant
      normaliser (Dr. GRPO), so no length bias and no dependence on the batch's lengths.
    - ``"dapo"``: ``Σ_it m_it ℓ_it / max(num_items_in_batch, 1)`` — the token sum divided by
      the number of trained tokens of the whole global batch (DAPO), so every token of the
      optimizer step weighs the same however the batch is split. ``num_items_in_batch``
      falls back to the local count ``Σ_it m_it``.

    These are TRL 1.16's (``GRPOTrainer._compute_loss``, the ``loss_type`` branches), minus
    its trainer-level scaling: the trainer divides every micro-batch's loss by the gradient
    accumulation steps (TRL does the same for grpo/bnpo/dr_grpo), and for dapo passes the
    optimizer step's trained tokens over all processes divided by ``num_processes ×
    accumulation steps`` (see :func:`dapo_step_tokens` and ``GRPOTrainer.compute_loss``), so
    that after data parallel averaging and accumulation the step's gradient is the token sum's
    gradient over that count, as with TRL's ``num_items_in_batch``.
    """
    _check_choice("loss_type", loss_type, LOSS_TYPES)
    m = mask.to(per_token_loss.dtype)
    masked = per_token_loss * m
    if loss_type == "grpo":
        return (masked.sum(-1) / m.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return masked.sum() / m.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        if max_completion_length is None or max_completion_length < 1:
            raise ValueError(
                "loss_type='dr_grpo' normalises by B × max_completion_length; pass "
                f"max_completion_length >= 1 (got {max_completion_length!r})."
            )
        return masked.sum() / (per_token_loss.size(0) * max_completion_length)
    if num_items_in_batch is None:
        normaliser = m.sum()
    else:
        normaliser = torch.as_tensor(num_items_in_batch, dtype=masked.dtype, device=masked.device)
    return masked.sum() / normaliser.clamp(min=1.0)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """``Σ m·x / max(Σ m, 1)`` over all elements (0 when nothing is masked in)."""
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


# -- the whole objective ---------------------------------------------------------------------


def grpo_loss(
    logps: Tensor,
    old_logps: Tensor | None,
    ref_logps: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    *,
    beta: float,
    epsilon_low: float,
    epsilon_high: float,
    delta: float | None = None,
    loss_type: LossType,
    importance_sampling_level: ImportanceSamplingLevel = "token",
    max_completion_length: int | None = None,
    sampler_weights: Tensor | None = None,
    num_items_in_batch: Tensor | float | None = None,
    use_bias_correction_kl: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    """GRPO's loss on one micro-batch, and its metrics. Per token::

        ℓ_t = clipped_surrogate(ρ_t, A) · w_t  +  β · kl_t
        loss = aggregate_loss(ℓ, mask, loss_type)

    with ``ρ = importance_ratio(logps, old_logps, mask, importance_sampling_level)``,
    ``w = sampler_weights`` (1 when not given; see ``sampler_correction``) and
    ``kl = per_token_kl(logps, ref_logps)`` (only when ``beta != 0``). This is the order of
    TRL's ``GRPOTrainer._compute_loss``.

    Args:
        logps: ``(B, T)`` current log-probs of the completion tokens (with gradient).
        old_logps: ``(B, T)`` log-probs under the policy that generated the batch; ``None``
            means on-policy (``logps.detach()``, ratio 1 with the policy gradient), as TRL.
        ref_logps: ``(B, T)`` reference-model log-probs; required when ``beta != 0``.
        advantages: ``(B,)`` or ``(B, T)``.
        mask: ``(B, T)`` trained tokens.
        beta: KL coefficient (0 disables the KL term).
        epsilon_low, epsilon_high, delta: see ``clipped_surrogate``.
        loss_type, max_completion_length, num_items_in_batch: see ``aggregate_loss``.
        importance_sampling_level: ``"token"`` or ``"sequence"`` (GSPO).
        sampler_weights: ``(B, T)`` trainer-vs-sampler weights, multiplied into the
            surrogate (not into the KL term).
        use_bias_correction_kl: multiply the KL term by ρ (TRL's option of that name: the KL
            gradient becomes the unbiased reverse-KL gradient; ρ is differentiable, so this
            changes the gradient even on-policy, where ρ = 1). Off here, the classic k3
            penalty; ``GRPOConfig`` turns it on by default, as TRL 1.16 does.

    Returns:
        ``(loss, metrics)``; metrics are detached scalars: ``kl`` (mean k3 KL, when
        ``ref_logps`` is given), ``ratio_mean``, ``clip_ratio/low_mean`` (ratio below
        ``1 - ε_low`` with ``A < 0``), ``clip_ratio/high_mean`` (above ``1 + ε_high`` with
        ``A > 0``), ``clip_ratio/region_mean`` (either) — masked means over tokens; at
        sequence level the ratio metrics are means over completions, as in TRL.
    """
    if old_logps is None:
        old_logps = logps.detach()
    ratio = importance_ratio(logps, old_logps, mask, importance_sampling_level)
    per_token = clipped_surrogate(ratio, advantages, epsilon_low, epsilon_high, delta)
    if sampler_weights is not None:
        per_token = per_token * sampler_weights
    kl = None
    if ref_logps is not None:
        kl = per_token_kl(logps, ref_logps)
        if use_bias_correction_kl:
            kl = kl * ratio  # the raw ratio (before delta's cap), as TRL
    if beta != 0.0:
        if kl is None:
            raise ValueError(f"beta is {beta}, so the KL term needs ref_logps; got None.")
        per_token = per_token + beta * kl
    loss = aggregate_loss(per_token, mask, loss_type, max_completion_length, num_items_in_batch)

    with torch.no_grad():
        a = _per_row(advantages).detach()
        capped = torch.clamp(ratio, max=delta) if delta is not None else ratio
        low = ((capped < 1 - epsilon_low) & (a < 0)).to(ratio.dtype)
        high = ((capped > 1 + epsilon_high) & (a > 0)).to(ratio.dtype)
        region = torch.maximum(low, high)
        if importance_sampling_level == "sequence":
            # One value per completion, averaged over all B completions (TRL's (B, 1) case).
            def ratio_metric(x: Tensor) -> Tensor:
                return x.expand_as(ratio)[:, 0].mean()
        else:
            def ratio_metric(x: Tensor) -> Tensor:
                return masked_mean(x.expand_as(ratio), mask)
        metrics = {
            "ratio_mean": ratio_metric(ratio.detach()),
            "clip_ratio/low_mean": ratio_metric(low),
            "clip_ratio/high_mean": ratio_metric(high),
            "clip_ratio/region_mean": ratio_metric(region),
        }
        if kl is not None:
            metrics["kl"] = masked_mean(kl.detach(), mask)
    return loss, metrics


# -- helpers for the trainer -----------------------------------------------------------------


def dapo_step_tokens(
    counts: Sequence[float], first_micro_step: int, iterations: int, accumulation_steps: int
) -> list[float]:
    """dapo's normaliser for each micro-step of one generation round: the trained tokens of
    the optimizer step that micro-step belongs to.

    ``counts[j]`` are the trained tokens of the round's micro-batch ``j`` summed over all
    processes. The round runs ``iterations`` passes over its ``R = len(counts)`` micro-batches
    as micro-steps ``first_micro_step, first_micro_step + 1, ...`` (micro-step ``k`` trains
    micro-batch ``k % R``), and micro-step ``m`` belongs to optimizer step
    ``m // accumulation_steps``. For micro-step ``k`` let ``W`` be the round's micro-steps in
    the same optimizer step; the result is::

        Σ_{k' ∈ W} counts[k' % R] × accumulation_steps / |W|

    — exactly the step's token count when the step lies within the round (a round of one or
    several whole optimizer steps), and the round's tokens scaled to a whole step when the
    step spans several rounds (what TRL 1.16 does with ``steps_per_generation <
    gradient_accumulation_steps``). Returns ``R × iterations`` values.
    """
    if accumulation_steps < 1 or iterations < 1:
        raise ValueError("accumulation_steps and iterations must be >= 1; got "
                         f"{accumulation_steps} and {iterations}.")
    size = len(counts)
    steps = [(first_micro_step + k) // accumulation_steps for k in range(size * iterations)]
    tokens: dict[int, float] = {}
    members: dict[int, int] = {}
    for k, step in enumerate(steps):
        tokens[step] = tokens.get(step, 0.0) + float(counts[k % size])
        members[step] = members.get(step, 0) + 1
    return [tokens[step] * accumulation_steps / members[step] for step in steps]


def completion_mask_from_lengths(
    lengths: Tensor | Sequence[int], max_length: int | None = None
) -> Tensor:
    """``(B, T)`` long mask with ``mask[i, t] = 1`` for ``t < lengths[i]`` (right padding);
    ``T = max_length`` or the longest length."""
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    if lengths.dim() != 1 or (lengths < 0).any():
        raise ValueError(f"lengths must be a 1-D sequence of non-negative ints; got {lengths}.")
    longest = int(lengths.max()) if lengths.numel() else 0
    width = longest if max_length is None else max_length
    if width < longest:
        raise ValueError(
            f"max_length ({max_length}) is shorter than the longest length ({longest})."
        )
    positions = torch.arange(width, device=lengths.device)
    return (positions.unsqueeze(0) < lengths.unsqueeze(1)).long()


def selective_log_softmax(logits: Tensor, ids: Tensor, temperature: float = 1.0) -> Tensor:
    """``log_softmax(logits / temperature)[..., ids]`` without materialising the full
    log-softmax of the batch: ``(B, T, V)`` logits and ``(B, T)`` ids give ``(B, T)``.

    float32/float64 logits: the chosen logit minus a per-row ``logsumexp`` (one ``(T, V)``
    row at a time). Half-precision logits: each row is upcast to float32 and log-softmaxed
    on its own (``logsumexp`` in bf16 is too coarse), and the result is float32.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}.")
    index = ids.unsqueeze(-1)
    if logits.dtype in (torch.float32, torch.float64):
        if temperature != 1.0:
            logits = logits / temperature
        chosen = logits.gather(-1, index).squeeze(-1)
        lse = torch.stack([torch.logsumexp(row, dim=-1) for row in logits])
        return chosen - lse
    rows = []
    for row, row_ids in zip(logits, index, strict=True):  # upcast (then scale) one row at a time
        row = row.float() if temperature == 1.0 else row.float() / temperature
        rows.append(torch.log_softmax(row, dim=-1).gather(-1, row_ids).squeeze(-1))
    return torch.stack(rows)


def token_entropy(logits: Tensor, chunk_size: int = 256) -> Tensor:
    """Per-position entropy (nats) of ``softmax(logits)`` over the last axis, shape
    ``logits.shape[:-1]``; computed ``chunk_size`` positions at a time to bound memory."""
    flat = logits.reshape(-1, logits.shape[-1])
    parts = []
    for chunk in flat.split(chunk_size):
        logp = torch.log_softmax(chunk.float(), dim=-1)
        parts.append(-(logp.exp() * logp).sum(-1))
    out = torch.cat(parts) if parts else flat.new_zeros(0, dtype=torch.float32)
    return out.reshape(logits.shape[:-1])


def entropy_from_logits(logits: Tensor, mask: Tensor, chunk_size: int = 256) -> Tensor:
    """Masked mean token entropy: ``Σ m_t H_t / max(Σ m_t, 1)`` with
    ``H_t = -Σ_v p_tv log p_tv``, for ``(B, T, V)`` logits and a ``(B, T)`` mask."""
    return masked_mean(token_entropy(logits, chunk_size), mask)
