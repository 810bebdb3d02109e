"""vf-install: install an environment package, from this repository or from the index.

    vf-install vf-wordle                 # environments/vf_wordle here (editable), else the index
    vf-install wordle --from-repo        # only from the repository
    vf-install vf-wordle --from-index    # only from the package index
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def find_local(name: str, search: Path | None) -> Path | None:
    """``environments/vf_<name>`` under ``search`` or the nearest parent that has one."""
    base = name.strip().lower().replace("_", "-").removeprefix("vf-")
    folder = "vf_" + base.replace("-", "_")
    roots = [search] if search else [Path.cwd(), *Path.cwd().parents]
    for root in roots:
        for candidate in (root / folder, root / "environments" / folder):
            if (candidate / "pyproject.toml").is_file():
                return candidate
    return None


def _pip(args: list[str]) -> int:
    command = [sys.executable, "-m", "pip", "install", *args]
    print("$ " + " ".join(command), flush=True)
    return subprocess.call(command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vf-install", description="Install an environment package.")
    parser.add_argument("name", help="environment id, e.g. vf-wordle or wordle")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--from-repo", action="store_true", help="only this repository's environments/")
    source.add_argument("--from-index", action="store_true", help="only the package index")
    parser.add_argument("-p", "--path", type=Path, default=None,
                        help="folder holding the environment packages (default: ./environments, "
                             "searched upward)")
    parser.add_argument("--no-editable", action="store_true", help="a regular (not editable) install")
    args = parser.parse_args(argv)

    dist = "vf-" + args.name.strip().lower().replace("_", "-").removeprefix("vf-")
    local = None if args.from_index else find_local(args.name, args.path)
    if local is not None:
        code = _pip([str(local)] if args.no_editable else ["-e", str(local)])
        if code != 0:
            print(f"vf-install: pip failed (exit {code}) installing {local}; see its output above.",
                  file=sys.stderr)
            return code
        print(f"Installed {dist} from {local}. Load it with vf.load_environment({dist!r}).")
        return 0
    if args.from_repo:
        where = args.path or Path("environments")
        print(f"vf-install: no {dist} under {where} (looked for a folder "
              f"{dist.replace('-', '_')}/ with a pyproject.toml).", file=sys.stderr)
        return 1
    code = _pip([dist])
    if code != 0:
        print(
            f"vf-install: {dist} is neither in this repository's environments/ nor installable "
            f"from the package index (pip exit {code}). Check the name, or create it with "
            f"`vf-init {dist.removeprefix('vf-')}`.",
            file=sys.stderr,
        )
        return code
    print(f"Installed {dist} from the package index.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
