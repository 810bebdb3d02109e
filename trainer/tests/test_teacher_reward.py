"""AdaptiveTeachingReward: every branch of ATLAS's documented formula, answer extraction, templates,
and the reward as a plain reward function (asking a tiny student itself)."""

from __future__ import annotations

import pytest

from verifiers_trainer import GRPOConfig
from verifiers_trainer.teacher import (
    AdaptiveTeachingReward,
    TeachingOutcome,
    TeachingTemplates,
    adaptive_teaching_reward,
    extract_solution,
    teaching_metrics,
)
from verifiers_trainer.teacher.config import TEACHING_FIELDS, TeacherGRPOConfig, teaching_settings
from verifiers_trainer.teacher.templates import check_template

# -- the formula ---------------------------------------------------------------------------


@pytest.mark.parametrize(("with_", "without", "tokens", "multiplier", "weight", "expected"), [
    (0.0, 1.0, 10, 2.0, 1.0, -2.0),              # Δ < 0: −multiplier·|Δ|, length ignored
    (0.0, 1.0, 500, 3.5, 1.0, -3.5),
    (0.5, 1.0, 10, 2.0, 1.0, -1.0),              # partial degradation scales with |Δ|
    (1.0, 1.0, 10, 2.0, 1.0, 0.0),               # Δ = 0, both correct
    (0.0, 0.0, 10, 2.0, 1.0, 0.0),               # Δ = 0, both wrong
    (1.0, 0.0, 0, 2.0, 1.0, 2.0),                # Δ > 0: Δ·(1 + w·100/(100 + n)), n = 0
    (1.0, 0.0, 100, 2.0, 1.0, 1.5),              # n = 100: bonus 1/2
    (1.0, 0.0, 300, 2.0, 2.0, 1.5),              # w = 2, n = 300: 1 + 2·0.25
    (1.0, 0.0, 50, 2.0, 0.0, 1.0),               # w = 0: no efficiency bonus
    (0.5, 0.0, 100, 2.0, 1.0, 0.75),             # partial improvement
])
def test_formula_branches(with_, without, tokens, multiplier, weight, expected):
    assert adaptive_teaching_reward(with_, without, tokens, multiplier, weight) == pytest.approx(expected)
    if {with_, without} <= {0.0, 1.0}:  # the same through the class, from answers
        reward = AdaptiveTeachingReward(degradation_penalty_multiplier=multiplier,
                                        efficiency_weight=weight)
        answer = {1.0: "42", 0.0: "41"}
        outcome = reward.outcome("q", answer[with_], answer[without], "42", tokens)
        assert outcome.reward == pytest.approx(expected)


def test_call_with_documented_keywords_scores_each_branch():
    reward = AdaptiveTeachingReward(degradation_penalty_multiplier=2.0, efficiency_weight=1.0)
    rewards = reward(
        prompts=["What is 2+2?"] * 4,
        completions=["add them", "think", "count", "no"],
        ground_truths=["4", "4", "4", "4"],
        baseline_solutions=["3", "4", "4", "5"],
        solutions=["4", "3", "4", "6"],
        teaching_tokens=[100, 7, 7, 7],
    )
    assert rewards == pytest.approx([1.5, -2.0, 0.0, 0.0])
    assert [o.delta for o in reward.last_outcomes] == [1.0, -1.0, 0.0, 0.0]


def test_call_counts_teaching_tokens_with_the_tokenizer(tiny):
    _, tokenizer = tiny
    teaching = "Subtract the smaller number from the larger one."
    tokens = len(tokenizer(teaching, add_special_tokens=False)["input_ids"])
    reward = AdaptiveTeachingReward(tokenizer=tokenizer)
    completion = [{"role": "assistant", "content": teaching}]
    [value] = reward([[{"role": "user", "content": "q"}]], [completion], ground_truths=["7"],
                     baseline_solutions=[""], solutions=["7"])
    assert value == pytest.approx(1 + 100 / (100 + tokens))
    assert reward.last_outcomes[0].teaching_tokens == tokens


def test_evaluate_student_performance_is_an_exact_case_insensitive_match():
    judge = AdaptiveTeachingReward().evaluate_student_performance
    assert judge("q", "Paris", "paris") == 1.0
    assert judge("q", "  42 ", "42") == 1.0
    assert judge("q", "42.0", "42") == 0.0
    assert judge("q", "x = 42", "42") == 0.0
    assert judge("q", "", "") == 0.0  # an empty answer is never correct


