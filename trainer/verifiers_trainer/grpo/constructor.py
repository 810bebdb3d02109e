"""The forms ``GRPOTrainer(...)`` accepts, reduced to one: model, tokenizer, environment,
configuration.

- TRL's and ATLAS's positional order: ``GRPOTrainer(model, reward_funcs, args,
  train_dataset, eval_dataset, processing_class, reward_processing_classes, callbacks,
  optimizers, peft_config)``; the data comes from ``train_dataset`` (or from a reward
  function that carries one).
- an environment: ``GRPOTrainer(model, env=env, args=args, processing_class=tokenizer)``;
  verifiers 0.1.x's positional order ``GRPOTrainer(model, env, args, processing_class)`` is
  recognised by the environment in second place.
- verifiers 0.1.x's training guide's names: ``tokenizer=`` for ``processing_class``,
  ``config=`` for ``args``, and ``dataset=`` for pre-generated prompts, completions and
  rewards (see :mod:`verifiers_trainer.grpo.pregenerated`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import verifiers as vf
from verifiers_trainer.grpo.config import GRPOConfig


@dataclass
class TrainerInputs:
    model: Any
    processing_class: Any
    env: vf.Environment
    args: GRPOConfig
    peft_config: Any
    callbacks: list[Any]
    optimizers: tuple[Any, Any]
    pregenerated: Any = None  # a PregeneratedData, for dataset=...
    eval_dataset_given: bool = False


def _is_tokenizer(value: Any) -> bool:
    return value is not None and hasattr(value, "apply_chat_template") and hasattr(value, "pad_token_id")


def resolve(model: Any, reward_funcs: Any, args: Any, train_dataset: Any, eval_dataset: Any,
            processing_class: Any, reward_processing_classes: Any, callbacks: Any, optimizers: Any,
            peft_config: Any, env: Any, tokenizer: Any, config: Any, dataset: Any) -> TrainerInputs:
    """Check the arguments of one call and return what the trainer is built from."""
    # -- verifiers 0.1.x's positional order: (model, env, args, processing_class, callbacks,
    #    optimizers, peft_config); told apart by the environment in second place
    if isinstance(reward_funcs, vf.Environment):
        if env is not None:
            raise TypeError("Got two environments (second argument and env=...): pass one.")
        env, reward_funcs = reward_funcs, None
        if _is_tokenizer(train_dataset) and processing_class is None:
            processing_class, train_dataset = train_dataset, None
            if isinstance(eval_dataset, list) and callbacks is None:  # callbacks, 5th
                callbacks, eval_dataset = eval_dataset, None
        if train_dataset is not None or eval_dataset is not None or reward_processing_classes is not None:
            raise TypeError("With an environment as the second argument (verifiers 0.1.x's order "
                            "model, env, args, processing_class), pass the rest by keyword: "
                            "GRPOTrainer(model, env=env, args=args, processing_class=tokenizer).")

    # -- configuration
    if args is not None and config is not None:
        raise TypeError("Pass the configuration once: args=... (or its alias config=...).")
    args = args if args is not None else config if config is not None else GRPOConfig(output_dir="outputs/grpo")
    if not isinstance(args, GRPOConfig):
        raise TypeError(f"args must be a GRPOConfig (verifiers_trainer.GRPOConfig), got {type(args).__name__}.")

    # -- model and tokenizer
    if processing_class is not None and tokenizer is not None and processing_class is not tokenizer:
        raise TypeError("Pass the tokenizer once: processing_class=... (or its alias tokenizer=...).")
    processing_class = processing_class if processing_class is not None else tokenizer
    if isinstance(model, str):
        from verifiers_trainer.models.loading import get_model_and_tokenizer

        model, loaded_tokenizer = get_model_and_tokenizer(model)
        processing_class = processing_class or loaded_tokenizer
    if processing_class is None:
        processing_class = tokenizer_of(model)
    if processing_class.pad_token_id is None:
        processing_class.pad_token = processing_class.eos_token

    # -- where the data comes from: pre-generated, an environment, or reward functions
    pregenerated = None
    if dataset is not None:
        if env is not None or reward_funcs is not None or train_dataset is not None:
            raise TypeError("dataset=... is pre-generated prompts, completions and rewards; it "
                            "replaces env=..., reward_funcs=... and train_dataset=...: pass only it.")
        from verifiers_trainer.grpo.pregenerated import PregeneratedData

        pregenerated = PregeneratedData(dataset)
        env = pregenerated.env()
        if eval_dataset is not None:
            raise TypeError("dataset=... (pre-generated completions) has no environment to evaluate "
                            "with; evaluate separately with env.evaluate(...), or drop eval_dataset.")
    elif env is None:
        if reward_funcs is None:
            raise TypeError("GRPOTrainer needs data: env=vf_env (an environment), reward_funcs=[...] "
                            "with train_dataset=..., or dataset=... (pre-generated prompts, "
                            "completions and rewards).")
        from verifiers_trainer.grpo.reward_funcs import env_from_reward_funcs

        env = env_from_reward_funcs(reward_funcs, train_dataset, eval_dataset,
                                    processing_class, reward_processing_classes)
    elif reward_funcs is not None:
        raise TypeError("Give either env=... or reward_funcs=..., not both (the environment's "
                        "rubric holds its reward functions).")
    elif train_dataset is not None:
        raise TypeError("With env=..., the training data comes from the environment: give its "
                        "constructor dataset=... (or load_environment's arguments) instead of "
                        "train_dataset here.")
    elif eval_dataset is not None:
        if env.eval_dataset is not None:
            raise TypeError("The environment has an eval dataset already; drop eval_dataset=... "
                            "here, or build the environment with the one you want.")
        from verifiers.utils.data_utils import format_dataset

        env.eval_dataset = format_dataset(eval_dataset, env.system_prompt, env.few_shot, env.message_type)
    if env.dataset is None:
        raise ValueError("The environment has no training dataset (it was built with eval_dataset "
                         "only): give it dataset=....")
    return TrainerInputs(model, processing_class, env, args, peft_config, list(callbacks or []),
                         optimizers if optimizers is not None else (None, None), pregenerated,
                         eval_dataset is not None)


def tokenizer_of(model: Any) -> Any:
    """The tokenizer saved with a loaded model ("auto-loaded if None")."""
    from transformers import AutoTokenizer

    source = getattr(getattr(model, "config", None), "_name_or_path", "")
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise TypeError(f"GRPOTrainer needs a tokenizer: none was given and none could be loaded "
                        f"from the model's folder {source!r} ({exc}). Pass "
                        "processing_class=tokenizer (or tokenizer=...).") from exc
