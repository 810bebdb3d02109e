"""TRL-style reward functions as an environment.

``GRPOTrainer(model, reward_funcs=[...], train_dataset=ds)`` follows TRL's convention: each
reward function is called with ``prompts``, ``completions`` and every other dataset column
as keyword lists, may be async, and returns one float per row (``None`` for rows it does not
score). A reward function may also be a sequence-classification reward model (a model id or
a loaded model), which scores prompt + completion. This module wraps them into a
single-turn environment with one rubric function per reward function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import verifiers as vf
from verifiers.utils.async_utils import maybe_await


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _reward_model_func(model: Any, tokenizer: Any, name: str) -> Any:
    import torch

    def score(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
        texts = []
        for prompt, completion in zip(prompts, completions, strict=True):
            if isinstance(prompt, list):
                messages = [*prompt, *completion]
                texts.append(tokenizer.apply_chat_template(messages, tokenize=False))
            else:
                texts.append(prompt + completion)
        batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True)
        with torch.no_grad():
            logits = model(**{k: v.to(model.device) for k, v in batch.items()}).logits
        return logits[:, 0].float().tolist()

    score.__name__ = name
    return score


def _load_reward_models(funcs: list[Any], processing_classes: list[Any]) -> list[Any]:
    out = []
    for index, func in enumerate(funcs):
        if callable(func) and not hasattr(func, "config"):
            out.append(func)
            continue
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if isinstance(func, str):
            model = AutoModelForSequenceClassification.from_pretrained(func, num_labels=1)
            name = func.rsplit("/", 1)[-1]
        else:
            model, name = func, type(func).__name__
        tokenizer = processing_classes[index] if index < len(processing_classes) else None
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(model.config._name_or_path)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.eval()
        out.append(_reward_model_func(model, tokenizer, name.replace("-", "_")))
    return out


def _wrap(func: Any) -> Any:
    """A per-rollout rubric function around a batched TRL-style reward function."""

    async def reward(prompt: Any, completion: Any, info: dict[str, Any], **kwargs: Any) -> float:
        columns = {key: [value] for key, value in (info or {}).items()}
        values = await maybe_await(func(prompts=[prompt], completions=[completion], **columns))
        value = next(iter(values)) if values is not None else None
        return math.nan if value is None else float(value)

    reward.__name__ = getattr(func, "__name__", "reward_func")
    return reward


def env_from_reward_funcs(
    reward_funcs: Any,
    train_dataset: Any,
    eval_dataset: Any = None,
    processing_class: Any = None,
    reward_processing_classes: Any = None,
    reward_weights: Sequence[float] | None = None,
) -> vf.Environment:
    """A single-turn environment over ``train_dataset`` (a ``prompt`` column: chat messages
    or text) scored by ``reward_funcs``. Other columns reach the functions by name."""
    if train_dataset is None:
        raise TypeError("reward_funcs=... needs train_dataset=... with a 'prompt' column.")
    funcs = _load_reward_models(_as_list(reward_funcs), _as_list(reward_processing_classes))
    dataset = _to_dataset(train_dataset)
    if "prompt" not in dataset.column_names:
        raise ValueError(
            f"train_dataset needs a 'prompt' column (chat messages or text); it has {dataset.column_names}."
        )
    message_type = "completion" if isinstance(dataset[0]["prompt"], str) else "chat"

    def with_info(ds: Any) -> Any:
        if ds is None:
            return None
        ds = _to_dataset(ds)
        extra = [c for c in ds.column_names if c not in ("prompt", "info")]
        rows = []
        for row in ds.to_list():
            rows.append({"prompt": row["prompt"], "answer": row.get("answer", ""),
                         "info": {c: row[c] for c in extra}})
        from datasets import Dataset

        return Dataset.from_list(rows)

    rubric = vf.Rubric(funcs=[_wrap(f) for f in funcs], weights=reward_weights)
    return vf.SingleTurnEnv(dataset=with_info(dataset), eval_dataset=with_info(eval_dataset),
                            rubric=rubric, message_type=message_type)


def _to_dataset(data: Any) -> Any:
    from verifiers.utils.data_utils import to_dataset

    return to_dataset(data)
