"""The one client for OpenAI-compatible servers (answerers, embeddings, judge): ``openai``.

Imported only by the backends that talk to such a server, so ``rag ask`` with the
default e5 embedder and extractive answerer never loads it. Two settings differ from
the package's defaults on purpose: ``max_retries=0`` (the caller's timeout is the one
wait a person sees, and our callers fall back or report instead of retrying), and a
placeholder key for servers that need none (the package refuses to start without one,
and must not pick ``OPENAI_API_KEY`` from the shell and send it to an arbitrary server).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from rag.errors import one_line

NO_KEY = "no-key"  # sent as the bearer token to servers that ask for none


def make_client(base_url: str, api_key: str = "", timeout_s: float = 60.0,
                max_retries: int = 0) -> Any:
    """An ``openai.OpenAI`` for ``base_url`` (…/v1) with one timeout and no hidden retries."""
    import httpx2
    import openai

    return openai.OpenAI(
        base_url=base_url.rstrip("/"), api_key=api_key or NO_KEY, timeout=timeout_s,
        max_retries=max_retries,
        # A model server on this machine never needs the HTTP(S)_PROXY of the shell.
        http_client=httpx2.Client(trust_env=not is_loopback(base_url)),
    )


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin(url: str) -> str:
    """scheme://host:port of ``url``: never the user info, path or query that may hold a key."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def describe_error(exc: BaseException, secret: str = "") -> str:
    """One short line for an ``openai`` error, with the key blanked out."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        text = "timed out"
    elif isinstance(exc, openai.APIConnectionError):
        text = f"cannot connect ({exc.__cause__ or exc})"
    elif isinstance(exc, openai.APIStatusError):
        body = exc.body  # the reply's "error" object when it had one, else the whole body
        detail = body.get("message") if isinstance(body, dict) else body
        text = f"HTTP {exc.status_code}" + (f": {detail}" if detail else "")
    else:
        text = f"{type(exc).__name__}: {exc}"
    return one_line(" ".join(text.split()), [secret])