def test_bad_input_fails_clearly():
    reward = AdaptiveTeachingReward()
    with pytest.raises(TypeError, match="needs ground_truths"):
        reward(["q"], ["t"], solutions=["1"], baseline_solutions=["1"])
    with pytest.raises(ValueError, match="2 completions but 1 solutions"):
        reward(["q", "q"], ["t", "t"], ground_truths=["1", "1"], solutions=["1"],
               baseline_solutions=["1", "1"])
    with pytest.raises(ValueError, match="No ground truth"):
        reward(["q"], ["t"], ground_truths=[""], solutions=["1"], baseline_solutions=["0"],
               teaching_tokens=[3])
    with pytest.raises(TypeError, match="or a student to ask"):
        reward(["q"], ["t"], ground_truths=["1"])
    with pytest.raises(ValueError, match="degradation_penalty_multiplier must be >= 0"):
        AdaptiveTeachingReward(degradation_penalty_multiplier=-1)


def test_called_on_its_own_without_a_tokenizer_counts_words():
    """The documented standalone call: no tokenizer, no teaching_tokens; the teaching length is
    its number of words."""
    reward_func = AdaptiveTeachingReward(degradation_penalty_multiplier=2.0, efficiency_weight=1.0)
    teachings = ["Add the two numbers, then check the sum once more.",  # 10 words, fixes the student
                 "Subtract instead.",                                     # breaks a correct student
                 "Nothing to add here"]                                   # no change
    rewards = reward_func(
        prompts=["What is 2+3?", "What is 4+4?", "What is 1+1?"], completions=teachings,
        ground_truths=["5", "8", "2"], baseline_solutions=["6", "8", "2"], solutions=["5", "0", "2"],
        questions=["What is 2+3?", "What is 4+4?", "What is 1+1?"])
    assert rewards == pytest.approx([1.0 * (1.0 + 1.0 * 100.0 / (100.0 + 10)), -2.0, 0.0])
    assert [o.teaching_tokens for o in reward_func.last_outcomes] == [10, 2, 4]
    shorter = reward_func(prompts=["q"], completions=["Add them."], ground_truths=["5"],
                          baseline_solutions=["6"], solutions=["5"])
    assert shorter[0] > rewards[0]  # fewer words, larger efficiency bonus


def test_teaching_metrics():
    outcomes = [TeachingOutcome(1.0, 0.0, 10, 1.9), TeachingOutcome(0.0, 1.0, 30, -2.0),
                TeachingOutcome(1.0, 1.0, 20, 0.0), TeachingOutcome(0.0, 0.0, 20, 0.0)]
    assert teaching_metrics(outcomes) == {
        "teaching/student_accuracy": 0.5, "teaching/baseline_accuracy": 0.5,
        "teaching/accuracy_delta": 0.0, "teaching/improvement_rate": 0.25,
        "teaching/degradation_rate": 0.25, "teaching/teaching_length": 20.0,
    }
    assert teaching_metrics([]) == {}


# -- answer extraction ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("so <solution>42</solution>", "42"),
    ("<solution> 1 </solution> then <solution>2</solution>", "2"),       # the last one
    ("<SOLUTION>\n-7\n</SOLUTION>", "-7"),
    ("<solution>\\boxed{3/4}</solution>", "3/4"),                         # boxed inside, unwrapped
    ("The answer is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),             # balanced braces
    ("\\boxed{1} and \\boxed{2}", "2"),
    ("<solution>5", ""),                                                  # never closed
    ("<solution>5 and \\boxed{6}", "6"),                                  # unclosed: boxed fallback
    ("2 + 3 = 5", ""),
    ("", ""),
    (None, ""),
])
def test_extract_solution(text, expected):
    assert extract_solution(text) == expected


# -- templates -----------------------------------------------------------------------------


def test_templates_are_filled_as_one_user_message():
    templates = TeachingTemplates()
    [message] = templates.teacher("What is {x}?", "add")
    assert message["role"] == "user"
    assert "What is {x}?" in message["content"] and "add" in message["content"]


