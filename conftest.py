"""Repository-wide test setup: point VF_DATA_DIR at the shared data folder beside the
checkout when it exists (GSM8K and the Wordle lists), so no test needs the network."""

import os
from pathlib import Path

import pytest

_shared = Path(__file__).resolve().parent.parent / "shared" / "data"
if "VF_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["VF_DATA_DIR"] = str(_shared)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A small byte-level BPE tokenizer with a ChatML chat template, built offline."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = ["the model guesses five then six and the environment says higher or lower"] * 20
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|im_start|>", "<|im_end|>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<pad>", chat_template=template,
        padding_side="left",
    )
