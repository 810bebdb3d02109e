"""GRPOConfig: defaults, every validation rule, aliases, grpo_defaults / lora_defaults and
serialisation."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
from transformers import HfArgumentParser, TrainingArguments

from verifiers_trainer.grpo.config import (
    ALIASES,
    IGNORED_ALIASES,
    GRPOConfig,
    grpo_defaults,
    lora_defaults,
)


def make(**kwargs) -> GRPOConfig:
    kwargs.setdefault("output_dir", "outputs/test")
    return GRPOConfig(**kwargs)


# -- defaults --------------------------------------------------------------------------------

DEFAULTS = {
    "per_device_train_batch_size": 8,
    "num_generations": 8,
    "gradient_accumulation_steps": 1,
    "generation_batch_size": None,
    "max_prompt_length": 1024,
    "max_completion_length": 2048,
    "max_tokens": None,
    "max_seq_len": None,
    "num_iterations": 1,
    "learning_rate": 1e-6,
    "lr_scheduler_type": "constant_with_warmup",
    "warmup_steps": 10,
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": None,
    "min_p": None,
    "repetition_penalty": 1.0,
    "beta": 0.001,
    "sync_ref_model": False,
    "ref_model_sync_steps": 100,
    "ref_model_mixup_alpha": 0.5,
    "loss_type": "dr_grpo",
    "epsilon": 0.2,
    "epsilon_high": None,
    "delta": None,
    "scale_rewards": "group",
    "importance_sampling_level": "token",
    "sampler_correction_cap": 3.0,
    "mask_env_responses": True,
    "mask_truncated_completions": False,
    "zero_truncated_completions": False,
    "num_batches_ahead": 1,
    "async_generation_timeout": 300.0,
    "max_concurrent": 1024,
    "ds3_gather_for_generation": True,
    "log_completions": False,
    "num_completions_to_print": None,
    "report_to": [],  # "none", which TrainingArguments stores as no integrations
    "generation_backend": "engine",
    "vllm_server_host": "127.0.0.1",
    "vllm_server_port": 8000,
    "vllm_server_timeout": 300.0,
    "eval_temperature": 0.0,
    "eval_num_examples": -1,
    "remove_unused_columns": False,
}


def test_defaults():
    config = make()
    for name, value in DEFAULTS.items():
        assert getattr(config, name) == value, name
    assert config.clip_epsilons == (0.2, 0.2)
    assert make(epsilon_high=0.28).clip_epsilons == (0.2, 0.28)
    assert isinstance(config, TrainingArguments)


def test_every_grpo_field_documents_itself():
    base = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    ours = [f for f in dataclasses.fields(GRPOConfig)
            if f.name not in base or f is not base[f.name]]
    assert {f.name for f in ours} >= set(DEFAULTS) - {"per_device_train_batch_size",
                                                      "gradient_accumulation_steps"}
    for f in ours:
        assert f.metadata.get("help"), f"{f.name} has no help"


def test_documented_settings_are_accepted():
    """The settings the training guide shows, set as attributes or passed at construction."""
    args = grpo_defaults(run_name="experiment")
    for name, value in {
        "per_device_train_batch_size": 8, "num_generations": 16, "gradient_accumulation_steps": 4,
        "max_tokens": 1024, "temperature": 1.0, "top_p": 1.0, "top_k": None,
        "max_prompt_length": 1024, "max_completion_length": 2048, "max_seq_len": 4096,
        "learning_rate": 1e-6, "lr_scheduler_type": "constant_with_warmup", "warmup_steps": 10,
        "max_steps": 500, "num_iterations": 1, "max_grad_norm": 0.01, "beta": 0.001,
        "sync_ref_model": True, "ref_model_sync_steps": 100, "ref_model_mixup_alpha": 0.5,
        "loss_type": "dr_grpo", "epsilon": 0.2, "delta": None, "num_batches_ahead": 1,
        "async_generation_timeout": 300.0, "max_concurrent": 1024, "eval_strategy": "steps",
        "eval_steps": 100, "per_device_eval_batch_size": 16, "repetition_penalty": 1.1,
        "min_p": 0.05, "gradient_checkpointing": True, "ds3_gather_for_generation": False,
        "generation_batch_size": 16, "logging_steps": 1, "log_completions": True,
        "report_to": "none", "num_completions_to_print": 5,
    }.items():
        setattr(args, name, value)
    rebuilt = GRPOConfig(**{k: v for k, v in args.to_dict().items()})
    assert rebuilt.num_generations == 16 and rebuilt.max_seq_len == 4096
    assert rebuilt.validate_batch(num_processes=2) == 16


# -- validation: the field and the rule are in the message ------------------------------------

BAD = [
    ({"num_generations": 1}, "num_generations must be >= 2"),
    ({"per_device_train_batch_size": 0}, "per_device_train_batch_size must be >= 1"),
    ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps must be >= 1"),
    ({"generation_batch_size": 0}, "generation_batch_size must be >= 1"),
    ({"generation_batch_size": 12, "num_generations": 8},
     "generation_batch_size (12) must be divisible by num_generations (8)"),
    ({"max_prompt_length": 0}, "max_prompt_length must be >= 1, or None"),
    ({"max_completion_length": 0}, "max_completion_length must be >= 1"),
    ({"max_tokens": 0}, "max_tokens must be >= 1, or None"),
    ({"max_seq_len": 0}, "max_seq_len must be >= 1, or None"),
    ({"max_prompt_length": 1024, "max_completion_length": 2048, "max_seq_len": 2048},
     "max_prompt_length (1024) + max_completion_length (2048) = 3072 must be <= "
     "max_seq_len (2048)"),
    ({"num_iterations": 0}, "num_iterations must be >= 1"),
    ({"learning_rate": 0.0}, "learning_rate must be > 0"),
    ({"warmup_steps": -1}, "warmup_steps must be >= 0"),
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"top_p": 0.0}, "top_p must be in (0, 1]"),
    ({"top_p": 1.5}, "top_p must be in (0, 1]"),
    ({"top_k": 0}, "top_k must be >= 1, or None"),
    ({"min_p": 1.5}, "min_p must be in [0, 1]"),
    ({"repetition_penalty": 0.0}, "repetition_penalty must be > 0"),
    ({"beta": -0.1}, "beta must be >= 0"),
    ({"ref_model_sync_steps": 0}, "ref_model_sync_steps must be >= 1"),
    ({"ref_model_mixup_alpha": 1.5}, "ref_model_mixup_alpha must be in [0, 1]"),
    ({"loss_type": "dr-grpo"}, "loss_type must be one of 'grpo', 'bnpo', 'dr_grpo', 'dapo'"),
    ({"epsilon": 1.0}, "epsilon must be in [0, 1)"),
    ({"epsilon_high": -0.1}, "epsilon_high must be >= 0, or None"),
    ({"delta": 1.1}, "delta must be > 1 + epsilon_high (= 1.2)"),
    ({"delta": 1.25, "epsilon_high": 0.28}, "delta must be > 1 + epsilon_high (= 1.28)"),
    ({"scale_rewards": "std"}, "scale_rewards must be one of 'group', 'batch', 'none'"),
    ({"importance_sampling_level": "seq"},
     "importance_sampling_level must be one of 'token', 'sequence'"),
    ({"sampler_correction_cap": 0.5}, "sampler_correction_cap must be >= 1, or None"),
    ({"generation_backend": "vLLM"}, "generation_backend must be one of 'engine', 'vllm'"),
    ({"vllm_server_port": 0}, "vllm_server_port must be in [1, 65535]"),
    ({"vllm_server_timeout": 0}, "vllm_server_timeout must be > 0"),
    ({"num_batches_ahead": -1}, "num_batches_ahead must be >= 0"),
    ({"async_generation_timeout": 0}, "async_generation_timeout must be > 0"),
    ({"max_concurrent": 0}, "max_concurrent must be >= 1"),
    ({"eval_temperature": -1.0}, "eval_temperature must be >= 0"),
    ({"eval_num_examples": 0}, "eval_num_examples must be >= 1, or -1"),
    ({"num_completions_to_print": 0}, "num_completions_to_print must be >= 1, or None"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD, ids=[next(iter(k)) for k, _ in BAD])
def test_validation_errors_name_the_field_and_rule(kwargs, message):
    with pytest.raises(ValueError) as info:
        make(**kwargs)
    assert message in str(info.value)
    bad = next(iter(kwargs.items()))
    assert repr(bad[1]) in str(info.value) or str(bad[1]) in str(info.value)


def test_choice_errors_suggest_the_close_value():
    with pytest.raises(ValueError, match="Did you mean 'dr_grpo'"):
        make(loss_type="dr-grpo")


def test_boundary_values_are_accepted():
    make(num_generations=2, top_p=1.0, min_p=0.0, epsilon=0.0, beta=0.0, num_batches_ahead=0,
         warmup_steps=0.1, delta=1.21, sampler_correction_cap=None, max_seq_len=3072,
         ref_model_mixup_alpha=1.0, top_k=1, eval_num_examples=5)


def test_scale_rewards_accepts_booleans():
    assert make(scale_rewards=True).scale_rewards == "group"
    assert make(scale_rewards=False).scale_rewards == "none"


def test_sequence_level_with_token_sum_loss_warns():
    with pytest.warns(UserWarning, match="GSPO as published uses loss_type='grpo'"):
        make(importance_sampling_level="sequence", loss_type="dr_grpo")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(importance_sampling_level="sequence", loss_type="grpo")


# -- the batch rule that needs the number of processes ----------------------------------------


def test_validate_batch_generation_batch_must_hold_whole_groups():
    config = make(per_device_train_batch_size=12, gradient_accumulation_steps=1,
                  num_generations=8)
    with pytest.raises(ValueError) as info:
        config.validate_batch(num_processes=1)
    text = str(info.value)
    assert ("generation batch (per_device_train_batch_size × num_processes × "
            "gradient_accumulation_steps = 12 × 1 × 1 = 12) must be divisible by "
            "num_generations (8)") in text
    assert "[2, 3, 4, 6, 12]" in text  # the group sizes that would fit
    assert config.validate_batch(num_processes=2) == 24  # 12 × 2 holds three groups of 8


def test_validate_batch_with_generation_batch_size():
    config = make(per_device_train_batch_size=4, num_generations=4, generation_batch_size=16)
    assert config.validate_batch(num_processes=2) == 16
    with pytest.raises(ValueError, match=r"generation_batch_size \(16\) must be divisible by "
                       r"per_device_train_batch_size × num_processes \(4 × 3 = 12\)"):
        config.validate_batch(num_processes=3)


def test_validate_batch_eval_and_process_count():
    config = make(per_device_train_batch_size=8, num_generations=8, eval_strategy="steps",
                  eval_steps=10, per_device_eval_batch_size=6)
    assert config.validate_batch(1) == 8  # evaluation is one rollout per example: no eval rule
    assert make(warmup_ratio=0.1).warmup_steps == 0.1
    with pytest.raises(ValueError, match="num_processes must be >= 1"):
        make().validate_batch(0)


# -- aliases and unknown keys ----------------------------------------------------------------


def test_aliases_map_to_fields():
    config = make(batch_size=4, group_size=4, num_epochs=2, kl_coef=0.1, max_new_tokens=64)
    assert config.per_device_train_batch_size == 4
    assert config.num_generations == 4
    assert config.num_train_epochs == 2
    assert config.beta == 0.1
    assert config.max_completion_length == 64
    # Readable and writable under the old names too; not serialised twice.
    assert (config.batch_size, config.group_size, config.kl_coef) == (4, 4, 0.1)
    config.group_size = 16
    assert config.num_generations == 16
    assert not set(ALIASES) & set(config.to_dict())


def test_aliases_are_validated_like_their_fields():
    with pytest.raises(ValueError, match="num_generations must be >= 2"):
        make(group_size=1)


@pytest.mark.parametrize(("alias", "field_name"), list(ALIASES.items()))
def test_alias_and_field_together_is_an_error(alias, field_name):
    with pytest.raises(ValueError) as info:
        make(**{alias: 4, field_name: 4})
    assert alias in str(info.value) and field_name in str(info.value)


@pytest.mark.parametrize("name", list(IGNORED_ALIASES))
def test_ppo_only_settings_warn_and_are_ignored(name):
    with pytest.warns(UserWarning, match=f"{name}=0.95 is ignored"):
        config = make(**{name: 0.95})
    assert name not in config.to_dict()
    assert not hasattr(config, name)


def test_training_guide_style_config():
    with pytest.warns(UserWarning):
        config = make(learning_rate=1e-5, batch_size=32, group_size=4, num_epochs=3,
                      gradient_accumulation_steps=4, temperature=0.7, kl_coef=0.1,
                      max_new_tokens=512, gamma=1.0, gae_lambda=0.95)
    assert (config.per_device_train_batch_size, config.num_generations, config.beta) == (32, 4, 0.1)


def test_unknown_keyword_suggests_close_fields():
    with pytest.raises(TypeError, match="unknown keyword 'num_generation'. Did you mean "
                       "'num_generations'"):
        make(num_generation=4)
    with pytest.raises(TypeError, match="Did you mean 'kl_coef'"):
        make(kl_coeff=0.1)
    with pytest.raises(TypeError, match="unknown keyword 'zzz'. Its fields"):
        make(zzz=1)


# -- serialisation ---------------------------------------------------------------------------


def test_round_trip_through_dict_and_json():
    config = make(batch_size=4, num_generations=4, loss_type="dapo", epsilon_high=0.28,
                  delta=2.0, scale_rewards="batch", max_seq_len=4096, top_k=20)
    data = json.loads(config.to_json_string())
    assert data["per_device_train_batch_size"] == 4 and data["loss_type"] == "dapo"
    rebuilt = GRPOConfig(**data)
    assert rebuilt.to_dict() == config.to_dict()
    assert dataclasses.replace(config, num_generations=2).num_generations == 2


def test_command_line_parsing():
    (config,) = HfArgumentParser(GRPOConfig).parse_args_into_dataclasses(
        ["--output_dir", "outputs/cli", "--num_generations", "4", "--loss_type", "bnpo",
         "--top_k", "5", "--epsilon_high", "0.28"])
    assert (config.num_generations, config.loss_type, config.top_k) == (4, "bnpo", 5)
    assert config.clip_epsilons == (0.2, 0.28)


# -- grpo_defaults / lora_defaults -----------------------------------------------------------


def test_grpo_defaults():
    config = grpo_defaults(run_name="my-experiment")
    assert config.output_dir == "outputs/my-experiment"
    assert config.run_name == "my-experiment"
    assert config.report_to == []
    assert config.logging_steps == 1
    assert config.save_strategy == "steps" and config.save_only_model
    assert config.max_grad_norm == 0.01 and config.max_steps == 500
    assert config.lr_scheduler_type == "constant_with_warmup" and config.warmup_steps == 10
    assert config.validate_batch(num_processes=1) == 32
    assert grpo_defaults().output_dir == "outputs/grpo"


def test_grpo_defaults_overrides_and_aliases():
    config = grpo_defaults("x", num_generations=4, batch_size=2, report_to="none")
    assert (config.num_generations, config.per_device_train_batch_size) == (4, 2)
    with pytest.raises(TypeError, match="Did you mean 'num_generations'"):
        grpo_defaults("x", num_generation=4)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        grpo_defaults("x", temperature=0)


def test_lora_defaults():
    from peft import LoraConfig

    config = lora_defaults()
    assert isinstance(config, LoraConfig)
    assert (config.r, config.lora_alpha, config.lora_dropout) == (8, 16, 0.0)
    assert config.target_modules == "all-linear"
    assert str(config.task_type.value if hasattr(config.task_type, "value")
               else config.task_type) == "CAUSAL_LM"
    custom = lora_defaults(r=16, alpha=32, dropout=0.05, target_modules=["q_proj", "v_proj"],
                           bias="lora_only")
    assert (custom.r, custom.lora_alpha, custom.bias) == (16, 32, "lora_only")
    assert set(custom.target_modules) == {"q_proj", "v_proj"}


def test_atlas_vllm_settings():
    with pytest.warns(UserWarning) as caught:
        config = make(use_vllm=True, vllm_device="cuda:1", vllm_gpu_memory_utilization=0.9)
    assert [str(w.message).split(" is ignored")[0] for w in caught] == \
        ["vllm_device='cuda:1'", "vllm_gpu_memory_utilization=0.9"]
    assert config.generation_backend == "vllm"
    with pytest.warns(UserWarning, match="num_vllm_clients"):
        config = make(use_vllm_server=True, vllm_host="localhost", vllm_port=8765, num_vllm_clients=2)
    assert (config.generation_backend, config.vllm_server_host, config.vllm_server_port) == \
        ("vllm", "localhost", 8765)
    assert make(use_vllm=False).generation_backend == "engine"
    with pytest.raises(ValueError, match="use_vllm=True asks for vLLM generation"):
        make(use_vllm=True, generation_backend="engine")
