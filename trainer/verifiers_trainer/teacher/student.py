"""The student: a frozen model that answers through an OpenAI-compatible client.

``Student`` asks for the three things the teaching protocol needs (a baseline solution, a
short diagnostic probe, a solution given a teaching) through any client the environments
use: an :class:`~verifiers_trainer.inference.engine.InProcessEngine` over a local model, or
the OpenAI client of a second vf-vllm server. Its weights never change.

A local student can be kept on the CPU between generation phases (``Placement``): it is
moved to the accelerator while someone uses it and back when the last user is done, so it
takes no accelerator memory while the teacher trains.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from verifiers.clients import client_for_loop, create_chat, normalize_sampling_args
from verifiers_trainer.teacher.templates import TeachingTemplates


class Placement:
    """Where a local student's weights live: on ``device`` while in use, else on the CPU
    when ``offload`` is on (always on ``device`` when it is off). Thread-safe; nested and
    concurrent uses share one placement."""

    def __init__(self, model: Any, device: Any, offload: bool) -> None:
        self.model = model
        self.device = device
        self.offload = offload
        self.offloads = 0  # times the student was sent back to the CPU
        self.seconds = 0.0  # time spent moving it
        self._users = 0
        self._lock = threading.Lock()
        self._move("cpu" if offload else device)

    @property
    def on_accelerator(self) -> bool:
        """Whether the student is placed for use (on ``device``) right now."""
        return not self.offload or self._users > 0

    @contextlib.contextmanager
    def on_device(self) -> Iterator[Any]:
        """Hold the student on ``device`` for the duration."""
        with self._lock:
            self._users += 1
            if self._users == 1 and self.offload:
                self._move(self.device)
        try:
            yield self.model
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self.offload:
                    self._move("cpu")
                    self.offloads += 1

    def _move(self, device: Any) -> None:
        start = time.perf_counter()
        self.model.to(device)
        self.seconds += time.perf_counter() - start


class Student:
    """A frozen student model behind an OpenAI-compatible ``client``.

    Args:
        client: an ``InProcessEngine``, an ``openai.AsyncOpenAI`` / ``OpenAI`` client (e.g.
            ``VLLMClient(...).openai()`` of a vf-vllm server), or any object with
            ``chat.completions.create``.
        model_name: the model name the client's server knows.
        templates: the protocol's prompts.
        max_tokens: tokens per solution; ``max_probe_tokens``: tokens per diagnostic probe.
        temperature: sampling temperature (0: greedy, so a baseline is reproducible).
        placement: where a local student's weights live (None for a server).
    """

    def __init__(self, client: Any, model_name: str, templates: TeachingTemplates,
                 max_tokens: int, max_probe_tokens: int, temperature: float = 0.0,
                 placement: Placement | None = None) -> None:
        if max_tokens < 1 or max_probe_tokens < 1:
            raise ValueError(f"max_tokens ({max_tokens}) and max_probe_tokens "
                             f"({max_probe_tokens}) must be >= 1.")
        self.client = client
        self.model_name = model_name
        self.templates = templates
        self.max_tokens = max_tokens
        self.max_probe_tokens = max_probe_tokens
        self.temperature = temperature
        self.placement = placement

    def on_device(self) -> contextlib.AbstractContextManager[Any]:
        """Keep a local student on the accelerator for the duration (no-op for a server)."""
        return self.placement.on_device() if self.placement else contextlib.nullcontext()

    async def ask(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        """The student's reply to ``messages``."""
        client = await client_for_loop(self.client)
        sampling = normalize_sampling_args({"temperature": self.temperature, "max_tokens": max_tokens})
        response = await create_chat(client, self.model_name, messages, sampling)
        return response.choices[0].message.content or ""

    async def baseline(self, question: str) -> str:
        """The student's solution without teaching (the full reply)."""
        return await self.ask(self.templates.baseline(question), self.max_tokens)

    async def probe(self, question: str) -> str:
        """The student's diagnostic probe: its approach, in at most ``max_probe_tokens``."""
        return await self.ask(self.templates.diagnostic(question), self.max_probe_tokens)

    async def solve(self, question: str, teaching: str) -> str:
        """The student's solution given ``teaching`` (the full reply)."""
        return await self.ask(self.templates.with_teaching(question, teaching), self.max_tokens)


def local_student(model: Any, tokenizer: Any, templates: TeachingTemplates, max_tokens: int,
                  max_probe_tokens: int, temperature: float = 0.0, device: Any = None,
                  offload: bool = False) -> Student:
    """A ``Student`` over a local model (frozen here), generating in process."""
    from verifiers_trainer.inference.engine import InProcessEngine

    freeze(model)
    device = device if device is not None else next(model.parameters()).device
    placement = Placement(model, device, offload)
    engine = InProcessEngine(model, tokenizer, model_name="student")
    return Student(engine, "student", templates, max_tokens, max_probe_tokens, temperature,
                   placement)


def freeze(model: Any) -> Any:
    """Eval mode, no gradients: the student never trains."""
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model
