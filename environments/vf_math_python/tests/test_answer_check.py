"""Bounded answer checking: math-verify and sympy run in helper processes that are killed
at the time limit, off the event loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from vf_math_python.answer_check import AnswerCheckTimeout, SymbolicChecker
from vf_math_python.equivalence import answers_equivalent
from vf_math_python.parsing import build_parser
from vf_math_python.rubric import build_rubric, correct_answer

SLOW = "\\boxed{(x+1)^{9999}}"


@pytest.fixture(scope="module")
def checker():
    """A checker with a generous limit, for checks that must not time out on a busy
    machine."""
    box = SymbolicChecker(timeout=60.0, processes=1)
    yield box
    box.close()


@pytest.fixture
def strict_checker():
    box = SymbolicChecker(timeout=3.0, processes=1)
    assert box.equivalent("1", "1")  # starts the helper (imports, parser warm-up)
    yield box
    box.close()


def test_symbolic_equivalence_goes_through_the_helper(checker):
    assert checker.equivalent("x^2 - 1", "(x-1)(x+1)")
    assert checker.equivalent("\\frac{\\sqrt{8}}{2}", "\\sqrt{2}")
    assert not checker.equivalent("x + 1", "x + 2")
    assert answers_equivalent("2\\sqrt{2}", "\\sqrt{8}", checker=checker)


def test_a_runaway_check_is_stopped_within_the_limit(strict_checker):
    checker = strict_checker
    helper = next(iter(checker._all))
    start = time.monotonic()
    with pytest.raises(AnswerCheckTimeout, match="took longer than 3 s and was stopped"):
        answers_equivalent(SLOW, "x", checker=checker)
    assert time.monotonic() - start < 5.0
    assert helper.proc.poll() is not None, "the busy helper was not killed"
    assert checker.equivalent("1", "1")  # a fresh helper takes over


def test_scoring_a_runaway_answer_leaves_the_event_loop_free():
    """``\\boxed{(x+1)^{9999}}`` is scored (as a recorded reward error) within 5 s, while
    other coroutines keep running."""
    parser = build_parser()
    rubric = build_rubric(parser)
    completion = [{"role": "assistant", "content": f"The answer is {SLOW}."}]

    async def main() -> tuple[dict, int, float]:
        # warm the helper: the limit is for the check, not for importing sympy
        await correct_answer([{"role": "assistant", "content": "\\boxed{\\sqrt{4}}"}], "2",
                             parser)
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        state: dict = {}
        start = time.monotonic()
        score = await rubric.score_rollout(prompt=[], completion=completion, answer="x",
                                           state=state)
        elapsed = time.monotonic() - start
        done.set()
        await task
        return {"score": score, "state": state}, ticks, elapsed

    out, ticks, elapsed = asyncio.run(main())
    assert elapsed < 5.0
    assert ticks > 100  # the loop ran the ticker all along (every 10 ms for ~3 s)
    errors = out["state"]["reward_errors"]
    assert "AnswerCheckTimeout" in errors["correct_answer"]
    assert "took longer than 3 s" in errors["correct_answer"]


def test_huge_answers_are_cheap_and_not_equivalent():
    start = time.monotonic()
    assert not answers_equivalent("1" + " " * 10**6 + "x percent", "1")
    assert not answers_equivalent("\\boxed{" + "(" * 10**6 + "}", "1")
    assert time.monotonic() - start < 2.0


def test_the_checker_validates_its_arguments():
    with pytest.raises(ValueError, match="timeout > 0 and processes >= 1"):
        SymbolicChecker(timeout=0)




def test_a_busy_helper_dies_with_its_host():
    """A host killed with ``kill -9`` during a runaway check leaves no helper behind."""
    import json
    import os
    import signal
    import subprocess
    import sys

    script = (
        "import json, threading\n"
        "from vf_math_python.answer_check import SymbolicChecker\n"
        "box = SymbolicChecker(timeout=60, processes=1)\n"
        "box.equivalent('1', '1')\n"
        "print(json.dumps([h.proc.pid for h in box._all]), flush=True)\n"
        f"box.equivalent({SLOW!r}[7:-1], 'x')\n"
    )
    host = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert host.stdout is not None
        (helper,) = json.loads(host.stdout.readline())
        time.sleep(0.5)  # the runaway check is under way
        os.kill(host.pid, signal.SIGKILL)
        host.wait(timeout=10)
    finally:
        host.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{helper}/status") as f:
                if "\nState:\tZ" in f.read():
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the helper {helper} outlived its host")


def test_the_answer_check_limit_is_configurable():
    from vf_math_python import load_environment

    rubric = build_rubric(build_parser(), answer_check_timeout=30.0)
    completion = [{"role": "assistant", "content": "\\boxed{2\\sqrt{2}}"}]
    score = rubric.score_rollout_sync(prompt=[], completion=completion, answer="\\sqrt{8}",
                                      state={})
    assert score["correct_answer"] == 1.0
    with pytest.raises(ValueError, match="answer_check_timeout must be > 0 seconds"):
        load_environment(num_train_examples=2, num_eval_examples=2, use_tools=False,
                         answer_check_timeout=0)
