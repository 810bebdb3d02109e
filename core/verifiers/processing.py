"""From rollouts to token-level training samples.

The trainer learns from exactly the tokens the inference server saw and sampled. Every
model turn in a rollout's state (``state["turns"]``) keeps the server's prompt token ids,
completion token ids and sampler logprobs when the server returned them (vLLM with
``return_token_ids``). A multi-turn rollout becomes one sample when each turn's prompt
extends the previous turn's prompt + completion: model tokens get mask 1, environment
tokens in between (tool results, game feedback) mask 0. Where a chat template does not
extend the previous turn (templates that drop earlier reasoning), the rollout is split into
one sample per run of extending turns instead of failing.

Servers that do not return token ids (a hosted API) fall back to the tokenizer's chat
template (``processing_class``): the tokens are then re-derived from text, which is only an
approximation of what was sampled, and ``from_text`` marks those samples.

:func:`rollout_to_samples` does this for one rollout and applies one :class:`LengthPolicy`
to each sample, once: a prompt over its limit is flagged and its completion masked (never
cut: the loss must see the prompt that was sampled from); a completion is cut to the
completion limit and to what fits the sequence limit, and such a cut marks that sample
truncated; truncated samples are then masked and/or get reward 0 as the policy says.
:func:`process_env_results` (verifiers 0.1.x) and the trainer both use it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from verifiers.types import Messages, MessageType, State
from verifiers.utils.chat_template import tool_calls_as_text

logger = logging.getLogger(__name__)

__all__ = [
    "LengthPolicy",
    "ProcessedOutputs",
    "TokenSample",
    "process_env_results",
    "rollout_to_samples",
]


@dataclass
class ProcessedOutputs:
    """Training samples, one entry per sample in each list. Iterating yields one dict per
    sample; ``processed["completion_ids"]`` gives a column."""

    prompt_ids: list[list[int]] = field(default_factory=list)
    prompt_mask: list[list[int]] = field(default_factory=list)
    completion_ids: list[list[int]] = field(default_factory=list)
    completion_mask: list[list[int]] = field(default_factory=list)
    completion_logprobs: list[list[float] | None] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    rollout_indices: list[int] = field(default_factory=list)
    is_truncated: list[bool] = field(default_factory=list)
    prompt_too_long: list[bool] = field(default_factory=list)
    from_text: list[bool] = field(default_factory=list)
    num_dropped: int = 0

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, str):
            return getattr(self, key)
        return {f.name: getattr(self, f.name)[key] for f in fields(self) if f.name != "num_dropped"}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def _add(self, sample: TokenSample, rollout_index: int) -> None:
        self.prompt_ids.append(sample.prompt_ids)
        self.prompt_mask.append([1] * len(sample.prompt_ids))
        self.completion_ids.append(sample.completion_ids)
        self.completion_mask.append(sample.completion_mask)
        self.completion_logprobs.append(sample.completion_logprobs)
        self.rewards.append(sample.reward)
        self.rollout_indices.append(rollout_index)
        self.is_truncated.append(sample.is_truncated)
        self.prompt_too_long.append(sample.prompt_too_long)
        self.from_text.append(sample.from_text)


def _limit(name: str, value: int | None) -> int | None:
    """A length limit: ``None`` or -1 (verifiers 0.1.x's "no limit") mean none; else >= 1."""
    if value is None or value == -1:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{name} must be an integer >= 1, or None / -1 for no limit; got {value!r}."
        )
    return value


@dataclass(frozen=True)
class LengthPolicy:
    """The length limits of token samples and what happens to a truncated sample.

    - ``max_prompt_length``: a rollout whose prompt (the first model turn's) is longer is
      flagged ``prompt_too_long`` and its completions masked; the prompt is never cut.
    - ``max_completion_length``: completion tokens (environment tokens included) kept per
      sample; a longer completion is cut and the sample marked truncated.
    - ``max_seq_len``: prompt + completion per sample; the completion is cut to fit and the
      sample marked truncated.
    - ``mask_truncated``: truncated samples keep their tokens with mask 0.
    - ``zero_truncated``: truncated samples get reward 0.

    A sample is truncated when a cut above shortened it, when one of its own model turns
    stopped at the token limit (``finish_reason == "length"``), or when it is the rollout's
    last sample and the rollout ended truncated (``state["is_truncated"]``). The limits
    take ``None`` or -1 for no limit.
    """

    max_prompt_length: int | None = None
    max_completion_length: int | None = None
    max_seq_len: int | None = None
    mask_truncated: bool = False
    zero_truncated: bool = False

    def __post_init__(self) -> None:
        for name in ("max_prompt_length", "max_completion_length", "max_seq_len"):
            object.__setattr__(self, name, _limit(name, getattr(self, name)))


