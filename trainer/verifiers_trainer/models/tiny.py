"""Tiny offline models for tests: a byte-level BPE tokenizer with a ChatML + tools chat
template and a randomly initialised ``Qwen2ForCausalLM``, built in seconds without network.

The tokenizer is trained on a deterministic subset of the Python standard library's own
source files (always on disk) plus the chat template's own strings, so common chat and JSON
fragments are single tokens. The model has ``head_dim >= 64`` so that vLLM's CPU attention
accepts it. Everything is saved with ``save_pretrained`` and loads offline with
``AutoTokenizer`` / ``AutoModelForCausalLM``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Bump when the recipe below changes, so cached builds are rebuilt.
RECIPE_VERSION = 1
MARKER_FILE = "verifiers_tiny.json"

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [PAD_TOKEN, IM_START, IM_END]
# Added but not "special": they survive decode(skip_special_tokens=True), as in Qwen2.5.
TOOL_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]

#: ChatML with Hermes/Qwen-style tools: tool schemas in the system message, tool calls as
#: ``<tool_call>{"name": ..., "arguments": ...}</tool_call>`` blocks, tool results as role
#: ``tool``. An assistant turn renders exactly as the model is expected to generate it after
#: the generation prompt, so multi-turn prompts extend earlier prompt + completion tokens.
CHAT_TEMPLATE = """\
{%- macro text(content) -%}
{%- if content is string -%}{{ content }}
{%- elif content is iterable -%}
{%- for part in content -%}{%- if part.type == 'text' -%}{{ part.text }}{%- endif -%}{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages and messages[0].role == 'system' %}{{- text(messages[0].content) + '\\n\\n' }}{%- endif %}
{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n' }}
{{- 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}
{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}
{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and ' }}
{{- 'arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n' }}
{{- '{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}
{%- elif messages and messages[0].role == 'system' %}
{{- '<|im_start|>system\\n' + text(messages[0].content) + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
{%- if message.role == 'system' and loop.first %}
{%- elif message.role == 'assistant' %}
{%- set content = text(message.content) %}
{{- '<|im_start|>assistant\\n' + content }}
{%- if message.tool_calls %}
{%- for call in message.tool_calls %}
{%- set fn = call.function if call.function is defined else call %}
{%- if content or not loop.first %}{{- '\\n' }}{%- endif %}
{{- '<tool_call>\\n{"name": "' + fn.name + '", "arguments": ' }}
{%- if fn.arguments is string %}{{- fn.arguments }}{%- else %}{{- fn.arguments | tojson }}{%- endif %}
{{- '}\\n</tool_call>' }}
{%- endfor %}
{%- endif %}
{{- '<|im_end|>\\n' }}
{%- elif message.role == 'tool' %}
{{- '<|im_start|>tool\\n<tool_response>\\n' + text(message.content) + '\\n</tool_response><|im_end|>\\n' }}
{%- else %}
{{- '<|im_start|>' + message.role + '\\n' + text(message.content) + '<|im_end|>\\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"""


def cache_root() -> Path:
    """Where verifiers caches models: ``$VF_CACHE_DIR/models`` or
    ``~/.cache/verifiers/models``."""
    base = os.environ.get("VF_CACHE_DIR")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "verifiers"
    return root / "models"


def tiny_model_name(hidden_size: int = 64, num_layers: int = 2, seed: int = 0,
                    num_heads: int = 1, vocab_size: int = 1000) -> str:
    """The cache folder name of a tiny model (non-default heads/vocab add a suffix)."""
    name = f"tiny-h{hidden_size}-l{num_layers}-s{seed}"
    if num_heads != 1:
        name += f"-a{num_heads}"
    if vocab_size != 1000:
        name += f"-v{vocab_size}"
    return name


def build_tiny_model(
    path: str | os.PathLike[str] | None = None,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 1,
    vocab_size: int = 1000,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Build (or reuse) a tiny Qwen2 chat model with its tokenizer and return its folder.

    Args:
        path: where to save it; default ``cache_root() / tiny-h{hidden}-l{layers}-s{seed}``.
        hidden_size: model width; ``hidden_size // num_heads`` is the head size, which must be
            at least 64 for vLLM's CPU attention (the default, 64 with one head, is).
        num_layers: decoder layers.
        num_heads: attention heads (also key/value heads).
        vocab_size: total tokenizer size, special and tool tokens included.
        seed: seeds the weights (the tokenizer is deterministic anyway).
        overwrite: rebuild even if a build with the same settings is there.

    Returns:
        The folder, loadable offline with ``AutoModelForCausalLM.from_pretrained`` and
        ``AutoTokenizer.from_pretrained``.
    """
    if hidden_size % num_heads:
        raise ValueError(
            f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})."
        )
    if hidden_size // num_heads < 32:
        logger.warning(
            "tiny model head size %d < 32: vLLM's CPU attention will refuse it "
            "(use hidden_size // num_heads >= 64 for anything vLLM must serve).",
            hidden_size // num_heads,
        )
    if vocab_size < 300:
        raise ValueError(f"vocab_size must be >= 300 (256 bytes + merges), got {vocab_size}.")
    settings = {
        "recipe": RECIPE_VERSION, "hidden_size": hidden_size, "num_layers": num_layers,
        "num_heads": num_heads, "vocab_size": vocab_size, "seed": seed,
    }
    target = Path(path) if path is not None else cache_root() / tiny_model_name(
        hidden_size, num_layers, seed, num_heads, vocab_size
    )
    target = target.expanduser()
    if not overwrite and _matches(target, settings):
        return target
    if target.exists() and any(target.iterdir()) and not (target / MARKER_FILE).exists():
        raise FileExistsError(
            f"{target} exists and does not hold a tiny model built here; pass another path "
            "or remove it."
        )
    start = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tokenizer = build_tiny_tokenizer(vocab_size)
        model = _build_model(tokenizer, hidden_size, num_layers, num_heads, seed)
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        (tmp / MARKER_FILE).write_text(json.dumps(settings, indent=2))
        tmp.chmod(0o755)  # mkdtemp made it private
        if not overwrite and _matches(target, settings):  # built concurrently meanwhile
            return target
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("built tiny model in %s (%.1f s)", target, time.perf_counter() - start)
    return target


def build_tiny_tokenizer(vocab_size: int = 1000) -> Any:
    """A ``PreTrainedTokenizerFast``: byte-level BPE of ``vocab_size`` tokens in total, eos
    ``<|im_end|>``, pad ``<|endoftext|>``, left padding, ChatML + tools chat template."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    # Qwen2's own normalizer and pre-tokenizer: AutoTokenizer (and vLLM) load this folder as
    # a Qwen2Tokenizer, which rebuilds its pipeline with them; training with the same ones
    # keeps every loader's token ids identical.
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_qwen2_pretokenize_regex()), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(TOOL_TOKENS),
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )


def _qwen2_pretokenize_regex() -> str:
    try:
        from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX
    except ImportError:  # the pattern as of transformers 5.17
        return (
            r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"""
            r"""[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
        )
    return str(PRETOKENIZE_REGEX)


def _training_corpus(max_chars: int = 1_500_000) -> list[str]:
    """Sorted top-level standard-library modules up to ``max_chars``, plus chat strings."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts: list[str] = []
    total = 0
    for file in sorted(stdlib.glob("*.py")):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        texts.append(text)
        total += len(text)
        if total >= max_chars:
            break
    if not texts:
        raise RuntimeError(
            f"No Python sources found under {stdlib} to train the tiny tokenizer on."
        )
    chat = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "What is 2 + 3?<|im_end|>\n<|im_start|>assistant\nThe answer is 5.<|im_end|>\n"
        '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>\n'
        "<|im_start|>tool\n<tool_response>\n5\n</tool_response><|im_end|>\n"
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n"
    )
    return texts + [chat] * 50


def _build_model(tokenizer: Any, hidden_size: int, num_layers: int, num_heads: int,
                 seed: int) -> Any:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=4096,
        rms_norm_eps=1e-6,
        # 10x the usual 0.02: a random model then writes varied text instead of repeating
        # one token, and its top logits are rarely near ties (batched == unbatched greedy)
        initializer_range=0.2,
        tie_word_embeddings=True,
        use_sliding_window=False,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    config.dtype = torch.float32
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = Qwen2ForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config = GenerationConfig(
        eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None
    )
    return model.eval()


def _matches(target: Path, settings: dict[str, Any]) -> bool:
    marker = target / MARKER_FILE
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == settings
    except (OSError, ValueError):
        return False


__all__ = ["CHAT_TEMPLATE", "build_tiny_model", "build_tiny_tokenizer", "cache_root"]
