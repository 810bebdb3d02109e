"""MultiTurnEnv: the model and the environment take turns until the episode ends."""

from __future__ import annotations

import copy
from abc import abstractmethod
from typing import Any

from verifiers.clients import ContextLengthError, client_for_loop
from verifiers.envs.environment import Environment, resolve_model_client
from verifiers.types import ChatMessage, Info, Messages, SamplingArgs, State
from verifiers.utils.async_utils import maybe_await, sync_or_async


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
    ``max_turns`` caps model turns (``-1``: no cap); the environment still responds to the
    last allowed turn (unless ``is_completed`` says the episode is over), so a game can
    judge its final move. The loop also ends on a truncated model turn or a prompt that no
    longer fits the context window.
    """

    def __init__(self, max_turns: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if max_turns == 0 or max_turns < -1:
            raise ValueError(f"max_turns must be >= 1, or -1 for no limit; got {max_turns}.")
        self.max_turns = max_turns
        self.oai_tools: list[dict[str, Any]] | None = None  # sent with every model request

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

        In async code, await it; called from sync code it runs to completion. A failure
        propagates with the partial state attached as ``exc.vf_state``.
        """
        if model is None or prompt is None:
            raise TypeError("rollout() needs model=... (a served name, or a loaded model with the "
                            "trainer package installed) and prompt=....")
        client, model = resolve_model_client(client, model)  # a model object: served in process
        client = await client_for_loop(client)
        messages: Messages = copy.deepcopy(prompt)
        state = self.init_state(prompt, answer, task, info, **kwargs)
        try:
            state = await maybe_await(self.setup_state(state, **kwargs)) or state
            while not state["is_completed"]:
                if await maybe_await(self.is_completed(messages, state, **kwargs)):
                    break
                if self.max_turns > 0 and state["turn"] >= self.max_turns:
                    break
                try:
                    reply = await self.get_model_response(
                        client, model, messages, state, sampling_args, tools=self.oai_tools
                    )
                except ContextLengthError:
                    state["is_truncated"] = True
                    break
                messages = self._append(messages, state, reply)
                if state["is_truncated"]:
                    break
                if await maybe_await(self.is_completed(messages, state, **kwargs)):
                    break
                # the environment answers every model turn, the last allowed one included,
                # so a game can judge its final move
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
        state["completion"].append(copy.deepcopy(reply))
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
            state["completion"].append(copy.deepcopy(message))
        return messages
