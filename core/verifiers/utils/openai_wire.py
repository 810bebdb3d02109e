"""OpenAI wire objects as plain JSON dicts: ``chat.completion`` and ``text_completion``
bodies, their choices, logprobs, usage, tool calls and the model list.

Both OpenAI-compatible servers of the project render their answers with these functions: the
scripted test server (``verifiers.testing``) and the trainer's in-process engine. vLLM's extras
(``prompt_token_ids``, per-choice ``token_ids``, ``stop_reason``) are rendered when given.
Standard library only: the scripted server runs this in a bare ``python -I`` process.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "assistant_message",
    "chat_choice",
    "chat_completion",
    "chat_logprobs",
    "model_list",
    "text_choice",
    "text_completion",
    "text_logprobs",
    "token_logprob",
    "tool_call",
    "usage",
]


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """``usage``: prompt, completion and total token counts."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """One entry of ``message.tool_calls`` (``arguments`` is the JSON string as sent)."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def assistant_message(content: str | None,
                      tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A chat choice's ``message``; ``tool_calls`` is left out when None."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return message


def token_logprob(token: str, logprob: float, token_bytes: Sequence[int] | None = None,
                  top_logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One entry of a chat choice's ``logprobs.content`` (or of its ``top_logprobs``, which is
    left out when None). ``token_bytes`` defaults to the token's UTF-8 bytes."""
    entry: dict[str, Any] = {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode("utf-8") if token_bytes is None else token_bytes),
    }
    if top_logprobs is not None:
        entry["top_logprobs"] = top_logprobs
    return entry


def chat_logprobs(content: list[dict[str, Any]]) -> dict[str, Any]:
    """A chat choice's ``logprobs`` from its :func:`token_logprob` entries."""
    return {"content": content, "refusal": None}


def text_logprobs(tokens: Sequence[str], token_logprobs: Sequence[float],
                  top_logprobs: list[dict[str, float]] | None) -> dict[str, Any]:
    """A text completion choice's (legacy) ``logprobs``; ``text_offset`` is each token's
    character offset in the completion text."""
    offsets, at = [], 0
    for token in tokens:
        offsets.append(at)
        at += len(token)
    return {"tokens": list(tokens), "token_logprobs": list(token_logprobs),
            "top_logprobs": top_logprobs, "text_offset": offsets}


def chat_choice(index: int, message: dict[str, Any], finish_reason: str,
                logprobs: dict[str, Any] | None = None, *,
                token_ids: Sequence[int] | None = None, **extras: Any) -> dict[str, Any]:
    """One chat choice; ``token_ids`` (vLLM's, when given) and ``extras`` (e.g. vLLM's
    ``stop_reason``) follow the standard fields."""
    choice: dict[str, Any] = {"index": index, "message": message,
                              "finish_reason": finish_reason, "logprobs": logprobs}
    choice.update(extras)
    if token_ids is not None:
        choice["token_ids"] = list(token_ids)
    return choice


def text_choice(index: int, text: str, finish_reason: str,
                logprobs: dict[str, Any] | None = None, *,
                prompt_token_ids: Sequence[int] | None = None,
                token_ids: Sequence[int] | None = None, **extras: Any) -> dict[str, Any]:
    """One text completion choice; vLLM's ``prompt_token_ids`` / ``token_ids`` are added
    together when ``token_ids`` is given; ``extras`` (e.g. ``stop_reason``) follow the
    standard fields."""
    choice: dict[str, Any] = {"index": index, "text": text, "finish_reason": finish_reason,
                              "logprobs": logprobs}
    choice.update(extras)
    if token_ids is not None:
        choice["prompt_token_ids"] = list(prompt_token_ids or [])
        choice["token_ids"] = list(token_ids)
    return choice


def _completion(kind: str, response_id: str, model: str, choices: list[dict[str, Any]],
                counts: dict[str, int], prompt_token_ids: Sequence[int] | None,
                created: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": response_id,
        "object": kind,
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": choices,
        "usage": counts,
        "system_fingerprint": None,
    }
    if prompt_token_ids is not None:
        body["prompt_token_ids"] = list(prompt_token_ids)
    return body


def chat_completion(response_id: str, model: str, choices: list[dict[str, Any]],
                    counts: dict[str, int], *, prompt_token_ids: Sequence[int] | None = None,
                    created: int | None = None) -> dict[str, Any]:
    """A ``chat.completion`` body (``counts`` from :func:`usage`; ``created`` defaults to
    now); vLLM's top-level ``prompt_token_ids`` when given."""
    return _completion("chat.completion", response_id, model, choices, counts,
                       prompt_token_ids, created)


def text_completion(response_id: str, model: str, choices: list[dict[str, Any]],
                    counts: dict[str, int], *, prompt_token_ids: Sequence[int] | None = None,
                    created: int | None = None) -> dict[str, Any]:
    """A ``text_completion`` body (``counts`` from :func:`usage`; ``created`` defaults to
    now); vLLM's top-level ``prompt_token_ids`` (the first prompt's) when given."""
    return _completion("text_completion", response_id, model, choices, counts,
                       prompt_token_ids, created)


def model_list(names: Iterable[str], owned_by: str) -> dict[str, Any]:
    """The ``GET /v1/models`` body for these model names."""
    data = [{"id": name, "object": "model", "created": 0, "owned_by": owned_by} for name in names]
    return {"object": "list", "data": data}
