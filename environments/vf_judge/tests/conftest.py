"""Scripted models for the vf-judge tests: a policy that answers GSM8K questions (right on
even rows, off by one on odd rows) and judges that read the judge prompt and compare the
response with the reference. Both run behind real HTTP servers (``make_scripted_server``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from verifiers.testing import fixture_data_dir
from verifiers.utils.data_utils import load_gsm8k

Handler = Callable[[dict[str, Any]], str]

# The default (core) template puts each field in a ``` fence after its heading.
_FENCED = {
    "reference": re.compile(r"Ground truth answer:\n```\n(.*?)\n```", re.DOTALL),
    "response": re.compile(r"Response:\n```\n(.*?)\n```", re.DOTALL),
}

#: A 0-10 template with tagged fields, used as ``judge_template`` in tests.
NUMERIC_TEMPLATE = """Grade the response against the reference answer on a 0-10 scale.
<question>{question}</question>
<reference>{answer}</reference>
<response>{response}</response>
Explain briefly, then give the grade as <score>N</score>."""

_TAGGED = {
    "reference": re.compile(r"<reference>(.*?)</reference>", re.DOTALL),
    "response": re.compile(r"<response>(.*?)</response>", re.DOTALL),
}


def final_number(text: str) -> str | None:
    """The last number in ``text`` (commas dropped), as written."""
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return numbers[-1] if numbers else None


def judge_fields(request: dict[str, Any]) -> tuple[str, str]:
    """(reference, response) read back from a judge request (default or numeric template)."""
    text = request["messages"][-1]["content"]
    for patterns in (_FENCED, _TAGGED):
        ref, resp = patterns["reference"].search(text), patterns["response"].search(text)
        if ref and resp:
            return ref.group(1).strip(), resp.group(1).strip()
    raise AssertionError(f"judge prompt without reference/response fields: {text[:300]!r}")


def yes_no_judge(request: dict[str, Any]) -> str:
    """A fair judge: "yes"/"no" and one line of reasoning."""
    reference, response = judge_fields(request)
    got = final_number(response)
    if got == reference:
        return f"yes - the response's final answer {got} matches the reference {reference}."
    return f"no - the response's final answer {got} differs from the reference {reference}."


def numeric_judge(request: dict[str, Any]) -> str:
    """A fair 0-10 judge: 10 for the right number, 2 for a wrong one."""
    reference, response = judge_fields(request)
    got = final_number(response)
    grade = 10 if got == reference else 2
    return f"The response ends with {got}; the reference is {reference}. <score>{grade}</score>"


def panel_judge(request: dict[str, Any]) -> str:
    """Routes by ``request["model"]``: ``lenient*`` always says yes, others judge fairly."""
    if request["model"].startswith("lenient"):
        return "yes - looks fine to me."
    return yes_no_judge(request)


@pytest.fixture(scope="session")
def gsm8k_test() -> list[dict[str, Any]]:
    """The first 20 GSM8K test rows: those the environment loads by default, from the rows
    shipped in ``verifiers.testing``'s data (the repository's conftest points $VF_DATA_DIR
    there)."""
    shipped = fixture_data_dir() / "gsm8k" / "test.jsonl"
    return load_gsm8k("test", data_files=str(shipped)).select(range(20)).to_list()


@pytest.fixture
def policy_handler(gsm8k_test: list[dict[str, Any]]) -> Handler:
    """Answers the i-th test question with its reference on even i, reference + 1 on odd i."""
    rows = {row["question"]: (i, row["answer"]) for i, row in enumerate(gsm8k_test)}

    def handler(request: dict[str, Any]) -> str:
        question = request["messages"][-1]["content"]
        index, answer = rows[question]
        if index % 2:
            answer = str(int(answer) + 1)
        return f"Let me work through it step by step.\nThe answer is {answer}."

    return handler


@pytest.fixture
def policy(make_scripted_server: Callable[..., Any], policy_handler: Handler) -> Any:
    """The policy model's server."""
    return make_scripted_server(handler=policy_handler)


@pytest.fixture
def judge_server(make_scripted_server: Callable[..., Any]) -> Any:
    """A fair yes/no judge's server."""
    return make_scripted_server(handler=yes_no_judge)


@pytest.fixture
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OpenAI key or base URL in the environment."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def scripted_judges() -> dict[str, Handler]:
    """The judge handlers by name, for tests that build their own judge server."""
    return {"yes_no": yes_no_judge, "numeric": numeric_judge, "panel": panel_judge}


@pytest.fixture
def numeric_template() -> str:
    """A 0-10 judge template with {question}, {answer} and {response}."""
    return NUMERIC_TEMPLATE
