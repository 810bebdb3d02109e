"""Every shipped accelerate config parses into accelerate's own config object."""

from pathlib import Path

import pytest

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def test_configs_are_shipped():
    assert {p.name for p in CONFIGS} >= {"zero2.yaml", "zero3.yaml", "fsdp.yaml", "cpu_ddp.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_in_accelerate(path):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    config = load_config_from_file(str(path))
    assert isinstance(config, ClusterConfig)
    assert config.num_processes >= 2
    if "zero" in path.name:
        assert config.distributed_type.value == "DEEPSPEED"
        assert config.deepspeed_config["zero_stage"] == int(path.name[4])
    if path.name == "fsdp.yaml":
        assert config.distributed_type.value == "FSDP"
