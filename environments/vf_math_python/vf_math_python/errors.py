"""The errors the ``python`` tool reports (to the model, or to whoever configures it)."""

from __future__ import annotations


class SandboxError(Exception):
    """Base class of the errors the ``python`` tool reports to the model."""


class CodeError(SandboxError):
    """The code raised an exception (the message holds its output and traceback)."""


class LimitExceeded(SandboxError):
    """The process was killed: wall time, CPU time, memory, or it died unexpectedly."""


class ProcessDied(SandboxError):
    """The process ended without answering (e.g. ``os._exit`` or a crash in C code)."""


class SandboxSetupError(SandboxError):
    """A requested isolation layer could not be set up: the code was not run.

    The message names the layer, why it failed and how to fix it.
    """
