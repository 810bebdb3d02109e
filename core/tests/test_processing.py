"""process_env_results: token-level samples from rollout records."""

import pytest

import verifiers as vf
from verifiers.processing import process_env_results


def turn(prompt_ids, completion_ids, logprobs=True):
    return {
        "prompt_token_ids": prompt_ids,
        "completion_token_ids": completion_ids,
        "completion_logprobs": [-0.5] * len(completion_ids) if logprobs else None,
        "finish_reason": "stop",
    }


def test_extending_turns_become_one_sample_with_env_tokens_masked():
    state = {"turns": [turn([1, 2], [3, 4]), turn([1, 2, 3, 4, 9, 9], [5])]}
    out = process_env_results([[]], [[]], [state], [0.7])
    assert len(out) == 1
    sample = out[0]
    assert sample["prompt_ids"] == [1, 2]
    assert sample["completion_ids"] == [3, 4, 9, 9, 5]
    assert sample["completion_mask"] == [1, 1, 0, 0, 1]
    assert sample["completion_logprobs"] == [-0.5, -0.5, 0.0, 0.0, -0.5]
    assert sample["rewards"] == 0.7
    assert sample["from_text"] is False


def test_non_extending_template_splits_into_per_turn_samples():
    # the second prompt dropped earlier reasoning: [1, 2, 3, 4] is not its prefix
    state = {"turns": [turn([1, 2], [3, 4]), turn([1, 2, 4, 8], [5, 6]), turn([1, 2, 4, 8, 5, 6, 7], [9])]}
    out = process_env_results([[]], [[]], [state], [1.0])
    assert [s["prompt_ids"] for s in out] == [[1, 2], [1, 2, 4, 8]]
    assert [s["completion_ids"] for s in out] == [[3, 4], [5, 6, 7, 9]]
    assert [s["completion_mask"] for s in out] == [[1, 1], [1, 1, 0, 1]]
    assert out["rollout_indices"] == [0, 0] and out["rewards"] == [1.0, 1.0]


def test_masking_options_truncation_and_failed_rollouts():
    ok = {"turns": [turn([1], [2, 3]), turn([1, 2, 3, 4], [5])]}
    truncated = {"turns": [turn([1], [2, 3, 4])], "is_truncated": True}
    failed = {"turns": [turn([1], [2])], "error": {"type": "model_error", "message": "x"}}
    out = process_env_results([[]] * 3, [[]] * 3, [ok, truncated, failed], [1.0, 1.0, 1.0],
                              mask_env_responses=False, mask_truncated_completions=True,
                              zero_truncated_completions=True)
    assert out.num_dropped == 1
    assert out["completion_mask"] == [[1, 1, 1, 1], [0, 0, 0]]
    assert out["rewards"] == [1.0, 0.0]
    cut = process_env_results([[]], [[]], [ok], [1.0], max_seq_len=3)
    assert cut[0]["completion_ids"] == [2, 3] and cut[0]["is_truncated"] is True


def test_missing_logprobs_give_none():
    state = {"turns": [turn([1], [2], logprobs=False)]}
    assert process_env_results([[]], [[]], [state], [0.0])[0]["completion_logprobs"] is None


def test_without_token_ids_a_tokenizer_is_required():
    with pytest.raises(ValueError, match="processing_class=tokenizer"):
        process_env_results([[{"role": "user", "content": "hi"}]],
                            [[{"role": "assistant", "content": "yo"}]], [{}], [1.0])


def test_text_fallback_uses_the_chat_template(tiny_tokenizer):
    prompt = [{"role": "user", "content": "guess"}]
    completion = [
        {"role": "assistant", "content": "five"},
        {"role": "user", "content": "higher"},
        {"role": "assistant", "content": "six"},
    ]
    out = process_env_results([prompt], [completion], [{}], [1.0], processing_class=tiny_tokenizer)
    sample = out[0]
    assert sample["from_text"] is True
    full = tiny_tokenizer.apply_chat_template(prompt + completion, tokenize=True,
                                              add_generation_prompt=False)
    full = full["input_ids"] if hasattr(full, "keys") else full
    assert sample["prompt_ids"] + sample["completion_ids"] == list(full)
    text_of = lambda ids: tiny_tokenizer.decode(ids)
    model_tokens = [t for t, m in zip(sample["completion_ids"], sample["completion_mask"]) if m]
    env_tokens = [t for t, m in zip(sample["completion_ids"], sample["completion_mask"]) if not m]
    assert "five" in text_of(model_tokens) and "six" in text_of(model_tokens)
    assert "higher" in text_of(env_tokens) and "higher" not in text_of(model_tokens)


