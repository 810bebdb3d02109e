"""Multi-process data parallel on CPU: two processes (torchrun, gloo) train one policy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SCRIPT = Path(__file__).parent / "scripts" / "train_toy_dp.py"


def test_two_process_data_parallel_run(tiny_model_path, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun comes with torch"
    done = subprocess.run(
        [torchrun, "--nproc_per_node", "2", str(SCRIPT), str(tmp_path), str(tiny_model_path)],
        capture_output=True, text=True, timeout=540,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # one policy: gradients were averaged
    assert len(ranks[0]["rewards"]) == len(ranks[1]["rewards"]) == 3
    assert ranks[0]["rewards"] != ranks[1]["rewards"]  # each process drew its own prompts
