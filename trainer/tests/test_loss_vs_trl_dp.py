"""dapo on two processes (torchrun, gloo, CPU), gradient accumulation 2, with the KL term:
the normaliser is the optimizer step's trained tokens over both processes, and the step's
gradient (averaged over the processes) equals the single-process gradient over the whole
batch and TRL 1.16's on the same two processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from verifiers_trainer.inference.vllm_client import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
pytest.importorskip("trl")

ROOT = Path(__file__).parents[2]
SCRIPT = Path(__file__).parent / "scripts" / "loss_vs_trl_dp.py"


def test_dapo_on_two_processes_equals_the_whole_batch_and_trl(tiny_model_path, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun comes with torch"
    done = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()), str(SCRIPT),
         str(tmp_path), str(tiny_model_path), "--loss-type", "dapo", "--beta", "0.04"],
        capture_output=True, text=True, timeout=540, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["distributed_type"] == "MULTI_CPU"
    assert ranks[0]["prompts"] != ranks[1]["prompts"]  # each process trained on its own rows

    # the normaliser: every micro-batch of the step on both processes, as TRL counts it
    everything = sum(ranks[0]["local_tokens"]) + sum(ranks[1]["local_tokens"])
    assert ranks[0]["global_tokens"] == ranks[1]["global_tokens"] == everything
    for r in ranks:
        assert r["our_step_tokens"] == [everything, everything]
        assert r["trl_num_items_in_batch"] == everything
        assert sum(r["local_tokens"]) != everything

    # our data parallel step == one process over the whole batch (both exact in float64)
    whole, per_tensor = ranks[0]["vs_full_batch"]
    assert per_tensor < 1e-10, per_tensor
    # == TRL's two-process step, up to TRL's float32 log-prob accumulation, which puts TRL's
    # own gradient this far from the exact one
    whole, per_tensor = ranks[0]["vs_trl"]
    trl_whole, trl_per_tensor = ranks[0]["trl_vs_full_batch"]
    assert whole < 1e-6, (whole, trl_whole)
    assert per_tensor < max(1e-6, 1.01 * trl_per_tensor), (per_tensor, trl_per_tensor)
    assert ranks[1]["vs_trl"] == ranks[0]["vs_trl"]  # one gradient: it was averaged
