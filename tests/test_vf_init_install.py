"""vf-init scaffolds a package; vf-install installs it (into a throwaway venv without pip);
its own tests pass unedited. vf-install's sources: repository, path, git URL, index (only
with --from-index)."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from verifiers.cli.install import (
    InstallError,
    build_parser,
    git_requirement,
    installer,
    requirement_args,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def run(*args, cwd, python=sys.executable):
    return subprocess.run([python, "-m", *args], cwd=cwd, capture_output=True, text=True)


def throwaway_venv(root: Path) -> Path:
    """A venv without pip (as uv makes them) that sees this interpreter's packages (the core,
    pytest) through a .pth file; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # addsitedir, not a bare path: the outer site's own .pth files (editable installs) count
    outer = sysconfig.get_paths()["purelib"]
    Path(purelib, "outer-packages.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    return python


def test_init_install_into_a_venv_without_pip_and_its_tests_pass(tmp_path):
    created = run("verifiers.cli.init", "demo-task", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    root = tmp_path / "environments" / "vf_demo_task"
    assert (root / "pyproject.toml").is_file() and (root / "vf_demo_task" / "__init__.py").is_file()
    assert "vf-install vf-demo-task" in created.stdout

    python = throwaway_venv(tmp_path / "venv")
    installed = run("verifiers.cli.install", "vf-demo-task", "--python", str(python), cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert f"--python {python} install -e {root}" in installed.stdout
    where = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; "
         "print(m.distribution('vf-demo-task').locate_file(''))"],
        capture_output=True, text=True, cwd=tmp_path)
    assert str(tmp_path / "venv") in where.stdout, where.stderr  # installed there ...
    here = subprocess.run([sys.executable, "-c", "import importlib.metadata as m; m.distribution('vf-demo-task')"],
                          capture_output=True, text=True)
    assert here.returncode != 0  # ... and not in the environment running the tests

    tests = run("pytest", str(root), "-q", "-p", "no:cacheprovider", cwd=tmp_path, python=str(python))
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout
    loaded = subprocess.run(
        [str(python), "-c", "import verifiers as vf; print(type(vf.load_environment('demo-task')).__name__)"],
        capture_output=True, text=True, cwd=tmp_path)
    assert loaded.stdout.strip() == "SingleTurnEnv", loaded.stderr


def test_init_refuses_bad_names_and_existing_folders(tmp_path):
    bad = run("verifiers.cli.init", "9 lives!", cwd=tmp_path)
    assert bad.returncode != 0 and "not a valid environment name" in bad.stderr
    assert run("verifiers.cli.init", "twice", cwd=tmp_path).returncode == 0
    again = run("verifiers.cli.init", "twice", cwd=tmp_path)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_a_name_not_in_the_repository_is_not_looked_up_on_the_index(tmp_path):
    missing = run("verifiers.cli.install", "no-such-env-here", cwd=tmp_path)
    assert missing.returncode == 1
    assert "no vf-no-such-env-here under environments" in missing.stderr
    assert "--from-index" in missing.stderr and "$ " not in missing.stdout  # nothing ran
    dry = run("verifiers.cli.install", "no-such-env-here", "--from-index", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and dry.stdout.strip().endswith("-m pip install vf-no-such-env-here")


def requirement(*argv, cwd):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return requirement_args(build_parser().parse_args(list(argv)))[0]
    finally:
        os.chdir(old)


def test_sources_paths_and_git_urls(tmp_path):
    package = tmp_path / "environments" / "vf_thing"
    package.mkdir(parents=True)
    (package / "pyproject.toml").write_text("[project]\nname = 'vf-thing'\n")
    assert requirement("thing", cwd=tmp_path) == ["-e", str(package)]
    assert requirement("vf_thing", "--no-editable", cwd=tmp_path) == [str(package)]
    assert requirement(str(package), cwd=tmp_path) == ["-e", str(package)]
    assert requirement("./environments/vf_thing", cwd=tmp_path) == ["-e", "environments/vf_thing"]
    assert requirement("thing", "--from-index", cwd=tmp_path) == ["vf-thing"]
    url = "https://github.com/me/envs.git#subdirectory=vf_thing"
    assert requirement(url, cwd=tmp_path) == ["git+" + url]
    with pytest.raises(InstallError, match="has no pyproject.toml"):
        requirement(str(tmp_path), cwd=tmp_path)
    with pytest.raises(InstallError, match="--from-repo installs from environments/"):
        requirement(url, "--from-repo", cwd=tmp_path)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git+https://github.com/me/envs.git", "git+https://github.com/me/envs.git"),
        ("https://github.com/me/envs.git@v1", "git+https://github.com/me/envs.git@v1"),
        ("git@github.com:me/envs.git", "git+ssh://git@github.com/me/envs.git"),
        ("ssh://git@host/me/envs.git", "git+ssh://git@host/me/envs.git"),
    ],
)
def test_git_requirements(url, expected):
    assert git_requirement(url) == expected


def test_installer_pip_here_pip_elsewhere_or_uv(tmp_path):
    assert installer(sys.executable, True, None) == [sys.executable, "-m", "pip", "install"]
    other = str(tmp_path / "venv" / "bin" / "python")
    assert installer(other, True, "/usr/bin/uv") == [sys.executable, "-m", "pip", "--python", other, "install"]
    assert installer(other, False, "/usr/bin/uv") == ["/usr/bin/uv", "pip", "install", "--python", other]
    with pytest.raises(InstallError, match="no pip and uv is not on PATH"):
        installer(other, False, None)
