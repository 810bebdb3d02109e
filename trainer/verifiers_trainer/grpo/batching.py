"""From scored rollouts to padded training tensors, one micro-batch at a time.

A generation batch is a list of rollouts laid out group by group (``num_generations``
consecutive rollouts share a prompt). Advantages are computed per group on the rollouts'
rewards; failed rollouts are dropped from their group (and counted) before that. Each
rollout then becomes one or more token samples (:func:`verifiers.processing.
process_env_results`: the server's own token ids; env tokens masked), which are padded into
micro-batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Sample:
    prompt_ids: list[int]
    completion_ids: list[int]
    completion_mask: list[int]
    sampler_logprobs: list[float] | None
    advantage: float
    reward: float


@dataclass
class GenerationBatch:
    """What one round of generation produced, ready to be split into micro-batches."""

    samples: list[Sample]
    rewards: list[float]
    metrics: dict[str, float] = field(default_factory=dict)
    completions_preview: list[dict[str, Any]] = field(default_factory=list)


def group_rewards(
    rewards: list[float], failed: list[bool], group_size: int
) -> tuple[list[list[int]], int]:
    """Indices of the usable rollouts of each group, and how many were dropped.

    A failed rollout (model, tool or reward error) is left out of its group's statistics;
    a group left with fewer than two rollouts carries no comparison and is dropped whole.
    """
    groups, dropped = [], 0
    for start in range(0, len(rewards), group_size):
        members = [i for i in range(start, min(start + group_size, len(rewards))) if not failed[i]]
        dropped += min(group_size, len(rewards) - start) - len(members)
        if len(members) >= 2:
            groups.append(members)
        else:
            dropped += len(members)
    return groups, dropped


def advantages_for(
    rewards: list[float], groups: list[list[int]], scale_rewards: str, eps: float = 1e-4
) -> dict[int, float]:
    """``{rollout index: advantage}`` for the rollouts in ``groups`` (same rule as
    :func:`verifiers_trainer.grpo.math.group_advantages`, on groups of varying size)."""
    out: dict[int, float] = {}
    all_rewards = torch.tensor([rewards[i] for g in groups for i in g], dtype=torch.float64)
    batch_std = all_rewards.std().item() if all_rewards.numel() > 1 else 0.0
    for members in groups:
        values = torch.tensor([rewards[i] for i in members], dtype=torch.float64)
        centered = values - values.mean()
        if scale_rewards == "group":
            centered = centered / (values.std() + eps)
        elif scale_rewards == "batch":
            centered = centered / (batch_std + eps)
        for i, a in zip(members, centered.tolist(), strict=True):
            out[i] = a
    return out


def collate(samples: list[Sample], pad_id: int, max_completion_length: int | None = None
            ) -> dict[str, torch.Tensor]:
    """Left-pad prompts, right-pad completions; ``completion_mask`` marks trained tokens."""
    prompt_len = max(len(s.prompt_ids) for s in samples)
    completion_len = max(len(s.completion_ids) for s in samples)
    if max_completion_length:
        completion_len = min(completion_len, max_completion_length)
    completion_len = max(completion_len, 1)
    n = len(samples)
    prompt_ids = torch.full((n, prompt_len), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((n, prompt_len), dtype=torch.long)
    completion_ids = torch.full((n, completion_len), pad_id, dtype=torch.long)
    completion_mask = torch.zeros((n, completion_len), dtype=torch.float32)
    attention = torch.zeros((n, completion_len), dtype=torch.long)
    sampler = torch.zeros((n, completion_len), dtype=torch.float32)
    has_sampler = all(s.sampler_logprobs is not None for s in samples)
    for row, s in enumerate(samples):
        p = s.prompt_ids
        prompt_ids[row, prompt_len - len(p):] = torch.tensor(p)
        prompt_mask[row, prompt_len - len(p):] = 1
        c = s.completion_ids[:completion_len]
        completion_ids[row, : len(c)] = torch.tensor(c)
        attention[row, : len(c)] = 1
        completion_mask[row, : len(c)] = torch.tensor(s.completion_mask[: len(c)], dtype=torch.float32)
        if has_sampler and s.sampler_logprobs is not None:
            lp = s.sampler_logprobs[: len(c)]
            sampler[row, : len(lp)] = torch.tensor(lp)
    batch = {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_attention": attention,
        "completion_mask": completion_mask,
        "advantages": torch.tensor([s.advantage for s in samples], dtype=torch.float32),
    }
    if has_sampler:
        batch["sampler_logps"] = sampler
    return batch


def split(samples: list[Sample], parts: int) -> list[list[Sample]]:
    """``parts`` micro-batches of (nearly) equal size; order kept."""
    size = math.ceil(len(samples) / parts) if samples else 0
    return [samples[i * size:(i + 1) * size] for i in range(parts)]