@dataclass
class TokenSample:
    """One training sample of a rollout: the tokens the model saw and wrote.

    ``completion_mask`` is 1 on the tokens trained on (model tokens), 0 on environment
    tokens and on masked (truncated, over-long prompt) samples. ``completion_logprobs`` are
    the sampler's, ``None`` when not reported."""

    prompt_ids: list[int]
    completion_ids: list[int]
    completion_mask: list[int]
    completion_logprobs: list[float] | None
    reward: float
    is_truncated: bool = False
    prompt_too_long: bool = False
    from_text: bool = False


def _ids(value: Any) -> list[int]:
    """Token ids from whatever a tokenizer returned (a list, or a BatchEncoding/dict)."""
    if isinstance(value, dict) or hasattr(value, "keys"):
        value = value["input_ids"]
    if value and isinstance(value[0], list):
        value = value[0]
    return list(value)


def _template(tokenizer: Any, messages: list[dict[str, Any]], generation_prompt: bool) -> list[int]:
    return _ids(tokenizer.apply_chat_template(
        tool_calls_as_text(messages, tokenizer), tokenize=True,
        add_generation_prompt=generation_prompt,
    ))


def _samples_from_turns(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Samples built from the server's token ids; split where a turn does not extend."""
    samples: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for turn in turns:
        prompt = list(turn["prompt_token_ids"])
        completion = list(turn["completion_token_ids"])
        logprobs = turn.get("completion_logprobs")
        logprobs = list(logprobs) if logprobs is not None and len(logprobs) == len(completion) else None
        if current is not None:
            seen = current["prompt_ids"] + current["completion_ids"]
            if prompt[: len(seen)] == seen:
                env_tokens = prompt[len(seen):]
                current["completion_ids"] += env_tokens + completion
                current["completion_mask"] += [0] * len(env_tokens) + [1] * len(completion)
                if current["completion_logprobs"] is not None and logprobs is not None:
                    current["completion_logprobs"] += [0.0] * len(env_tokens) + logprobs
                else:
                    current["completion_logprobs"] = None
                current["hit_length"] = current["hit_length"] or turn.get("finish_reason") == "length"
                continue
            samples.append(current)
        current = {
            "prompt_ids": prompt,
            "completion_ids": completion,
            "completion_mask": [1] * len(completion),
            "completion_logprobs": logprobs,
            "hit_length": turn.get("finish_reason") == "length",
        }
    if current is not None:
        samples.append(current)
    return samples


def _samples_from_text(
    prompt: Messages, completion: Messages, tokenizer: Any, message_type: MessageType
) -> list[dict[str, Any]]:
    """Fallback when the server gave no token ids: re-tokenize with the chat template."""
    from verifiers.envs.tool_call import plain_messages

    prompt, completion = plain_messages(prompt), plain_messages(completion)
    if message_type == "completion" or isinstance(prompt, str):
        assert isinstance(prompt, str) and isinstance(completion, str)
        prompt_ids = _ids(tokenizer(prompt, add_special_tokens=False))
        full = _ids(tokenizer(prompt + completion, add_special_tokens=False))
        completion_ids = full[len(prompt_ids):]
        return [{
            "prompt_ids": prompt_ids, "completion_ids": completion_ids,
            "completion_mask": [1] * len(completion_ids), "completion_logprobs": None,
        }]
    assert isinstance(completion, list)
    prompt_ids = _template(tokenizer, list(prompt), True)
    history = list(prompt)
    ids: list[int] = []
    mask: list[int] = []
    seen = prompt_ids
    for message in completion:
        history.append(message)
        if message.get("role") == "assistant":
            full = _template(tokenizer, history, False)
            new, is_model = full[len(seen):], 1
        else:
            full = _template(tokenizer, history, True)
            new, is_model = full[len(seen):], 0
        if full[: len(seen)] != seen:
            logger.debug("chat template does not extend; text fallback is approximate")
        ids += new
        mask += [is_model] * len(new)
        seen = full
    return [{
        "prompt_ids": prompt_ids, "completion_ids": ids,
        "completion_mask": mask, "completion_logprobs": None,
    }]


def _apply(policy: LengthPolicy, sample: TokenSample, prompt_too_long: bool, ends_truncated: bool) -> None:
    """The length policy on one sample, in place (see :class:`LengthPolicy`)."""
    room = policy.max_completion_length
    if policy.max_seq_len is not None:
        fits = max(0, policy.max_seq_len - len(sample.prompt_ids))
        room = fits if room is None else min(room, fits)
    if room is not None and len(sample.completion_ids) > room:
        sample.completion_ids = sample.completion_ids[:room]
        sample.completion_mask = sample.completion_mask[:room]
        if sample.completion_logprobs is not None:
            sample.completion_logprobs = sample.completion_logprobs[:room]
        sample.is_truncated = True
    sample.is_truncated = sample.is_truncated or ends_truncated
    sample.prompt_too_long = prompt_too_long
    if prompt_too_long or (sample.is_truncated and policy.mask_truncated):
        sample.completion_mask = [0] * len(sample.completion_mask)
    if sample.is_truncated and policy.zero_truncated:
        sample.reward = 0.0


def rollout_to_samples(
    prompt: Messages,
    completion: Messages,
    state: State,
    reward: float,
    policy: LengthPolicy | None = None,
    *,
    processing_class: Any = None,
    message_type: MessageType = "chat",
    mask_env_responses: bool = True,
) -> list[TokenSample]:
    """The token samples of one rollout (see the module docstring), with ``policy``'s
    limits applied once to each.

    Token ids come from ``state["turns"]`` (what the server returned); without them the
    text is tokenized with ``processing_class``'s chat template (``from_text``).
    ``mask_env_responses=False`` trains on environment tokens too.
    """
    policy = policy or LengthPolicy()
    state = state or {}
    turns = state.get("turns") or []
    have_ids = bool(turns) and all(
        t.get("prompt_token_ids") is not None and t.get("completion_token_ids") is not None
        for t in turns
    )
    if have_ids:
        raw, from_text = _samples_from_turns(turns), False
    else:
        if processing_class is None:
            raise ValueError(
                "These rollouts carry no token ids (the server did not return them), so a "
                "tokenizer is needed: pass processing_class=tokenizer, or generate with "
                "sampling_args={'return_token_ids': True, 'logprobs': True} on vLLM."
            )
        raw, from_text = _samples_from_text(prompt, completion, processing_class, message_type), True
    limit = policy.max_prompt_length
    prompt_too_long = bool(raw) and limit is not None and len(raw[0]["prompt_ids"]) > limit
    samples = []
    for position, item in enumerate(raw):
        mask = item["completion_mask"] if mask_env_responses else [1] * len(item["completion_mask"])
        sample = TokenSample(item["prompt_ids"], item["completion_ids"], mask,
                             item["completion_logprobs"], float(reward),
                             is_truncated=bool(item.get("hit_length")), from_text=from_text)
        last = position == len(raw) - 1
        _apply(policy, sample, prompt_too_long, last and bool(state.get("is_truncated")))
        samples.append(sample)
    return samples


def process_env_results(
    prompts: Sequence[Messages],
    completions: Sequence[Messages],
    states: Sequence[State],
    rewards: Sequence[float],
    processing_class: Any = None,
    message_type: MessageType = "chat",
    mask_env_responses: bool = True,
    mask_truncated_completions: bool = False,
    zero_truncated_completions: bool = False,
    max_seq_len: int | None = None,
    drop_failed: bool = True,
) -> ProcessedOutputs:
    """Turn rollouts into training samples (verifiers 0.1.x's function; one
    :func:`rollout_to_samples` per rollout).

    Args:
        mask_env_responses: environment tokens between model turns get mask 0 (default);
            ``False`` trains on them too.
        mask_truncated_completions: truncated samples keep their tokens but mask 0.
        zero_truncated_completions: truncated samples get reward 0.
        max_seq_len: cut completions so prompt + completion fits (such a sample counts as
            truncated); ``None`` or -1: no limit.
        drop_failed: leave out rollouts whose state records an error (counted in
            ``num_dropped``).
    """
    n = len(prompts)
    if not (len(completions) == len(states) == len(rewards) == n):
        raise ValueError(
            "process_env_results needs prompts, completions, states and rewards of the same "
            f"length; got {n}, {len(completions)}, {len(states)}, {len(rewards)}."
        )
    policy = LengthPolicy(max_seq_len=max_seq_len, mask_truncated=mask_truncated_completions,
                          zero_truncated=zero_truncated_completions)
    out = ProcessedOutputs()
    for index in range(n):
        state = states[index] or {}
        if drop_failed and state.get("error"):
            out.num_dropped += 1
            continue
        for sample in rollout_to_samples(
            prompts[index], completions[index], state, rewards[index], policy,
            processing_class=processing_class, message_type=message_type,
            mask_env_responses=mask_env_responses,
        ):
            out._add(sample, index)
    return out
