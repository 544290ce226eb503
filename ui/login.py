"""The login check, slowed down after failed attempts.

Gradio's tuple ``auth`` answers as fast as it is asked (measured: 200 wrong
passwords in 0.1 s). Gradio accepts an async callable instead, so this one lets
a few mistakes through at full speed, then makes every attempt wait its turn and
doubles the wait per further failure (up to ``max_delay_s``). Attempts queue
behind one lock, so parallel guessing gains nothing; a success resets the count.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable


class SlowLogin:
    """``check`` is an async ``auth`` for ``Blocks.launch`` with a growing delay after failures."""

    def __init__(self, user: str, password: str, free_attempts: int = 3,
                 base_delay_s: float = 0.5, max_delay_s: float = 8.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._user, self._password = user, password
        self.free_attempts, self.base_delay_s, self.max_delay_s = (
            free_attempts, base_delay_s, max_delay_s)
        self._sleep = sleep
        self._lock: asyncio.Lock | None = None
        self.failures = 0
        self.delays: list[float] = []  # the waits imposed so far (kept for tests and logs)

    def delay_s(self) -> float:
        """The wait before the next attempt, given the failures so far."""
        extra = self.failures - self.free_attempts
        return 0.0 if extra < 0 else min(self.base_delay_s * 2 ** extra, self.max_delay_s)

    def _matches(self, user: str, password: str) -> bool:
        same_user = hmac.compare_digest(user.encode(), self._user.encode())
        same_password = hmac.compare_digest(password.encode(), self._password.encode())
        return same_user and same_password

    async def check(self, user: str, password: str) -> bool:
        """Pass ``check`` itself to Gradio: it awaits only what ``iscoroutinefunction`` says
        is async, and an instance with an async ``__call__`` is not (its coroutine object
        would be truthy, so every password would pass)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            delay = self.delay_s()
            if delay:
                self.delays.append(delay)
                await self._sleep(delay)
            ok = self._matches(user, password)
            self.failures = 0 if ok else self.failures + 1
            return ok
