"""Fixtures for the core's tests."""

import sys
import textwrap

import pytest


@pytest.fixture
def installed_envs(tmp_path, monkeypatch):
    """Two environment 'distributions' on sys.path, registered through real entry points
    (a dist-info folder, exactly what pip writes), without touching the venv."""
    for dist, module in (("vf-toy-math", "vf_toy_math"), ("vf-toy-game", "vf_toy_game")):
        (tmp_path / f"{module}.py").write_text(textwrap.dedent('''
            import verifiers as vf

            def load_environment(num_examples: int = 3, greeting: str = "hi"):
                rows = [{"question": f"{greeting} {i}", "answer": str(i)} for i in range(num_examples)]
                return vf.SingleTurnEnv(dataset=rows)
        '''))
        info = tmp_path / f"{module}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(
            f"[verifiers.environments]\n{dist} = {module}:load_environment\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in ("vf_toy_math", "vf_toy_game"):
        sys.modules.pop(module, None)
