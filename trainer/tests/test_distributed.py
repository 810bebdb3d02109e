"""Multi-process training on CPU: two processes (gloo) train one policy, as plain data
parallel (torchrun) and through accelerate with the shipped DeepSpeed ZeRO-2 / ZeRO-3
configs; FSDP 2 sharding is exercised directly (accelerate enables FSDP only on GPUs)."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from verifiers_trainer.inference.vllm_client import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).parents[2]
SCRIPTS = Path(__file__).parent / "scripts"
SCRIPT = SCRIPTS / "train_toy_dp.py"

needs_deepspeed = pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None,
    reason="DeepSpeed is not installed: pip install 'vf-trainer[deepspeed]' "
           "(DS_BUILD_OPS=0 on machines without CUDA)",
)


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    assert path, f"{name} comes with torch / accelerate"
    return path


def _ranks(command: list[str], out: Path) -> list[dict]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=540, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def _accelerate(config: str, out: Path, model: Path, *flags: str) -> list[dict]:
    return _ranks([_tool("accelerate"), "launch", "--config_file", str(ROOT / "configs" / config),
                   "--num_processes", "2", "--main_process_port", str(free_port()),
                   str(SCRIPT), str(out), str(model), *flags], out)


def _assert_trained_together(ranks: list[dict], model_path: Path) -> None:
    """Both ranks finished one policy that moved, with finite losses, and a vf-vllm push
    would send whole weights under the base model's names."""
    from transformers import AutoConfig, AutoModelForCausalLM

    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # gathered, identical on both
    assert min(r["moved"] for r in ranks) > 1e-3  # mean |Δw| of some trainable tensor
    assert all(math.isfinite(x) for r in ranks for x in r["losses"])
    assert len(ranks[0]["losses"]) == 3
    with torch.device("meta"):  # shapes and names only
        plain = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_path))
    assert ranks[0]["pushed_shapes"] == {n: list(p.shape) for n, p in plain.named_parameters()}


def test_two_process_data_parallel_run(tiny_model_path, tmp_path):
    ranks = _ranks([_tool("torchrun"), "--nproc_per_node", "2", "--master_port", str(free_port()),
                    str(SCRIPT), str(tmp_path), str(tiny_model_path)], tmp_path)
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["distributed_type"] == "MULTI_CPU"
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # one policy: gradients were averaged
    assert len(ranks[0]["rewards"]) == len(ranks[1]["rewards"]) == 3
    assert ranks[0]["rewards"] != ranks[1]["rewards"]  # each process drew its own prompts


@needs_deepspeed
def test_deepspeed_zero2_with_reference_model(tiny_model_path, tmp_path):
    """ZeRO-2 (optimizer states and gradients sharded), bf16 as configs/zero2.yaml ships it,
    a frozen reference (KL), two passes per round and gradient checkpointing."""
    ranks = _accelerate("zero2.yaml", tmp_path, tiny_model_path, "--beta", "0.04",
                        "--num-iterations", "2", "--gradient-checkpointing")
    _assert_trained_together(ranks, tiny_model_path)
    assert {r["distributed_type"] for r in ranks} == {"DEEPSPEED"}
    assert {r["sharding"] for r in ranks} == {None}  # parameters stay whole under ZeRO-2
    for r in ranks:
        assert len(r["rewards"]) == 2  # a round every 2 steps (num_iterations=2)
        # the reference runs in the policy's precision: no KL before the first update
        assert r["kl"][0] == pytest.approx(0.0, abs=1e-6) and r["kl"][-1] > 0
        assert r["ref_moved"] == 0.0  # frozen


@needs_deepspeed
def test_deepspeed_zero3_shards_parameters_and_generates_in_process(tiny_model_path, tmp_path):
    """ZeRO-3: parameters sharded too; the in-process engine generates on the whole weights
    gathered once per round, the reference model is sharded in its own engine. GRPOConfig
    comes first, so the model loads already sharded (zero3_init_flag) and the reference is
    loaded again from its folder; sync_ref_model moves the sharded reference every step."""
    ranks = _accelerate("zero3.yaml", tmp_path, tiny_model_path, "--beta", "0.04",
                        "--num-iterations", "2", "--gradient-checkpointing", "--config-first",
                        "--sync-ref")
    _assert_trained_together(ranks, tiny_model_path)
    assert {r["sharding"] for r in ranks} == {r["loaded_sharded"] for r in ranks} == {"zero3"}
    for r in ranks:
        assert r["local_numel"] < 0.6 * r["whole_numel"]  # each holds about half
        assert len(r["rewards"]) == 2
        assert r["kl"][0] == pytest.approx(0.0, abs=1e-6) and r["kl"][-1] > 0
        assert r["ref_moved"] > 1e-3


