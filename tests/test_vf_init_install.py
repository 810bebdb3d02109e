"""vf-init scaffolds a package; vf-install installs it; its own tests pass unedited."""

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True)


def test_init_install_and_its_tests_pass(tmp_path):
    created = run("verifiers.cli.init", "demo-task", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    root = tmp_path / "environments" / "vf_demo_task"
    assert (root / "pyproject.toml").is_file() and (root / "vf_demo_task" / "__init__.py").is_file()
    assert "vf-install vf-demo-task" in created.stdout

    installed = run("verifiers.cli.install", "vf-demo-task", "--from-repo", cwd=tmp_path)
    try:
        assert installed.returncode == 0, installed.stdout + installed.stderr
        tests = run("pytest", str(root), "-q", "-p", "no:cacheprovider", cwd=tmp_path)
        assert tests.returncode == 0, tests.stdout + tests.stderr
        assert "3 passed" in tests.stdout
        loaded = subprocess.run(
            [sys.executable, "-c", "import verifiers as vf; print(type(vf.load_environment('demo-task')).__name__)"],
            capture_output=True, text=True, cwd=tmp_path)
        assert loaded.stdout.strip() == "SingleTurnEnv", loaded.stderr
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "vf-demo-task"],
                       capture_output=True)


def test_init_refuses_bad_names_and_existing_folders(tmp_path):
    bad = run("verifiers.cli.init", "9 lives!", cwd=tmp_path)
    assert bad.returncode != 0 and "not a valid environment name" in bad.stderr
    assert run("verifiers.cli.init", "twice", cwd=tmp_path).returncode == 0
    again = run("verifiers.cli.init", "twice", cwd=tmp_path)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_install_says_clearly_when_nothing_has_it(tmp_path):
    missing = run("verifiers.cli.install", "no-such-env-here", "--from-repo", cwd=tmp_path)
    assert missing.returncode == 1
    assert "no vf-no-such-env-here under" in missing.stderr
