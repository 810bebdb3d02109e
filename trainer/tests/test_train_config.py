"""vf-train's config: sections, defaults, command-line overrides, and every error message."""

from __future__ import annotations

import tomllib

import pytest

from verifiers_trainer.cli.run_folder import RunFolder, config_differences
from verifiers_trainer.cli.toml_io import dumps, parse_value
from verifiers_trainer.cli.train_args import parse_overrides
from verifiers_trainer.cli.train_config import TRAINER_DEFAULTS, ConfigError, load_config

MINIMAL = """
[env]
id = "vf-math-python"

[trainer]
max_steps = 5
per_device_train_batch_size = 8
num_generations = 4
"""


def write(tmp_path, text, name="job.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error(tmp_path, text, overrides=()):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), parse_overrides(list(overrides)))
    return str(info.value)


# -- defaults and resolution ------------------------------------------------------------------


def test_minimal_config_resolves_every_default(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.run.name == "job"  # the file's name
    assert config.run.output_dir == "outputs/runs"
    assert config.run_dir.as_posix() == "outputs/runs/job"
    assert config.model.name == "default"
    assert config.model.dtype == "float32"  # CPU
    assert (config.model.lora.r, config.model.lora.alpha) == (16, 32)
    assert config.inference.backend == "engine"
    assert config.eval.num_examples == 100
    assert config.eval.max_tokens == 2048  # GRPOConfig's max_completion_length
    for key, value in TRAINER_DEFAULTS.items():
        assert config.trainer[key] == value
    assert config.trainer["max_steps"] == 5


def test_eval_max_tokens_follows_the_trainer(tmp_path):
    config = load_config(write(tmp_path, MINIMAL + "max_completion_length = 64\n"))
    assert config.eval.max_tokens == 64
    config = load_config(write(tmp_path, MINIMAL + "max_completion_length = 64\nmax_tokens = 32\n"))
    assert config.eval.max_tokens == 32


def test_grpo_config_carries_the_run_settings(tmp_path):
    config = load_config(write(tmp_path, MINIMAL + "learning_rate = 3e-4\n"),
                         [("run.seed", "7"), ("inference.backend", "vllm"),
                          ("run.output_dir", str(tmp_path / "runs"))])
    grpo = config.grpo_config(tmp_path / "runs" / "job" / "checkpoints",
                              vllm_server_port=8123, vllm_model_name="policy")
    assert grpo.output_dir == str(tmp_path / "runs" / "job" / "checkpoints")
    assert (grpo.seed, grpo.run_name, grpo.learning_rate) == (7, "job", 3e-4)
    assert grpo.generation_backend == "vllm"
    assert (grpo.vllm_server_port, grpo.vllm_model_name) == (8123, "policy")
    assert grpo.disable_tqdm
    assert config.grpo_config() is grpo  # built once, by load_config
    with pytest.raises(ValueError, match="checkpoints go to"):
        config.grpo_config(tmp_path / "elsewhere")
    with pytest.raises(TypeError, match="set them under \\[trainer\\]"):
        config.grpo_config(learning_rate=1.0)


def test_grpo_config_is_built_once(tmp_path, monkeypatch):
    from verifiers_trainer.grpo import config as grpo_config

    built = []
    original = grpo_config.GRPOConfig.__post_init__
    monkeypatch.setattr(grpo_config.GRPOConfig, "__post_init__",
                        lambda self: (built.append(self), original(self))[1])
    config = load_config(write(tmp_path, MINIMAL))
    config.grpo_config()
    config.grpo_config()
    assert len(built) == 1


def test_aliases_resolve_to_field_names(tmp_path):
    text = MINIMAL.replace("per_device_train_batch_size", "batch_size")
    assert load_config(write(tmp_path, text)).trainer["per_device_train_batch_size"] == 8
    message = error(tmp_path, MINIMAL + "batch_size = 4\n")
    assert "trainer.batch_size" in message and "alias of trainer.per_device_train_batch_size" in message


def test_lora_false_trains_every_weight(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), [("model.lora", "false")])
    assert config.model.lora is None
    assert config.to_dict()["model"]["lora"] is False


# -- overrides -------------------------------------------------------------------------------


def test_parse_overrides_both_forms():
    assert parse_overrides(["--trainer.max_steps", "20", "--run.name=x", "--model.lora.r", "8"]) == [
        ("trainer.max_steps", "20"), ("run.name", "x"), ("model.lora.r", "8")]


@pytest.mark.parametrize("text, value", [
    ("20", 20), ("1e-4", 1e-4), ("true", True), ("medium", "medium"), ('"20"', "20"),
    ('["q_proj", "v_proj"]', ["q_proj", "v_proj"]), ("{r = 8}", {"r": 8}), ("a b", "a b"),
])
def test_values_are_toml_literals_else_strings(text, value):
    assert parse_value(text) == value


def test_overrides_reach_every_section(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), parse_overrides([
        "--trainer.max_steps", "20", "--trainer.learning_rate", "1e-4", "--model.lora.r", "8",
        "--env.args.difficulty", "medium", "--eval.num_examples", "10", "--eval.before=false",
        "--run.name", "123", "--model.name", "tiny"]))
    assert config.trainer["max_steps"] == 20
    assert config.trainer["learning_rate"] == 1e-4
    assert config.model.lora.r == 8
    assert config.env.args == {"difficulty": "medium"}
    assert (config.eval.num_examples, config.eval.before) == (10, False)
    assert config.run.name == "123"  # a number where a string is expected: its text
    assert config.model.name == "tiny"


