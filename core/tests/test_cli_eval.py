"""vf-eval end to end: a real scripted server, an installed environment, saved runs, resume."""

import json

import pytest

from verifiers.cli.eval import main


def answer_handler(request):
    """Answers 'hi N' with N (the toy environment's reference answer)."""
    return request["messages"][-1]["content"].split()[-1]


def run_dirs(root):
    return [p for p in root.glob("*/*") if p.is_dir()]


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


def test_resume_retries_only_unfinished_rollouts(installed_envs, make_scripted_server, tmp_path):
    out = tmp_path / "out"
    flaky = make_scripted_server(handler=answer_handler)
    flaky.fail_next("500", 3)
    args = ["vf-toy-math", "-m", "scripted", "-b", flaky.base_url, "-n", "4", "-r", "2",
            "-a", '{"num_examples": 4}', "-s", "-o", str(out), "--max-retries", "0", "-c", "1"]
    assert main(args) == 0
    (run,) = run_dirs(out)
    first = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    assert sum(1 for r in first if r["error"]) == 3
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["summary"]["num_failed"] == 3

    healthy = make_scripted_server(handler=answer_handler)
    settings = meta["settings"]
    settings["base_url"] = healthy.base_url  # the same run, served elsewhere now
    (run / "metadata.json").write_text(json.dumps({**meta, "settings": settings}))
    assert main(["--resume", str(run)]) == 0
    assert healthy.stats["total"] == 3  # only the failed rollouts ran again
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["summary"]["num_failed"] == 0
    assert meta["summary"]["num_rollouts"] == 8


def test_bad_arguments_fail_clearly(installed_envs, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(SystemExit, match="--env-args must be a JSON object"):
        main(["vf-toy-math", "-b", "http://127.0.0.1:1/v1", "-a", "{bad"])
    with pytest.raises(SystemExit, match="OPENAI_API_KEY is not set"):
        main(["vf-toy-math", "-b", "https://api.example.com/v1"])
    assert main(["vf-toy-mat", "-b", "http://127.0.0.1:1/v1"]) == 2
    assert "Did you mean 'vf-toy-math'?" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="not a saved run"):
        main(["--resume", "/nonexistent/run"])
