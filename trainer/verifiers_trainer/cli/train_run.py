"""The body of vf-train: evaluate, train, evaluate again, report; resumable stage by stage.

Stages, in order (each recorded in ``state.json`` when it finishes):

1. setup: the run folder, the environment, the model (and a vf-vllm server with
   ``[inference] backend = "vllm"``);
2. ``eval_before``: the base model on the held-out problems (skipped once done);
3. ``train``: GRPO until ``trainer.max_steps``, resuming from the last checkpoint;
4. ``final``: the trained model saved to ``final/`` (see ``final_model.py``);
5. ``eval_after``: the trained model on the same problems (redone when training went on);
6. the report (always rebuilt) and the summary table.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from verifiers_trainer.cli.callbacks import MetricsFile, TrainProgress, keep_steps_up_to
from verifiers_trainer.cli.evaluation import evaluate, resolve_metric, write_rows
from verifiers_trainer.cli.report import build_report, print_summary
from verifiers_trainer.cli.run_folder import RunFolder, now
from verifiers_trainer.cli.train_config import ConfigError, TrainConfig

logger = logging.getLogger(__name__)

POLICY = "policy"  # the model name evaluations and training send to the generation backend
#: GRPOConfig values the report shows (recorded when training starts, defaults included).
REPORTED_SETTINGS = ("max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
                     "num_generations", "num_iterations", "learning_rate", "beta",
                     "max_completion_length", "temperature")


def load_env(config: TrainConfig) -> tuple[Any, str]:
    """The environment and the name of its per-problem score; bad ids or arguments become
    :class:`ConfigError`."""
    import verifiers as vf

    try:
        env = vf.load_environment(config.env.id, **config.env.args)
    except LookupError as exc:
        raise ConfigError(f"env.id: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"env.args: vf.load_environment({config.env.id!r}) rejected them: "
                          f"{exc}") from None
    if env.dataset is None:
        raise ConfigError(f"env.args: {config.env.id} has no training set with these arguments.")
    return env, resolve_metric(env, config.eval.metric)


def model_path(name: str) -> str:
    """A local folder for ``[model] name`` (``"tiny"``: the tiny test model, built offline)."""
    if name == "tiny":
        from verifiers_trainer.models.tiny import build_tiny_model

        return str(build_tiny_model())
    from verifiers_trainer.models.loading import resolve_model_path

    return resolve_model_path(name)


def plan(config: TrainConfig) -> list[str]:
    """What a run of ``config`` would do now (for ``--dry-run``); changes nothing."""
    folder = RunFolder(config.run_dir)
    resuming = folder.check(config.to_dict(), config.run.overwrite)
    stages = folder.state()["stages"] if resuming else {}
    todo = _todo(config, stages)
    lines = [f"run folder: {folder.path} ({'continue the run there' if resuming else 'new run'})"]
    for stage, needed in todo.items():
        lines.append(f"  {stage}: {'to do' if needed else 'done or off'}")
    return lines


def _todo(config: TrainConfig, stages: dict[str, Any]) -> dict[str, bool]:
    max_steps = config.trainer["max_steps"]
    return {
        "eval_before": config.eval.before and "eval_before" not in stages,
        "train": stages.get("train", {}).get("global_step", 0) < max_steps,
        "final": stages.get("final", {}).get("global_step") != max_steps,
        "eval_after": config.eval.after
        and stages.get("eval_after", {}).get("global_step") != max_steps,
    }


def run(config: TrainConfig, command: str, console: Any, out: Any,
        started: float | None = None) -> int:
    """Run (or continue) the job ``config`` describes; progress on ``console``, the summary
    on ``out``. ``started``: when the command started (``time.perf_counter()``), so that
    setup and total include reading the config."""
    started = time.perf_counter() if started is None else started
    folder = RunFolder(config.run_dir)
    env, metric = load_env(config)
    resuming = folder.open(config.to_dict(), config.run.overwrite)
    if not resuming:
        for path in (folder.timings_file, folder.metrics):
            path.unlink(missing_ok=True)
    folder.add_time("setup_s", time.perf_counter() - started)
    state = folder.state()
    state["commands"].append({"command": command, "started": now()})
    state["reward_weights"] = dict(zip(env.rubric.get_reward_func_names(),
                                       env.rubric.get_reward_weights(), strict=True))
    folder.save_state(state)
    todo = _todo(config, state["stages"])
    console.print(f"[bold]vf-train[/bold] {config.run.name} · {config.env.id} · model "
                  f"[cyan]{config.model.name}[/cyan] · {folder.path}"
                  + (" · [yellow]continuing the earlier run[/yellow]" if resuming else ""))
    if resuming:
        done = [stage for stage, needed in todo.items() if not needed]
        if done:
            console.print(f"already done: {', '.join(done)}")
    try:
        if any(todo.values()):
            with Session(config, folder, env, metric, console) as session:
                if todo["eval_before"]:
                    session.eval_before()
                if todo["train"]:
                    session.train()
                if todo["final"]:
                    session.save_final()
                if todo["eval_after"]:
                    session.eval_after()
    except KeyboardInterrupt:
        folder.add_time("total_s", time.perf_counter() - started)
        console.print("[yellow]Interrupted.[/yellow] Run the same command again to continue "
                      "from the last finished stage or checkpoint.")
        return 130
    folder.add_time("total_s", time.perf_counter() - started)
    report = build_report(folder, metric)
    print_summary(out, report, folder)
    return 0


class Session:
    """The model (and vf-vllm server) the stages share; loaded once, released on exit."""

    def __init__(self, config: TrainConfig, folder: RunFolder, env: Any, metric: str,
                 console: Any) -> None:
        self.config = config
        self.folder = folder
        self.env = env
        self.metric = metric
        self.console = console
        self.model: Any = None
        self.tokenizer: Any = None
        self.path = ""
        self.server: Any = None
        self.trainer: Any = None
        self.loaded: tuple[Any, int] | None = None  # the trained model read from a checkpoint
        self.exit_stack = contextlib.ExitStack()

    # -- setup -----------------------------------------------------------------------------
    def __enter__(self) -> Session:
        from verifiers_trainer.models.loading import get_model_and_tokenizer

        config = self.config
        with self._timed("model_load_s"):
            self.path = model_path(config.model.name)
            self.console.print(f"loading {config.model.name} ({self.path}, {config.model.dtype})")
            self.model, self.tokenizer = get_model_and_tokenizer(
                self.path, torch_dtype=config.model.dtype)
            self.model = self.model.to(_device())
        state = self.folder.state()
        state["model_path"] = self.path
        state["weights_source"] = weights_source(config.model.name, self.path)
        self.folder.save_state(state)
        if config.inference.backend == "vllm":
            from verifiers_trainer.inference.vllm_launcher import VLLMServer

            with self._timed("server_start_s"):
                self.console.print("starting a vf-vllm server ...")
                args = ["--served-model-name", POLICY, "--dtype", config.model.dtype,
                        *config.inference.vllm_args]
                self.server = VLLMServer(self.path, args=args,
                                         log_path=self.folder.path / "vf-vllm.log",
                                         startup_timeout=config.inference.startup_timeout)
                self.exit_stack.enter_context(self.server)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.exit_stack.close()

    @contextlib.contextmanager
    def _timed(self, key: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.folder.add_time(key, time.perf_counter() - start)

    def _finish(self, stage: str, **record: Any) -> None:
        state = self.folder.state()
        state["stages"][stage] = {"finished": now(), **record}
        self.folder.save_state(state)

    # -- evaluation ------------------------------------------------------------------------
    def _evaluate(self, model: Any, label: str, path: Path) -> float:
        if self.server is not None:
            rows = evaluate(self.env, self.server.client.openai(), POLICY, self.config.eval,
                            self.metric, self.console, label)
        else:
            from verifiers_trainer.inference.engine import InProcessEngine

            engine = InProcessEngine(model, self.tokenizer, model_name=POLICY,
                                     max_batch_size=self.config.eval.max_concurrent)
            with _merged(model):
                rows = evaluate(self.env, engine, POLICY, self.config.eval, self.metric,
                                self.console, label)
        write_rows(path, rows)
        score = statistics.fmean(r["score"] for r in rows) if rows else float("nan")
        failed = sum(r["error"] is not None for r in rows)
        self.console.print(f"{label}: {self.metric} {score:.3f} on {len(rows)} problems"
                           + (f" ({failed} failed)" if failed else ""))
        return score

    def eval_before(self) -> None:
        with self._timed("eval_before_s"):
            score = self._evaluate(self.model, "eval before", self.folder.eval_before)
        self._finish("eval_before", score=score)

    def eval_after(self) -> None:
        with self._timed("eval_after_s"):
            model, step = self._trained_model()
            if self.server is not None:
                self._push_weights(model)
            score = self._evaluate(model, "eval after", self.folder.eval_after)
        self._finish("eval_after", score=score, global_step=step)

    # -- training --------------------------------------------------------------------------
    def train(self) -> None:
        from transformers import PrinterCallback
        from transformers.trainer_utils import get_last_checkpoint

        from verifiers_trainer.grpo.config import lora_defaults
        from verifiers_trainer.grpo.trainer import GRPOTrainer

        config, folder = self.config, self.folder
        settings: dict[str, Any] = {}
        if self.server is not None:
            settings = {"vllm_server_host": self.server.host, "vllm_server_port": self.server.port,
                        "vllm_model_name": POLICY}
        args = config.grpo_config(folder.checkpoints, **settings)
        state = folder.state()
        state["trainer_settings"] = {key: getattr(args, key) for key in REPORTED_SETTINGS}
        folder.save_state(state)
        lora = config.model.lora
        peft_config = (lora_defaults(r=lora.r, alpha=lora.alpha, dropout=lora.dropout,
                                     target_modules=lora.target_modules)
                       if lora is not None else None)
        last = get_last_checkpoint(str(folder.checkpoints)) if folder.checkpoints.is_dir() else None
        if last is not None:
            keep_steps_up_to(folder.metrics, _step_of(last))
            self.console.print(f"resuming training from {Path(last).name}")
        else:
            folder.metrics.unlink(missing_ok=True)  # steps logged after no checkpoint are lost
        progress = TrainProgress(self.console)
        trainer = GRPOTrainer(model=self.model, processing_class=self.tokenizer, env=self.env,
                              args=args, peft_config=peft_config,
                              callbacks=[MetricsFile(folder.metrics), progress])
        trainer.remove_callback(PrinterCallback)
        self.trainer = trainer
        with self._timed("train_s"):
            try:
                trainer.train(resume_from_checkpoint=last)
            finally:
                progress.close()
        self._finish("train", global_step=trainer.state.global_step)

    def save_final(self) -> None:
        """The trained model to ``final/``: the adapter and a merged copy (LoRA), or the
        model itself."""
        from verifiers_trainer.cli.final_model import save_final
        from verifiers_trainer.models.loading import hub_repo_of

        with self._timed("final_save_s"):
            model, step = self._trained_model()
            save_final(model, self.tokenizer, self.folder.final, base_name=hub_repo_of(self.path))
        self.console.print(f"saved the trained model to {self.folder.final}")
        self._finish("final", global_step=step)

    def _trained_model(self) -> tuple[Any, int]:
        """The model after training: in memory when this command trained it, else loaded
        from the last checkpoint."""
        if self.trainer is not None:
            return self.trainer.accelerator.unwrap_model(self.trainer.model), \
                self.trainer.state.global_step
        if self.loaded is not None:  # loaded once: a second PeftModel would wrap it again
            return self.loaded
        from transformers.trainer_utils import get_last_checkpoint

        last = (get_last_checkpoint(str(self.folder.checkpoints))
                if self.folder.checkpoints.is_dir() else None)
        if last is None:
            raise ConfigError(
                f"Training is finished but {self.folder.checkpoints} holds no checkpoint to "
                "evaluate (was trainer.save_strategy = \"no\"?). Start over with "
                "--run.overwrite true, keeping checkpoints on.")
        self.console.print(f"loading the trained model from {Path(last).name}")
        if self.config.model.lora is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(self.model, last)
        else:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(last, dtype=self.model.dtype)
            model = model.to(_device())
        self.loaded = model, _step_of(last)
        return self.loaded

    def _push_weights(self, model: Any) -> None:
        """Give the vf-vllm server the trained weights (LoRA merged)."""
        if self.trainer is not None:
            self.trainer.push_weights()  # through the trainer's own weight channel
            return
        from verifiers_trainer.grpo.trainer import merged_named_weights

        self.server.client.update_weights(merged_named_weights(model))
        self.server.client.reset_prefix_cache()


@contextlib.contextmanager
def _merged(model: Any) -> Iterator[None]:
    """LoRA adapters merged into the weights while evaluating (faster generation)."""
    if not hasattr(model, "merge_adapter"):
        yield
        return
    model.merge_adapter()
    try:
        yield
    finally:
        model.unmerge_adapter()


def weights_source(name: str, path: str) -> str:
    """Where the weights of ``[model] name`` came from, in words (for the report)."""
    if name == "tiny":
        return f"the tiny test model, built offline with random weights in {path}"
    from verifiers_trainer.models.loading import describe_weights

    return describe_weights(name, path)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _step_of(checkpoint: str) -> int:
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


__all__ = ["load_env", "model_path", "plan", "run", "weights_source"]
