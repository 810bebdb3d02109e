"""Teaching data: a question and its ground truth per row, from an environment or a dataset."""

from __future__ import annotations

from typing import Any

from verifiers_trainer.teacher.extraction import question_text

#: Columns read here; every other column reaches the reward functions by name.
_READ = ("prompt", "question", "answer", "ground_truth", "info", "task", "example_id")


def teaching_rows(data: Any, what: str = "train_dataset") -> list[dict[str, Any]] | None:
    """Rows ``{"question", "answer", "task", "info"}`` for a ``TeachingEnv``.

    ``data`` is an environment's dataset (``question`` / ``answer`` columns) or any dataset
    with a question (``question``, or a ``prompt``: text or chat messages, whose last user
    message is the question) and its ground truth (``ground_truth``, or ``answer``).
    """
    if data is None:
        return None
    from verifiers.utils.data_utils import to_dataset

    dataset = to_dataset(data)
    columns = set(dataset.column_names)
    if not columns & {"question", "prompt"}:
        raise ValueError(f"{what} needs a 'question' or 'prompt' column; it has {sorted(columns)}.")
    if not columns & {"ground_truth", "answer"}:
        raise ValueError(f"{what} needs the correct answers in a 'ground_truth' (or 'answer') "
                         f"column; it has {sorted(columns)}.")
    rows = []
    for index, row in enumerate(dataset.to_list()):
        question = row.get("question") or question_text(row.get("prompt"))
        truth = row.get("ground_truth") if row.get("ground_truth") is not None else row.get("answer")
        if not question or truth is None or not str(truth).strip():
            raise ValueError(f"{what} row {index} has no question or no ground truth: "
                             f"{str(row)[:200]}")
        given = row.get("info") if isinstance(row.get("info"), dict) else {}
        info = {**given, **{k: v for k, v in row.items() if k not in _READ}}
        info["question"] = str(question)
        rows.append({"question": str(question), "answer": str(truth),
                     "task": row.get("task") or "default", "info": info})
    return rows