def test_bare_boolean_flags(tmp_path):
    overrides = parse_overrides(["--run.overwrite", "--no-eval.before", "--eval.after", "false",
                                 "--trainer.log_completions", "--trainer.max_steps", "3"])
    assert overrides == [("run.overwrite", "true"), ("eval.before", "false"),
                         ("eval.after", "false"), ("trainer.log_completions", "true"),
                         ("trainer.max_steps", "3")]
    config = load_config(write(tmp_path, MINIMAL), overrides)
    assert config.run.overwrite is True
    assert (config.eval.before, config.eval.after) == (False, False)
    assert config.trainer["log_completions"] is True and config.grpo_config().log_completions
    assert parse_overrides(["--run.overwrite=false"]) == [("run.overwrite", "false")]
    with pytest.raises(ConfigError, match="run.name is not a true/false key; write --run.name VALUE"):
        parse_overrides(["--no-run.name"])
    with pytest.raises(ConfigError, match="--no-run.overwrite takes no value"):
        parse_overrides(["--no-run.overwrite=true"])
    with pytest.raises(ConfigError, match="--run.seed needs a value"):
        parse_overrides(["--run.seed"])


def test_command_line_files_and_flags_are_told_apart():
    from verifiers_trainer.cli.train_args import split_arguments

    files, other, overrides = split_arguments(
        ["@", "a.toml", "--run.overwrite", "@b.toml", "--dry-run", "--trainer.max_steps", "3",
         "--no-eval.before", "--eval.after", "true", "c.toml"])
    assert files == ["a.toml", "b.toml"]
    assert other == ["--dry-run", "c.toml"]
    assert overrides == ["--run.overwrite", "--trainer.max_steps", "3", "--no-eval.before",
                         "--eval.after", "true"]
    with pytest.raises(ConfigError, match="@ needs a config file"):
        split_arguments(["@"])


def test_several_files_merge_table_by_table(tmp_path):
    base = write(tmp_path, MINIMAL + "learning_rate = 1e-3\n[eval]\nnum_examples = 5\n", "base.toml")
    more = write(tmp_path, "[trainer]\nmax_steps = 9\n[eval]\ntemperature = 0.5\n", "more.toml")
    config = load_config([base, more])
    assert config.run.name == "more" and config.path == more and config.paths == [base, more]
    assert (config.trainer["max_steps"], config.trainer["learning_rate"]) == (9, 1e-3)
    assert (config.eval.num_examples, config.eval.temperature) == (5, 0.5)
    with pytest.raises(ConfigError, match=r"eval.temperature \(in .*more.toml\) must be >= 0"):
        load_config([base, write(tmp_path, "[eval]\ntemperature = -1\n", "more.toml")])


