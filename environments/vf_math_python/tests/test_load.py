"""load_environment variants and the dataset loaders (GSM8K from $VF_DATA_DIR, local MATH)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import verifiers as vf
from verifiers.utils.data_utils import local_data_dir
from vf_math_python import MathPythonEnv, load_environment
from vf_math_python.data import load_competition_math, load_split, math_levels

needs_gsm8k = pytest.mark.skipif(
    local_data_dir() is None or not (local_data_dir() / "gsm8k" / "test.jsonl").is_file(),
    reason="needs $VF_DATA_DIR/gsm8k (set by the repository's conftest.py)",
)


def test_default_is_arithmetic_with_the_python_tool():
    env = load_environment()
    assert isinstance(env, MathPythonEnv)
    assert len(env.dataset) == 2000 and len(env.eval_dataset) == 100
    assert [t["function"]["name"] for t in env.oai_tools] == ["python"]
    schema = env.oai_tools[0]["function"]
    assert schema["parameters"]["required"] == ["code"]
    assert "10 s per call" in schema["description"]
    assert set(env.dataset.column_names) >= {"prompt", "answer", "difficulty", "info"}
    assert "\\boxed{}" in env.dataset[0]["prompt"][0]["content"]
    assert env.rubric.get_reward_func_names() == [
        "correct_answer", "format_penalty", "total_tool_calls", "python_calls", "tool_errors"]
    assert env.rubric.get_reward_weights() == [1.0, -0.1, 0.0, 0.0, 0.0]


def test_single_turn_variant():
    env = load_environment(use_tools=False, num_train_examples=10, num_eval_examples=5)
    assert isinstance(env, vf.SingleTurnEnv) and not isinstance(env, vf.ToolEnv)
    assert env.rubric.get_reward_func_names() == ["correct_answer", "format_penalty"]
    assert "python" not in env.dataset[0]["prompt"][0]["content"]


def test_loading_by_name_and_arguments():
    env = vf.load_environment("vf-math-python", num_train_examples=20, num_eval_examples=10,
                              difficulty="hard", seed=7, timeout=3, memory_mb=256,
                              persistent_python=True, max_turns=3)
    assert isinstance(env, MathPythonEnv)
    assert env.persistent_python and env.max_turns == 3
    assert env.sandbox_limits.timeout == 3 and env.sandbox_limits.memory_mb == 256
    assert set(env.dataset["difficulty"]) == {"hard"}
    assert "persist between" in env.dataset[0]["prompt"][0]["content"]
    same = vf.load_environment("math-python", num_train_examples=20, num_eval_examples=10,
                               difficulty="hard", seed=7)
    assert same.dataset["answer"] == env.dataset["answer"]


def test_custom_system_prompt_and_think():
    env = load_environment(system_prompt="Be brief.", use_think=True, num_train_examples=5,
                           num_eval_examples=0)
    assert env.dataset[0]["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert isinstance(env.parser, vf.ThinkParser)
    assert env.eval_dataset is None


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="Unknown dataset_name 'mnist'"):
        load_environment(dataset_name="mnist")
    with pytest.raises(ValueError, match="eval_split must be 'train' or 'test'"):
        load_environment(eval_split="validation")
    with pytest.raises(ValueError, match="persistent_python needs use_tools=True"):
        load_environment(use_tools=False, persistent_python=True, num_train_examples=5)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        load_environment(timeout=0, num_train_examples=5)


@needs_gsm8k
def test_gsm8k_from_the_local_data_folder():
    env = load_environment(dataset_name="gsm8k", num_train_examples=30, num_eval_examples=20)
    assert len(env.dataset) == 30 and len(env.eval_dataset) == 20
    row = env.eval_dataset[0]
    assert row["answer"] == "18"  # Janet's ducks, the first test question
    assert "Janet" in row["prompt"][-1]["content"]
    assert "####" in row["info"]["solution"]


@needs_gsm8k
def test_gsm8k_data_files_override(tmp_path: Path):
    path = tmp_path / "mini.jsonl"
    path.write_text(json.dumps({"question": "What is 2+2?", "answer": "2+2=4\n#### 4"}) + "\n")
    data = load_split("gsm8k", "test", data_files={"test": str(path)})
    assert data["answer"] == ["4"] and data["difficulty"] == ["gsm8k"]
    with pytest.raises(ValueError, match="GSM8K has no difficulty levels"):
        load_split("gsm8k", "test", difficulty="easy")


def write_math(path: Path) -> None:
    rows = [
        {"problem": "Compute $1+1$.", "level": "Level 1", "type": "Prealgebra",
         "solution": "It is $\\boxed{2}$."},
        {"problem": "Simplify $\\frac{2}{4}$.", "level": "Level 3", "type": "Algebra",
         "solution": "We get $\\boxed{\\frac{1}{2}}$."},
        {"problem": "No boxed answer here.", "level": "Level 5", "type": "Algebra",
         "solution": "Unboxed."},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_competition_math_from_local_files(tmp_path: Path):
    path = tmp_path / "math.jsonl"
    write_math(path)
    data = load_competition_math("test", str(path))
    assert data["answer"] == ["2", "\\frac{1}{2}"]  # rows without an answer are dropped
    assert data["difficulty"] == ["level 1", "level 3"]
    env = load_environment(dataset_name="math", data_files={"train": str(path), "test": str(path)},
                           difficulty=[3, 4], use_tools=False)
    assert env.eval_dataset["answer"] == ["\\frac{1}{2}"]
    assert math_levels("Level 2") == {"level 2"}
    with pytest.raises(ValueError, match="levels 1-5"):
        math_levels(9)


def test_competition_math_missing_source_is_a_clear_error(tmp_path: Path):
    missing = tmp_path / "absent.jsonl"
    with pytest.raises(RuntimeError, match=r"Could not load competition MATH \(test\)"):
        load_competition_math("test", str(missing))
