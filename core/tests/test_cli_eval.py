"""vf-eval end to end: a real scripted server, an installed environment, saved runs, resume,
the verifiers 0.1.x flags, and every bad input refused with one line and exit code 2."""

import json
import os
from pathlib import Path

import pytest

from verifiers.cli.eval import main

LOCAL = "http://127.0.0.1:9/v1"  # never contacted: the input is refused first


def answer_handler(request):
    """Answers 'hi N' with N (the toy environment's reference answer)."""
    return request["messages"][-1]["content"].split()[-1]


def run_dirs(root):
    return [p for p in root.glob("*/*") if p.is_dir()]


def saved_run(installed_envs, make_scripted_server, tmp_path, *extra):
    """A complete saved run of vf-toy-math (4 examples x 2 rollouts), and its folder."""
    server = make_scripted_server(handler=answer_handler)
    out = tmp_path / "out"
    code = main(["vf-toy-math", "-m", "scripted", "-b", server.base_url, "-n", "4", "-r", "2",
                 "-a", '{"num_examples": 4}', "-s", "-o", str(out), *extra])
    assert code == 0
    (run,) = run_dirs(out)
    return run, server


def test_eval_prints_summary_and_saves(installed_envs, make_scripted_server, tmp_path, capsys):
    server = make_scripted_server(handler=answer_handler)
    out = tmp_path / "out"
    code = main(["vf-toy-math", "-m", "scripted", "-b", server.base_url, "-n", "3", "-r", "2",
                 "-a", '{"num_examples": 4}', "-s", "-o", str(out), "-t", "32", "-T", "0.5"])
    assert code == 0
    err = capsys.readouterr().err
    assert "reward" in err and "6 rollouts" in err and "0 failed" in err
    (run,) = run_dirs(out)
    assert run.parent.name == "vf-toy-math--scripted"
    lines = (run / "results.jsonl").read_text().splitlines()
    assert len(lines) == 6
    record = json.loads(lines[0])
    assert {"example_id", "rollout_index", "prompt", "completion", "reward", "metrics", "error"} <= set(record)
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["status"] == "complete"
    assert meta["settings"]["sampling_args"] == {"max_tokens": 32, "temperature": 0.5}
    assert meta["summary"]["num_rollouts"] == 6
    assert server.requests[0]["max_completion_tokens"] == 32  # chat: 0.1.x renames max_tokens


def test_metadata_has_the_flat_keys_of_verifiers_0_1(installed_envs, make_scripted_server, tmp_path):
    run, _ = saved_run(installed_envs, make_scripted_server, tmp_path, "-T", "0.3")
    meta = json.loads((run / "metadata.json").read_text())
    rewards = [json.loads(line)["reward"] for line in (run / "results.jsonl").read_text().splitlines()]
    assert meta["env"] == "vf-toy-math" and meta["model"] == "scripted"
    assert meta["num_examples"] == 4 and meta["rollouts_per_example"] == 2
    assert meta["sampling_args"] == {"temperature": 0.3}
    assert meta["avg_reward"] == pytest.approx(sum(rewards) / len(rewards))
    assert meta["avg_reward"] == meta["summary"]["reward"]["mean"]
    for name, stats in meta["summary"]["metrics"].items():
        assert meta[f"avg_{name}"] == stats["mean"]
    assert len(meta["date"]) == 10 and meta["date"][4] == "-" and len(meta["time"]) == 8


def test_resume_retries_only_unfinished_rollouts(installed_envs, make_scripted_server, tmp_path, capsys):
    out = tmp_path / "out"
    flaky = make_scripted_server(handler=answer_handler)
    flaky.fail_next("500", 3)
    args = ["vf-toy-math", "-m", "scripted", "-b", flaky.base_url, "-n", "4", "-r", "2",
            "-a", '{"num_examples": 4}', "-s", "-o", str(out), "--max-retries", "0", "-c", "1"]
    assert main(args) == 1  # rollouts failed: the exit code says so
    assert "3 of 8 rollouts failed" in capsys.readouterr().err
    (run,) = run_dirs(out)
    first = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    assert sum(1 for r in first if r["error"]) == 3
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["summary"]["num_failed"] == 3

    healthy = make_scripted_server(handler=answer_handler)
    # the same run, served elsewhere now: -b replaces the saved URL; -R is --resume
    assert main(["-R", str(run), "-b", healthy.base_url]) == 0
    assert healthy.stats["total"] == 3  # only the failed rollouts ran again
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["summary"]["num_failed"] == 0
    assert meta["summary"]["num_rollouts"] == 8
    assert meta["settings"]["base_url"] == healthy.base_url
    lines = (run / "results.jsonl").read_text().splitlines()
    assert len(lines) == 8  # rewritten with one line per rollout


