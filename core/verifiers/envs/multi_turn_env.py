"""MultiTurnEnv: the model and the environment take turns until the episode ends."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from verifiers.clients import ContextLengthError, client_for_loop
from verifiers.envs.environment import Environment, pop_sampling_kwargs, resolve_model_client
from verifiers.types import ChatMessage, Info, Messages, SamplingArgs, State
from verifiers.utils.async_utils import maybe_await, sync_or_async
from verifiers.utils.copying import json_copy


class MultiTurnEnv(Environment):
    """An environment whose episodes alternate model turns and environment responses.

    Subclasses implement two hooks (plain or ``async def``):

    - ``is_completed(messages, state, **kwargs) -> bool``: is the episode over? Checked
      before each model turn and after it.
    - ``env_response(messages, state, **kwargs) -> (new_messages, state)``: the
      environment's reply to the model's last turn (a list of messages in chat mode, a
      string in completion mode).

    and optionally ``setup_state(state, **kwargs)`` (before the first turn) and
    ``cleanup_state(state)`` (after the last, even when the rollout fails).

    ``max_turns`` caps model turns (``-1``: no cap) as in verifiers 0.1.x: the episode ends
    right after the last allowed model turn, without an environment response (a tool call
    in that turn is not executed). An environment that must judge a final move does it in
    its rubric. The loop also ends on a truncated model turn or a prompt that no longer
    fits the context window.

    Each model turn appends the raw response object to ``state["responses"]`` and the
    token-exact turn record to ``state["turns"]``.
    """

    def __init__(self, max_turns: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if max_turns == 0 or max_turns < -1:
            raise ValueError(f"max_turns must be >= 1, or -1 for no limit; got {max_turns}.")
        self.max_turns = max_turns

    # -- hooks ------------------------------------------------------------------------------
    def setup_state(self, state: State, **kwargs: Any) -> State | Any:
        return state

    def cleanup_state(self, state: State) -> Any:
        return None

    def is_completed(self, messages: Messages, state: State, **kwargs: Any) -> bool | Any:
        return False

    @abstractmethod
    def env_response(
        self, messages: Messages, state: State, **kwargs: Any
    ) -> tuple[Messages, State] | Any:
        """The environment's reply to the model's last turn: ``(new_messages, state)``."""

    # -- the loop -------------------------------------------------------------------------
    @sync_or_async
    async def rollout(
        self,
        client: Any = None,
        model: Any = None,
        prompt: Messages | None = None,
        answer: Any = "",
        task: str = "default",
        info: Info | None = None,
        sampling_args: SamplingArgs | None = None,
        **kwargs: Any,
    ) -> tuple[Messages, State]:
        """Run one episode and return ``(completion, state)``.

        In async code, await it; called from sync code it runs to completion. Client and
        model default to the environment's; sampling keywords (``temperature=0.7``) join
        ``sampling_args``; other keywords reach the hooks. A failure propagates with the
        partial state attached as ``exc.vf_state``.
        """
        if prompt is None:
            raise TypeError("rollout() needs prompt=... (a list of messages, or a string).")
        model = self.resolve_model(model)
        client, model = resolve_model_client(client, model)  # a model object: served in process
        sampling_args = pop_sampling_kwargs(kwargs, sampling_args)
        self.merged_sampling_args(sampling_args)  # fail early on bad arguments
        client = await client_for_loop(self.resolve_client(client))
        info = info or {}
        tools = info.get("oai_tools") or self.oai_tools
        messages: Messages = json_copy(prompt)
        state = self.init_state(prompt, answer, task, info, **kwargs)
        try:
            state = await maybe_await(self.setup_state(state, **kwargs)) or state
            while not state["is_completed"]:
                if await maybe_await(self.is_completed(messages, state, **kwargs)):
                    break
                try:
                    reply = await self.model_turn(
                        client, model, messages, state, sampling_args, oai_tools=tools
                    )
                except ContextLengthError:
                    state["is_truncated"] = True
                    break
                messages = self._append(messages, state, reply)
                if state["is_truncated"]:
                    break
                if await maybe_await(self.is_completed(messages, state, **kwargs)):
                    break
                if self.max_turns > 0 and state["turn"] >= self.max_turns:
                    break  # verifiers 0.1.x: no environment response after the last turn
                new, state = await maybe_await(self.env_response(messages, state, **kwargs))
                messages = self._extend(messages, state, new)
        except Exception as exc:
            exc.vf_state = state  # type: ignore[attr-defined]
            raise
        finally:
            await maybe_await(self.cleanup_state(state))
        state["is_completed"] = True
        return state["completion"], state

    def _append(self, messages: Messages, state: State, reply: ChatMessage | str) -> Messages:
        if isinstance(messages, str):
            assert isinstance(reply, str)
            state["completion"] += reply
            return messages + reply
        messages.append(reply)  # type: ignore[arg-type]
        state["completion"].append(json_copy(reply))
        return messages

    def _extend(self, messages: Messages, state: State, new: Messages) -> Messages:
        if isinstance(messages, str):
            if not isinstance(new, str):
                raise TypeError("env_response must return a string in completion mode.")
            state["completion"] += new
            return messages + new
        if isinstance(new, dict):
            new = [new]
        if not isinstance(new, list):
            raise TypeError(
                f"env_response must return a list of messages, got {type(new).__name__}."
            )
        for message in new:
            messages.append(message)
            state["completion"].append(json_copy(message))
        return messages
