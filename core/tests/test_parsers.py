"""Parsers: verifiers 0.1.x's field specs and results, and never an exception."""

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifiers as vf


def said(text):
    return [{"role": "assistant", "content": text}]


def test_xml_parser_exposes_every_allowed_tag():
    parser = vf.XMLParser(["think", ("code", "python"), "answer"])
    parsed = parser.parse("<think>\nhm\n</think>\n<python>print(1)</python>\n<answer> 42 </answer>")
    assert parsed.think == "hm"
    assert parsed.python == "print(1)" and parsed.code is None  # each tag is its own attribute
    assert parsed.answer == "42"
    assert vars(parsed) == {"think": "hm", "code": None, "python": "print(1)", "answer": "42"}
    assert parser.get_fields() == ["think", "code", "answer"]


def test_xml_parser_first_occurrence_by_default_last_on_request():
    parser = vf.XMLParser(["reasoning", "answer"])
    text = "<answer>1</answer> wait <answer>2</answer>"
    assert parser.parse(text).answer == "1"
    assert parser.parse(text, last=True).answer == "2"
    assert parser.parse(text).reasoning is None
    assert parser.parse(text, strip=False).answer == "1"
    # the 0.1.x pattern: an unclosed opening tag swallows up to the next closing tag
    assert parser.parse("<answer>a <answer>b</answer>").answer == "a <answer>b"


def test_xml_parser_accepts_every_0_1_field_spec():
    no_answer = vf.XMLParser(["think", "guess"])  # no 'answer' field, default answer_field
    assert no_answer.parse_answer(said("<guess>crane</guess>")) is None
    guess = vf.XMLParser(fields=["think", "guess"], answer_field="guess")
    assert guess.parse_answer(said("<think>hm</think><guess>crane</guess>")) == "crane"
    alternative_answer = vf.XMLParser(["think", ("tool", "answer")])
    assert alternative_answer.parse_answer(said("<answer>7</answer>")) == "7"
    assert alternative_answer.parse_answer(said("<tool>{}</tool>")) is None
    empty = vf.XMLParser([])
    assert vars(empty.parse("<answer>1</answer>")) == {}
    assert empty.get_format_reward_func()(said("x")) == 0.0
    assert empty.format() == "" and empty.get_format_str() == ""


def test_xml_parser_parse_answer_looks_back_through_assistant_turns():
    parser = vf.XMLParser(["reasoning", "answer"])
    completion = [
        {"role": "assistant", "content": "<answer>7</answer>"},
        {"role": "user", "content": "sure?"},
        {"role": "assistant", "content": "yes, I am sure"},
    ]
    assert parser.parse_answer(completion) == "7"
    assert parser.parse_answer("<answer>x</answer> <answer>y</answer>") == "y"  # strings: last
    assert parser.parse_answer([]) is None


def test_xml_parser_format_requires_every_field():
    parser = vf.XMLParser(["reasoning", ("code", "answer")])
    text = parser.format(reasoning="because", answer="4")
    assert text == "<reasoning>\nbecause\n</reasoning>\n<code>\n4\n</code>"
    assert parser.parse(text).code == "4"
    with pytest.raises(ValueError, match="Missing value for field 'code'"):
        parser.format(reasoning="only this")
    with pytest.raises(ValueError, match="Unknown fields"):
        parser.format(reasoning="x", code="y", verdict="z")
    assert parser.get_format_str() == (
        "<reasoning>\n...\n</reasoning>\n<[ code | answer ]>\n...\n</[ code | answer ]>"
    )


@pytest.mark.parametrize("text, score", [
    ("<reasoning>a</reasoning>\n<answer>b</answer>", 1.0),           # 0.4 + 0.2 + 0.2 + 0.2
    ("so the answer is <answer>b</answer>", 0.6),                    # 0.4 * 1/2 + 0.2 + end 0.2
    ("<reasoning>a</reasoning> and that is all", 0.6),               # 0.2 + 0.2 + start 0.2
    ("<reasoning>a</reasoning>\n<answer>b", 0.8),                    # unclosed tag still counts
    ("b", 0.2),                                                      # only the spacing credit
    ("<answer>b</answer>", 0.6),
])
def test_xml_parser_format_reward_is_0_1_partial_credit(text, score):
    reward = vf.XMLParser(["reasoning", "answer"]).get_format_reward_func()
    assert reward(completion=said(text)) == pytest.approx(score)


def test_xml_format_reward_averages_assistant_turns():
    reward = vf.XMLParser(["reasoning", "answer"]).get_format_reward_func()
    turns = said("<reasoning>a</reasoning>\n<answer>b</answer>") + said("b")
    assert reward(completion=turns) == pytest.approx(0.6)
    assert reward(completion=[]) == 0.0


