"""The body of vf-eval: load, evaluate with a progress bar, save, summarise."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from pathlib import Path
from typing import Any

from verifiers.cli.eval_samples import completion_text
from verifiers.pass_rates import binary_metric_pass_at_k
from verifiers.results import GenerateOutputs, record_to_json, summarize

RESULTS_FILE = "results.jsonl"
METADATA_FILE = "metadata.json"


def run_dir_for(output_dir: str, env_id: str, model: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe_model = model.replace("/", "--")
    return Path(output_dir) / f"{env_id}--{safe_model}" / f"{stamp}-{secrets.token_hex(2)}"


def load_run_settings(run_dir: str) -> dict[str, Any]:
    path = Path(run_dir) / METADATA_FILE
    if not path.is_file():
        raise SystemExit(
            f"vf-eval: {run_dir} is not a saved run (no {METADATA_FILE}). Runs saved with -s "
            "live under outputs/evals/<env>--<model>/<run-id>/."
        )
    return json.loads(path.read_text())["settings"]


def load_records(run_dir: Path) -> list[dict[str, Any]]:
    """The saved rollouts of a run; for a rollout saved twice, the later line wins."""
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        return []
    latest: dict[tuple[Any, int], dict[str, Any]] = {}
    with path.open() as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by an interrupted run
                continue
            latest[(record.get("example_id"), record.get("rollout_index", 0))] = record
    return list(latest.values())


def _write_metadata(run_dir: Path, settings: dict[str, Any], status: str, **extra: Any) -> None:
    from verifiers import __version__

    meta = {"settings": settings, "status": status, "verifiers_version": __version__, **extra}
    tmp = run_dir / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str, allow_nan=True))
    tmp.replace(run_dir / METADATA_FILE)


def run_eval(
    settings: dict[str, Any],
    api_key: str,
    save: bool,
    output_dir: str,
    resume_dir: str | None,
    num_samples_shown: int,
    verbose: bool,
    client: Any = None,
    close_client: bool = False,
) -> int:
    """Evaluate as ``settings`` say; ``client`` overrides the one built from the base URL
    (a local in-process engine, or a server the caller started)."""
    from rich.console import Console

    import verifiers as vf
    from verifiers.clients import RetryPolicy, make_async_client

    console = Console(stderr=True)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        env = vf.load_environment(settings["env_id"], **settings["env_args"])
    except (LookupError, TypeError, ImportError) as exc:
        console.print(f"[red]vf-eval:[/red] {exc}")
        return 2
    env.retry_policy = RetryPolicy(max_retries=settings["max_retries"], timeout=settings["timeout"])
    run_dir: Path | None = None
    previous: list[dict[str, Any]] = []
    if resume_dir:
        run_dir = Path(resume_dir)
        previous = [r for r in load_records(run_dir) if not r.get("error")]
    elif save:
        run_dir = run_dir_for(output_dir, settings["env_id"], settings["model"])
        run_dir.mkdir(parents=True, exist_ok=True)

    owned = client is None or close_client
    if client is None:
        client = make_async_client(settings["base_url"], api_key)
    inputs = env.get_eval_dataset(settings["num_examples"], settings.get("seed"))
    total = len(inputs) * settings["rollouts_per_example"]
    skip = {(r.get("example_id"), r.get("rollout_index", 0)) for r in previous}
    console.print(
        f"[bold]vf-eval[/bold] {settings['env_id']} · model [cyan]{settings['model']}[/cyan] at "
        f"{settings['base_url']} · {len(inputs)} examples × {settings['rollouts_per_example']} "
        f"rollouts" + (f" · resuming, {len(skip)} done" if skip else "")
    )
    if run_dir is not None:
        _write_metadata(run_dir, settings, "running")
    started = time.time()
    results = asyncio.run(
        _generate(env, client, inputs, settings, run_dir, skip, total, console, owned))
    elapsed = time.time() - started
    records = previous + results.records()
    records.sort(key=lambda r: (str(r.get("example_id")), r.get("rollout_index", 0)))
    merged = GenerateOutputs(records)
    summary = summarize(merged)
    summary["pass_at_k_metrics"] = binary_metric_pass_at_k(merged)
    summary["wall_time_s"] = elapsed
    if run_dir is not None:
        _write_metadata(run_dir, settings, "complete", summary=summary, wall_time_s=elapsed)
    _print_samples(console, merged, num_samples_shown)
    _print_summary(console, settings, summary)
    if run_dir is not None:
        console.print(f"Saved to [bold]{run_dir}[/bold] ({RESULTS_FILE}, {METADATA_FILE})")
    return 0 if summary["num_failed"] < max(1, summary["num_rollouts"]) else 1


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

    def on_result(record: dict[str, Any]) -> None:
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
