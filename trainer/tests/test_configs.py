"""Every shipped config loads: the accelerate YAML configs into accelerate's own config
object, the vf-train TOML configs through vf-train's checks (GRPOConfig built, environment
loaded)."""

from pathlib import Path

import pytest

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))
TRAIN_CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))


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


def test_train_configs_are_shipped():
    assert {p.name for p in TRAIN_CONFIGS} >= {"smollm2-arithmetic.toml", "tiny-test.toml"}


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.name)
def test_train_config_loads_and_validates(path):
    from verifiers_trainer.cli.train_config import load_config
    from verifiers_trainer.cli.train_run import load_env

    config = load_config(path)
    assert config.run.name == path.stem
    assert config.trainer["max_steps"] >= 1
    env, metric = load_env(config)
    assert len(env.get_eval_dataset(config.eval.num_examples)) >= 1
    assert metric in ("reward", *env.rubric.get_reward_func_names())
