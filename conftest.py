"""Repository-wide test setup.

Every test sees the same small data on every machine: ``VF_DATA_DIR`` points at the GSM8K
rows shipped in ``core/verifiers/testing/data`` (whatever the caller's environment says), so
no test needs the network or a data folder outside the repository. Tests of other data
sources set or unset ``VF_DATA_DIR`` themselves (``monkeypatch``)."""

import os

import pytest

from verifiers.testing.fixture_data import fixture_data_dir

os.environ["VF_DATA_DIR"] = str(fixture_data_dir())


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
