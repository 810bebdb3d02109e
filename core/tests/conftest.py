"""Fixtures for the core's tests."""

import sys
import textwrap

import pytest


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


@pytest.fixture
def installed_envs(tmp_path, monkeypatch):
    """Two environment 'distributions' on sys.path, registered through real entry points
    (a dist-info folder, exactly what pip writes), without touching the venv."""
    for dist, module in (("vf-toy-math", "vf_toy_math"), ("vf-toy-game", "vf_toy_game")):
        (tmp_path / f"{module}.py").write_text(textwrap.dedent('''
            import verifiers as vf

            def load_environment(num_examples: int = 3, greeting: str = "hi"):
                rows = [{"question": f"{greeting} {i}", "answer": str(i)} for i in range(num_examples)]
                return vf.SingleTurnEnv(dataset=rows)
        '''))
        info = tmp_path / f"{module}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(
            f"[verifiers.environments]\n{dist} = {module}:load_environment\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in ("vf_toy_math", "vf_toy_game"):
        sys.modules.pop(module, None)
