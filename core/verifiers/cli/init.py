"""vf-init: scaffold a new environment package that passes its own tests out of the box.

    vf-init my-env            # creates environments/vf_my_env/
    vf-install vf-my-env      # installs it (editable)
    pytest environments/vf_my_env
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PYPROJECT = '''[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "0.1.0"
description = "{title}: a verifiers environment."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["vf-core"]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points."verifiers.environments"]
{dist} = "{module}:load_environment"

[tool.hatch.build.targets.wheel]
packages = ["{module}"]
'''

MODULE = '''"""{title}: a verifiers environment.

The example task: reverse a word. Replace the dataset, parser and rubric with your own.
"""

from __future__ import annotations

from typing import Any

import verifiers as vf

WORDS = ["apple", "river", "stone", "cloud", "forest", "garden", "planet", "silver",
         "window", "yellow", "candle", "bridge", "dragon", "pepper", "rocket", "winter"]

SYSTEM_PROMPT = """Reverse the word you are given, letter by letter.
Answer in this format:
<answer>
...
</answer>"""


def correct_answer(parser: vf.Parser, completion: Any, answer: str) -> float:
    """1.0 when the parsed answer equals the reference exactly."""
    return 1.0 if (parser.parse_answer(completion) or "").strip() == answer else 0.0


def load_environment(num_train_examples: int = -1, num_eval_examples: int = 8, **kwargs: Any) -> vf.Environment:
    """Build the environment. Keyword arguments come from `vf.load_environment(...)` and
    `vf-eval -a '{{...}}'`."""
    rows = [{{"question": word, "answer": word[::-1]}} for word in WORDS]
    train, held_out = rows[num_eval_examples:], rows[:num_eval_examples]
    if num_train_examples >= 0:
        train = train[:num_train_examples]
    parser = vf.XMLParser(["answer"], answer_field="answer")
    rubric = vf.Rubric(
        funcs=[correct_answer, parser.get_format_reward_func()],
        weights=[1.0, 0.2],
        parser=parser,
    )
    return vf.SingleTurnEnv(
        dataset=train,
        eval_dataset=held_out,
        system_prompt=SYSTEM_PROMPT,
        parser=parser,
        rubric=rubric,
        **kwargs,
    )
'''

TEST = '''"""Tests for {dist}, against a real scripted OpenAI-compatible server on 127.0.0.1."""

import verifiers as vf


def test_loads_by_id():
    env = vf.load_environment("{dist}")
    assert isinstance(env, vf.Environment)
    assert len(env.get_eval_dataset()) > 0


def test_correct_answers_score_full_marks(make_scripted_server):
    def answer(request):
        word = request["messages"][-1]["content"]
        return "<answer>\\n" + word[::-1] + "\\n</answer>"

    server = make_scripted_server(handler=answer)
    env = vf.load_environment("{dist}")
    results = env.evaluate(server.sync_client(), "scripted", num_examples=4, rollouts_per_example=2)
    assert results["errors"] == [None] * 8
    assert results["rewards"] == [1.2] * 8


def test_wrong_answers_score_zero(make_scripted_server):
    server = make_scripted_server(default_reply="<answer>nope</answer>")
    env = vf.load_environment("{dist}")
    results = env.evaluate(server.sync_client(), "scripted", num_examples=2)
    assert all(r < 1.0 for r in results["rewards"])
'''

README = '''# {dist}

{title}: a [verifiers](../../README.md) environment. The example task asks the model to
reverse a word and scores exact matches (1.0) plus format (0.2).

## Arguments (`vf-eval {dist} -a '{{...}}'`)

| argument | default | meaning |
|---|---|---|
| `num_train_examples` | -1 | training rows (-1: all) |
| `num_eval_examples` | 8 | held-out rows |

## Try it

```bash
vf-install {dist}
vf-eval {dist} -m MODEL -b http://127.0.0.1:8000/v1 -n 8 -r 2
pytest environments/{module}
```
'''


def names(raw: str) -> tuple[str, str, str]:
    """(distribution, module, title) for a name like ``my-env`` or ``vf-my-env``."""
    base = raw.strip().lower().replace("_", "-")
    base = base.removeprefix("vf-")
    if not re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]|[a-z]", base):
        raise SystemExit(
            f"vf-init: {raw!r} is not a valid environment name: use lowercase letters, digits "
            "and dashes, starting with a letter (e.g. my-env)."
        )
    dist = f"vf-{base}"
    return dist, dist.replace("-", "_"), base.replace("-", " ").title()


def scaffold(raw_name: str, path: Path, overwrite: bool = False) -> Path:
    dist, module, title = names(raw_name)
    root = path / module
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise SystemExit(f"vf-init: {root} already exists; pick another name or pass --overwrite.")
    values = {"dist": dist, "module": module, "title": title}
    files = {
        root / "pyproject.toml": PYPROJECT,
        root / module / "__init__.py": MODULE,
        root / "tests" / f"test_{module}.py": TEST,
        root / "README.md": README,
    }
    for file, template in files.items():
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(template.format(**values))
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vf-init", description="Create a new environment package.")
    parser.add_argument("name", help="environment name, e.g. my-env (becomes vf-my-env)")
    parser.add_argument("-p", "--path", default="environments", help="folder to create it in")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    args = parser.parse_args(argv)
    root = scaffold(args.name, Path(args.path), args.overwrite)
    dist = names(args.name)[0]
    print(f"Created {root}/\n\nNext:\n  vf-install {dist}      # editable install\n"
          f"  pytest {root}          # its tests pass as generated\n"
          f"  vf-eval {dist} -m MODEL -b BASE_URL", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
