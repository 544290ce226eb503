"""Who may call ``rag serve``'s machine APIs (``/v1`` and ``/mcp``): one rule for both.

``RAG_API_KEY`` set: every call must carry ``Authorization: Bearer <key>``. Not set:
the APIs are open to whoever can reach the port, unless the chat page asks for a
login (``RAG_UI_USER``/``RAG_UI_PASSWORD``): then they refuse every call, so neither
is ever a way around the login. The key is compared in constant time and never
printed.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from rag.config import Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ApiAccess:
    key: str = ""
    login_required: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiAccess:
        login = bool(settings.ui.user and settings.ui.password.get_secret_value())
        return cls(settings.api.key.get_secret_value().strip(), login)

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        """None when the request may go on, else the one-line reason to refuse it (401)."""
        if not self.key:
            if self.login_required:
                return ("the chat page requires a login: set RAG_API_KEY on the server to "
                        "use the API")
            return None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), self.key.encode()):
            return "invalid or missing API key (Authorization: Bearer ...)"
        return None

    def note(self, host: str) -> str:
        """How the APIs are protected, for the startup line."""
        if self.key:
            return "needs the key in RAG_API_KEY"
        if self.login_required:
            return "is closed until RAG_API_KEY is set, since the chat page requires a login"
        note = "is open to anyone who can reach this port (set RAG_API_KEY to require a key)"
        return note if host in LOOPBACK else f"on {host} " + note
