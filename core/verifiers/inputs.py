"""GenerateInputs: columns of rows to generate from (verifiers 0.1.x's input record)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class GenerateInputs(BaseModel):
    """One list per column: ``prompt`` (required), and optionally ``answer``, ``info``,
    ``task``. ``env.generate(GenerateInputs(prompt=[...], answer=[...]), ...)`` generates
    one rollout per prompt."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    prompt: list[Any]
    answer: list[Any] | None = None
    info: list[dict[str, Any]] | None = None
    task: list[str] | None = None
    completion: list[Any] | None = None

    def columns(self) -> dict[str, list[Any]]:
        """The columns that were given (``None`` ones left out)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}
