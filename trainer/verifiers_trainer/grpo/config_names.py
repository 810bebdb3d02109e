"""EasyDeL's GRPO config names, translated to ``GRPOConfig``'s.

| EasyDeL name | here |
|---|---|
| ``model_name="x"`` | ``run_name="x"``; with ``save_directory``, checkpoints go to ``save_directory/x`` |
| ``save_directory="d"`` | ``output_dir="d"`` (``"d/<model_name>"`` when ``model_name`` is given) |
| ``total_batch_size=n`` | ``n`` prompts per optimizer step over all processes: ``per_device_train_batch_size = n × num_generations / (processes × gradient_accumulation_steps)`` |
| ``use_wandb=True`` / ``False`` | ``report_to="wandb"`` / ``"none"`` |
| ``dataset_num_proc=None`` | accepted (prompts are not preprocessed in worker processes); any other value is refused |
| ``skip_apply_chat_template=False`` | accepted: chat prompts go through the chat template, text prompts are sent as they are; ``True`` is refused (give text prompts) |
| ``num_return_sequences=k`` | ``num_generations=k`` (``vInference``'s name) |

A name and its translation given together (``save_directory`` with ``output_dir``) is an
error naming both.
"""

from __future__ import annotations

import os
from typing import Any

#: EasyDeL name → the field(s) it sets (for messages and the table's tests).
EASYDEL_NAMES: dict[str, str] = {
    "model_name": "run_name",
    "save_directory": "output_dir",
    "total_batch_size": "per_device_train_batch_size",
    "use_wandb": "report_to",
    "dataset_num_proc": "(none)",
    "skip_apply_chat_template": "(none)",
    "num_return_sequences": "num_generations",
}


def _once(kwargs: dict[str, Any], easydel: str, field: str) -> None:
    if field in kwargs:
        raise ValueError(f"got both {easydel}= (EasyDeL's name) and {field}=; {easydel} sets {field}: "
                         "pass only one.")


def translate(kwargs: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with EasyDeL's names replaced by ours (see the module table);
    ``defaults`` holds the fields' defaults (``num_generations``, ...)."""
    if not any(name in kwargs for name in EASYDEL_NAMES):
        return kwargs
    out = dict(kwargs)
    if "num_return_sequences" in out:
        _once(out, "num_return_sequences", "num_generations")
        out["num_generations"] = out.pop("num_return_sequences")
    model_name = out.pop("model_name", None)
    if model_name is not None:
        _once(out, "model_name", "run_name")
        out["run_name"] = str(model_name)
    if "save_directory" in out:
        directory = out.pop("save_directory")
        _once(out, "save_directory", "output_dir")
        out["output_dir"] = os.path.join(str(directory), str(model_name)) if model_name else str(directory)
    if "use_wandb" in out:
        _once(out, "use_wandb", "report_to")
        out["report_to"] = "wandb" if out.pop("use_wandb") else "none"
    if "dataset_num_proc" in out:
        value = out.pop("dataset_num_proc")
        if value is not None:
            raise ValueError(f"dataset_num_proc={value!r}: this trainer does not preprocess the dataset in "
                             "worker processes (prompts are formatted once, when the environment is "
                             "built, and tokenised at generation); remove it or pass None.")
    if out.pop("skip_apply_chat_template", False):
        raise ValueError("skip_apply_chat_template=True: prompts given as text are sent as they are, "
                         "and chat prompts (lists of messages) always go through the chat template. "
                         "Give the 'prompt' column as strings instead, and drop this option.")
    if "total_batch_size" in out:
        prompts = out.pop("total_batch_size")
        _once(out, "total_batch_size", "per_device_train_batch_size")
        group = out.get("num_generations", defaults["num_generations"])
        accumulation = out.get("gradient_accumulation_steps", defaults["gradient_accumulation_steps"])
        processes = int(os.environ.get("WORLD_SIZE", "1"))
        completions = int(prompts) * int(group)
        if prompts < 1 or completions % (processes * accumulation):
            raise ValueError(
                f"total_batch_size={prompts} (EasyDeL's prompts per step) × num_generations={group} = "
                f"{completions} completions per optimizer step cannot be split over {processes} "
                f"process(es) × gradient_accumulation_steps={accumulation}; choose a total_batch_size "
                "that divides, or set per_device_train_batch_size (completions per process and "
                "micro-step) instead.")
        out["per_device_train_batch_size"] = completions // (processes * accumulation)
    return out
