"""vf-math-python: math problems with a sandboxed Python tool, scored by symbolic equivalence.

>>> import verifiers as vf
>>> env = vf.load_environment("vf-math-python")                     # arithmetic, python tool
>>> env = vf.load_environment("math-python", dataset_name="gsm8k", use_tools=False)
"""

from __future__ import annotations

from typing import Any

import verifiers as vf
from vf_math_python.answer_check import AnswerCheckTimeout, SymbolicChecker
from vf_math_python.arithmetic import PRESETS, ArithmeticSpec, generate_arithmetic
from vf_math_python.data import DATASETS, arithmetic_train_eval, load_split
from vf_math_python.env import MathPythonEnv, make_python_tool
from vf_math_python.equivalence import answers_equivalent, normalize_answer
from vf_math_python.parsing import build_parser
from vf_math_python.prompts import default_system_prompt
from vf_math_python.rubric import build_rubric
from vf_math_python.sandbox import (
    CodeError,
    ExecutionResult,
    LimitExceeded,
    ProcessDied,
    PythonSandbox,
    SandboxError,
    SandboxInfo,
    SandboxLimits,
    SandboxSetupError,
    run_python,
)

__all__ = [
    "DATASETS",
    "PRESETS",
    "AnswerCheckTimeout",
    "ArithmeticSpec",
    "CodeError",
    "ExecutionResult",
    "LimitExceeded",
    "MathPythonEnv",
    "ProcessDied",
    "PythonSandbox",
    "SandboxError",
    "SandboxInfo",
    "SandboxLimits",
    "SandboxSetupError",
    "SymbolicChecker",
    "answers_equivalent",
    "generate_arithmetic",
    "load_environment",
    "make_python_tool",
    "normalize_answer",
    "run_python",
]


def load_environment(
    dataset_name: str = "arithmetic",
    num_train_examples: int = -1,
    num_eval_examples: int = 100,
    eval_split: str = "test",
    use_tools: bool = True,
    system_prompt: str | None = None,
    max_turns: int = 6,
    seed: int = 0,
    difficulty: Any = None,
    data_files: Any = None,
    use_think: bool = False,
    format_weight: float = 0.1,
    tool_error_penalty: float = 0.0,
    answer_check_timeout: float = 3.0,
    timeout: float = 10.0,
    memory_mb: int = 512,
    max_output_chars: int = 4000,
    max_file_mb: int = 16,
    disk_mb: int = 64,
    max_processes: int = 16,
    persistent_python: bool = False,
    **kwargs: Any,
) -> vf.Environment:
    """Build the environment (see the README for every argument).

    Args:
        dataset_name: ``"arithmetic"`` (generated, offline; default), ``"gsm8k"`` or ``"math"``.
        num_train_examples: training rows; ``-1``: all (2000 generated for arithmetic).
        num_eval_examples: eval rows; ``-1``: all (200 for arithmetic); ``0``: no eval set.
        eval_split: split for the eval set, ``"test"`` or ``"train"``.
        use_tools: ``True``: a ToolEnv with the sandboxed ``python`` tool; ``False``: a
            single-turn environment.
        system_prompt: replaces the default prompt.
        max_turns: model turns per rollout (tool mode).
        seed: seed of the generated arithmetic problems.
        difficulty: arithmetic: ``"easy"``, ``"medium"``, ``"hard"``, ``"mixed"``, a level
            1-3 or a dict of :class:`ArithmeticSpec` fields; MATH: level(s) 1-5.
        data_files: local data instead of the Hub: a path (train) or ``{"train", "test"}``.
        use_think: expect ``<think>...</think>`` before the answer (ThinkParser).
        format_weight: size of the penalty for a last message without ``\\boxed{}``.
        tool_error_penalty: reward subtracted per failed tool call (default 0: metric only).
        answer_check_timeout: seconds one symbolic answer check (math-verify, sympy) may
            take before it is killed and recorded as a reward error.
        timeout, memory_mb, max_output_chars, max_file_mb, disk_mb, max_processes: sandbox
            limits (see :class:`SandboxLimits`).
        persistent_python: one interpreter per rollout (variables persist) instead of a
            fresh process per call.
        **kwargs: passed to the environment (e.g. ``sampling_args``, ``max_concurrent``,
            ``rollout_timeout``, ``sandbox_options``: keyword arguments of
            :class:`PythonSandbox`, such as ``{"resource_limits": "rlimit"}``).
    """
    if dataset_name not in DATASETS:
        raise ValueError(f"Unknown dataset_name {dataset_name!r}; choose one of {list(DATASETS)}.")
    sandbox_options = kwargs.pop("sandbox_options", None)
    train, evaluation = _datasets(dataset_name, num_train_examples, num_eval_examples,
                                  eval_split, seed, difficulty, data_files)
    parser = build_parser(use_think)
    if system_prompt is None:
        system_prompt = default_system_prompt(use_tools, persistent_python, use_think)
    common = dict(dataset=train, eval_dataset=evaluation, system_prompt=system_prompt,
                  parser=parser, env_id="vf-math-python")
    if not use_tools:
        if persistent_python:
            raise ValueError("persistent_python needs use_tools=True.")
        rubric = build_rubric(parser, format_weight,
                              answer_check_timeout=answer_check_timeout)
        return vf.SingleTurnEnv(rubric=rubric, **common, **kwargs)
    limits = SandboxLimits(timeout=timeout, memory_mb=memory_mb,
                           max_output_chars=max_output_chars, max_file_mb=max_file_mb,
                           disk_mb=disk_mb, max_processes=max_processes)
    probe_tool = make_python_tool(limits, persistent_python)
    rubric = build_rubric(parser, format_weight, tools=[probe_tool],
                          tool_error_penalty=tool_error_penalty,
                          answer_check_timeout=answer_check_timeout)
    return MathPythonEnv(sandbox_limits=limits, persistent_python=persistent_python,
                         sandbox_options=sandbox_options, max_turns=max_turns, rubric=rubric,
                         **common, **kwargs)


def _datasets(dataset_name: str, num_train: int, num_eval: int, eval_split: str, seed: int,
              difficulty: Any, data_files: Any) -> tuple[Any, Any]:
    if eval_split not in ("train", "test"):
        raise ValueError(f"eval_split must be 'train' or 'test', got {eval_split!r}.")
    if num_train == 0 and num_eval == 0:
        raise ValueError("num_train_examples and num_eval_examples are both 0: no data.")
    if dataset_name == "arithmetic" and eval_split == "test":
        return arithmetic_train_eval(num_train, num_eval, seed, difficulty)
    train = load_split(dataset_name, "train", num_train, seed, difficulty, data_files) \
        if num_train != 0 else None
    evaluation = None
    if num_eval != 0:
        evaluation = load_split(dataset_name, eval_split, num_eval, seed, difficulty, data_files)
    return train, evaluation
