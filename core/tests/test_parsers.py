"""Parsers: structured answers from model output, and never an exception."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifiers as vf


def test_xml_parser_reads_fields_and_alternatives():
    parser = vf.XMLParser(["think", ("code", "python"), "answer"])
    parsed = parser.parse("<think>\nhm\n</think>\n<python>print(1)</python>\n<answer> 42 </answer>")
    assert parsed.think == "hm"
    assert parsed.code == "print(1)"
    assert parsed.answer == "42"
    assert parser.get_fields() == ["think", "code", "answer"]


def test_xml_parser_last_occurrence_wins_and_missing_is_none():
    parser = vf.XMLParser(["reasoning", "answer"])
    parsed = parser.parse("<answer>1</answer> wait <answer>2</answer>")
    assert parsed.answer == "2"
    assert parsed.reasoning is None


def test_xml_parser_parse_answer_looks_back_through_assistant_turns():
    parser = vf.XMLParser(["reasoning", "answer"])
    completion = [
        {"role": "assistant", "content": "<answer>7</answer>"},
        {"role": "user", "content": "sure?"},
        {"role": "assistant", "content": "yes, I am sure"},
    ]
    assert parser.parse_answer(completion) == "7"
    assert parser.parse_answer("<answer>x</answer>") == "x"
    assert parser.parse_answer([]) is None


def test_xml_parser_format_and_format_str():
    parser = vf.XMLParser(["reasoning", "answer"])
    text = parser.format(reasoning="because", answer="4")
    assert text == "<reasoning>\nbecause\n</reasoning>\n<answer>\n4\n</answer>"
    assert parser.parse(text).answer == "4"
    assert "<reasoning>" in parser.get_format_str() and "</answer>" in parser.get_format_str()
    with pytest.raises(ValueError, match="Unknown fields"):
        parser.format(verdict="x")


def test_xml_parser_format_reward_gives_partial_credit():
    parser = vf.XMLParser(["reasoning", "answer"])
    reward = parser.get_format_reward_func()
    full = [{"role": "assistant", "content": "<reasoning>a</reasoning>\n<answer>b</answer>"}]
    half = [{"role": "assistant", "content": "so the answer is <answer>b</answer>"}]
    none = [{"role": "assistant", "content": "b"}]
    assert reward(completion=full) == pytest.approx(1.0)
    assert reward(completion=half) == pytest.approx(0.4)
    assert reward(completion=none) == 0.0
    assert reward(completion=[]) == 0.0


def test_xml_parser_rejects_bad_configuration():
    with pytest.raises(TypeError, match="list of tag names"):
        vf.XMLParser("answer")
    with pytest.raises(ValueError, match="answer_field"):
        vf.XMLParser(["reasoning"], answer_field="answer")


def test_think_parser():
    parser = vf.ThinkParser(extract_fn=vf.extract_boxed_answer)
    assert parser.parse("<think>2+2</think>\nSo \\boxed{4}.") == "4"
    assert parser.parse("<think>unfinished") is None
    assert parser.parse("no think at all \\boxed{5}") == "5"
    reward = parser.get_format_reward_func()
    assert reward(completion=[{"role": "assistant", "content": "<think>x</think> y"}]) == 1.0
    assert reward(completion=[{"role": "assistant", "content": "<think>x</think>"}]) == 0.0
    assert reward(completion=[{"role": "assistant", "content": "<think><think>x</think> y"}]) == 0.0


def test_base_parser_extract_fn_errors_parse_to_none():
    parser = vf.Parser(extract_fn=lambda text: int(text))
    assert parser.parse("12") == 12
    assert parser.parse("twelve") is None
    assert parser.parse_answer([{"role": "assistant", "content": None}]) is None


def test_extract_helpers():
    assert vf.extract_boxed_answer(r"so \boxed{\frac{1}{2}} done") == r"\frac{1}{2}"
    assert vf.extract_boxed_answer(r"\boxed{1} then \boxed{2}") == "2"
    assert vf.extract_boxed_answer(r"\boxed{unclosed") is None
    assert vf.extract_boxed_answer("nothing") is None
    assert vf.extract_hash_answer("work\n#### 1,234") == "1234"
    assert vf.extract_hash_answer("no marker") is None


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_no_model_output_makes_a_parser_raise(text):
    parsers = [vf.Parser(), vf.XMLParser(["think", ("code", "python"), "answer"]),
               vf.ThinkParser(vf.extract_boxed_answer)]
    for parser in parsers:
        parser.parse(text)
        parser.parse_answer(text)
        parser.parse_answer([{"role": "assistant", "content": text}])
        parser.get_format_reward_func()(completion=[{"role": "assistant", "content": text}])
    vf.extract_boxed_answer(text)
