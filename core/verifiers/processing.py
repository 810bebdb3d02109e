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
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from verifiers.types import Messages, MessageType, State

logger = logging.getLogger(__name__)


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

    def _add(self, sample: dict[str, Any]) -> None:
        for name, value in sample.items():
            getattr(self, name).append(value)


def _ids(value: Any) -> list[int]:
    """Token ids from whatever a tokenizer returned (a list, or a BatchEncoding/dict)."""
    if isinstance(value, dict) or hasattr(value, "keys"):
        value = value["input_ids"]
    if value and isinstance(value[0], list):
        value = value[0]
    return list(value)


def _template(tokenizer: Any, messages: list[dict[str, Any]], generation_prompt: bool) -> list[int]:
    return _ids(tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=generation_prompt
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
                continue
            samples.append(current)
        current = {
            "prompt_ids": prompt,
            "completion_ids": completion,
            "completion_mask": [1] * len(completion),
            "completion_logprobs": logprobs,
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
    """Turn rollouts into training samples (see the module docstring).

    Args:
        mask_env_responses: environment tokens between model turns get mask 0 (default);
            ``False`` trains on them too.
        mask_truncated_completions: truncated rollouts keep their tokens but mask 0.
        zero_truncated_completions: truncated rollouts get reward 0.
        max_seq_len: cut completions so prompt + completion fits.
        drop_failed: leave out rollouts whose state records an error (counted in
            ``num_dropped``).
    """
    n = len(prompts)
    if not (len(completions) == len(states) == len(rewards) == n):
        raise ValueError(
            "process_env_results needs prompts, completions, states and rewards of the same "
            f"length; got {n}, {len(completions)}, {len(states)}, {len(rewards)}."
        )
    out = ProcessedOutputs()
    for index in range(n):
        state = states[index] or {}
        if drop_failed and state.get("error"):
            out.num_dropped += 1
            continue
        turns = state.get("turns") or []
        have_ids = bool(turns) and all(
            t.get("prompt_token_ids") is not None and t.get("completion_token_ids") is not None
            for t in turns
        )
        if have_ids:
            samples, from_text = _samples_from_turns(turns), False
        else:
            if processing_class is None:
                raise ValueError(
                    "These rollouts carry no token ids (the server did not return them), so a "
                    "tokenizer is needed: pass processing_class=tokenizer, or generate with "
                    "sampling_args={'return_token_ids': True, 'logprobs': True} on vLLM."
                )
            samples = _samples_from_text(prompts[index], completions[index], processing_class, message_type)
            from_text = True
        truncated = bool(state.get("is_truncated"))
        reward = 0.0 if (truncated and zero_truncated_completions) else float(rewards[index])
        for sample in samples:
            if not mask_env_responses:
                sample["completion_mask"] = [1] * len(sample["completion_mask"])
            if max_seq_len is not None:
                room = max(0, max_seq_len - len(sample["prompt_ids"]))
                if len(sample["completion_ids"]) > room:
                    truncated = True
                    for key in ("completion_ids", "completion_mask"):
                        sample[key] = sample[key][:room]
                    if sample["completion_logprobs"] is not None:
                        sample["completion_logprobs"] = sample["completion_logprobs"][:room]
            if truncated and mask_truncated_completions:
                sample["completion_mask"] = [0] * len(sample["completion_mask"])
            out._add({
                **sample,
                "prompt_mask": [1] * len(sample["prompt_ids"]),
                "rewards": reward,
                "rollout_indices": index,
                "is_truncated": truncated,
                "from_text": from_text,
            })
    return out
