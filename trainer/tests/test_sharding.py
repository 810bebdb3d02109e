"""grpo/sharding.py in one process: launches refused with their fix, and the no-op path.
Sharded runs (ZeRO-3, FSDP 2) are in test_distributed.py."""

import pytest

from verifiers_trainer.grpo.sharding import (
    full_weights,
    launch_problem,
    reference_copy,
    sharding_of,
    writable_weights,
)


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


def test_reference_copy_is_a_frozen_copy(tiny):
    import torch

    model, _ = tiny
    model.train()
    reference = reference_copy(model)
    assert reference is not model and not reference.training
    assert not any(p.requires_grad for p in reference.parameters())
    assert all(p.requires_grad for p in model.parameters())
    for (name, p), (ref_name, q) in zip(model.named_parameters(), reference.named_parameters(), strict=True):
        assert name == ref_name and torch.equal(p, q) and p.data_ptr() != q.data_ptr()


def test_writable_weights_of_a_whole_model_keep_changes(tiny):
    import torch

    model, _ = tiny
    with writable_weights(model) as module:
        assert module is model
        with torch.no_grad():
            module.model.norm.weight.fill_(2.0)
    assert torch.all(model.model.norm.weight == 2.0)
