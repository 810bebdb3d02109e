"""The bf16-on-CPU check reads the CPU's flags and warns only where bf16 is emulated."""

import logging

import torch

from verifiers_trainer.models import precision


def test_flags_are_read_from_cpuinfo(tmp_path):
    for i, (flags, expected) in enumerate((("fpu sse avx2 fma", False),
                                           ("avx2 avx512f avx512_bf16", True),
                                           ("avx2 amx_tile amx_bf16", True))):
        path = tmp_path / f"cpuinfo{i}"
        path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert precision.cpu_has_native_bf16(str(path)) is expected, flags
    assert precision.cpu_has_native_bf16(str(tmp_path / "missing")) is False


def test_a_bf16_model_on_a_cpu_without_bf16_warns(monkeypatch, caplog):
    model = torch.nn.Linear(4, 4)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert precision.warn_if_emulated_bf16(model) is False  # float32: nothing to say
        assert precision.warn_if_emulated_bf16(model.to(torch.bfloat16)) is True
    assert "float32" in caplog.text and "bf16 instructions" in caplog.text
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.warn_if_emulated_bf16(model) is False