@needs_deepspeed
def test_deepspeed_zero3_lora_with_a_process_that_has_nothing_to_train(tiny_model_path, tmp_path):
    """LoRA under ZeRO-3 (adapters train, KL to the adapter-free base, the weight push merges
    the adapters into gathered base weights), and every rollout of rank 1 fails (its reward
    raises), so its micro-batches are empty: it still runs the forwards and backward the
    gathers need, and rank 0's updates count."""
    ranks = _accelerate("zero3.yaml", tmp_path, tiny_model_path, "--lora", "--beta", "0.04",
                        "--gradient-checkpointing", "--fail-on-rank", "1")
    _assert_trained_together(ranks, tiny_model_path)
    assert {r["sharding"] for r in ranks} == {"zero3"}
    assert len(ranks[0]["rewards"]) == 3 and ranks[1]["rewards"] == []


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason="with GPUs accelerate does run FSDP")
def test_fsdp_config_on_cpu_fails_with_the_fix(tiny_model_path, tmp_path):
    command = [_tool("accelerate"), "launch", "--config_file", str(ROOT / "configs" / "fsdp.yaml"),
               "--num_processes", "2", "--main_process_port", str(free_port()),
               str(SCRIPT), str(tmp_path), str(tiny_model_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=540, cwd=ROOT)
    assert done.returncode != 0
    assert "accelerate enables FSDP only on GPUs" in done.stderr
    assert "configs/zero3.yaml" in done.stderr


def test_fsdp2_generates_and_pushes_whole_weights(tiny_model_path, tmp_path):
    """FSDP 2 sharding (torch's fully_shard, two CPU processes): under full_weights the
    ranks generate different lengths greedily, exactly as the unsharded model does, and
    read whole weights; afterwards the model is sharded again and trains."""
    ranks = _ranks([_tool("torchrun"), "--nproc_per_node", "2", "--master_port", str(free_port()),
                    str(SCRIPTS / "fsdp2_whole_weights.py"), str(tmp_path), str(tiny_model_path)],
                   tmp_path)
    assert [r["lengths"] for r in ranks] == [[3, 3, 3], [12, 12, 12]]
    for r in ranks:
        assert r["sharding"] == "fsdp2"
        assert r["same_as_unsharded"] and r["pushed_names_match"] and r["pushed_equal"]
        assert r["sharded_after"] and math.isfinite(r["loss"]) and r["weights_moved"]
        assert r["lengths_after_step"] == r["lengths"]
        assert r["checksums_after_step"][0] == r["checksums_after_step"][1]


@pytest.mark.parametrize("launcher", ["cpu_ddp.yaml", "--multi_gpu"])
def test_two_processes_on_cpu_without_use_cpu_train_one_policy(tiny_model_path, tmp_path, launcher):
    """The shipped CPU config, or --multi_gpu on a machine without GPUs, and a GRPOConfig
    without use_cpu=True: one data-parallel job (not two separate runs into one folder)."""
    if torch.cuda.is_available():
        pytest.skip("on a GPU machine --multi_gpu uses the GPUs")
    if launcher.endswith(".yaml"):
        flags = ["--config_file", str(ROOT / "configs" / launcher), "--num_processes", "2"]
    else:
        flags = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                 "--mixed_precision", "no", "--dynamo_backend", "no"]
    ranks = _ranks([_tool("accelerate"), "launch", *flags, "--main_process_port", str(free_port()),
                    str(SCRIPT), str(tmp_path), str(tiny_model_path), "--no-use-cpu"], tmp_path)
    assert [r["world"] for r in ranks] == [2, 2]
    assert {r["distributed_type"] for r in ranks} == {"MULTI_CPU"}
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # equal parameters: gradients averaged
    assert ranks[0]["prompts"] and not set(ranks[0]["prompts"]) & set(ranks[1]["prompts"])


@needs_deepspeed
def test_grpo_defaults_under_the_shipped_zero2_config_train_in_its_precision(tiny_model_path, tmp_path):
    """grpo_defaults() leaves bf16 off without a bf16 GPU; configs/zero2.yaml asks for bf16:
    the launch config's precision is used, with a message."""
    command = [_tool("accelerate"), "launch", "--config_file", str(ROOT / "configs" / "zero2.yaml"),
               "--num_processes", "2", "--main_process_port", str(free_port()),
               str(SCRIPT), str(tmp_path), str(tiny_model_path), "--grpo-defaults", "--steps", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=540, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "asks for mixed_precision=bf16" in done.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["bf16"] for r in ranks] == [True, True]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
    assert all(math.isfinite(x) for r in ranks for x in r["losses"])