def test_teaching_fields_are_not_trainer_keys(tmp_path):
    message = error(tmp_path, MINIMAL + "max_probe_tokens = 5\n")
    assert "Unknown key trainer.max_probe_tokens (in" in message


def test_resolved_config_round_trips_through_toml(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), parse_overrides([
        "--env.args", '{difficulty = {num_ops = 2, ops = "+-"}, use_tools = false}',
        "--inference.vllm_args", '["--max-model-len", "512"]']))
    resolved = config.to_dict()
    assert tomllib.loads(dumps(resolved)) == resolved
    again = load_config(write(tmp_path, dumps(resolved), "resolved.toml"))
    assert again.to_dict() == resolved


# -- errors, each with what was wrong and how to fix it ---------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nowhere\.toml not found\. Pass the path of a TOML "
                                          r"file, e.g. `vf-train configs/"):
        load_config(tmp_path / "nowhere.toml")


def test_invalid_toml(tmp_path):
    message = error(tmp_path, "[run\nname = 1")
    assert "job.toml is not valid TOML" in message and "toml.io" in message


def test_unknown_section(tmp_path):
    message = error(tmp_path, MINIMAL + "[trainr]\nx = 1\n")
    assert "Unknown section trainr (in" in message
    assert "Did you mean 'trainer'?" in message
    assert "Known: run, model, env, trainer, inference, eval." in message


def test_top_level_key_outside_a_section(tmp_path):
    message = error(tmp_path, "max_steps = 3\n" + MINIMAL)
    assert "Unknown top-level key (every key belongs to a section) max_steps" in message


def test_unknown_key_in_a_section(tmp_path):
    message = error(tmp_path, MINIMAL + "[eval]\nnum_example = 10\n")
    assert "Unknown key eval.num_example (in" in message
    assert "Did you mean 'eval.num_examples'?" in message


def test_unknown_trainer_key_suggests_the_field(tmp_path):
    message = error(tmp_path, MINIMAL + "lerning_rate = 1e-4\n")
    assert "Unknown key trainer.lerning_rate (in" in message
    assert "Did you mean 'trainer.learning_rate'?" in message
    assert "GRPOConfig" in message


def test_wrong_type(tmp_path):
    message = error(tmp_path, MINIMAL + "[run]\nseed = \"zero\"\n")
    assert message.endswith("run.seed (in " + str(tmp_path / "job.toml")
                            + ") must be an integer; got 'zero' (a string).")
    message = error(tmp_path, MINIMAL + "learning_rate = \"fast\"\n")
    assert "trainer.learning_rate (in" in message and "must be a number; got 'fast'" in message
    message = error(tmp_path, MINIMAL + "[model.lora]\ntarget_modules = [1, 2]\n")
    assert "model.lora.target_modules" in message and "a string or a list of strings" in message


def test_grpo_config_checks_are_named_by_their_key(tmp_path):
    message = error(tmp_path, MINIMAL + "learning_rate = -1.0\n")
    assert message.startswith("trainer.learning_rate (in")
    assert "learning_rate must be > 0; got -1.0" in message
    message = error(tmp_path, MINIMAL.replace("num_generations = 4", "num_generations = 3"))
    assert "trainer.per_device_train_batch_size" in message and "trainer.num_generations" in message
    assert "must be divisible by num_generations (3)" in message


def test_keys_vf_train_sets_itself(tmp_path):
    message = error(tmp_path, MINIMAL + "output_dir = \"x\"\n")
    assert "trainer.output_dir (in" in message and "is set by vf-train: set [run] output_dir" in message
    message = error(tmp_path, MINIMAL + "generation_backend = \"vllm\"\n")
    assert "set [inference] backend" in message


def test_required_keys(tmp_path):
    message = error(tmp_path, MINIMAL.replace("max_steps = 5\n", ""))
    assert "trainer.max_steps (in" in message and "is required" in message
    assert "--trainer.max_steps 30" in message
    message = error(tmp_path, MINIMAL.replace('id = "vf-math-python"', ""))
    assert "env.id (in" in message and "is required" in message


