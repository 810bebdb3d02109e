"""Completion log-probs with each distinct prompt computed once.

A GRPO micro-batch holds ``num_generations`` completions of each prompt. The plain forward
runs every row's prompt again; here the distinct prompts run once (with the KV cache on),
their cache rows are copied to every row of the group (``index_select``, so gradients from
all rows add up in the prompt's activations), and the completions run on top of that cache.
Same model, same positions, same masks: log-probs and gradients equal the plain forward's
to float rounding, for ``distinct / rows`` of the prompt compute. On the main job (8 prompts
x 4 completions, ~100-token prompts, 24-token completions) that is about 2.5x fewer tokens
through the model in each optimisation step.

The trainer uses it on one process, without gradient checkpointing (which turns the cache
off), DeepSpeed or FSDP (whose sharded forwards must match across processes), and only when
some prompt repeats in the micro-batch.
"""

from __future__ import annotations

from typing import Any

import torch

from verifiers_trainer.grpo.math import selective_log_softmax


def prompt_groups(prompt_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(first row of each distinct prompt, each row's distinct prompt)`` for left-padded
    ``prompt_ids``, or None when no prompt repeats."""
    seen: dict[tuple[int, ...], int] = {}
    first: list[int] = []
    index: list[int] = []
    for row, ids in enumerate(prompt_ids.tolist()):
        key = tuple(ids)
        if key not in seen:
            seen[key] = len(first)
            first.append(row)
        index.append(seen[key])
    if len(first) == len(index):
        return None
    return torch.tensor(first), torch.tensor(index)


def shared_prompt_logps(model: Any, batch: dict[str, torch.Tensor], groups: tuple[Any, Any],
                        temperature: float, device: Any) -> torch.Tensor:
    """Log-probs of ``batch["completion_ids"]`` (temperature-scaled), as
    ``selective_log_softmax`` over one full forward gives, with each distinct prompt run once."""
    first, index = (g.to(device) for g in groups)
    prompt_mask = batch["prompt_mask"].to(device)
    completion_ids = batch["completion_ids"].to(device)
    attention = batch["completion_attention"].to(device)
    prompt_positions = (prompt_mask.cumsum(dim=1) - 1).clamp(min=0)
    out = model(input_ids=batch["prompt_ids"].to(device)[first], attention_mask=prompt_mask[first],
                position_ids=prompt_positions[first], use_cache=True, logits_to_keep=1)
    head = selective_log_softmax(out.logits[index], completion_ids[:, :1], temperature)
    if completion_ids.shape[1] == 1:
        return head
    cache = out.past_key_values
    cache.reorder_cache(index)  # index_select per layer: one cache row per batch row
    # the last completion token predicts nothing: it is never an input
    inputs, mask = completion_ids[:, :-1], attention[:, :-1]
    positions = prompt_mask.sum(dim=1, keepdim=True) + mask.cumsum(dim=1) - 1
    full_mask = torch.cat([prompt_mask, mask], dim=1)
    logits = model(input_ids=inputs, attention_mask=full_mask, position_ids=positions.clamp(min=0),
                   past_key_values=cache, use_cache=True, logits_to_keep=inputs.shape[1]).logits
    rest = selective_log_softmax(logits, completion_ids[:, 1:], temperature)
    return torch.cat([head, rest], dim=1)


__all__ = ["prompt_groups", "shared_prompt_logps"]
