"""The three datasets: generated arithmetic (default, offline), GSM8K and competition MATH.

Every loader returns a ``datasets.Dataset`` with ``question``, ``answer``, ``difficulty``
and ``info`` columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from verifiers.utils.data_utils import extract_boxed_answer, load_gsm8k, local_data_dir
from vf_math_python.arithmetic import MIXED, arithmetic_splits, generate_arithmetic

DATASETS = ("arithmetic", "gsm8k", "math")
DEFAULT_ARITHMETIC_TRAIN = 2000
DEFAULT_ARITHMETIC_EVAL = 200
#: Competition MATH on the Hugging Face Hub: one config per subject, splits train/test,
#: columns problem, level ("Level 1".."Level 5"), type, solution (answer in \boxed{}).
MATH_HUB_ID = "EleutherAI/hendrycks_math"
MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                 "number_theory", "prealgebra", "precalculus")
SPLITS = ("train", "test")


def split_data_file(data_files: Any, split: str) -> str | None:
    """The local file for ``split``: ``data_files`` is a path (used for the training split)
    or a ``{"train": path, "test": path}`` dict."""
    if data_files is None:
        return None
    if isinstance(data_files, Mapping):
        unknown = set(data_files) - set(SPLITS)
        if unknown:
            raise ValueError(f"data_files keys must be 'train'/'test', got {sorted(unknown)}.")
        value = data_files.get(split)
        return None if value is None else str(value)
    if isinstance(data_files, str | Path):
        return str(data_files) if split == "train" else None
    raise TypeError(f"data_files must be a path or a dict of split -> path, got {data_files!r}.")


def load_split(
    dataset_name: str,
    split: str,
    n: int = -1,
    seed: int = 0,
    difficulty: Any = None,
    data_files: Any = None,
) -> Any:
    """``n`` rows (``-1``: all, or the default count for generated data) of one split."""
    from datasets import Dataset

    if dataset_name not in DATASETS:
        raise ValueError(f"Unknown dataset_name {dataset_name!r}; choose one of {list(DATASETS)}.")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}.")
    if dataset_name == "arithmetic":
        if data_files is not None:
            raise ValueError("The arithmetic dataset is generated; data_files does not apply.")
        count = n if n >= 0 else (DEFAULT_ARITHMETIC_TRAIN if split == "train"
                                  else DEFAULT_ARITHMETIC_EVAL)
        return Dataset.from_list(generate_arithmetic(count, seed, difficulty or MIXED, split))
    if dataset_name == "gsm8k":
        if difficulty is not None:
            raise ValueError("GSM8K has no difficulty levels; leave difficulty=None.")
        data = load_gsm8k(split, data_files=split_data_file(data_files, split))
        data = data.map(lambda row: {"difficulty": "gsm8k"})
    else:
        data = load_competition_math(split, split_data_file(data_files, split))
        levels = math_levels(difficulty)
        if levels is not None:
            data = data.filter(lambda row: row["difficulty"] in levels)
            if len(data) == 0:
                raise ValueError(f"No MATH problems at difficulty {difficulty!r}.")
    if n >= 0:
        data = data.select(range(min(n, len(data))))
    return data


def arithmetic_train_eval(
    num_train: int, num_eval: int, seed: int, difficulty: Any
) -> tuple[Any, Any]:
    """Disjoint generated train/eval datasets (``-1``: the default sizes)."""
    from datasets import Dataset

    num_train = DEFAULT_ARITHMETIC_TRAIN if num_train < 0 else num_train
    num_eval = DEFAULT_ARITHMETIC_EVAL if num_eval < 0 else num_eval
    train, evaluation = arithmetic_splits(num_train, num_eval, seed, difficulty or MIXED)
    return (Dataset.from_list(train) if train else None,
            Dataset.from_list(evaluation) if evaluation else None)


def math_levels(difficulty: Any) -> set[str] | None:
    """MATH level filter: ``3``, ``"Level 3"``, ``[4, 5]`` -> ``{"level 3", ...}``."""
    if difficulty is None or difficulty == "all":
        return None
    items = difficulty if isinstance(difficulty, Sequence) and not isinstance(difficulty, str) \
        else [difficulty]
    levels = set()
    for item in items:
        text = str(item).strip().lower().removeprefix("level").strip()
        if not text.isdigit() or not 1 <= int(text) <= 5:
            raise ValueError(f"MATH difficulty must be levels 1-5 (e.g. 3, 'Level 3', [4, 5]); "
                             f"got {item!r}.")
        levels.add(f"level {int(text)}")
    return levels


def _math_row(row: Mapping[str, Any]) -> dict[str, Any]:
    solution = row.get("solution") or ""
    answer = row.get("answer") or extract_boxed_answer(solution) or ""
    level = str(row.get("level") or "").strip().lower() or "unknown"
    return {
        "question": row["problem"],
        "answer": str(answer),
        "difficulty": level,
        "info": {"solution": solution, "subject": str(row.get("type") or row.get("subject") or "")},
    }


def load_competition_math(split: str, data_file: str | None = None) -> Any:
    """Competition MATH (Hendrycks et al.), answers taken from each solution's ``\\boxed{}``.

    Sources, in order: ``data_file`` (JSONL/JSON/Parquet with ``problem`` and ``solution``
    or ``answer``, optionally ``level`` and ``type``), ``$VF_DATA_DIR/math/<split>.jsonl``,
    then the Hub (``EleutherAI/hendrycks_math``, all seven subjects).
    """
    from datasets import Dataset, concatenate_datasets, load_dataset

    local = local_data_dir()
    if data_file is None and local is not None and (local / "math" / f"{split}.jsonl").is_file():
        data_file = str(local / "math" / f"{split}.jsonl")
    try:
        if data_file is not None:
            kind = "parquet" if data_file.endswith(".parquet") else "json"
            raw = load_dataset(kind, data_files=data_file, split="train")
        else:
            raw = concatenate_datasets(
                [load_dataset(MATH_HUB_ID, subject, split=split) for subject in MATH_SUBJECTS]
            )
    except Exception as exc:
        raise RuntimeError(
            f"Could not load competition MATH ({split}) from "
            f"{data_file or f'the Hugging Face Hub ({MATH_HUB_ID})'}: {exc}. Offline, put "
            f"math/{split}.jsonl (columns problem, solution, level, type) in $VF_DATA_DIR, "
            "or pass data_files=..."
        ) from exc
    if "problem" not in raw.column_names:
        raise ValueError(f"MATH data needs a 'problem' column; {data_file} has {raw.column_names}.")
    rows = [_math_row(row) for row in raw]
    missing = sum(1 for row in rows if not row["answer"])
    if missing == len(rows):
        raise ValueError("No MATH row has an answer (no 'answer' column and no \\boxed{} "
                         "in 'solution').")
    return Dataset.from_list([row for row in rows if row["answer"]])