def test_choices_suggest_the_closest(tmp_path):
    message = error(tmp_path, MINIMAL + "[inference]\nbackend = \"vlm\"\n")
    assert "inference.backend (in" in message
    assert "must be one of 'engine', 'vllm'; got 'vlm'. Did you mean 'vllm'?" in message


def test_bounds(tmp_path):
    assert "model.lora.dropout" in error(tmp_path, MINIMAL + "[model.lora]\ndropout = 1.5\n")
    assert "must be >= 1, or -1 for all" in error(tmp_path, MINIMAL + "[eval]\nnum_examples = 0\n")
    assert "must be a folder name" in error(tmp_path, MINIMAL + "[run]\nname = \"a/b\"\n")


def test_errors_name_the_command_line_flag(tmp_path):
    message = error(tmp_path, MINIMAL, ["--trainer.max_steps", "0"])
    assert "trainer.max_steps (from --trainer.max_steps)" in message
    message = error(tmp_path, MINIMAL, ["--eval.num_exmples", "5"])
    assert "eval.num_exmples (from --eval.num_exmples)" in message


def test_malformed_overrides(tmp_path):
    with pytest.raises(ConfigError, match="Unexpected argument 'fast'. Overrides look like "
                                          "--section.key value"):
        parse_overrides(["fast"])
    with pytest.raises(ConfigError, match=r"--trainer.max_steps needs a value"):
        parse_overrides(["--trainer.max_steps"])
    with pytest.raises(ConfigError, match="empty part in the key"):
        parse_overrides(["--trainer..x", "1"])
    message = error(tmp_path, MINIMAL + "[model]\nlora = false\n", ["--model.lora.r", "8"])
    assert "model.lora is False" in message and "not a table" in message


# -- continuing a run --------------------------------------------------------------------------


def test_a_changed_config_is_refused_with_the_keys_that_differ(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), [("run.output_dir", str(tmp_path / "runs"))])
    folder = RunFolder(config.run_dir)
    assert folder.open(config.to_dict(), overwrite=False) is False
    assert folder.open(config.to_dict(), overwrite=False) is True  # same config: continue
    longer = config.to_dict()
    longer["trainer"]["max_steps"] = 50
    assert folder.check(longer, overwrite=False) is True  # run length may change
    changed = config.to_dict()
    changed["trainer"]["learning_rate"] = 3e-4
    with pytest.raises(ConfigError) as info:
        folder.check(changed, overwrite=False)
    message = str(info.value)
    assert "trainer.learning_rate: None in the run, 0.0003 now" in message
    assert "--run.name NEW_NAME" in message and "--run.overwrite true" in message
    assert folder.open(changed, overwrite=True) is False  # started over
    assert not (folder.path / "state.json").exists()


def test_a_folder_that_is_not_a_run_is_never_deleted(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), [("run.output_dir", str(tmp_path))])
    config.run_dir.mkdir()
    (config.run_dir / "precious.txt").write_text("keep")
    with pytest.raises(ConfigError, match="is not a vf-train run folder"):
        RunFolder(config.run_dir).open(config.to_dict(), overwrite=True)
    assert (config.run_dir / "precious.txt").exists()


def test_fewer_steps_than_already_trained_is_refused(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), [("run.output_dir", str(tmp_path / "runs"))])
    folder = RunFolder(config.run_dir)
    folder.open(config.to_dict(), overwrite=False)
    folder.save_state({"stages": {"train": {"global_step": 5}}, "commands": []})
    shorter = config.to_dict()
    shorter["trainer"]["max_steps"] = 3
    with pytest.raises(ConfigError, match="already trained 5 steps, more than trainer.max_steps = 3"):
        folder.check(shorter, overwrite=False)


def test_config_differences_ignore_where_the_run_lives():
    saved = {"run": {"name": "a", "output_dir": "x", "seed": 0}, "trainer": {"max_steps": 3}}
    new = {"run": {"name": "b", "output_dir": "y", "seed": 1}, "trainer": {"max_steps": 9}}
    assert config_differences(saved, new) == [("run.seed", 0, 1)]
