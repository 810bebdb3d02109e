"""The small datasets shipped with the core for tests (see ``data/README.md`` beside this
file): GSM8K rows in the layout ``$VF_DATA_DIR`` expects."""

from __future__ import annotations

from pathlib import Path

__all__ = ["fixture_data_dir"]


def fixture_data_dir() -> Path:
    """The folder of shipped test data (``gsm8k/train.jsonl``, ``gsm8k/test.jsonl``): a
    drop-in value for ``$VF_DATA_DIR``."""
    return Path(__file__).resolve().parent / "data"
