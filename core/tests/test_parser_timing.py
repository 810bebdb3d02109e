"""Parsers are linear-time: 1 MB of adversarial model output is read in under 100 ms.

A timing test by design: verifiers 0.1.x's regular expressions take minutes on these
inputs. Our parsers take a few milliseconds, so the 100 ms bound has a wide margin; each
case keeps the best of three runs so that a busy machine does not make it flaky.
"""

import time

import pytest

import verifiers as vf

MB = 1_000_000
LIMIT_S = 0.100

ADVERSARIAL = {
    "unclosed tag then whitespace": "<answer>" + " " * MB,
    "unclosed tag then newlines and a near-miss": "<answer>\n" + "\n \t" * (MB // 3) + "</answe",
    "thousands of opening tags": "<answer>" * (MB // 8),
    "opening tags of every field": "<think><answer><code><python>" * (MB // 29),
    "many tiny closed blocks": "<answer>1</answer>" * (MB // 18),
    "think openers": "<think>" * (MB // 7),
    "think closers": "</think>" * (MB // 8),
    "whitespace then one closer": " " * MB + "</think>",
}


def best_of_three(call):
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


PARSERS = {
    "xml": vf.XMLParser(["think", ("code", "python"), "answer"]),
    "think": vf.ThinkParser(extract_fn=vf.extract_boxed_answer),
}


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
@pytest.mark.parametrize("kind", sorted(PARSERS))
def test_one_megabyte_of_adversarial_output_is_parsed_quickly(kind, case):
    text = ADVERSARIAL[case]
    assert len(text) >= MB * 0.99
    parser = PARSERS[kind]
    completion = [{"role": "assistant", "content": text}]
    format_reward = parser.get_format_reward_func()
    calls = {
        "parse": lambda: parser.parse(text),
        "parse_answer": lambda: parser.parse_answer(completion),
        "format_reward": lambda: format_reward(completion=completion),
    }
    if kind == "xml":
        calls["parse(last=True)"] = lambda: parser.parse(text, last=True)
    for name, call in calls.items():
        seconds = best_of_three(call)
        assert seconds < LIMIT_S, f"{kind} {name} took {seconds * 1000:.0f} ms on {case!r}"
