"""vf-train: evaluate a model on an environment, train it with GRPO, evaluate again, report.

    vf-train configs/smollm2-arithmetic.toml
    vf-train configs/smollm2-arithmetic.toml --trainer.max_steps 3 --eval.num_examples 20
    vf-train configs/tiny-test.toml --run.output_dir /somewhere --print-config
    vf-train @ configs/tiny-test.toml @ more.toml --run.overwrite --no-eval.before

Heavy modules (torch, transformers) are imported only after the arguments are parsed, so
``--help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time


def build_parser() -> argparse.ArgumentParser:
    from verifiers_trainer.cli.config_sections import describe_sections

    p = argparse.ArgumentParser(
        prog="vf-train",
        usage="vf-train CONFIG.toml | @ CONFIG.toml [@ MORE.toml ...] [--section.key VALUE ...] "
              "[--dry-run | --print-config]",
        description="Evaluate a model on an environment's held-out problems, train it with "
                    "GRPO, evaluate again, and write a report (accuracy before/after with 95% "
                    "intervals, training curves, timings) to <output_dir>/<name>/. Running "
                    "the same command again continues the run.",
        epilog="Overrides: --section.key VALUE (or --section.key=VALUE); VALUE is read as a "
               "TOML literal (20, 1e-4, true, [\"a\", \"b\"], {r = 8}), else as a string. "
               "Nested keys: --model.lora.r 8, --env.args.difficulty medium. True/false keys "
               "also take a bare flag: --run.overwrite, --no-eval.before. Several files "
               "(@ a.toml @ b.toml): later ones override earlier ones, table by table; the "
               "run is named after the last.\n\nConfig "
               "sections and keys:\n" + describe_sections(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("config", metavar="CONFIG.toml", nargs="?",
                   help="the run's TOML config (or give it as @ CONFIG.toml)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the config and the environment, show the resolved config and "
                        "what a run would do; run nothing")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (TOML) and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="info logging")
    return p


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    from verifiers_trainer.cli.train_args import split_arguments
    from verifiers_trainer.cli.train_config import ConfigError

    parser = build_parser()
    try:
        files, other, overrides = split_arguments(argv)
    except ConfigError as exc:
        parser.error(str(exc))
    args = parser.parse_args(other)
    files = ([args.config] if args.config else []) + files
    if not files:
        parser.error("give the run's config: vf-train CONFIG.toml, or vf-train @ CONFIG.toml.")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Before torch loads OpenMP: threads that spin while they wait for each other slow torch
    # down many times over on a CPU that other work shares (a SmolLM2 decoding step took 10x
    # longer with 2 spinning threads on a busy 2-core machine); passive waiting avoids that.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from rich.console import Console
    from rich.markup import escape

    from verifiers_trainer.cli.toml_io import dumps
    from verifiers_trainer.cli.train_args import parse_overrides
    from verifiers_trainer.cli.train_config import load_config

    console = Console(stderr=True)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(files, parse_overrides(overrides))
        if args.print_config:
            print(dumps(config.to_dict()), end="")
            return 0
        from verifiers_trainer.cli import train_run

        if args.dry_run:
            train_run.load_env(config)
            console.print(dumps(config.to_dict()), highlight=False, markup=False)
            for line in train_run.plan(config):
                console.print(line, highlight=False, markup=False)
            return 0
        if not args.verbose:
            import transformers

            transformers.logging.set_verbosity_warning()
        command = "vf-train " + shlex.join(argv)
        return train_run.run(config, command, console, Console(), started)
    except ConfigError as exc:
        console.print(f"[red]vf-train:[/red] {escape(str(exc))}", highlight=False)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