def test_xml_parser_rejects_bad_configuration():
    with pytest.raises(TypeError, match="list of tag names"):
        vf.XMLParser("answer")
    with pytest.raises(ValueError, match="cannot be empty"):
        vf.XMLParser([()])
    with pytest.raises(TypeError, match="must be strings"):
        vf.XMLParser([("a", 1)])
    with pytest.raises(ValueError, match="Duplicate"):
        vf.XMLParser(["a", ("a", "b")])
    with pytest.raises(ValueError, match="Invalid XMLParser tag name"):
        vf.XMLParser(["my answer"])


def test_think_parser_reads_after_think_and_nothing_without_it():
    parser = vf.ThinkParser(extract_fn=vf.extract_boxed_answer)
    assert parser.parse("<think>2+2</think>\nSo \\boxed{4}.") == "4"
    assert parser.parse("<think>unfinished \\boxed{3}") is None  # extract_fn("")
    assert vf.ThinkParser().parse("no think at all") == ""
    assert vf.ThinkParser().parse("<think>a</think> b </think> c") == "c"
    reward = parser.get_format_reward_func()
    assert reward(completion=said("<think>x</think> y")) == 1.0
    assert reward(completion=said("<think>x</think>")) == 0.0
    assert reward(completion=said("<think><think>x</think> y")) == 0.0
    assert reward(completion=said("y <think>x</think> y")) == 0.0
    assert reward(completion=[]) == 0.0


def test_base_parser_0_1_helpers_attributes_and_logger():
    parser = vf.Parser(extract_fn=lambda text: int(text), mode="strict")
    assert parser.mode == "strict"
    assert isinstance(parser.logger, logging.Logger)
    assert parser.logger.name == "verifiers.parsers.Parser"
    assert parser.parse("12") == 12
    assert parser.parse("twelve") is None
    assert parser.parse_answer([{"role": "assistant", "content": None}]) is None
    conversation = [
        {"role": "system", "content": "s"}, {"role": "user", "content": "u"},
        {"role": "assistant", "content": "a"}, {"role": "tool", "content": "t"},
    ]
    assert parser.get_system_messages(conversation) == [conversation[0]]
    assert parser.get_user_messages(conversation) == [conversation[1]]
    assert parser.get_assistant_messages(conversation) == [conversation[2]]
    assert parser.get_tool_messages(conversation) == [conversation[3]]
    assert vf.XMLParser(["answer"], note="kept").note == "kept"
    assert vf.ThinkParser(note="kept").note == "kept"


def test_base_parser_format_reward_is_the_0_1_no_op():
    assert vf.Parser().get_format_reward_func()(completion=said("")) == 1.0


def test_content_parts_are_read_as_text_and_never_raise():
    parser = vf.XMLParser(["think", "answer"])
    parts = [{"type": "text", "text": "<think>a</think>"}, {"type": "image_url", "image_url": {}},
             {"type": "text", "text": "<answer>4</answer>"}, None, 7]
    completion = [{"role": "assistant", "content": parts}]
    assert parser.parse_answer(completion) == "4"
    assert parser.get_format_reward_func()(completion) == pytest.approx(1.0)
    assert vf.ThinkParser().parse_answer(completion) == "<answer>4</answer>"
    assert vf.Parser().parse_answer([{"role": "assistant", "content": {"odd": 1}}]) == "{'odd': 1}"


def test_extract_helpers():
    assert vf.extract_boxed_answer(r"so \boxed{\frac{1}{2}} done") == r"\frac{1}{2}"
    assert vf.extract_boxed_answer(r"\boxed{1} then \boxed{2}") == "2"
    assert vf.extract_boxed_answer(r"\boxed{unclosed") is None
    assert vf.extract_boxed_answer("nothing") is None
    assert vf.extract_hash_answer("work\n#### 1,234") == "1234"
    assert vf.extract_hash_answer("no marker") is None


_CONTENT = st.one_of(
    st.text(),
    st.none(),
    st.integers(),
    st.lists(st.one_of(
        st.text(),
        st.none(),
        st.integers(),
        st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(st.text(), st.integers(), st.none())}),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    ), max_size=4),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.text(), _CONTENT)
def test_no_model_output_makes_a_parser_raise(text, content):
    parsers = [vf.Parser(), vf.XMLParser(["think", ("code", "python"), "answer"]),
               vf.ThinkParser(vf.extract_boxed_answer), vf.XMLParser([])]
    for parser in parsers:
        parser.parse(text)
        parser.parse_answer(text)
        for completion in ([{"role": "assistant", "content": text}],
                           [{"role": "assistant", "content": content}]):
            parser.parse_answer(completion)
            parser.get_format_reward_func()(completion=completion)
    vf.extract_boxed_answer(text)
