"""load_environment's arguments: data, templates, judges, endpoints and API keys."""

from __future__ import annotations

import json

import openai
import pytest

import verifiers as vf
from vf_judge import (
    DEFAULT_SYSTEM_PROMPT,
    JudgeAPIKeyError,
    is_local_url,
    load_environment,
    resolve_judge_api_key,
)

LOCAL = "http://127.0.0.1:9/v1"  # never contacted by these tests


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_defaults_gsm8k_splits_and_sizes(no_api_key):
    # GSM8K comes from $VF_DATA_DIR: the 40 + 40 rows shipped in verifiers.testing's data.
    env = load_environment(judge_base_url=LOCAL)
    assert len(env.eval_dataset) == 40  # num_eval_examples=100, capped by the split's size
    assert len(env.dataset) == 40  # num_train_examples=-1: the whole train split
    row = env.eval_dataset[0]
    assert row["answer"] == "18"  # the reference, GSM8K's "#### 18"
    assert row["prompt"][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    assert row["prompt"][-1]["content"].startswith("Janet")
    assert env.dataset[0]["question"] != row["question"]  # train and test differ
    assert env.rubric.judge_models == ["gpt-4.1-mini"]
    assert env.rubric.aggregation == "mean"


def test_example_counts_and_no_system_prompt(no_api_key):
    env = load_environment(
        judge_base_url=LOCAL, num_train_examples=10, num_eval_examples=5, system_prompt=None
    )
    assert len(env.dataset) == 10 and len(env.eval_dataset) == 5
    assert [m["role"] for m in env.eval_dataset[0]["prompt"]] == ["user"]
    env = load_environment(judge_base_url=LOCAL, num_train_examples=0, num_eval_examples=-1)
    assert env.dataset is None and len(env.eval_dataset) == 40  # the whole (shipped) test split
    with pytest.raises(ValueError, match="no data"):
        load_environment(judge_base_url=LOCAL, num_train_examples=0, num_eval_examples=0)


def test_data_files_override_gsm8k(tmp_path, no_api_key):
    path = write_jsonl(tmp_path / "mini.jsonl", [
        {"question": "What is 2+2?", "answer": "2+2=<<2+2=4>>4\n#### 4"},
        {"question": "What is 1,000+1?", "answer": "#### 1,001"},
    ])
    env = load_environment(judge_base_url=LOCAL, data_files=path)
    assert env.eval_dataset["answer"] == ["4", "1001"]
    assert env.dataset["question"] == ["What is 2+2?", "What is 1,000+1?"]


def test_data_files_per_split_and_custom_dataset(tmp_path, no_api_key):
    test = write_jsonl(tmp_path / "test.jsonl", [
        {"question": "Capital of France?", "answer": "Paris"},
        {"question": "Seven times six?", "answer": 42},
    ])
    env = load_environment(
        judge_base_url=LOCAL, dataset_name="trivia", data_files={"test": test}
    )
    assert env.dataset is None
    assert env.eval_dataset["answer"] == ["Paris", "42"]  # references become strings


def test_custom_dataset_needs_question_and_answer(tmp_path, no_api_key):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt_text": "hi", "target": "x"}])
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['answer', 'question'\]"):
        load_environment(judge_base_url=LOCAL, dataset_name="mine", data_files=bad)
    with pytest.raises(ValueError, match="unknown splits"):
        load_environment(judge_base_url=LOCAL, data_files={"validation": bad})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Q: {question}\nA: {answer}\nR: {reponse}", r"unknown placeholder\(s\) \['reponse'\]"),
        ("Q: {question} A: {answer}", "never shows the judge the response"),
        ("Return JSON {\"ok\": true} for {response}", "unknown placeholder"),
        ("{response", "not a valid format string"),
        ("   ", "non-empty"),
    ],
)
def test_bad_templates_fail_at_load(template, message, no_api_key):
    with pytest.raises(ValueError, match=message):
        load_environment(judge_base_url=LOCAL, judge_template=template)


def test_template_aliases_and_literal_braces_are_accepted(no_api_key):
    template = 'Q {prompt} A {answer} R {completion}. Reply {{"verdict": "yes"}}.'
    env = load_environment(judge_base_url=LOCAL, judge_template=template, num_train_examples=0)
    assert env.rubric.template == template


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aggregation": "median"}, "use one of mean, min, max, majority"),
        ({"judge_models": []}, "non-empty list"),
        ({"judge_models": ["a", ""]}, "non-empty list"),
        ({"judge_timeout": 0}, "judge_timeout must be > 0"),
        ({"judge_max_retries": -1}, "max_retries must be >= 0"),
        ({"judge_max_score": 0}, "judge_max_score must be > 0"),
        ({"judge_base_url": "127.0.0.1:8000"}, "is not a URL"),
    ],
)
def test_bad_judge_arguments(kwargs, message, no_api_key):
    kwargs = {"judge_base_url": LOCAL, **kwargs}
    with pytest.raises(ValueError, match=message):
        load_environment(num_train_examples=0, **kwargs)


