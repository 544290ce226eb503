"""The login check, slowed down after failed attempts from the same client address.

Gradio's tuple ``auth`` answers as fast as it is asked (measured: 200 wrong
passwords in 0.1 s). Gradio accepts an async callable instead, so this one lets
a few mistakes through at full speed, then makes every attempt from that address
wait its turn and doubles the wait per further failure (up to ``max_delay_s``).

The count is kept per client address: one shared count let 7 concurrent wrong
guesses make the real user's correct login wait 15.2 s (hostile retest). Gradio
passes ``auth`` only the user name and password, so ``ClientAddress`` (an ASGI
middleware) puts the caller's address where ``check`` can read it. Attempts from
one address queue behind that address's lock, so parallel guessing from it gains
nothing; a success resets its count. Behind a reverse proxy on the same machine,
uvicorn takes the address from ``X-Forwarded-For``.
"""

from __future__ import annotations

import asyncio
import hmac
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

_client_address: ContextVar[str] = ContextVar("rag_client_address", default="")


class ClientAddress:
    """ASGI middleware: the caller's address for the request's duration (see module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client") if scope["type"] == "http" else None
        token = _client_address.set(client[0] if client else "")
        try:
            await self.app(scope, receive, send)
        finally:
            _client_address.reset(token)


@dataclass
class _Attempts:
    failures: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SlowLogin:
    """``check`` is an async ``auth`` for ``Blocks.launch`` with a growing delay after
    failures from the same address; at most ``max_clients`` addresses are remembered
    (the least recently seen is forgotten first)."""

    def __init__(self, user: str, password: str, free_attempts: int = 3,
                 base_delay_s: float = 0.5, max_delay_s: float = 8.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 max_clients: int = 10_000) -> None:
        self._user, self._password = user, password
        self.free_attempts, self.base_delay_s, self.max_delay_s = (
            free_attempts, base_delay_s, max_delay_s)
        self._sleep = sleep
        self.max_clients = max_clients
        self._clients: OrderedDict[str, _Attempts] = OrderedDict()
        self.delays: list[tuple[str, float]] = []  # (address, wait) imposed so far, for tests

    def failures(self, address: str) -> int:
        """Failed attempts from ``address`` since its last success."""
        attempts = self._clients.get(address)
        return attempts.failures if attempts else 0

    def delay_s(self, failures: int) -> float:
        """The wait before the next attempt, given that address's failures so far."""
        extra = failures - self.free_attempts
        return 0.0 if extra < 0 else min(self.base_delay_s * 2 ** extra, self.max_delay_s)

    def _attempts(self, address: str) -> _Attempts:
        attempts = self._clients.pop(address, None) or _Attempts()
        self._clients[address] = attempts  # most recently seen last
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return attempts

    def _matches(self, user: str, password: str) -> bool:
        same_user = hmac.compare_digest(user.encode(), self._user.encode())
        same_password = hmac.compare_digest(password.encode(), self._password.encode())
        return same_user and same_password

    async def check(self, user: str, password: str) -> bool:
        """Pass ``check`` itself to Gradio: it awaits only what ``iscoroutinefunction`` says
        is async, and an instance with an async ``__call__`` is not (its coroutine object
        would be truthy, so every password would pass)."""
        address = _client_address.get()
        attempts = self._attempts(address)
        async with attempts.lock:
            delay = self.delay_s(attempts.failures)
            if delay:
                self.delays.append((address, delay))
                await self._sleep(delay)
            ok = self._matches(user, password)
            attempts.failures = 0 if ok else attempts.failures + 1
            return ok
