"""One-line, redacted error messages (rag.errors)."""

from __future__ import annotations

from rag.errors import MAX_ERROR_CHARS, one_line, redact


def test_only_the_first_non_empty_line_survives() -> None:
    assert one_line(RuntimeError("\n  boom: bad thing  \nTraceback (most recent call last):")) \
        == "boom: bad thing"


def test_an_empty_message_names_the_error_type() -> None:
    assert one_line(TimeoutError()) == "TimeoutError"


def test_secrets_are_removed_and_length_is_bounded() -> None:
    message = one_line(ValueError("401 for key sk-abc " + "x" * 1000), secrets=["sk-abc", ""])
    assert "sk-abc" not in message and "***" in message and len(message) == MAX_ERROR_CHARS
    assert redact("pw=hunter2", ["hunter2"]) == "pw=***"


def test_a_long_message_keeps_its_advice_when_shortened() -> None:
    """What to do survives the cut: a long library error in the middle is what is shortened."""
    long = ("the store /tmp/x needs repair: Chroma store at /tmp/x: Error executing plan: "
            + "backfill " * 60 + ": run 'rag check --repair'")
    line = one_line(StoreLikeError(long))
    assert len(line) == MAX_ERROR_CHARS and line.endswith("…: run 'rag check --repair'")
    assert line.startswith("the store /tmp/x needs repair: Chroma store at /tmp/x")
    assert one_line("x" * 1000) == "x" * MAX_ERROR_CHARS  # no advice: a plain cut
    assert one_line("short: run 'rag ingest'") == "short: run 'rag ingest'"


class StoreLikeError(Exception):
    pass
