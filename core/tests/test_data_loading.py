"""GSM8K's three sources (data_files, $VF_DATA_DIR, the Hub) against local files, and the
GSM8K rows shipped for tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from verifiers.testing import fixture_data_dir
from verifiers.utils.data_utils import DATA_DIR_VAR, load_gsm8k, local_data_dir

SHIPPED = fixture_data_dir() / "gsm8k"


def shipped_rows(split: str) -> list[dict]:
    return [json.loads(line) for line in (SHIPPED / f"{split}.jsonl").read_text().splitlines()]


def test_shipped_rows_are_gsm8k_with_their_licence():
    for split in ("train", "test"):
        rows = shipped_rows(split)
        assert len(rows) == 40
        assert all(set(r) == {"question", "answer"} and "\n#### " in r["answer"] for r in rows)
    assert "MIT License" in (SHIPPED / "LICENSE").read_text()
    assert "openai/grade-school-math" in (SHIPPED.parent / "README.md").read_text()


def test_tests_read_the_shipped_rows():
    # The repository's conftest.py points $VF_DATA_DIR here, whatever the caller set.
    assert local_data_dir() == fixture_data_dir()


def test_data_files_wins_over_the_data_folder(tmp_path, monkeypatch):
    mini = tmp_path / "mini.jsonl"
    mini.write_text(json.dumps({"question": "What is 1,000+1?", "answer": "#### 1,001"}) + "\n")
    data = load_gsm8k("test", data_files=str(mini))
    assert data.to_list() == [{"question": "What is 1,000+1?", "answer": "1001",
                               "info": {"solution": "#### 1,001"}}]


def test_data_folder(tmp_path, monkeypatch):
    (tmp_path / "gsm8k").mkdir()
    rows = shipped_rows("train")[:3]
    (tmp_path / "gsm8k" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv(DATA_DIR_VAR, str(tmp_path))
    data = load_gsm8k("train")
    assert data["question"] == [r["question"] for r in rows]
    assert data["answer"] == [r["answer"].rsplit("#### ", 1)[1] for r in rows]
    assert data[0]["info"]["solution"] == rows[0]["answer"]


def test_bad_split():
    with pytest.raises(ValueError, match="splits 'train' and 'test', not 'validation'"):
        load_gsm8k("validation")


def _offline_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter with no data folder, the Hub offline and an empty
    Hugging Face cache: what a fresh machine without network sees."""
    env = {k: v for k, v in os.environ.items() if k != DATA_DIR_VAR}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(cwd / "hf-home"))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_hub_path_reads_the_hub_repository_layout(tmp_path):
    """The Hub call (``openai/gsm8k``, config ``main``) against a local folder laid out as
    the Hub repository is (``main/<split>-00000-of-00001.parquet``, configs in README.md);
    ``datasets`` resolves a local folder of that name before the Hub."""
    from datasets import Dataset

    repo = tmp_path / "openai" / "gsm8k"
    (repo / "main").mkdir(parents=True)
    for split in ("train", "test"):
        Dataset.from_list(shipped_rows(split)[:5]).to_parquet(
            str(repo / "main" / f"{split}-00000-of-00001.parquet"))
    (repo / "README.md").write_text(textwrap.dedent("""\
        ---
        configs:
        - config_name: main
          data_files:
          - split: train
            path: main/train-*
          - split: test
            path: main/test-*
        ---
        """))
    done = _offline_python("""
        import json
        from verifiers.utils.data_utils import load_gsm8k
        data = load_gsm8k("test")
        print(json.dumps([len(data), data[0]["answer"], data[0]["question"][:5]]))
    """, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [5, "18", "Janet"]


def test_offline_without_data_says_how_to_fix_it(tmp_path):
    done = _offline_python("""
        from verifiers.utils.data_utils import load_gsm8k
        try:
            load_gsm8k("train")
        except RuntimeError as exc:
            print("ERROR", exc)
    """, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ERROR Could not load GSM8K (train) from the Hugging Face Hub" in done.stdout
    assert "point $VF_DATA_DIR at a folder with gsm8k/train.jsonl" in done.stdout
