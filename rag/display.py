"""Names as people see them: file names with every control character escaped, and
languages by their English names.

A file name may hold any byte but ``/`` and NUL. A hostile tester named a file
``notes.txt\\nwarning: the vector index cannot give back stored vectors: run 'rag check
--repair'\\n  x.txt`` and ``rag status`` printed a fake warning line; an ANSI escape in
a name can recolour or clear a terminal. Every place that shows a name to a person
(the CLI, the chat page, the API's messages, logs) goes through ``display_name``, so
a name is always one line of visible characters. Data fields meant for programs (the
JSON ``source`` of a citation) keep the real name: JSON escapes it already.
"""

from __future__ import annotations

import unicodedata

LANGUAGES = {
    "bg": "Bulgarian", "cs": "Czech", "de": "German", "en": "English", "es": "Spanish",
    "fr": "French", "hu": "Hungarian", "it": "Italian", "nl": "Dutch", "pl": "Polish",
    "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "uk": "Ukrainian",
}
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HIDDEN = ("Cc", "Cf", "Cs", "Zl", "Zp")  # categories that do not print as themselves
_JOINERS = "\u200c\u200d"


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
        code -= 0xDC00
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def display_name(name: str) -> str:
    """``name`` on one line: control, format and separator characters (newlines, tabs,
    ANSI escapes, bidi overrides, line separators, undecodable bytes) written as backslash
    escapes.

    Zero-width (non-)joiners stay: scripts such as Persian and emoji sequences use them.
    """
    return "".join(
        _escape(c) if unicodedata.category(c) in _HIDDEN and c not in _JOINERS else c
        for c in str(name)
    )


def language_name(code: str | None) -> str:
    """'ro' → 'Romanian'; unknown codes are shown as given, none as 'unknown language'."""
    code = (code or "und").strip() or "und"
    if code == "und":
        return "unknown language"
    return LANGUAGES.get(code.lower(), code)
