"""The body of vf-eval: load, evaluate with a progress bar, save, summarise."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from verifiers.cli.eval_samples import completion_text
from verifiers.cli.eval_settings import UsageError
from verifiers.cli.eval_store import (
    METADATA_FILE,
    RESULTS_FILE,
    drop_torn_tail,
    flat_metadata,
    load_records,
    record_key,
    rewrite_records,
    run_dir_for,
    write_metadata,
)
from verifiers.pass_rates import binary_metric_pass_at_k
from verifiers.results import GenerateOutputs, record_to_json, summarize
from verifiers.rollout import Rollout


def _load_env(settings: dict[str, Any]) -> Any:
    import verifiers as vf

    try:
        return vf.load_environment(settings["env_id"], **settings["env_args"])
    except LookupError as exc:  # unknown id, a missing key: the message says it all
        raise UsageError(str(exc).strip("'\"")) from None
    except ImportError as exc:
        raise UsageError(f"{settings['env_id']} could not be imported: {exc}. Install what it "
                         "needs (see its README), or reinstall it with vf-install.") from None
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{settings['env_id']} rejected its arguments "
                         f"(-a {json.dumps(settings['env_args'])}): {exc}") from None


def run_eval(
    settings: dict[str, Any],
    api_key: str,
    options: Any,
    client: Any = None,
    close_client: bool = False,
) -> int:
    """Evaluate as ``settings`` say, save and summarise as ``options`` (vf-eval's parsed
    arguments) say; ``client`` overrides the one built from the base URL (a local in-process
    engine, or a server the caller started). Returns vf-eval's exit code."""
    from rich.console import Console

    from verifiers.clients import RetryPolicy, make_async_client

    console = Console(stderr=True)
    logging.basicConfig(level=logging.DEBUG if options.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    env = _load_env(settings)
    env.retry_policy = RetryPolicy(max_retries=settings["max_retries"], timeout=settings["timeout"])
    run_dir: Path | None = None
    previous: list[dict[str, Any]] = []
    if options.resume:
        run_dir = Path(options.resume)
        dropped = drop_torn_tail(run_dir)
        if dropped:
            console.print(f"[yellow]Dropped a last line cut short by an interrupted run "
                          f"({dropped} bytes); that rollout runs again.[/yellow]")
        saved, unreadable = load_records(run_dir)
        if unreadable:
            console.print(f"[yellow]{unreadable} line(s) of {RESULTS_FILE} could not be read; "
                          "their rollouts run again.[/yellow]")
        previous = [r for r in saved if not r.get("error")]
    elif options.save_results:
        run_dir = run_dir_for(options.output_dir, settings["env_id"], settings["model"])
        run_dir.mkdir(parents=True, exist_ok=True)

    owned = client is None or close_client
    if client is None:
        client = make_async_client(settings["base_url"], api_key)
    inputs = env.get_eval_dataset(settings["num_examples"], settings.get("seed"))
    total = len(inputs) * settings["rollouts_per_example"]
    skip = {record_key(r) for r in previous}
    console.print(
        f"[bold]vf-eval[/bold] {settings['env_id']} · model [cyan]{settings['model']}[/cyan] at "
        f"{settings['base_url']} · {len(inputs)} examples × {settings['rollouts_per_example']} "
        f"rollouts" + (f" · resuming, {len(skip)} done" if skip else "")
    )
    if run_dir is not None:
        write_metadata(run_dir, settings, "running")
    started = time.time()
    results = asyncio.run(
        _generate(env, client, inputs, settings, run_dir, skip, total, console, owned))
    elapsed = time.time() - started
    if run_dir is not None:  # what is on disk is the record: one line per rollout, counted
        records, _ = load_records(run_dir)
        records.sort(key=lambda r: (str(r.get("example_id")), r.get("rollout_index", 0)))
        rewrite_records(run_dir, records, record_to_json)
        merged = GenerateOutputs(records)
    else:
        merged = results
    summary = summarize(merged)
    summary["pass_at_k_metrics"] = binary_metric_pass_at_k(merged)
    summary["wall_time_s"] = elapsed
    if run_dir is not None:
        write_metadata(run_dir, settings, "complete", summary=summary, wall_time_s=elapsed,
                       **flat_metadata(settings, summary, len(inputs)))
    _print_samples(console, merged, options.num_samples_shown)
    _print_summary(console, settings, summary)
    if run_dir is not None:
        console.print(f"Saved to [bold]{run_dir}[/bold] ({RESULTS_FILE}, {METADATA_FILE})")
    code = 0
    if options.save_to_hf_hub:
        code = _save_to_hub(env, merged, settings, len(inputs), options.hf_hub_dataset_name,
                            console)
    failed, n = summary["num_failed"], summary["num_rollouts"]
    if failed and failed > options.max_failed_share * n:
        console.print(f"[red]vf-eval: {failed} of {n} rollouts failed[/red] (more than "
                      f"--max-failed-share {options.max_failed_share:g} allows): exit code 1.")
        return 1
    return code


def _is_local_path(name: str) -> bool:
    return name.startswith(("/", ".", "~", "file://"))


def _save_to_hub(env: Any, results: GenerateOutputs, settings: dict[str, Any], num_examples: int,
                 name: str, console: Any) -> int:
    """``env.make_dataset(results)`` pushed to the Hub as ``name`` (0.1.x's default name when
    empty), or saved with ``save_to_disk`` when ``name`` is a local path."""
    dataset = env.make_dataset(results)
    if not name:
        name = (f"{settings['env_id']}_{settings['model'].replace('/', '-')}"
                f"_n{num_examples}_r{settings['rollouts_per_example']}")
    try:
        if _is_local_path(name):
            path = Path(name.removeprefix("file://")).expanduser()
            dataset.save_to_disk(str(path))
            console.print(f"Saved the results dataset to [bold]{path}[/bold] "
                          f"({len(dataset)} rows; datasets.load_from_disk reads it).")
        else:
            dataset.push_to_hub(name)
            console.print(f"Pushed the results dataset to the Hugging Face Hub: [bold]{name}[/bold]")
    except Exception as exc:
        console.print(f"[red]vf-eval: saving the results dataset to {name} failed:[/red] "
                      f"{type(exc).__name__}: {exc}. Log in with `hf auth login` (or set "
                      "HF_TOKEN), or give -D a local path.")
        return 1
    return 0


async def _generate(
    env: Any, client: Any, inputs: Any, settings: dict[str, Any], run_dir: Path | None,
    skip: set[tuple[Any, int]], total: int, console: Any, close_client: bool,
) -> GenerateOutputs:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    handle = (run_dir / RESULTS_FILE).open("a") if run_dir is not None else None
    rewards: list[float] = []
    failed = 0
    progress = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[status]}"), console=console, transient=False,
    )
    task = progress.add_task("rollouts", total=total, completed=len(skip), status="")

    def on_result(record: Rollout) -> None:
        nonlocal failed
        if record.get("error"):
            failed += 1
        else:
            rewards.append(record["reward"])
        if handle is not None:
            handle.write(record_to_json(record) + "\n")
            handle.flush()
        mean = sum(rewards) / len(rewards) if rewards else math.nan
        progress.update(task, advance=1, status=f"reward {mean:.3f}" + (f" · {failed} failed" if failed else ""))

    try:
        with progress:
            return await env.a_generate(
                inputs, client, settings["model"], settings["sampling_args"] or None,
                settings["max_concurrent"], rollouts_per_example=settings["rollouts_per_example"],
                on_result=on_result, skip=skip, progress=False,
            )
    finally:
        if handle is not None:
            handle.close()
        if close_client and hasattr(client, "close"):
            await client.close()


