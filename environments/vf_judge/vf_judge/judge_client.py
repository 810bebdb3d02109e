"""The judge's endpoint: base URL and API key resolution, and the OpenAI client.

The API key is checked when the environment is loaded, not when the first rollout is
judged: a missing key fails fast, before any policy tokens are spent. A local endpoint
(``127.0.0.1``, ``localhost``, ``::1``, ``0.0.0.0``) needs no key; ``"EMPTY"`` is sent.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlparse

#: The endpoint used when neither ``judge_base_url`` nor ``$OPENAI_BASE_URL`` is set.
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"

#: The key sent to local servers (vLLM, the scripted test server) that accept any key.
LOCAL_API_KEY = "EMPTY"

_LOCAL_NAMES = {"localhost", "0.0.0.0"}


class JudgeAPIKeyError(LookupError):
    """The environment variable that should hold the judge's API key is not set.

    A ``LookupError`` (the variable could not be looked up), so ``vf-eval`` reports it as
    a one-line error rather than a traceback.
    """


def is_local_url(url: str) -> bool:
    """Whether ``url`` points at this machine (127.x.x.x, localhost, ::1, 0.0.0.0)."""
    host = (urlparse(url).hostname or "").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        return False


def resolve_judge_base_url(judge_base_url: str | None) -> str:
    """``judge_base_url``, else ``$OPENAI_BASE_URL``, else OpenAI's public endpoint."""
    if judge_base_url:
        if not urlparse(judge_base_url).scheme or not urlparse(judge_base_url).hostname:
            raise ValueError(
                f"judge_base_url={judge_base_url!r} is not a URL; give the endpoint's full "
                "address, e.g. 'http://127.0.0.1:8001/v1'."
            )
        return judge_base_url
    return os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL


def resolve_judge_api_key(api_key_var: str, base_url: str) -> str:
    """The judge's API key: the value of ``$api_key_var``; ``"EMPTY"`` for a local
    endpoint when the variable is unset. Raises :class:`JudgeAPIKeyError` otherwise."""
    key = os.environ.get(api_key_var)
    if key:
        return key
    if is_local_url(base_url):
        return LOCAL_API_KEY
    raise JudgeAPIKeyError(
        f"The judge's API key variable {api_key_var} is not set (judge endpoint: {base_url}). "
        f"Export it (`export {api_key_var}=...`), name another variable with "
        "judge_api_key_var=..., or point judge_base_url at a local server "
        "(http://127.0.0.1:PORT/v1 needs no key)."
    )


def make_judge_client(judge_base_url: str | None, judge_api_key_var: str) -> Any:
    """The judge's ``openai.AsyncOpenAI`` (its own retries off: the rubric's
    ``RetryPolicy`` applies). ``vf.JudgeRubric`` copies it for each further event loop
    (``verifiers.clients.client_for_loop``), so ``env.evaluate()`` can be called again."""
    import openai

    base_url = resolve_judge_base_url(judge_base_url)
    api_key = resolve_judge_api_key(judge_api_key_var, base_url)
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)
