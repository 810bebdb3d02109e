"""Distribution names: every package of this repository is published under a name we own
(vf-core, vf-trainer, vf-math-python, vf-wordle, vf-judge; the import names stay
``verifiers``, ``verifiers_trainer``, ...), depends only on those names, and extras that name
our packages name existing ones.

The second half runs where ``VF_WHEELS_DIR`` names a folder of wheels built from this
repository and installed (not editable) into the running venv (``nox -s wheels``): every
installed file of ours must be byte-identical to the wheel's, and nothing named
``verifiers`` (the unrelated project of that name) may be installed.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import json
import os
import re
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"vf-core": "core", "vf-trainer": "trainer", "vf-math-python": "environments/vf_math_python",
        "vf-wordle": "environments/vf_wordle", "vf-judge": "environments/vf_judge"}
IMPORTS = {"vf-core": "verifiers", "vf-trainer": "verifiers_trainer",
           "vf-math-python": "vf_math_python", "vf-wordle": "vf_wordle", "vf-judge": "vf_judge"}
#: Names on package indexes that belong to other projects: never a dependency of ours.
FOREIGN = {"verifiers", "verifiers-trainer"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(spec: str) -> tuple[str, set[str]]:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", spec)
    assert match, f"unreadable requirement {spec!r}"
    extras = {e.strip() for e in (match.group(2) or "").split(",") if e.strip()}
    return _normal(match.group(1)), extras


def _projects() -> dict[str, dict]:
    return {name: tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
            for name, folder in OURS.items()}


def test_every_package_is_published_under_a_name_we_own():
    projects = _projects()
    assert {_normal(p["name"]) for p in projects.values()} == set(OURS)
    found = {_normal(tomllib.loads(f.read_text())["project"]["name"])
             for f in ROOT.glob("*/**/pyproject.toml") if ".nox" not in f.parts
             and "build" not in f.parts}
    assert found == set(OURS), "a new package needs an entry in OURS, under a name we own"


def test_dependencies_and_extras_name_only_our_distributions_and_their_extras():
    projects = _projects()
    extras_of = {name: set(p.get("optional-dependencies", {})) for name, p in projects.items()}
    for name, project in projects.items():
        specs = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            specs += extra
        for spec in specs:
            dep, extras = _requirement(spec)
            assert dep not in FOREIGN, f"{name} depends on {dep!r}, another project's name"
            if dep.startswith("vf-"):
                assert dep in OURS, f"{name} depends on {dep!r}, which is not in this repository"
                assert extras <= extras_of[dep], f"{name}: {spec!r} names an extra {dep} lacks"
    for name in ("vf-trainer", "vf-math-python", "vf-wordle", "vf-judge"):
        assert "vf-core" in {_requirement(s)[0] for s in projects[name]["dependencies"]}
    core_extras = projects["vf-core"]["optional-dependencies"]
    assert {_requirement(s)[0] for s in core_extras["trainer"]} == {"vf-trainer"}
    for extra in ("wandb", "tensorboard", "all"):
        assert extra in core_extras and extra in extras_of["vf-trainer"]


def test_vf_init_packages_depend_on_the_core_by_its_name(tmp_path):
    from verifiers.cli.init import scaffold

    root = scaffold("demo-task", tmp_path)
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "vf-demo-task"
    assert [_requirement(s)[0] for s in project["dependencies"]] == ["vf-core"]


# ------------------------------------------------------------------------------------------
# Installed from wheels (nox -s wheels)
# ------------------------------------------------------------------------------------------

WHEELS = os.environ.get("VF_WHEELS_DIR")
installed_from_wheels = pytest.mark.skipif(
    not WHEELS, reason="needs VF_WHEELS_DIR: a venv installed from this repository's wheels "
                       "(run `nox -s wheels`)")


def _wheel_for(dist: md.Distribution) -> Path:
    stem = dist.metadata["Name"].replace("-", "_")
    matches = sorted(Path(WHEELS or ".").glob(f"{stem}-{dist.version}-*.whl"))
    assert matches, f"no wheel {stem}-{dist.version}-*.whl in {WHEELS}"
    return matches[0]


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@installed_from_wheels
def test_nothing_foreign_is_installed():
    for name in FOREIGN:
        with pytest.raises(md.PackageNotFoundError):
            md.distribution(name)
    owners = md.packages_distributions()
    assert [_normal(d) for d in owners["verifiers"]] == ["vf-core"]


@installed_from_wheels
@pytest.mark.parametrize("name", ["vf-core", "vf-trainer", "vf-math-python"])
def test_installed_packages_are_ours_from_the_wheels_not_editable(name):
    dist = md.distribution(name)
    direct = dist.read_text("direct_url.json")
    assert not (direct and json.loads(direct).get("dir_info", {}).get("editable")), direct
    module = __import__(IMPORTS[name])
    site = Path(module.__file__).resolve().parent.parent
    assert site.is_relative_to(Path(sys.prefix).resolve()), f"{module.__file__} is not in this venv"
    assert not Path(module.__file__).resolve().is_relative_to(ROOT / OURS[name]), "editable copy"
    with zipfile.ZipFile(_wheel_for(dist)) as wheel:
        packaged = {n: _digest(wheel.read(n)) for n in wheel.namelist() if n.endswith(".py")}
    assert packaged, "the wheel holds no Python files"
    for path, digest in packaged.items():
        assert _digest((site / path).read_bytes()) == digest, f"{path} differs from the wheel's"
        source = ROOT / OURS[name] / path
        assert source.read_bytes() == (site / path).read_bytes(), f"{path} differs from {source}"


@installed_from_wheels
def test_requirements_between_our_packages_are_met_by_our_packages():
    for name in ("vf-trainer", "vf-math-python"):
        for spec in md.requires(name) or []:
            if "extra ==" in spec:
                continue
            dep, _ = _requirement(spec)
            if dep.startswith("vf-"):
                assert _normal(md.distribution(dep).metadata["Name"]) == dep


@installed_from_wheels
def test_installed_packages_work_together():
    import verifiers as vf

    env = vf.load_environment("vf-math-python", dataset_name="arithmetic", use_tools=False)
    assert len(env.get_eval_dataset(4)) == 4
    assert vf.GRPOConfig.__module__.startswith("verifiers_trainer")
    scripts = {ep.name for ep in md.entry_points(group="console_scripts")}
    assert {"vf-eval", "vf-init", "vf-install", "vf-view", "vf-train", "vf-vllm"} <= scripts
    from verifiers.viewer.page import render_page  # its script and styles ship in the wheel

    page = render_page([])
    assert "function draw()" in page and "article.rollout" in page
