"""Training on completions that were generated beforehand, with their rewards.

Two ways to give them:

- offline: ``GRPOTrainer(model, tokenizer=..., dataset=data, config=...)`` where ``data``
  holds ``prompts``, ``completions`` and ``rewards`` (aligned lists, e.g. saved from
  ``env.generate(...)``), as a dict of those lists, a dict / ``datasets.Dataset`` of the
  columns ``prompt``, ``completion``, ``reward``, or a list of such rows (``answer``
  optional). Completions of the same prompt form one GRPO group; each round trains on the
  groups of ``prompts_per_round`` prompts drawn like dataset rows (seeded order, epochs).
- online: a ``get_batch`` override that returns ``(prompts, completions, rewards)``: the
  round trains on exactly those. ``prompts`` has one entry per completion, or one per group
  (``len(completions) / len(prompts)`` consecutive completions each); an entry is a prompt
  (messages or text) or a dataset row with a ``prompt``.

A group needs two or more completions (GRPO compares completions of one prompt); smaller
groups are left out, with a warning that counts them.

How they are tokenised and which log-probs the loss uses: given completions carry no token
ids of the model being trained, so prompt and completion are tokenised with the trainer's
tokenizer and chat template (:func:`verifiers.processing.process_env_results`' text
path). Their "old" log-probs are the policy's own, computed by the trainer just before the
round's first update (``old_logps``): the first pass's ratio is 1, and the clipped ratio
bounds how far later passes (``num_iterations > 1``, or a round spanning several optimizer
steps) move the policy away from the weights the round started with. The generating
model's log-probs, if any were kept, belong to another model and are not used (no sampler
correction).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import verifiers as vf
from verifiers import GenerateOutputs

logger = logging.getLogger(__name__)


def prompt_key(prompt: Any) -> str:
    """A key equal for equal prompts (``None`` fields of chat messages ignored, as a
    dataset round trip adds them)."""
    if isinstance(prompt, list):
        prompt = [{k: v for k, v in m.items() if v is not None} if isinstance(m, Mapping) else m
                  for m in prompt]
    return json.dumps(prompt, sort_keys=True, default=str)


def _prompt_of(entry: Any) -> tuple[Any, Any]:
    """``(prompt, answer)`` of a prompt or a dataset row."""
    if isinstance(entry, Mapping):
        if "prompt" not in entry:
            raise ValueError(f"A prompt given as a row needs a 'prompt' key; got keys {sorted(entry)}.")
        return entry["prompt"], entry.get("answer", "")
    return entry, ""


def _reward(value: Any, index: int, where: str) -> float:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{where}: rewards[{index}] is {value!r}; every given completion needs a "
                         "numeric reward (leave out completions that were not scored).")
    return float(value)


@dataclass
class GivenRollouts:
    """Completions with rewards for one round, and the group each belongs to."""

    prompts: list[Any]
    completions: list[Any]
    rewards: list[float]
    answers: list[Any]
    group_ids: list[int]

    def results(self) -> GenerateOutputs:
        """The round as generation results (no token ids: tokenised from text)."""
        records = [{"prompt": p, "completion": c, "answer": a, "reward": r, "state": {},
                    "rollout_index": 0, "example_id": g}
                   for p, c, a, r, g in zip(self.prompts, self.completions, self.answers,
                                            self.rewards, self.group_ids, strict=True)]
        out = GenerateOutputs(records)
        out["group_ids"] = list(self.group_ids)
        out["given_rewards"] = True
        return out


def from_triple(prompts: Sequence[Any], completions: Sequence[Any], rewards: Sequence[Any],
                where: str = "get_batch") -> GivenRollouts:
    """Check and group ``(prompts, completions, rewards)`` (module docstring)."""
    prompts, completions, rewards = list(prompts), list(completions), list(rewards)
    if len(completions) != len(rewards):
        raise ValueError(f"{where} returned {len(completions)} completions but {len(rewards)} "
                         "rewards; give one reward per completion.")
    if not prompts or not completions:
        raise ValueError(f"{where} returned no prompts or no completions.")
    if len(prompts) == len(completions):
        pairs = [_prompt_of(p) for p in prompts]
        ids: dict[str, int] = {}
        group_ids = [ids.setdefault(prompt_key(p), len(ids)) for p, _ in pairs]
    elif len(completions) % len(prompts) == 0:
        size = len(completions) // len(prompts)
        pairs = [_prompt_of(p) for p in prompts for _ in range(size)]
        group_ids = [i // size for i in range(len(completions))]
    else:
        raise ValueError(f"{where} returned {len(prompts)} prompts for {len(completions)} completions: "
                         "give one prompt per completion, or one per group of consecutive "
                         "completions (len(completions) a multiple of len(prompts)).")
    return GivenRollouts([p for p, _ in pairs], completions,
                         [_reward(r, i, where) for i, r in enumerate(rewards)],
                         [a for _, a in pairs], group_ids)


def _columns(data: Any) -> tuple[list[Any], list[Any], list[Any], list[Any] | None]:
    """``prompts, completions, rewards, answers`` from any of the accepted layouts."""
    if hasattr(data, "column_names") and hasattr(data, "to_dict"):  # a datasets.Dataset
        data = data.to_dict()
    if isinstance(data, Mapping):
        for plural, singular in (("prompts", "prompt"), ("completions", "completion"), ("rewards", "reward")):
            if plural not in data and singular not in data:
                raise ValueError(f"Pre-generated data needs {plural!r} (or {singular!r}); it has "
                                 f"{sorted(data)}. Save env.generate(...)'s prompts, completions "
                                 "and rewards.")

        def column(plural: str, singular: str) -> list[Any] | None:
            value = data.get(plural, data.get(singular))
            return None if value is None else list(value)

        return (column("prompts", "prompt"), column("completions", "completion"),  # type: ignore[return-value]
                column("rewards", "reward"), column("answers", "answer"))
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        rows = list(data)
        if not all(isinstance(r, Mapping) for r in rows):
            raise TypeError("Pre-generated data given as a list must be rows (dicts) with 'prompt', "
                            "'completion' and 'reward'.")
        missing = [k for k in ("prompt", "completion", "reward") if rows and k not in rows[0]]
        if missing:
            raise ValueError(f"Pre-generated rows need 'prompt', 'completion' and 'reward'; the first "
                             f"lacks {missing}.")
        return ([r["prompt"] for r in rows], [r["completion"] for r in rows],
                [r["reward"] for r in rows], [r.get("answer", "") for r in rows])
    raise TypeError(f"Cannot read pre-generated data from {type(data).__name__}: give a dict of "
                    "'prompts', 'completions', 'rewards' lists, a datasets.Dataset or a list of rows.")


class PregeneratedData:
    """Offline completions grouped by prompt; :meth:`env` holds one row per prompt, and
    :meth:`for_rows` gives a round's completions for rows drawn from it."""

    def __init__(self, data: Any) -> None:
        prompts, completions, rewards, answers = _columns(data)
        if answers is None or len(answers) != len(prompts):
            answers = [""] * len(prompts)
        given = from_triple([{"prompt": p, "answer": a} for p, a in zip(prompts, answers, strict=True)],
                            completions, rewards, where="dataset")
        self.groups: dict[str, list[tuple[Any, float]]] = {}
        self.rows: list[dict[str, Any]] = []
        for prompt, completion, reward, answer in zip(given.prompts, given.completions, given.rewards,
                                                      given.answers, strict=True):
            key = prompt_key(prompt)
            if key not in self.groups:
                self.groups[key] = []
                self.rows.append({"prompt": prompt, "answer": answer if answer is not None else ""})
            self.groups[key].append((completion, reward))
        small = [r for r in self.rows if len(self.groups[prompt_key(r["prompt"])]) < 2]
        if len(small) == len(self.rows):
            raise ValueError(
                f"Every prompt of the pre-generated data has a single completion ({len(self.rows)} "
                "prompts): GRPO compares several completions of the same prompt. Generate several "
                "per prompt (env.generate(..., rollouts_per_example=4)) and save them all.")
        if small:
            logger.warning("%d of %d pre-generated prompts have a single completion and are left out "
                           "(GRPO needs two or more per prompt).", len(small), len(self.rows))
            self.rows = [r for r in self.rows if r not in small]
        self.num_completions = sum(len(self.groups[prompt_key(r["prompt"])]) for r in self.rows)
        self.message_type = "completion" if isinstance(self.rows[0]["prompt"], str) else "chat"

    def env(self) -> vf.Environment:
        """A single-turn environment whose rows are the data's prompts (no rubric: the
        rewards are given)."""
        return vf.SingleTurnEnv(dataset=self.rows, rubric=vf.Rubric(), message_type=self.message_type)

    def for_rows(self, rows: Sequence[Any]) -> GivenRollouts:
        prompts, completions, rewards, answers, group_ids = [], [], [], [], []
        for index, row in enumerate(rows):
            prompt, answer = _prompt_of(row)
            group = self.groups.get(prompt_key(prompt))
            if group is None:
                raise ValueError(f"get_batch returned a row whose prompt is not in the pre-generated "
                                 f"data: {prompt_key(prompt)[:200]}")
            for completion, reward in group:
                prompts.append(prompt)
                completions.append(completion)
                rewards.append(reward)
                answers.append(answer)
                group_ids.append(index)
        return GivenRollouts(prompts, completions, rewards, answers, group_ids)
