"""vf-view: a saved vf-eval run (made here by the real vf-eval against a scripted server, with
tool calls and one failed rollout) and a saved vf-train run (tests/data/vf_train_run), read
back, written as a page, served on 127.0.0.1 and drawn by headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from verifiers.cli.view import PageServer, main, write_page
from verifiers.viewer.runs import RunError, find_runs, load_run

TRAIN_RUN = Path(__file__).parent / "data" / "vf_train_run" / "tiny-test"
WORDS = ["alpha", "beta", "gamma", "delta"]  # the words of the tool_eval_run fixture

def test_eval_run_is_read_with_tool_calls_rewards_and_failures(tool_eval_run):
    run = load_run(tool_eval_run)
    assert run["kind"] == "eval" and run["status"] == "complete"
    rollouts = run["rollout_sets"]["rollouts"]
    assert len(rollouts) == 8
    failed = [r for r in rollouts if r["error"]]
    assert len(failed) == 1 and "500" in failed[0]["error"]
    ok = [r for r in rollouts if not r["error"]]
    call = ok[0]["completion"][0]["tool_calls"][0]
    assert call["name"] == "reverse" and json.loads(call["arguments"])["word"] in WORDS
    assert ok[0]["completion"][1]["role"] == "tool"
    assert sorted({r["reward"] for r in ok}) == [0.0, 1.0]
    summary = {row["label"]: row["value"] for row in run["summary"]}
    assert summary["rollouts"] == 8 and summary["failed"] == 1
    assert summary["correct_answer"] == pytest.approx(sum(r["reward"] for r in ok) / len(ok))


def test_train_run_is_read_with_curves_and_both_evaluations():
    run = load_run(TRAIN_RUN)
    assert run["kind"] == "train"
    assert list(run["rollout_sets"]) == ["eval_before", "eval_after"]
    assert len(run["rollout_sets"]["eval_before"]) == 8
    assert list(run["curves"])[:3] == ["reward", "loss", "kl"]
    assert [step for step, _ in run["curves"]["reward"]] == [1, 2, 3, 4]
    summary = {row["label"]: row["value"] for row in run["summary"]}
    assert summary["steps logged"] == 4 and summary["eval before: correct_answer"] == 0.0


def test_folders_are_searched_for_runs_and_bad_folders_refused(tool_eval_run, tmp_path):
    assert find_runs([tool_eval_run.parent.parent]) == [tool_eval_run]
    with pytest.raises(RunError, match="holds no saved run"):
        find_runs([tmp_path / "evals" / ".." / "site"])
    with pytest.raises(RunError, match="does not exist"):
        find_runs([tmp_path / "nowhere"])


def test_cli_writes_the_page_and_explains_bad_input(tool_eval_run, tmp_path, capsys):
    page = tmp_path / "view" / "index.html"
    assert main([str(tool_eval_run), str(TRAIN_RUN), "-o", str(page)]) == 0
    assert "(2 runs)" in capsys.readouterr().out
    text = page.read_text()
    assert "<script>" in text and "<link" not in text and "src=" not in text  # nothing fetched
    assert not re.search(r"(import|fetch|XMLHttpRequest|url)\(", text.split("<script>", 1)[1])
    data = text.split('id="vf-data">', 1)[1].split("</script>", 1)[0]
    assert [r["kind"] for r in json.loads(data)["runs"]] == ["eval", "train"]
    assert main([str(tmp_path / "missing"), "-o", str(page)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tool_eval_run), "--port", "8000"])
    assert "--port only applies with --serve" in capsys.readouterr().err


def test_markup_in_the_data_cannot_end_the_script_block(tmp_path):
    from verifiers.viewer.page import render_page

    page = render_page([{"kind": "eval", "name": "</script><b>x</b><!--", "path": "p",
                         "status": "", "summary": [], "rollout_sets": {}, "curves": {}}])
    assert page.count("</script>") == 2  # the data block's and the code's


def test_the_page_is_served_on_localhost(tool_eval_run, tmp_path):
    page, _ = write_page([tool_eval_run], tmp_path / "page" / "index.html")
    server = PageServer(page.parent).start()
    try:
        with urllib.request.urlopen(server.url("index.html"), timeout=10) as response:
            assert response.status == 200 and b'id="vf-data"' in response.read()
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------
# In a real browser
# ------------------------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    message = ("Chromium is not installed: apt-get install -y chromium (the CI script installs "
               "it) to run the viewer's browser tests")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def browse(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=5000"]
    return subprocess.run([chromium(), *flags, *extra, url], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def served(tool_eval_run, tmp_path):
    page, _ = write_page([tool_eval_run, TRAIN_RUN], tmp_path / "page" / "index.html")
    server = PageServer(page.parent).start()
    yield server
    server.stop()


def test_browser_draws_summary_rollouts_tool_calls_and_curves(served, tmp_path):
    result = browse(served.url("index.html"), tmp_path / "profile", "--dump-dom")
    dom = result.stdout
    assert 'id="summary-table"' in dom, result.stderr[-2000:]
    assert dom.count('class="rollout') == 8 and dom.count('class="rollout failed"') == 1
    assert "tool call reverse" in dom and "&quot;word&quot;" not in dom and '"word"' in dom
    assert "showing 8 of 8" in dom
    assert dom.count('<svg class="curve"') >= 3 and 'data-metric="reward"' in dom
    assert "enable JavaScript" not in dom  # the script replaced the placeholder


def test_browser_filters_and_compares(served, tmp_path):
    dom = browse(served.url("index.html#status=failed"), tmp_path / "p1", "--dump-dom").stdout
    assert "showing 1 of 8" in dom and dom.count('class="rollout failed"') == 1
    dom = browse(served.url("index.html#min=1"), tmp_path / "p2", "--dump-dom").stdout
    shown = dom.count('<article class="rollout"')
    assert 0 < shown < 8 and 'data-reward="0"' not in dom
    dom = browse(served.url("index.html#source=1&compare=2"), tmp_path / "p3", "--dump-dom").stdout
    assert 'id="compare-table"' in dom and dom.count('class="pair"') == 8
    assert "eval_before" in dom and "eval_after" in dom


def test_browser_screenshot(served, tmp_path):
    shot = tmp_path / "view.png"
    result = browse(served.url("index.html"), tmp_path / "profile", f"--screenshot={shot}",
                    "--window-size=1280,1400", "--hide-scrollbars")
    assert shot.is_file(), result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if target := os.environ.get("VF_VIEW_SCREENSHOT"):  # refreshes docs/vf-view.png
        shutil.copy(shot, target)


def test_browser_draws_long_runs_in_pages(tmp_path):
    from verifiers.viewer.page import render_page

    rollouts = [{"example_id": i, "rollout_index": 0, "prompt": [], "answer": "",
                 "completion": [{"role": "assistant", "content": f"answer {i}"}],
                 "reward": i % 2, "metrics": {}, "error": None} for i in range(450)]
    run = {"kind": "eval", "name": "long", "path": "p", "status": "complete", "summary": [],
           "rollout_sets": {"rollouts": rollouts}, "curves": {}}
    page = tmp_path / "page" / "index.html"
    page.parent.mkdir()
    page.write_text(render_page([run]))
    dom = browse(page.as_uri(), tmp_path / "profile", "--dump-dom").stdout
    assert "showing 450 of 450" in dom and dom.count('<article class="rollout"') == 200
    assert "show 200 more (250 not drawn)" in dom


def test_serve_flag_serves_the_page_until_stopped(tool_eval_run, tmp_path):
    page = tmp_path / "page" / "index.html"
    process = subprocess.Popen(
        [sys.executable, "-m", "verifiers.cli.view", str(tool_eval_run), "-o", str(page), "--serve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(f"Wrote {page} (1 run)")
        line = process.stdout.readline()
        assert line.startswith("Serving http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[1]
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b'id="vf-data"' in response.read()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_no_runs_anywhere_is_explained(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    assert "no run folders given" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# Clicking through it (chromedriver, spoken to over its W3C WebDriver HTTP protocol)
# ------------------------------------------------------------------------------------------

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element key


class Browser:
    """One browser driven by chromedriver: navigate, click, type, read the DOM by scripts."""

    def __init__(self, driver: str, binary: str, profile: Path) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen([driver, f"--port={self.port}"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": {"binary": binary, "args": args}}}}
        self.handle = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                         method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["value"]

    def _wait_ready(self) -> None:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self._call("GET", "/status").get("ready"):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("chromedriver did not start")

    def open(self, url: str) -> None:
        self._call("POST", f"/session/{self.handle}/url", {"url": url})

    def find(self, css: str) -> str:
        found = self._call("POST", f"/session/{self.handle}/element",
                           {"using": "css selector", "value": css})
        return found[ELEMENT]

    def click(self, css: str) -> None:
        self._call("POST", f"/session/{self.handle}/element/{self.find(css)}/click", {})

    def type(self, css: str, text: str) -> None:
        self._call("POST", f"/session/{self.handle}/element/{self.find(css)}/value", {"text": text})

    def run(self, script: str):
        return self._call("POST", f"/session/{self.handle}/execute/sync",
                          {"script": script, "args": []})

    def close(self) -> None:
        try:
            self._call("DELETE", f"/session/{self.handle}")
        finally:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def browser(tmp_path):
    binary = chromium()
    driver = shutil.which("chromedriver")
    if driver is None:
        message = "chromedriver is not installed: apt-get install -y chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    driven = Browser(driver, binary, tmp_path / "driver-profile")
    yield driven
    driven.close()


def test_clicking_filters_and_the_comparison(served, browser):
    browser.open(served.url("index.html"))
    count = "return document.getElementById('rollout-count').textContent"
    assert browser.run(count) == "showing 8 of 8"
    browser.click("#filter-status option[value='failed']")
    assert browser.run(count) == "showing 1 of 8"
    assert "status=failed" in browser.run("return location.hash")
    browser.click("#filter-status option[value='all']")
    browser.type("#filter-min", "1\ue007")  # Enter commits the value
    shown = browser.run("return document.querySelectorAll('article.rollout').length")
    assert 0 < shown < 8
    assert browser.run("return [...document.querySelectorAll('article.rollout')]"
                       ".every(a => a.dataset.reward === '1')")
    browser.click("#pick-source option[value='1']")  # the training run's evaluation before
    browser.click("#pick-compare option[value='2']")  # ... and after
    assert browser.run("return document.querySelectorAll('#compare .pair').length") == 0  # min=1
    browser.run("document.getElementById('filter-min').value = '';"
                "document.getElementById('filter-min').dispatchEvent(new Event('change'))")
    assert browser.run("return document.querySelectorAll('#compare .pair').length") == 8
    assert browser.run("return document.querySelectorAll('svg.curve polyline').length") >= 4
