"""The rewards of a generation round, and when a round stops the run.

Rollouts are scored as they finish, alongside generation, unless the round must be scored
as a whole: when the rubric scores in batches (reward functions in TRL's convention, one
call per round with all its completions), or when a trainer subclass overrides
``compute_rewards(completions, prompts, epoch)``. Then the round is generated unscored and
``compute_rewards`` gives its rewards; the default scores the round with the
environment's rubric (``rubric.score_rollouts``), or returns the given rewards of
pre-generated completions.

A round in which every rollout failed, on every process (every reward function raised, the
server refused every request, ...), stops the run with the reasons: nothing could be
learnt from it, and carrying on would only repeat it.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any


def scored_after_round(trainer: Any) -> bool:
    """Whether the trainer's rounds are scored as a whole (module docstring)."""
    from verifiers_trainer.grpo.trainer import GRPOTrainer

    overridden = type(trainer).compute_rewards is not GRPOTrainer.compute_rewards
    return overridden or bool(getattr(trainer.env.rubric, "scores_in_batches", False))


def score_with_rubric(rubric: Any, results: Mapping[str, Any], prompts: Sequence[Any],
                      completions: Sequence[Any]) -> dict[str, list[float]]:
    """``rubric.score_rollouts`` over the round (rollouts that failed in generation are not
    scored again: they keep reward 0 and their error)."""
    n = len(prompts)
    if len(completions) != n or len(results["states"]) != n:
        raise ValueError(f"compute_rewards got {len(completions)} completions and {n} prompts for a "
                         f"round of {len(results['states'])} rollouts; give one of each per rollout.")
    todo = [i for i in range(n) if not results["errors"][i]]
    value = rubric.score_rollouts(
        [prompts[i] for i in todo], [completions[i] for i in todo],
        [results["answers"][i] for i in todo], [results["states"][i] for i in todo],
        tasks=[results["tasks"][i] for i in todo], infos=[results["infos"][i] for i in todo])
    if inspect.isawaitable(value):
        value = asyncio.run(value)
    out: dict[str, list[float]] = {k: [math.nan] * n for k in value}
    out["reward"] = [0.0] * n
    for position, i in enumerate(todo):
        for key, column in value.items():
            out[key][i] = column[position]
    return out


def apply_rewards(results: dict[str, Any], rewards: Any, metrics: Mapping[str, list[float]] | None) -> None:
    """Put ``compute_rewards``' result into the round's results: rewards, per-function
    metrics, and the errors scoring recorded on the states."""
    if isinstance(rewards, Mapping):  # a rubric's {"reward": [...], name: [...]}
        metrics = {k: list(v) for k, v in rewards.items() if k != "reward"}
        rewards = rewards["reward"]
    if hasattr(rewards, "tolist"):
        rewards = rewards.tolist()
    rewards = list(rewards)
    n = len(results["states"])
    if len(rewards) != n:
        raise ValueError(f"compute_rewards returned {len(rewards)} rewards for {n} completions; "
                         "return one per completion.")
    for i, reward in enumerate(rewards):
        if reward is None or isinstance(reward, bool) or not isinstance(reward, int | float):
            raise TypeError(f"compute_rewards returned {reward!r} at position {i}; rewards must be numbers.")
    from verifiers import GenerateOutputs

    errors = list(results["errors"])
    for i, state in enumerate(results["states"]):
        if errors[i] is None and state.get("error"):
            errors[i] = GenerateOutputs([{"error": state["error"]}])["errors"][0]
    results["errors"] = errors
    results["rewards"] = [0.0 if errors[i] else float(r) for i, r in enumerate(rewards)]
    if metrics:
        results["metrics"] = {k: list(v) for k, v in metrics.items()}


def check_round(accelerator: Any, errors: Sequence[str | None]) -> None:
    """Stop the run when every rollout of the round failed on every process."""
    import torch

    ok = sum(e is None for e in errors)
    total = torch.tensor([ok, len(errors)], device=accelerator.device)
    if accelerator.num_processes > 1:
        total = accelerator.reduce(total, reduction="sum")
    if int(total[0]) > 0 or int(total[1]) == 0:
        return
    reasons = Counter(e.split(":", 1)[0].strip() for e in errors if e)
    example = next((e for e in errors if e), "")
    where = " on every process" if accelerator.num_processes > 1 else ""
    raise RuntimeError(
        f"Every rollout of this generation round failed{where} ({len(errors)} here: "
        f"{', '.join(f'{n} {r}' for r, n in reasons.most_common())}), so there is nothing to "
        f"train on. E.g.: {example[:500]}. A reward_error comes from a reward function (check its "
        "signature and what it reads from the dataset); a model_error from the generation server.")
