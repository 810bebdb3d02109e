"""The report of a vf-train run: training curves as PNG plots, ``report.md`` and the summary
table printed at the end.

Everything is read back from the run folder (``metrics.jsonl``, ``eval_*.jsonl``,
``timings.json``, ``state.json``, ``config.toml``), so a report can be rebuilt at any time.
"""

from __future__ import annotations

import json
import math
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verifiers_trainer.cli.evaluation import read_rows
from verifiers_trainer.cli.run_folder import RunFolder
from verifiers_trainer.cli.stats import (
    Estimate,
    PairedDifference,
    is_binary,
    mean_interval,
    paired_difference,
)

#: (metric logged by the trainer, file name, title, y label)
CURVES = (
    ("reward", "reward.png", "Reward per step", "mean reward of the round"),
    ("kl", "kl.png", "KL to the reference model", "mean per-token KL (k3)"),
    ("completions/mean_length", "completion_length.png", "Completion length",
     "tokens per completion"),
    ("completions/truncated_ratio", "truncated.png", "Truncated completions",
     "share cut off at max_completion_length"),
    ("grad_norm", "grad_norm.png", "Gradient norm", "L2 norm before clipping"),
)
SAMPLES = 3  # before/after completions shown in the report


@dataclass
class RewardRange:
    """The values the reward can reach: ``how`` says where the bounds come from."""

    low: float
    high: float
    how: str


@dataclass
class Report:
    """What the report says, for the printed summary."""

    metric: str
    before: Estimate | None
    after: Estimate | None
    difference: PairedDifference | None
    timings: list[tuple[str, float]]
    plots: list[Path]
    steps: int
    notes: list[str] = field(default_factory=list)
    percent: bool = True  # every score is 0 or 1: shown as percentages
    final: Path | None = None  # the trained model's folder, when written
    eval_command: str = ""  # the vf-eval command that evaluates it