def test_tolerated_share_of_failures(installed_envs, make_scripted_server, tmp_path):
    server = make_scripted_server(handler=answer_handler)
    server.fail_next("500", 2)
    args = ["vf-toy-math", "-m", "scripted", "-b", server.base_url, "-n", "4", "-r", "2",
            "-a", '{"num_examples": 4}', "--max-retries", "0", "-c", "1"]
    assert main([*args, "--max-failed-share", "0.25"]) == 0  # 2 of 8 failed: tolerated
    server.fail_next("500", 3)
    assert main([*args, "--max-failed-share", "0.25"]) == 1  # 3 of 8: too many


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-a", '{"num_examples": 0}'], "vf-toy-math rejected its arguments"),
        (["-a", "{bad"], "-a/--env-args must be a JSON object"),
        (["-a", "[1]"], "-a/--env-args must be a JSON object"),
        (["-S", "{bad"], "-S/--sampling-args must be a JSON object"),
        (["-r", "0"], "-r/--rollouts-per-example must be at least 1, got 0"),
        (["-n", "-2"], "-n/--num-examples must be -1 (all examples) or at least 1, got -2"),
        (["-n", "0"], "-n/--num-examples must be -1"),
        (["-c", "0"], "-c/--max-concurrent must be at least 1, got 0"),
        (["-t", "0"], "-t/--max-tokens must be at least 1"),
        (["-T", "-1"], "-T/--temperature must be 0 or more"),
        (["--timeout", "0"], "--timeout must be a positive number of seconds, got 0.0"),
        (["--max-retries", "-1"], "--max-retries must be 0 or more, got -1"),
        (["--max-failed-share", "1.5"], "--max-failed-share must be between 0 and 1"),
        (["--num-samples-shown", "-1"], "--num-samples-shown must be 0 or more"),
        (["-D", "me/results"], "-D/--hf-hub-dataset-name names the dataset that -H"),
        (["-e", "/nonexistent/endpoints.py"], "-e/--endpoints-path: no endpoints file at"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(argv, message, installed_envs, capsys):
    assert main(["vf-toy-math", "-b", LOCAL, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "localhost:8000/v1", "ftp://x/v1", "http://"])
def test_base_url_that_is_not_a_url(url, installed_envs, capsys):
    assert main(["vf-toy-math", "-b", url]) == 2
    assert f"-b/--api-base-url {url!r} is not a URL" in capsys.readouterr().err


def test_output_dir_that_is_a_file(installed_envs, tmp_path, capsys):
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    assert main(["vf-toy-math", "-b", LOCAL, "-s", "-o", str(file)]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_unknown_environment_and_missing_key(installed_envs, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["vf-toy-math", "-b", "https://api.example.com/v1"]) == 2
    assert "OPENAI_API_KEY is not set" in capsys.readouterr().err
    assert main(["vf-toy-mat", "-b", LOCAL]) == 2
    assert "Did you mean 'vf-toy-math'?" in capsys.readouterr().err
    assert main(["--resume", "/nonexistent/run"]) == 2
    assert "is not a saved run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"status": "running"}', "has no 'settings' object"),
        ('{"settings": {"env_id": "vf-toy-math"}}', "is incomplete: its settings lack"),
    ],
)
def test_resume_refuses_a_damaged_metadata_file(content, message, installed_envs, make_scripted_server,
                                                tmp_path, capsys):
    run, _ = saved_run(installed_envs, make_scripted_server, tmp_path)
    capsys.readouterr()
    (run / "metadata.json").write_text(content)
    assert main(["--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-n", "3"], "-n 3 differs from the saved run's 4"),
        (["-m", "other-model"], '-m "other-model" differs from the saved run\'s "scripted"'),
        (["-a", '{"num_examples": 5}'], "-a {\"num_examples\": 5} differs"),
        (["-r", "1"], "-r 1 differs from the saved run's 2"),
        (["-T", "0.9"], "sampling arguments {\"temperature\": 0.9} (-t/-T/-S) differ"),
        (["vf-toy-game"], 'ENV "vf-toy-game" differs'),
    ],
)
def test_resume_refuses_settings_that_differ(argv, message, installed_envs, make_scripted_server,
                                             tmp_path, capsys):
    run, server = saved_run(installed_envs, make_scripted_server, tmp_path)
    capsys.readouterr()
    env = [argv[0]] if not argv[0].startswith("-") else []
    flags = argv[len(env):]
    assert main([*env, "--resume", str(run), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "start a new run without --resume" in err
    # the same values are accepted (nothing to do: every rollout is saved)
    assert main(["vf-toy-math", "--resume", str(run), "-n", "4", "-m", "scripted", "-r", "2"]) == 0


def test_sampling_args_override_t_and_T(installed_envs, make_scripted_server, tmp_path, capsys):
    server = make_scripted_server(handler=answer_handler)
    code = main(["vf-toy-math", "-m", "scripted", "-b", server.base_url, "-n", "1", "-r", "1",
                 "-t", "16", "-T", "0.5", "-S", '{"max_tokens": 64, "top_p": 0.9}'])
    assert code == 0
    assert "-S sets max_tokens=64, which overrides -t 16" in capsys.readouterr().err
    request = server.requests[0]
    assert request["max_completion_tokens"] == 64 and request["temperature"] == 0.5
    assert request["top_p"] == 0.9


def test_endpoints_registry(installed_envs, make_scripted_server, tmp_path, monkeypatch, capsys):
    server = make_scripted_server(handler=answer_handler)
    registry = tmp_path / "configs" / "endpoints.py"
    registry.parent.mkdir()
    registry.write_text(
        "ENDPOINTS = {\n"
        f"    'short': {{'model': 'served-name', 'url': {server.base_url!r}, 'key': 'MY_KEY'}},\n"
        "}\n")
    monkeypatch.setenv("MY_KEY", "sk-test")
    out = tmp_path / "out"
    args = ["vf-toy-math", "-m", "short", "-n", "1", "-r", "1", "-s", "-o", str(out)]
    assert main([*args, "-e", str(registry)]) == 0
    assert server.requests[-1]["model"] == "served-name"
    assert main([*args, "-e", str(registry.parent)]) == 0  # a folder with endpoints.py
    monkeypatch.chdir(tmp_path)  # ./configs/endpoints.py is the default, as in 0.1.x
    assert main(args) == 0
    assert len(server.requests) == 3
    meta = json.loads((run_dirs(out)[0] / "metadata.json").read_text())
    assert meta["settings"]["model"] == "served-name" and meta["settings"]["api_key_var"] == "MY_KEY"

    remote = tmp_path / "remote.py"  # the key variable comes from the registry too
    remote.write_text("ENDPOINTS = {'r': {'model': 'x', 'url': 'https://api.example.com/v1', "
                      "'key': 'OTHER_KEY'}}\n")
    monkeypatch.delenv("OTHER_KEY", raising=False)
    capsys.readouterr()
    assert main(["vf-toy-math", "-m", "r", "-e", str(remote)]) == 2
    assert "OTHER_KEY is not set" in capsys.readouterr().err

    bad = tmp_path / "bad.py"
    for text, message in (("X = 1\n", "defines no ENDPOINTS dict"),
                          ("ENDPOINTS = {'m': {'url': 'http://x/v1'}}\n", "lacks ['model', 'key']"),
                          ("raise RuntimeError('boom')\n", "failed to run: RuntimeError: boom")):
        bad.write_text(text)
        capsys.readouterr()
        assert main(["vf-toy-math", "-m", "m", "-e", str(bad)]) == 2
        assert message in capsys.readouterr().err


def test_max_concurrent_requests_alias(installed_envs, make_scripted_server, tmp_path):
    server = make_scripted_server(handler=answer_handler, latency_ms=50)
    out = tmp_path / "out"
    assert main(["vf-toy-math", "-m", "scripted", "-b", server.base_url, "-n", "4", "-r", "2",
                 "-a", '{"num_examples": 4}', "--max-concurrent-requests", "1", "-s",
                 "-o", str(out)]) == 0
    meta = json.loads((run_dirs(out)[0] / "metadata.json").read_text())
    assert meta["settings"]["max_concurrent"] == 1
    assert server.stats["max_in_flight"] == 1


def test_save_to_hf_hub_with_a_local_path(installed_envs, make_scripted_server, tmp_path):
    from datasets import load_from_disk

    server = make_scripted_server(handler=answer_handler)
    target = tmp_path / "dataset"
    assert main(["vf-toy-math", "-m", "scripted", "-b", server.base_url, "-n", "3", "-r", "2",
                 "-a", '{"num_examples": 3}', "-H", "-D", str(target)]) == 0
    dataset = load_from_disk(str(target))
    assert len(dataset) == 6
    assert {"prompt", "completion", "answer", "reward", "error"} <= set(dataset.column_names)
    assert sorted(dataset["answer"]) == ["0", "0", "1", "1", "2", "2"]


def test_save_to_hf_hub_failure_is_reported(installed_envs, make_scripted_server, tmp_path):
    """Pushing offline fails: one message, exit code 1, the run saved locally all the same."""
    import subprocess
    import sys

    server = make_scripted_server(handler=answer_handler)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": os.pathsep.join([str(installed_envs), os.environ.get("PYTHONPATH", "")])}
    env.pop("HF_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "verifiers.cli.eval", "vf-toy-math", "-m", "scripted", "-b",
         server.base_url, "-n", "1", "-r", "1", "-s", "-o", str(tmp_path / "out"), "-H"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "saving the results dataset to vf-toy-math_scripted_n1_r1 failed" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(list(Path(tmp_path / "out").glob("*/*/results.jsonl"))) == 1