def test_processed_outputs_is_exported():
    assert vf.ProcessedOutputs is type(process_env_results([], [], [], []))


# -- one length policy per sample -------------------------------------------------------------
from verifiers.processing import LengthPolicy, rollout_to_samples  # noqa: E402


def test_a_completion_cut_by_max_seq_len_is_zeroed_and_masked():
    state = {"turns": [turn([1, 2], [3, 4, 5, 6])]}  # finished normally; the cut truncates it
    out = process_env_results([[]], [[]], [state], [1.0], max_seq_len=4,
                              mask_truncated_completions=True, zero_truncated_completions=True)
    assert out["completion_ids"] == [[3, 4]]
    assert out["is_truncated"] == [True]
    assert out["completion_mask"] == [[0, 0]]
    assert out["rewards"] == [0.0]


def test_truncation_of_one_sample_does_not_leak_to_the_next():
    # two samples (the second prompt does not extend the first turn); only the first is cut
    state = {"turns": [turn([1, 2], [3, 4, 5, 6, 7]), turn([1, 2, 9], [8])]}
    out = process_env_results([[]], [[]], [state], [1.0], max_seq_len=4,
                              mask_truncated_completions=True, zero_truncated_completions=True)
    assert out["is_truncated"] == [True, False]
    assert out["completion_mask"] == [[0, 0], [1]]
    assert out["rewards"] == [0.0, 1.0]


def test_a_truncated_rollout_truncates_its_last_sample_only():
    last = turn([1, 2, 9], [8, 8])
    last["finish_reason"] = "length"
    state = {"turns": [turn([1, 2], [3]), last], "is_truncated": True}
    out = process_env_results([[]], [[]], [state], [1.0], zero_truncated_completions=True)
    assert out["is_truncated"] == [False, True]
    assert out["rewards"] == [1.0, 0.0]


def test_max_seq_len_minus_one_or_none_means_no_limit_and_other_negatives_are_refused():
    state = {"turns": [turn([1, 2], [3, 4, 5])]}
    for unlimited in (-1, None):
        out = process_env_results([[]], [[]], [state], [1.0], max_seq_len=unlimited)
        assert out["completion_ids"] == [[3, 4, 5]] and out["is_truncated"] == [False]
    for bad in (-2, 0):
        with pytest.raises(ValueError, match="max_seq_len must be an integer >= 1, or None / -1"):
            process_env_results([[]], [[]], [state], [1.0], max_seq_len=bad)


def test_rollout_to_samples_applies_completion_and_prompt_limits_once():
    state = {"turns": [turn([1, 2, 3], [4, 5, 6])]}
    cut = rollout_to_samples([], [], state, 0.5, LengthPolicy(max_completion_length=2))
    assert [(s.completion_ids, s.is_truncated, s.reward) for s in cut] == [([4, 5], True, 0.5)]
    assert cut[0].completion_logprobs == [-0.5, -0.5]
    # a prompt over its limit is never cut: kept whole, flagged, nothing trained
    long = rollout_to_samples([], [], state, 0.5, LengthPolicy(max_prompt_length=2))
    assert long[0].prompt_ids == [1, 2, 3] and long[0].prompt_too_long is True
    assert long[0].completion_mask == [0, 0, 0] and long[0].is_truncated is False
    fits = rollout_to_samples([], [], state, 0.5, LengthPolicy(max_prompt_length=3))
    assert fits[0].prompt_too_long is False and fits[0].completion_mask == [1, 1, 1]


def test_rollout_to_samples_refuses_bad_limits():
    with pytest.raises(ValueError, match="max_completion_length must be an integer >= 1"):
        LengthPolicy(max_completion_length=-5)
    with pytest.raises(ValueError, match="max_prompt_length"):
        LengthPolicy(max_prompt_length=1.5)


def test_rollout_to_samples_is_public():
    import verifiers.processing as processing

    assert {"LengthPolicy", "TokenSample", "rollout_to_samples", "process_env_results"} <= set(
        processing.__all__)
