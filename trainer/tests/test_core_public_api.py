"""The trainer package uses only the core's public API: every name it imports from
``verifiers`` or a ``verifiers.*`` module, and every ``vf.<name>`` it reads, is in that
module's ``__all__``."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "verifiers_trainer"


def core_uses(path: Path) -> list[tuple[str, str, int]]:
    """(module, name, line) for each core name ``path`` imports or reads through an alias."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases: dict[str, str] = {}  # local name -> core module (``import verifiers as vf``)
    uses: list[tuple[str, str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "verifiers" or alias.name.startswith("verifiers."):
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "verifiers" or node.module.startswith("verifiers.")):
            uses.extend((node.module, alias.name, node.lineno) for alias in node.names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in aliases:
            uses.append((aliases[node.value.id], node.attr, node.lineno))
    return uses


def test_the_walk_finds_imports_and_attribute_reads(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import verifiers as vf\nfrom verifiers.clients import create_chat\n"
                      "def f():\n    from verifiers.utils.data_utils import to_dataset\n"
                      "    return vf.Rubric\n")
    assert sorted(core_uses(sample)) == [("verifiers", "Rubric", 5),
                                         ("verifiers.clients", "create_chat", 2),
                                         ("verifiers.utils.data_utils", "to_dataset", 4)]


def test_trainer_imports_only_public_core_names():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    private, seen = [], 0
    for path in files:
        for module_name, name, line in core_uses(path):
            seen += 1
            module = importlib.import_module(module_name)
            public = getattr(module, "__all__", None)
            if hasattr(module, "__path__") and importlib.util.find_spec(
                    f"{module_name}.{name}") is not None and hasattr(
                    importlib.import_module(f"{module_name}.{name}"), "__all__"):
                continue  # a public module of the core (one that declares __all__)
            if public is None or name not in public:
                private.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module_name}.{name}")
    assert seen > 10  # the walk found the trainer's uses of the core
    assert not private, ("names the trainer uses that are not in their core module's __all__ "
                         "(declare them public there, or stop using them):\n" + "\n".join(private))