# ------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Training-step entries (those with a reward), one per step, the latest line winning."""
    by_step: dict[int, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            if "reward" in entry:
                by_step[int(entry["step"])] = entry
    return [by_step[s] for s in sorted(by_step)]


def _scores(rows: list[dict[str, Any]]) -> dict[Any, float]:
    return {str(row["example_id"]): float(row["score"]) for row in rows}


def time_split(steps: list[dict[str, Any]], num_iterations: int = 1) -> dict[str, float]:
    """Seconds of training spent generating (waiting for generation, when it ran ahead on a
    server), syncing weights, from the logged timing metrics. Each entry holds means over
    the rounds since the previous entry (one round per ``num_iterations`` steps)."""
    out = {"generation_s": 0.0, "generation_wait_s": 0.0, "weight_sync_s": 0.0}
    previous = 0
    for entry in steps:
        rounds = max(1.0, (entry["step"] - previous) / max(1, num_iterations))
        previous = entry["step"]
        for key in out:
            value = entry.get(f"timing/{key}")
            if isinstance(value, int | float) and not math.isnan(value):
                out[key] += value * rounds
    return out


# ------------------------------------------------------------------------------------------
# Plots
# ------------------------------------------------------------------------------------------


def reward_range(weights: dict[str, float] | None, steps: list[dict[str, Any]],
                 rows: list[dict[str, Any]]) -> RewardRange | None:
    """What the reward can reach: from the rubric's weights when they are known and every
    weighted function's logged values lie in [0, 1] (the reward is then a weighted sum of values in
    [0, 1]); else the smallest and largest rewards seen (evaluations and step means)."""
    if weights:
        counted = {name for name, w in weights.items() if w}  # weight 0: not in the reward
        values = [v for e in steps for k, v in e.items()
                  if k.startswith("rewards/") and k.removeprefix("rewards/") in counted
                  and _finite(v)]
        values += [v for r in rows for k, v in (r.get("metrics") or {}).items()
                   if k in counted and _finite(v)]
        if all(0.0 <= v <= 1.0 for v in values):
            low = sum(min(w, 0.0) for w in weights.values())
            high = sum(max(w, 0.0) for w in weights.values())
            terms = " ".join(f"{'-' if w < 0 else '+'} {abs(w):g}·{name}"
                             for name, w in weights.items() if w).removeprefix("+ ")
            return RewardRange(low, high, f"reward = {terms}, each function scoring 0 to 1")
    seen = [e["reward"] for e in steps if _finite(e.get("reward"))]
    seen += [r["reward"] for r in rows if _finite(r.get("reward"))]
    if not seen:
        return None
    return RewardRange(min(seen), max(seen), "the smallest and largest rewards seen")


def make_plots(steps: list[dict[str, Any]], folder: Path, bounds: RewardRange | None = None,
               weights: dict[str, float] | None = None) -> tuple[list[Path], list[str]]:
    """The PNG curves that the logged metrics allow, and notes on the ones they do not.

    ``bounds``: the reward's reachable range (its ± std band is clipped to it); ``weights``:
    the rubric's weights (the reward functions are then plotted as weighted contributions,
    whose sum is the reward; penalties, negative weights, below zero)."""
    from matplotlib.figure import Figure  # Figure alone: no pyplot, no GUI backend
    from matplotlib.ticker import MaxNLocator

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    notes: list[str] = []
    x_all = [e["step"] for e in steps]
    for key, name, title, ylabel in CURVES:
        points = [(e["step"], e[key]) for e in steps if _finite(e.get(key))]
        if not points:
            notes.append(f"`{key}` was not logged" + (
                " (beta = 0: no reference model, so no KL)" if key == "kl" else ""))
            continue
        fig = Figure(figsize=(6.4, 3.6), layout="tight")
        ax = fig.subplots()
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", markersize=3, label=key)
        if key == "reward" and all(_finite(e.get("reward_std")) for e in steps):
            std = [e["reward_std"] for e in steps]
            mean = [e["reward"] for e in steps]
            low = [m - s for m, s in zip(mean, std, strict=True)]
            high = [m + s for m, s in zip(mean, std, strict=True)]
            label = "± std within the round"
            if bounds is not None:
                low = [max(bounds.low, v) for v in low]
                high = [min(bounds.high, v) for v in high]
                label += f", clipped to [{bounds.low:g}, {bounds.high:g}]"
                ax.axhline(bounds.high, color="grey", linewidth=0.8, linestyle="--")
                ax.axhline(bounds.low, color="grey", linewidth=0.8, linestyle="--")
            ax.fill_between(x_all, low, high, alpha=0.2, label=label)
            ax.legend(loc="best", fontsize=8)
        if key == "completions/truncated_ratio":
            ax.set_ylim(-0.05, 1.05)
        ax.set(title=title, xlabel="optimizer step", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        fig.savefig(folder / name, dpi=100)
        written.append(folder / name)
    functions = sorted({k for e in steps for k in e if k.startswith("rewards/")})
    if weights:
        unweighted = [k for k in functions if not weights.get(k.removeprefix("rewards/"))]
        if unweighted:
            notes.append("logged but not part of the reward (weight 0): " + ", ".join(
                f"`{k.removeprefix('rewards/')}`" for k in unweighted))
        functions = [k for k in functions if k not in unweighted]
    if functions:
        fig = Figure(figsize=(6.4, 3.6), layout="tight")
        ax = fig.subplots()
        for key in functions:
            name = key.removeprefix("rewards/")
            weight = weights.get(name, 1.0) if weights else 1.0
            points = [(e["step"], weight * e[key]) for e in steps if _finite(e.get(key))]
            if points:
                xs, ys = zip(*points, strict=True)
                label = name if not weights else f"{weight:g} × {name}" + (
                    " (penalty: lower raw value is better)" if weight < 0 else "")
                ax.plot(xs, ys, marker="o", markersize=3, label=label)
        if weights:
            ax.axhline(0.0, color="grey", linewidth=0.8)
            title, ylabel = "Weighted reward functions (they sum to the reward)", "weight × mean"
        else:
            title, ylabel = "Reward functions per step", "mean value"
        ax.set(title=title, xlabel="optimizer step", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
        fig.savefig(folder / "reward_functions.png", dpi=100)
        written.append(folder / "reward_functions.png")
    return written, notes


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


# ------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------


def build_report(folder: RunFolder, metric: str) -> Report:
    """Write ``plots/*.png`` and ``report.md`` from the run folder; return the numbers."""
    config = tomllib.loads(folder.config.read_text())
    state = folder.state()
    timings = folder.timings()
    steps = read_metrics(folder.metrics)
    before_rows, after_rows = read_rows(folder.eval_before), read_rows(folder.eval_after)
    before = mean_interval([r["score"] for r in before_rows]) if before_rows else None
    after = mean_interval([r["score"] for r in after_rows]) if after_rows else None
    difference = (paired_difference(_scores(before_rows), _scores(after_rows))
                  if before_rows and after_rows else None)
    weights = state.get("reward_weights")
    bounds = reward_range(weights, steps, before_rows + after_rows)
    plots, notes = make_plots(steps, folder.plots, bounds, weights)
    settings = {**config.get("trainer", {}), **state.get("trainer_settings", {})}
    table = timing_rows(timings, steps, settings.get("num_iterations", 1))
    percent = is_binary([r["score"] for r in before_rows + after_rows])
    final = folder.final if "final" in state.get("stages", {}) and folder.final.is_dir() else None
    report = Report(metric, before, after, difference, table, plots, len(steps), notes, percent,
                    final, eval_command(config, folder.final) if final is not None else "")
    body = render_markdown(report, config, state, steps, folder)
    body += render_extras(report, state, steps, bounds, before_rows, after_rows)
    folder.report.write_text(body)
    return report


def eval_command(config: dict[str, Any], final: Path) -> str:
    """The vf-eval command that evaluates ``final`` on the problems vf-train evaluated."""
    env, settings = config["env"], config["eval"]
    parts = ["vf-eval", env["id"], "--model-path", str(final),
             "-n", str(settings["num_examples"]), "-r", "1",
             "-T", f"{settings['temperature']:g}"]
    if settings.get("max_tokens"):
        parts += ["-t", str(settings["max_tokens"])]
    if settings.get("seed") is not None:
        parts += ["--seed", str(settings["seed"])]
    if env.get("args"):
        parts += ["-a", json.dumps(env["args"])]
    parts.append("-s")
    return " ".join(shlex.quote(p) for p in parts)


def sample_pairs(before_rows: list[dict[str, Any]], after_rows: list[dict[str, Any]],
                 k: int = SAMPLES) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``k`` (before, after) rows of the same problems: first those that improved, then
    those that got worse, then the rest, each in evaluation order."""
    after_by_id = {str(r["example_id"]): r for r in after_rows}
    pairs = [(b, after_by_id[str(b["example_id"])]) for b in before_rows
             if str(b["example_id"]) in after_by_id]
    pairs.sort(key=lambda p: 0 if p[1]["score"] > p[0]["score"]
               else 1 if p[1]["score"] < p[0]["score"] else 2)
    return pairs[:k]


def timing_rows(timings: dict[str, float], steps: list[dict[str, Any]],
                num_iterations: int = 1) -> list[tuple[str, float]]:
    """``(stage, seconds)`` rows: setup, evaluations, training split into generation, weight
    sync and the rest, and the total (every command of the run, up to its report)."""
    rows: list[tuple[str, float]] = []
    for key, label in (("setup_s", "setup (imports, config, environment)"), ("model_load_s", "model load"),
                       ("server_start_s", "vf-vllm server start"),
                       ("eval_before_s", "evaluation before")):
        if key in timings:
            rows.append((label, timings[key]))
    if "train_s" in timings:
        split = time_split(steps, num_iterations)
        train = timings["train_s"]
        if split["generation_wait_s"] > 0:  # pipelined: generation overlapped training
            generation, label = split["generation_wait_s"], "training: waiting for generation"
        else:
            generation, label = split["generation_s"], "training: generation (rollouts, scoring)"
        rows.append((label, generation))
        if split["weight_sync_s"] > 0:
            rows.append(("training: weight sync", split["weight_sync_s"]))
        rows.append(("training: optimisation and the rest",
                     max(0.0, train - generation - split["weight_sync_s"])))
    if "final_save_s" in timings:
        rows.append(("saving the trained model (final/)", timings["final_save_s"]))
    if "eval_after_s" in timings:
        rows.append(("evaluation after", timings["eval_after_s"]))
    if "total_s" in timings:
        rows.append(("total", timings["total_s"]))
    return rows


def _number(value: float, percent: bool, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "–"
    sign = "+" if signed else ""
    if not percent:
        return f"{value:{sign}.3f}"
    return f"{100 * value:{sign}.1f}" + ("" if signed else "%")  # differences: in points


def estimate_cells(estimate: Estimate, percent: bool = True) -> tuple[str, str, str]:
    """Mean, interval and count; as percentages for 0/1 scores."""
    return (_number(estimate.mean, percent),
            f"[{_number(estimate.low, percent)}, {_number(estimate.high, percent)}]",
            str(estimate.n))


def difference_cells(diff: PairedDifference, percent: bool = True) -> tuple[str, str, str]:
    """Mean difference (in percentage points for 0/1 scores), interval and count."""
    unit = " points" if percent else ""
    return (_number(diff.mean, percent, signed=True) + unit,
            f"[{_number(diff.low, percent, True)}, {_number(diff.high, percent, True)}]",
            str(diff.n))


def _accuracy_rows(report: Report) -> list[tuple[str, tuple[str, str, str]]]:
    rows = []
    if report.before is not None:
        rows.append(("before training", estimate_cells(report.before, report.percent)))
    if report.after is not None:
        rows.append(("after training", estimate_cells(report.after, report.percent)))
    if report.difference is not None:
        rows.append(("change (paired)", difference_cells(report.difference, report.percent)))
    return rows


def render_markdown(report: Report, config: dict[str, Any], state: dict[str, Any],
                    steps: list[dict[str, Any]], folder: RunFolder) -> str:
    run, model, env = config["run"], config["model"], config["env"]
    trainer = {**config["trainer"], **state.get("trainer_settings", {})}
    commands = state.get("commands", [])
    lines = [f"# vf-train report: {run['name']}", ""]
    if commands:
        lines.append(f"Command: `{commands[0]['command']}` ({commands[0]['started']})")
        for later in commands[1:]:
            lines.append(f"Continued with: `{later['command']}` ({later['started']})")
        lines.append("")
    lora = model.get("lora")
    lora_text = (f"LoRA r={lora['r']}, alpha={lora['alpha']}" if isinstance(lora, dict)
                 else "full fine-tuning")
    args = ", ".join(f"{k}={v!r}" for k, v in env.get("args", {}).items())
    path = Path(state.get("model_path") or model["name"])
    resolved = f": {path.name}" if path.name != model["name"] else ""
    per_step = (trainer.get("per_device_train_batch_size", 8)
                * trainer.get("gradient_accumulation_steps", 1))
    lines += [
        "| | |", "|---|---|",
        f"| model | `{model['name']}`{resolved} ({model.get('dtype', '')}, {lora_text}) |",
        f"| weights from | {state.get('weights_source') or 'not recorded'} |",
        f"| environment | `{env['id']}` ({args}) |",
        f"| training | GRPO, {report.steps} of {trainer.get('max_steps')} steps logged, {per_step} "
        f"completions per step ({trainer.get('num_generations', '')} per prompt, up to "
        f"{trainer.get('max_completion_length', '')} tokens, temperature "
        f"{trainer.get('temperature', '')}), learning rate {trainer.get('learning_rate', '')}, "
        f"beta {trainer.get('beta', '')} |",
        f"| generation | {config['inference']['backend']} |",
        f"| evaluation | {config['eval']['num_examples']} held-out problems, temperature "
        f"{config['eval']['temperature']}, {config['eval']['max_tokens']} tokens |",
        "",
        f"## Before and after training (`{report.metric}` per problem, 95% intervals)",
        "",
        f"| | {'accuracy' if report.percent else 'mean ' + report.metric} | 95% interval "
        "| problems |",
        "|---|---|---|---|",
    ]
    for label, cells in _accuracy_rows(report):
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    diff = report.difference
    if diff is not None:
        lines += ["", f"**Verdict:** {diff.verdict}.", "",
                  f"Paired test on the {diff.n} problems evaluated both times: "
                  f"{diff.test_text} (the chance of a split at least this uneven if each "
                  "changed problem were as likely to go either way). Intervals: "
                  f"{'Wilson' if report.percent else 'mean ± 1.96 standard errors'} for each "
                  f"score; for the change, {diff.interval_name}."]
    elif report.before is None and report.after is None:
        lines.append("| (no evaluation ran) | | | |")
    lines += ["", "## Training curves", ""]
    if steps:
        first, last = steps[: min(5, len(steps))], steps[-min(5, len(steps)):]
        lines.append(f"Mean reward of the first {len(first)} steps "
                     f"{sum(e['reward'] for e in first) / len(first):.3f}, of the last "
                     f"{len(last)} {sum(e['reward'] for e in last) / len(last):.3f}.")
        lines.append("")
    for path in report.plots:
        lines.append(f"![{path.stem}](plots/{path.name})")
    for note in report.notes:
        lines.append(f"- {note}")
    lines += ["", "## Where the time went", "", "| stage | seconds | share |", "|---|---|---|"]
    total = dict(report.timings).get("total") or 0.0
    for label, seconds in report.timings:
        share = f"{100 * seconds / total:.0f}%" if total and label != "total" else ""
        lines.append(f"| {label} | {seconds:.1f} | {share} |")
    return "\n".join(lines) + "\n"


def _fenced(text: str) -> list[str]:
    body = (text or "(empty)").replace("```", "ʼʼʼ")
    return ["```text", *body.splitlines(), "```"]


def render_extras(report: Report, state: dict[str, Any], steps: list[dict[str, Any]],
                  bounds: RewardRange | None, before_rows: list[dict[str, Any]],
                  after_rows: list[dict[str, Any]]) -> str:
    """The reward functions table, sample completions, the files, and how to use the
    trained model (last: the command that evaluates it)."""
    lines: list[str] = []
    weights = state.get("reward_weights") or {}
    if weights and steps:
        first, last = steps[: min(5, len(steps))], steps[-min(5, len(steps)):]
        lines += ["", "## Reward functions", "",
                  f"| function | weight | mean, first {len(first)} steps | mean, last "
                  f"{len(last)} steps | |", "|---|---|---|---|---|"]
        for name, weight in weights.items():
            def mean_of(entries: list[dict[str, Any]], key: str = f"rewards/{name}") -> str:
                values = [e[key] for e in entries if _finite(e.get(key))]
                return f"{sum(values) / len(values):.3f}" if values else "–"
            note = ("penalty: lower is better" if weight < 0 else
                    "not part of the reward" if weight == 0 else "higher is better")
            lines.append(f"| `{name}` | {weight:g} | {mean_of(first)} | {mean_of(last)} | "
                         f"{note} |")
        if bounds is not None:
            lines += ["", f"The reward can reach [{bounds.low:g}, {bounds.high:g}] "
                          f"({bounds.how}); the reward plot's band is clipped to it."]
    pairs = sample_pairs(before_rows, after_rows)
    if pairs:
        lines += ["", f"## Sample completions (the same {len(pairs)} problems, before and "
                      "after training)", ""]
        for before, after in pairs:
            lines += [f"**{before['question'].strip()}** (expected `{before['answer']}`)", "",
                      f"Before (score {before['score']:g}):", *_fenced(before["completion"]),
                      "", f"After (score {after['score']:g}):", *_fenced(after["completion"]),
                      ""]
    lines += ["## Files", "",
              "`config.toml` (resolved config), `metrics.jsonl` (every logged step), "
              "`eval_before.jsonl` / `eval_after.jsonl` (one line per problem), "
              "`checkpoints/`, `final/`, `plots/`, `timings.json`, `state.json`.", ""]
    lines += ["## Use the trained model", ""]
    if report.final is None:
        lines += ["No `final/` model was written (training did not finish).", ""]
        return "\n".join(lines)
    final = report.final
    adapter = final / "adapter"
    lines.append(f"`{final}/` holds the trained model"
                 + (" with the LoRA adapter merged into the weights; the adapter alone is in "
                    f"`{adapter}/`" if adapter.is_dir() else "") + ". "
                 "`AutoModelForCausalLM.from_pretrained` and vf-vllm load it; "
                 "`get_model_and_tokenizer` and `vf-eval --model-path` also take the adapter "
                 "folder.")
    lines += ["", "Evaluate it on the same held-out problems:", "", "```bash",
              report.eval_command, "```", ""]
    return "\n".join(lines)


def print_summary(console: Any, report: Report, folder: RunFolder) -> None:
    """The closing table: accuracies, the verdict, where the time went, where the files are."""
    from rich.table import Table

    table = Table(title=f"vf-train · {folder.path.name}", title_justify="left")
    table.add_column("")
    table.add_column(report.metric, justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("problems", justify="right")
    for label, cells in _accuracy_rows(report):
        table.add_row(label, *cells, style="bold" if label.startswith("change") else None)
    console.print(table)
    if report.difference is not None:
        color = "green" if report.difference.significant_rise else "yellow"
        console.print(f"[{color}]{report.difference.verdict}[/{color}]")
        console.print(f"paired test: {report.difference.test_text}; 95% interval of the "
                      f"change: {report.difference.interval_name}", highlight=False)
    times = Table(title="where the time went", title_justify="left")
    times.add_column("stage")
    times.add_column("seconds", justify="right")
    for label, seconds in report.timings:
        times.add_row(label, f"{seconds:.1f}", style="bold" if label == "total" else None)
    console.print(times)
    console.print(f"Report: [bold]{folder.report}[/bold] · plots: {folder.plots}")
    if report.final is not None:
        console.print(f"Trained model: [bold]{report.final}[/bold] · evaluate it with: "
                      f"{report.eval_command}", highlight=False, soft_wrap=True)


__all__ = ["CURVES", "Report", "RewardRange", "build_report", "eval_command", "make_plots",
           "print_summary", "read_metrics", "reward_range", "sample_pairs", "time_split",
           "timing_rows"]
