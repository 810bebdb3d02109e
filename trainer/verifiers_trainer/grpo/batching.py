"""From scored rollouts to padded training tensors, one micro-batch at a time.

The rollouts of a round come with the group each belongs to (the rollouts of one prompt
share a group id, whatever their order). Advantages are computed per group on the
rollouts' rewards; failed rollouts are dropped from their group (and counted) before that.
Each rollout then becomes one or more token samples (:func:`verifiers.processing.
rollout_to_samples`: the server's own token ids, environment tokens masked, one length
policy), which are padded into micro-batches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from verifiers_trainer.grpo.math import grouped_advantages


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
    #: the samples split into the round's micro-batches (order kept)
    micro_batches: list[list[Sample]] = field(default_factory=list)


def prompt_length(tokenizer: Any, prompt: Any, tools: Sequence[Any] | None = None) -> int:
    """Tokens of ``prompt`` as the generator renders it: a chat prompt through the
    tokenizer's chat template with the generation prompt (and ``tools``), a text prompt
    tokenized as is."""
    if isinstance(prompt, str):
        return len(tokenizer(prompt)["input_ids"])
    messages = [m.model_dump(exclude_none=True) if hasattr(m, "model_dump") else dict(m) for m in prompt]
    for message in messages:
        if message.get("content") is None:
            message["content"] = ""
    text = tokenizer.apply_chat_template(messages, tools=list(tools) if tools else None,
                                         tokenize=False, add_generation_prompt=True)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def groups_by_id(group_ids: Sequence[Any], failed: Sequence[bool]) -> tuple[list[list[int]], int]:
    """Indices of the usable rollouts of each group (the rollouts sharing a group id, in
    any order), and how many rollouts were dropped.

    A failed rollout (model, tool or reward error) is left out of its group's statistics;
    a group left with fewer than two rollouts carries no comparison and is dropped whole.
    """
    members: dict[Any, list[int]] = {}
    for i, (group, bad) in enumerate(zip(group_ids, failed, strict=True)):
        members.setdefault(group, [])
        if not bad:
            members[group].append(i)
    groups = [m for m in members.values() if len(m) >= 2]
    return groups, len(group_ids) - sum(len(m) for m in groups)


def advantages_for(
    rewards: Sequence[float], groups: list[list[int]], scale_rewards: str, eps: float = 1e-4
) -> dict[int, float]:
    """``{rollout index: advantage}`` for the rollouts in ``groups``:
    :func:`verifiers_trainer.grpo.math.grouped_advantages` on their rewards (the batch
    statistics of ``scale_rewards="batch"`` are over these rollouts only)."""
    members = [i for g in groups for i in g]
    if not members:
        return {}
    values = torch.tensor([rewards[i] for i in members], dtype=torch.float64)
    ids = torch.tensor([k for k, g in enumerate(groups) for _ in g])
    advantages = grouped_advantages(values, ids, scale_rewards, eps)  # type: ignore[arg-type]
    return dict(zip(members, advantages.tolist(), strict=True))


def trained_rewards(rewards: Sequence[float], tokens: Mapping[int, Sequence[Any]]) -> list[float]:
    """The reward each rollout trains with: its own, or 0 where the length policy zeroed
    one of its token samples (``tokens``: rollout index -> its samples; rollouts without
    samples keep their reward)."""
    return [min((t.reward for t in tokens[i]), default=r) if i in tokens else float(r)
            for i, r in enumerate(rewards)]


def training_samples(tokens: Mapping[int, Sequence[Any]], advantages: Mapping[int, float]) -> list[Sample]:
    """The trained rollouts' token samples (:class:`verifiers.processing.TokenSample`), each
    with its rollout's advantage, in rollout order."""
    return [Sample(t.prompt_ids, t.completion_ids, t.completion_mask, t.completion_logprobs,
                   advantages[i], t.reward)
            for i in sorted(advantages) for t in tokens[i]]


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