@pytest.mark.parametrize(("name", "template", "error"), [
    ("teacher_adaptive_template", "Question: {question}", "{approach} is missing"),
    ("student_baseline_template", "{question} {answer}", "unknown placeholders {answer}"),
    ("student_with_teaching_template", "{question} {teaching", "not a valid format string"),
    ("student_diagnostic_template", 3, "must be a string"),
])
def test_bad_templates_fail_with_the_field_and_the_rule(name, template, error):
    with pytest.raises(ValueError, match=name) as info:
        check_template(name, template)
    assert error in str(info.value)
    with pytest.raises(ValueError, match=name):
        GRPOConfig(output_dir="out", **{name: template})


def test_config_teaching_defaults_and_bounds():
    config = GRPOConfig(output_dir="out", max_probe_tokens=50)  # ATLAS's documented form
    assert isinstance(config, TeacherGRPOConfig) and isinstance(config, GRPOConfig)
    assert config.max_probe_tokens == 50 and config.student_temperature == 0.0
    assert TeachingTemplates.from_config(config) == TeachingTemplates()
    with pytest.raises(ValueError, match="max_probe_tokens must be >= 1"):
        GRPOConfig(output_dir="out", max_probe_tokens=0)
    with pytest.raises(ValueError, match="student_vllm_server_port must be in"):
        GRPOConfig(output_dir="out", student_vllm_server_port=0)
    literal = "{{json}} {question}"  # literal braces are allowed
    assert GRPOConfig(output_dir="out", student_baseline_template=literal).student_baseline_template == literal


def test_teaching_settings_live_in_the_teacher_config():
    import dataclasses

    plain = GRPOConfig(output_dir="out")
    assert type(plain) is GRPOConfig
    assert not set(TEACHING_FIELDS) & {f.name for f in dataclasses.fields(GRPOConfig)}
    assert set(TEACHING_FIELDS) == {"max_probe_tokens", "student_diagnostic_template",
                                    "teacher_adaptive_template", "student_with_teaching_template",
                                    "student_baseline_template", "student_max_tokens",
                                    "student_temperature", "student_vllm_server_host",
                                    "student_vllm_server_port"}
    assert teaching_settings(plain).max_probe_tokens == 50  # a plain GRPOConfig: the defaults
    own = TeacherGRPOConfig(output_dir="out", max_probe_tokens=7, student_temperature=0.5,
                            batch_size=8, group_size=4)  # GRPOConfig's aliases work too
    assert (own.max_probe_tokens, own.num_generations) == (7, 4)
    assert teaching_settings(own).student_temperature == 0.5
    assert own.templates == TeachingTemplates()
    with pytest.raises(TypeError, match="Did you mean 'max_probe_tokens'"):
        GRPOConfig(output_dir="out", max_probe_token=7)
    with pytest.raises(TypeError, match="unknown keyword 'student_colour'"):
        GRPOConfig(output_dir="out", max_probe_tokens=7, student_colour="red")


def test_grpo_config_module_does_not_import_the_teacher():
    import subprocess
    import sys

    code = ("import sys, verifiers_trainer.grpo.config as c; "
            "print(sorted(m for m in sys.modules if m.startswith('verifiers_trainer.teacher')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the reward on its own: it asks a student ------------------------------------------------


def test_standalone_reward_asks_its_student(tiny_model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    student = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    reward = AdaptiveTeachingReward(student_model=student, tokenizer=tokenizer)
    reward.student_max_tokens = 8
    rewards = reward(["What is 2 + 2?"] * 2, ["Add two and two.", "Count up."],
                     ground_truths=["4", "4"])
    assert len(rewards) == 2
    engine = reward.student.client
    # one baseline (the question repeats) and one solution per teaching
    assert engine.stats.requests == 3
    assert all(not p.requires_grad for p in student.parameters())


def test_usable_as_a_plain_reward_function_in_grpo_trainer(tiny_model_path, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from verifiers_trainer import GRPOTrainer

    teacher = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    student = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    reward = AdaptiveTeachingReward(student_model=student, tokenizer=tokenizer)
    reward.student_max_tokens = 8
    dataset = [{"prompt": [{"role": "user", "content": f"Teach: what is {i} + 1?"}],
                "ground_truth": str(i + 1)} for i in range(4)]
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=6, max_steps=1, beta=0.0, logging_steps=1,
                      save_strategy="no", use_cpu=True)
    trainer = GRPOTrainer(model=teacher, reward_funcs=[reward], args=args, train_dataset=dataset,
                          processing_class=tokenizer)
    trainer.train()
    assert "rewards/adaptive_teaching" in trainer.state.log_history[0]
    assert reward.student.client.stats.requests == 1 + 4  # one baseline, four solutions
