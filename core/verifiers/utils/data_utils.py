"""Dataset helpers: turning question/answer rows into prompts, and answer extraction."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from verifiers.types import ChatMessage, Messages, MessageType

#: Public: helpers other packages (the trainer among them) may use.
__all__ = [
    "extract_boxed_answer",
    "extract_hash_answer",
    "format_dataset",
    "format_prompt",
    "load_example_dataset",
    "to_dataset",
]


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


# -- verifiers 0.1.x example datasets ----------------------------------------------------------

#: verifiers 0.1.x's system prompts for boxed answers.
BOXED_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
THINK_BOXED_SYSTEM_PROMPT = (
    "Think step-by-step inside <think>...</think> tags. Then, give your final answer inside \\boxed{}."
)


def strip_non_numeric(text: str) -> str:
    """Only the digits and dots of ``text``."""
    return "".join(c for c in str(text) if c.isdigit() or c == ".")


def _mcq(question: str, options: Sequence[str], letters: Sequence[str]) -> str:
    lines = [f"Question: {question}", ""]
    lines += [f"{letter}: {option}" for letter, option in zip(letters, options, strict=False)]
    return "\n".join(lines)


def _gpqa_row(row: Mapping[str, Any], rng: Any) -> dict[str, str]:
    options = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"],
               row["Incorrect Answer 3"]]
    order = list(range(4))
    rng.shuffle(order)  # order[k]: which option is shown as letter k
    letters = "ABCD"
    shown = [options[i] for i in order]
    return {"question": _mcq(row["Question"], shown, letters), "answer": letters[order.index(0)]}


def _mmlu_row(row: Mapping[str, Any], rng: Any) -> dict[str, str]:
    letters = "ABCD"
    return {"question": _mcq(row["question"], row["choices"], letters),
            "answer": letters[int(row["answer"])]}


def _mmlu_pro_row(row: Mapping[str, Any], rng: Any) -> dict[str, str]:
    letters = "ABCDEFGHIJ"
    return {"question": _mcq(row["question"], row["options"], letters), "answer": str(row["answer"])}


def _openbookqa_row(row: Mapping[str, Any], rng: Any) -> dict[str, str]:
    choices = [f"{label}. {text}" for label, text in zip(row["choices"]["label"], row["choices"]["text"], strict=True)]
    question = f"Question: {row['question_stem']}\n\nChoices:\n" + "\n".join(choices)
    return {"question": question, "answer": row["answerKey"]}


def _simple(question: str, answer: str, convert: Any = str) -> Any:
    return lambda row, rng: {"question": row[question], "answer": convert(row[answer])}


#: name -> (Hub dataset, config names, default split, row -> {"question", "answer"}, row filter)
EXAMPLE_DATASETS: dict[str, tuple[str, tuple[str | None, ...], str, Any, Any]] = {
    "aime2024": ("HuggingFaceH4/aime_2024", (None,), "train",
                 _simple("problem", "answer", lambda a: str(int(a))), None),
    "aime2025": ("opencompass/AIME2025", ("AIME2025-I", "AIME2025-II"), "test",
                 _simple("question", "answer", strip_non_numeric), None),
    "amc2023": ("knoveleng/AMC-23", (None,), "train", _simple("problem", "answer"), None),
    "gpqa_diamond": ("Idavidrein/gpqa", ("gpqa_diamond",), "train", _gpqa_row, None),
    "gpqa_main": ("Idavidrein/gpqa", ("gpqa_main",), "train", _gpqa_row, None),
    "gsm8k": ("openai/gsm8k", ("main",), "test",
              lambda row, rng: {"question": row["question"],
                                "answer": extract_hash_answer(row["answer"]) or ""}, None),
    "math": ("chiayewken/competition_math", (None,), "train",
             lambda row, rng: {"question": row["problem"],
                               "answer": extract_boxed_answer(row["solution"]) or ""}, None),
    "math500": ("HuggingFaceH4/MATH-500", (None,), "test", _simple("problem", "answer"), None),
    "mmlu": ("cais/mmlu", ("all",), "dev", _mmlu_row, None),
    "mmlu_pro": ("TIGER-Lab/MMLU-Pro", (None,), "validation", _mmlu_pro_row, None),
    "openbookqa": ("allenai/openbookqa", ("main",), "train", _openbookqa_row, None),
    "openrs": ("knoveleng/open-rs", (None,), "train", _simple("problem", "answer"), None),
    "openrs_easy": ("knoveleng/open-rs", (None,), "train", _simple("problem", "answer"),
                    lambda row: row.get("level") == "Easy"),
    "openrs_hard": ("knoveleng/open-rs", (None,), "train", _simple("problem", "answer"),
                    lambda row: row.get("level") == "Hard"),
    "prime_code": ("PrimeIntellect/verifiable-coding-problems", (None,), "train",
                   _simple("prompt", "verification_info"),
                   lambda row: str(row.get("prompt", "")).startswith(
                       "Solve the following coding problem using the programming language python:")),
}


def _raw_example_rows(name: str, split: str) -> list[dict[str, Any]]:
    """The source rows: ``$VF_DATA_DIR/<name>/<split>.jsonl`` when present (GSM8K through
    :func:`load_gsm8k`), else the Hugging Face Hub."""
    import json

    local = local_data_dir()
    path = local / name / f"{split}.jsonl" if local is not None else None
    if name == "gsm8k" and split in ("train", "test"):
        return [{"question": r["question"], "answer": f"#### {r['answer']}"}
                for r in load_gsm8k(split).to_list()]
    if path is not None and path.is_file():
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    hub, configs, _, _, _ = EXAMPLE_DATASETS[name]
    from datasets import load_dataset

    rows: list[dict[str, Any]] = []
    try:
        for config in configs:
            rows += load_dataset(hub, config, split=split).to_list()
    except Exception as exc:
        where = f"{path} (not found)" if path is not None else f"${DATA_DIR_VAR} (unset)"
        raise RuntimeError(
            f"Could not load example dataset {name!r} ({split}): not in {where}, and the "
            f"Hugging Face Hub ({hub}) failed: {type(exc).__name__}: {exc}. Offline, put the "
            f"rows in ${DATA_DIR_VAR}/{name}/{split}.jsonl."
        ) from exc
    return rows


def load_example_dataset(
    name: str = "gsm8k", split: str | None = None, n: int | None = None, seed: int = 0
) -> Any:
    """A verifiers 0.1.x example dataset as ``question`` / ``answer`` rows.

    ``name`` is one of :data:`EXAMPLE_DATASETS` (``gsm8k``, ``math``, ``math500``,
    ``aime2024``, ``gpqa_diamond``, ``mmlu``, ...); ``split`` defaults to the dataset's usual
    one (GSM8K: ``test``); ``n`` keeps a shuffled sample of that size (shuffled with
    ``seed``). Rows come from ``$VF_DATA_DIR/<name>/<split>.jsonl`` when present, else the
    Hub.
    """
    import random

    from datasets import Dataset

    if name not in EXAMPLE_DATASETS:
        raise ValueError(
            f"Unknown example dataset {name!r}; available: {', '.join(sorted(EXAMPLE_DATASETS))}. "
            "For other data, build a Dataset with 'question' and 'answer' columns."
        )
    _, _, default_split, convert, keep = EXAMPLE_DATASETS[name]
    split = split or default_split
    rows = _raw_example_rows(name, split)
    if keep is not None:
        rows = [r for r in rows if keep(r)]
    if n is not None and n > 0:
        random.Random(seed).shuffle(rows)
        rows = rows[:n]
    rng = random.Random(seed)
    return Dataset.from_list([convert(r, rng) for r in rows])