def test_several_judges_and_single_name(no_api_key):
    env = load_environment(judge_base_url=LOCAL, judge_models=["a", "b", "c"], aggregation="majority")
    assert env.rubric.judge_models == ["a", "b", "c"] and env.rubric.aggregation == "majority"
    env = load_environment(judge_base_url=LOCAL, judge_models="solo")
    assert env.rubric.judge_models == ["solo"]


# -- endpoints and API keys ---------------------------------------------------------------


def test_local_judge_without_key_uses_empty(no_api_key):
    env = load_environment(judge_base_url=LOCAL, num_train_examples=0)
    client = env.rubric.judge_client
    assert isinstance(client, openai.AsyncOpenAI)
    assert str(client.base_url).rstrip("/") == LOCAL and client.api_key == "EMPTY"


def test_missing_key_for_remote_judge_fails_at_load_naming_the_variable(no_api_key):
    with pytest.raises(JudgeAPIKeyError, match="OPENAI_API_KEY is not set") as info:
        load_environment(judge_base_url="https://judge.example.com/v1")
    assert "https://judge.example.com/v1" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_custom_key_variable(no_api_key, monkeypatch):
    with pytest.raises(JudgeAPIKeyError, match="MY_JUDGE_KEY"):
        load_environment(judge_base_url="https://judge.example.com/v1", judge_api_key_var="MY_JUDGE_KEY")
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-judge")
    env = load_environment(
        judge_base_url="https://judge.example.com/v1", judge_api_key_var="MY_JUDGE_KEY",
        num_train_examples=0,
    )
    assert env.rubric.judge_client.api_key == "sk-judge"


def test_key_variable_wins_over_local_default(no_api_key, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    env = load_environment(judge_base_url=LOCAL, num_train_examples=0)
    assert env.rubric.judge_client.api_key == "sk-local"


def test_default_endpoint_is_openai_base_url_then_openai(no_api_key, monkeypatch):
    with pytest.raises(JudgeAPIKeyError, match="https://api.openai.com/v1"):
        load_environment()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8123/v1")
    env = load_environment(num_train_examples=0)
    assert str(env.rubric.judge_client.base_url).rstrip("/") == "http://localhost:8123/v1"


def test_openai_base_url_judge_end_to_end(no_api_key, monkeypatch, policy, judge_server):
    monkeypatch.setenv("OPENAI_BASE_URL", judge_server.base_url)
    env = load_environment(num_eval_examples=1, num_train_examples=0)
    results = env.evaluate(policy.sync_client(), "policy-model")
    assert results["errors"] == [None] and results["rewards"] == [1.0]
    assert len(judge_server.requests) == 1


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.1.2.3/v1", True),
        ("http://localhost:8000/v1", True),
        ("http://LOCALHOST/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://0.0.0.0:8000/v1", True),
        ("https://api.openai.com/v1", False),
        ("http://127.0.0.1.example.com/v1", False),
        ("http://10.0.0.5:8000/v1", False),
    ],
)
def test_is_local_url(url, local):
    assert is_local_url(url) is local


def test_resolve_judge_api_key(no_api_key, monkeypatch):
    assert resolve_judge_api_key("OPENAI_API_KEY", "http://localhost:1/v1") == "EMPTY"
    monkeypatch.setenv("OPENAI_API_KEY", "")  # empty counts as unset
    with pytest.raises(JudgeAPIKeyError):
        resolve_judge_api_key("OPENAI_API_KEY", "https://api.openai.com/v1")


# -- loading by id ------------------------------------------------------------------------


def test_vf_load_environment_by_id(no_api_key, policy, judge_server):
    env = vf.load_environment("judge", judge_base_url=judge_server.base_url, num_eval_examples=2)
    assert env.env_id == "vf-judge"
    results = env.evaluate(policy.sync_client(), "policy-model")
    assert results["rewards"] == [1.0, 0.0]
    assert vf.load_environment("vf-judge", judge_base_url=LOCAL, num_train_examples=0).env_id == "vf-judge"


def test_vf_load_environment_reports_unknown_and_key_errors(no_api_key):
    with pytest.raises(TypeError, match="does not take 'judge_url'"):
        vf.load_environment("vf-judge", judge_url=LOCAL)
    with pytest.raises(JudgeAPIKeyError, match="OPENAI_API_KEY"):
        vf.load_environment("judge", judge_base_url="https://judge.example.com/v1")
