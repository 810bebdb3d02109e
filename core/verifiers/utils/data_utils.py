"""Dataset helpers: turning question/answer rows into prompts, and answer extraction."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from verifiers.types import ChatMessage, Messages, MessageType


def extract_boxed_answer(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced."""
    if not isinstance(text, str):
        return None
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        rest = text[start:].split(None, 1)
        return rest[1].split("$")[0].strip() if len(rest) > 1 and text[start:].startswith("\\boxed ") else None
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i].strip()
    return None


_GSM8K_ANSWER = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


def extract_hash_answer(text: str) -> str | None:
    """GSM8K's final answer: what follows ``####``, with thousands separators removed."""
    if not isinstance(text, str):
        return None
    match = _GSM8K_ANSWER.search(text)
    if not match:
        return None
    return match.group(1).replace(",", "").strip()


def format_prompt(
    question: str,
    system_prompt: str | None = None,
    few_shot: Sequence[ChatMessage] | None = None,
    message_type: MessageType = "chat",
) -> Messages:
    """Build the prompt for one question: system prompt, few-shot messages, the question."""
    if message_type == "completion":
        parts = [system_prompt] if system_prompt else []
        for message in few_shot or []:
            parts.append(str(message.get("content", "")))
        parts.append(question)
        return "\n\n".join(parts)
    messages: list[ChatMessage] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.extend(dict(m) for m in few_shot or [])
    messages.append({"role": "user", "content": question})
    return messages


def to_dataset(data: Any) -> Any:
    """A ``datasets.Dataset`` from a Dataset, a list of row dicts or a dict of columns."""
    from datasets import Dataset, DatasetDict

    if data is None or isinstance(data, Dataset):
        return data
    if isinstance(data, DatasetDict):
        raise TypeError(
            f"Got a DatasetDict with splits {list(data)}; pass one split, e.g. data['train']."
        )
    if isinstance(data, Mapping):
        return Dataset.from_dict(dict(data))
    if isinstance(data, Iterable) and not isinstance(data, str | bytes):
        rows = list(data)
        if rows and not all(isinstance(r, Mapping) for r in rows):
            raise TypeError("A dataset given as a list must be a list of dicts (one per row).")
        return Dataset.from_list([dict(r) for r in rows])
    raise TypeError(
        f"Cannot use {type(data).__name__} as a dataset; pass a datasets.Dataset, "
        "a list of dicts or a dict of columns."
    )


def format_dataset(
    dataset: Any,
    system_prompt: str | None = None,
    few_shot: Sequence[ChatMessage] | None = None,
    message_type: MessageType = "chat",
    question_key: str = "question",
    answer_key: str = "answer",
) -> Any:
    """Give a dataset the columns environments read: ``prompt``, ``answer``, ``task``,
    ``example_id`` (and keep ``info`` and anything else it has).

    Rows that already have a ``prompt`` keep it (a system prompt is prepended to chat
    prompts that lack one); otherwise the prompt is built from ``question_key``.
    """
    from datasets import Dataset

    dataset = to_dataset(dataset)
    if dataset is None:
        return None
    columns = set(dataset.column_names)
    if "prompt" not in columns and question_key not in columns:
        raise ValueError(
            f"The dataset has neither a 'prompt' nor a {question_key!r} column "
            f"(it has {sorted(columns)}). Rename the question column, or pass "
            "question_key=... to the environment."
        )
    rows = dataset.to_list()
    for index, row in enumerate(rows):
        if "prompt" in columns and row.get("prompt") is not None:
            prompt = row["prompt"]
            if message_type == "chat":
                if isinstance(prompt, str):
                    prompt = format_prompt(prompt, system_prompt, few_shot, "chat")
                elif system_prompt and (not prompt or prompt[0].get("role") != "system"):
                    prompt = [{"role": "system", "content": system_prompt}, *prompt]
            row["prompt"] = prompt
        else:
            row["prompt"] = format_prompt(str(row[question_key]), system_prompt, few_shot, message_type)
        if answer_key != "answer" and answer_key in row:
            row["answer"] = row[answer_key]
        row.setdefault("answer", "")
        if row["answer"] is None:
            row["answer"] = ""
        if not row.get("task"):
            row["task"] = "default"
        if row.get("example_id") is None:
            row["example_id"] = index
    return Dataset.from_list(rows)


DATA_DIR_VAR = "VF_DATA_DIR"


def local_data_dir() -> Any:
    """The local data folder named by ``$VF_DATA_DIR`` (a ``pathlib.Path``), or ``None``.

    It holds offline copies of public datasets, e.g. ``gsm8k/train.jsonl``; loaders use it
    instead of the Hugging Face Hub when it is set.
    """
    import os
    from pathlib import Path

    value = os.environ.get(DATA_DIR_VAR)
    return Path(value) if value else None


def load_gsm8k(split: str = "train", data_files: str | None = None) -> Any:
    """GSM8K as ``question`` / ``answer`` rows (``answer`` is the final number; the worked
    solution is kept in ``info["solution"]``).

    Sources, in order: ``data_files`` (a local JSONL with GSM8K's columns), the folder in
    ``$VF_DATA_DIR`` (``gsm8k/<split>.jsonl``), the Hub (``openai/gsm8k``, config ``main``).
    """
    from datasets import load_dataset

    if split not in ("train", "test"):
        raise ValueError(f"GSM8K has splits 'train' and 'test', not {split!r}.")
    local = local_data_dir()
    if data_files is None and local is not None and (local / "gsm8k" / f"{split}.jsonl").is_file():
        data_files = str(local / "gsm8k" / f"{split}.jsonl")
    try:
        if data_files is not None:
            raw = load_dataset("json", data_files=data_files, split="train")
        else:
            raw = load_dataset("openai/gsm8k", "main", split=split)
    except Exception as exc:
        raise RuntimeError(
            f"Could not load GSM8K ({split}) from {data_files or 'the Hugging Face Hub'}: {exc}. "
            f"Offline, point ${DATA_DIR_VAR} at a folder with gsm8k/{split}.jsonl, or pass "
            "data_files=..."
        ) from exc
    rows = [
        {"question": r["question"], "answer": extract_hash_answer(r["answer"]) or "",
         "info": {"solution": r["answer"]}}
        for r in raw
    ]
    from datasets import Dataset

    return Dataset.from_list(rows)