def _print_samples(console: Any, results: GenerateOutputs, count: int) -> None:
    from rich.markup import escape
    from rich.panel import Panel

    for i in range(min(count, results.num_rollouts)):
        error = results["errors"][i]
        title = f"example {results['example_ids'][i]} · rollout {results['rollout_indices'][i]} · reward {results['rewards'][i]:.3f}"
        body = escape(completion_text(results["completions"][i]) or "(empty)")
        if error:
            body += f"\n[red]failed: {escape(error)}[/red]"
        console.print(Panel(body, title=title, title_align="left", expand=True))


def _fmt(stats: dict[str, float]) -> tuple[str, str, str]:
    if not stats.get("n"):
        return "–", "–", "0"
    return f"{stats['mean']:.4f}", f"{stats['std']:.4f}", str(stats["n"])


def _print_summary(console: Any, settings: dict[str, Any], summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{settings['env_id']} · {settings['model']}", title_justify="left")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("std", justify="right")
    table.add_column("n", justify="right")
    table.add_row("reward", *_fmt(summary["reward"]), style="bold")
    for name, stats in summary["metrics"].items():
        table.add_row(name, *_fmt(stats))
    for k, value in (summary.get("pass_at_k") or {}).items():
        table.add_row(f"pass@{k}", f"{value:.4f}", "", "")
    for name, by_k in (summary.get("pass_at_k_metrics") or {}).items():
        for k, value in by_k.items():
            table.add_row(f"pass@{k} {name}", f"{value:.4f}", "", "")
    tokens = summary["completion_tokens"]
    if tokens.get("n"):
        table.add_row("completion tokens", *_fmt(tokens))
    timing = summary["timing"]
    for key in ("generation_s", "scoring_s", "total_s"):
        if timing[key].get("n"):
            table.add_row(f"{key.removesuffix('_s')} time (s)", *_fmt(timing[key]))
    console.print(table)
    rate = summary["num_rollouts"] / summary["wall_time_s"] if summary.get("wall_time_s") else 0
    line = (f"{summary['num_rollouts']} rollouts in {summary.get('wall_time_s', 0):.1f} s "
            f"({rate:.1f}/s) · {summary['num_failed']} failed")
    if summary["errors"]:
        line += " (" + ", ".join(f"{k}: {v}" for k, v in summary["errors"].items()) + ")"
    console.print(line)
    if summary["num_failed"]:
        console.print("[yellow]Failed rollouts are excluded from the means; their reasons are "
                      "in the saved results (-s). Re-run with --resume to retry them.[/yellow]")
