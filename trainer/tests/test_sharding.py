"""grpo/sharding.py in one process: launches refused with their fix, and the no-op path.
Sharded runs (ZeRO-3, FSDP 2) are in test_distributed.py."""

import pytest

from verifiers_trainer.grpo.sharding import full_weights, launch_problem, sharding_of


def test_zero3_without_gathering_cannot_generate_in_process():
    problem = launch_problem("DEEPSPEED", 3, False, in_process_generation=True,
                             gather_for_generation=False)
    assert "ds3_gather_for_generation=True" in problem and "generation_backend='vllm'" in problem
    # fine: gathering, generating with vf-vllm, or a stage that keeps parameters whole
    assert launch_problem("DEEPSPEED", 3, False, True, True) is None
    assert launch_problem("DEEPSPEED", 3, False, False, False) is None
    assert launch_problem("DEEPSPEED", 2, False, True, False) is None


@pytest.mark.parametrize("runs", ["MULTI_CPU", "NO"])
def test_fsdp_config_that_accelerate_does_not_honour(runs):
    problem = launch_problem(runs, None, True, True, True)
    assert f"runs {runs} here" in problem and "configs/zero3.yaml" in problem
    assert launch_problem("FSDP", None, True, True, True) is None
    assert launch_problem("MULTI_CPU", None, False, True, True) is None


def test_whole_model_passes_through(tiny):
    model, _ = tiny
    assert sharding_of(model) is None
    with full_weights(model) as policy:
        assert policy is model
