"""The trained model vf-train leaves in ``<run>/final/``, ready to load and serve.

::

    final/               the merged model (LoRA folded into the weights) or, for full
                         fine-tuning, the model itself: config.json, weights, tokenizer
                         and chat template; AutoModelForCausalLM.from_pretrained, vf-vllm
                         and ``vf-eval ENV --model-path final`` load it
    final/adapter/       LoRA only: the adapter (PEFT save_pretrained) and the tokenizer;
                         ``base_model_name_or_path`` names the model it was trained on

The folder is written under a temporary name and renamed when complete, so a ``final/``
that exists is whole.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

ADAPTER_DIR = "adapter"


def save_final(model: Any, tokenizer: Any, folder: Path, base_name: str | None = None) -> Path:
    """Write ``model`` (a ``PeftModel`` or a plain transformers model) to ``folder``.

    ``base_name``: what the adapter's ``base_model_name_or_path`` should say (for example
    the Hub id when the base model came from the Hub); default: what PEFT recorded.
    """
    staging = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if hasattr(model, "merge_and_unload"):  # a PEFT model: the adapter, then a merged copy
            adapter = staging / ADAPTER_DIR
            model.save_pretrained(adapter)
            tokenizer.save_pretrained(adapter)
            if base_name is not None:
                _set_base(adapter, base_name)
            merged = copy.deepcopy(model).merge_and_unload()
            merged.save_pretrained(staging)
            del merged
        else:
            model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if folder.exists():
            shutil.rmtree(folder)
        staging.replace(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _set_base(adapter: Path, base_name: str) -> None:
    path = adapter / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = base_name
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


__all__ = ["ADAPTER_DIR", "save_final"]
