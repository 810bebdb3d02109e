"""vf-install: install an environment package from this repository, a path, a git URL, or
(only when asked) the package index.

    vf-install vf-wordle                     # environments/vf_wordle here (editable)
    vf-install ./my_envs/vf_my_env           # a folder with a pyproject.toml (editable)
    vf-install git+https://github.com/me/envs.git#subdirectory=vf_my_env
    vf-install vf-some-env --from-index      # from the package index: the flag is required
    vf-install vf-wordle --python .venv/bin/python --dry-run

pip installs when the interpreter has it; otherwise (a venv made by uv has no pip) ``uv pip``.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

GIT_PREFIXES = ("git+", "git@", "ssh://", "https://", "http://")


class InstallError(Exception):
    """Nothing to install, or no installer: one line, exit code 1."""


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


def dist_name(name: str) -> str:
    return "vf-" + name.strip().lower().replace("_", "-").removeprefix("vf-")


def is_git_url(target: str) -> bool:
    return target.startswith(GIT_PREFIXES)


def git_requirement(url: str) -> str:
    """A pip requirement for a git URL: ``git+`` added where pip needs it."""
    if url.startswith("git+"):
        return url
    if url.startswith("git@"):  # git@host:owner/repo.git -> git+ssh://git@host/owner/repo.git
        host, _, path = url.partition(":")
        return f"git+ssh://{host}/{path}"
    return "git+" + url


def is_path(target: str) -> bool:
    return target.startswith((".", "/", "~")) or "/" in target or "\\" in target


def installer(python: str, has_pip: bool, uv: str | None) -> list[str]:
    """The command that installs into ``python``'s environment: this interpreter's pip
    (``pip --python`` for another environment), else ``uv pip``."""
    if has_pip:
        base = [sys.executable, "-m", "pip"]
        if Path(python).absolute() != Path(sys.executable).absolute():  # venv pythons are links
            base += ["--python", python]
        return [*base, "install"]
    if uv:
        return [uv, "pip", "install", "--python", python]
    raise InstallError(
        "this Python has no pip and uv is not on PATH. Install one of them "
        "(`python -m ensurepip`, or uv: https://docs.astral.sh/uv/), or run vf-install from an "
        "environment that has pip, with --python pointing here.")


def requirement_args(args: argparse.Namespace) -> tuple[list[str], str]:
    """What to pass to the installer, and a description of the source."""
    target = args.target.strip()
    if is_git_url(target):
        if args.from_repo:
            raise InstallError(f"--from-repo installs from environments/, not {target}.")
        return [git_requirement(target)], f"git ({target})"
    editable = [] if args.no_editable else ["-e"]
    if is_path(target) and not args.from_index:
        folder = Path(target).expanduser()
        if not (folder / "pyproject.toml").is_file():
            raise InstallError(f"{folder} has no pyproject.toml; give the folder of an environment "
                               "package (vf-init NAME creates one).")
        return [*editable, str(folder)], str(folder)
    dist = dist_name(target)
    if args.from_index:
        return [dist], "the package index"
    local = find_local(target, args.path)
    if local is not None:
        return [*editable, str(local)], str(local)
    where = args.path or Path("environments")
    raise InstallError(
        f"no {dist} under {where} (looked for a folder {dist.replace('-', '_')}/ with a "
        f"pyproject.toml, here and in parent folders). Create it with `vf-init "
        f"{dist.removeprefix('vf-')}`, give its path or a git URL, or install the package "
        f"named {dist} from the package index with --from-index (check the spelling first: "
        "the index installs whatever has that name).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vf-install", description="Install an environment package.")
    parser.add_argument("target", metavar="NAME|PATH|GIT_URL",
                        help="environment id (vf-wordle or wordle: this repository's "
                             "environments/), a folder with a pyproject.toml, or a git URL")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--from-repo", action="store_true",
                        help="only this repository's environments/ (the default for a name)")
    source.add_argument("--from-index", action="store_true",
                        help="install the distribution vf-NAME from the package index")
    parser.add_argument("-p", "--path", type=Path, default=None,
                        help="folder holding the environment packages (default: ./environments, "
                             "searched upward)")
    parser.add_argument("--no-editable", action="store_true", help="a regular (not editable) install")
    parser.add_argument("--python", default=sys.executable,
                        help="install into this interpreter's environment (default: this one)")
    parser.add_argument("-n", "--dry-run", action="store_true", help="print the command only")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        requirement, source = requirement_args(args)
        has_pip = importlib.util.find_spec("pip") is not None
        command = [*installer(args.python, has_pip, shutil.which("uv")), *requirement]
    except InstallError as exc:
        print(f"vf-install: {exc}", file=sys.stderr)
        return 1
    print("$ " + " ".join(command), flush=True)
    if args.dry_run:
        return 0
    code = subprocess.call(command)
    if code != 0:
        print(f"vf-install: the installer failed (exit {code}) installing from {source}; see its "
              "output above.", file=sys.stderr)
        return code
    name = dist_name(args.target) if not (is_git_url(args.target) or is_path(args.target)) else None
    hint = f" Load it with vf.load_environment({name!r})." if name else ""
    print(f"Installed from {source}.{hint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
