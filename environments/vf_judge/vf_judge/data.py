"""Question/reference-answer datasets for the judge environment.

``gsm8k`` (the default) comes from :func:`verifiers.utils.data_utils.load_gsm8k`: the Hub,
or ``$VF_DATA_DIR/gsm8k/<split>.jsonl``, or ``data_files``. Any other ``dataset_name`` is a
Hugging Face dataset (or, with ``data_files``, local JSON/JSONL files) with ``question`` and
``answer`` columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DataFiles = str | Mapping[str, str] | None

_GSM8K_NAMES = {"gsm8k", "openai/gsm8k"}


def split_files(data_files: DataFiles, split: str) -> str | None:
    """The local file for ``split``: a plain path serves every split; a mapping
    ``{"train": path, "test": path}`` names one per split (a missing split gives None,
    and that split is not loaded)."""
    if data_files is None or isinstance(data_files, str):
        return data_files
    if isinstance(data_files, Mapping):
        unknown = set(data_files) - {"train", "test"}
        if unknown:
            raise ValueError(
                f"data_files has unknown splits {sorted(unknown)}; use a path, or "
                "{'train': path, 'test': path}."
            )
        return data_files.get(split)
    raise TypeError(
        f"data_files must be a path or a {{'train': path, 'test': path}} mapping, "
        f"got {type(data_files).__name__}."
    )


def _generic_split(dataset_name: str, split: str, path: str | None) -> Any:
    """A question/answer split of any dataset (local JSON files or the Hub)."""
    from datasets import load_dataset

    try:
        if path is not None:
            raw = load_dataset("json", data_files=path, split="train")
        else:
            raw = load_dataset(dataset_name, split=split)
    except Exception as exc:
        raise RuntimeError(
            f"Could not load the {split!r} split of {dataset_name!r} from "
            f"{path or 'the Hugging Face Hub'}: {exc}. Pass data_files=... for local files."
        ) from exc
    missing = {"question", "answer"} - set(raw.column_names)
    if missing:
        raise ValueError(
            f"{path or dataset_name} ({split}) lacks the column(s) {sorted(missing)}; the "
            f"judge environment needs 'question' and 'answer' (it has {raw.column_names})."
        )
    from datasets import Dataset

    keep = ("question", "answer", "info", "task")
    rows = [{k: row[k] for k in keep if k in row} for row in raw.to_list()]
    for row in rows:  # references are compared as text; JSON may give numbers
        row["question"], row["answer"] = str(row["question"]), str(row["answer"])
    return Dataset.from_list(rows)


def load_split(dataset_name: str, split: str, data_files: DataFiles = None) -> Any:
    """One split (``"train"`` or ``"test"``) as a ``datasets.Dataset`` with ``question``
    and ``answer`` columns (GSM8K also keeps the worked solution in ``info``).

    Returns None when ``data_files`` is a mapping without this split."""
    path = split_files(data_files, split)
    if path is None and isinstance(data_files, Mapping):
        return None
    if dataset_name.lower() in _GSM8K_NAMES:
        from verifiers.utils.data_utils import load_gsm8k

        return load_gsm8k(split, path)
    return _generic_split(dataset_name, split, path)


def take(dataset: Any, n: int) -> Any:
    """The first ``n`` rows (all of them for ``n < 0``)."""
    if n < 0 or n >= len(dataset):
        return dataset
    return dataset.select(range(n))
